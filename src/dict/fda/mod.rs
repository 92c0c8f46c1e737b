//! Reading the FDA National Drug Code Directory files `product.txt` and
//! `package.txt` into `Product`s and `Package`s.
//!
//! The files are tab-separated Windows-1252 text with CRLF line endings and a
//! header line; columns are found by header name because the FDA has added
//! columns over the years. A row that cannot be read becomes a `RowProblem`
//! and the reading goes on; only a file without a header or without a
//! required column is an `FdaError`. Products the FDA flags as excluded
//! (`NDC_EXCLUDE_FLAG = E`) are kept and marked, so that normalization can
//! refuse them with a reason instead of calling them unknown.
//!
//! The FDA's final rule (2026) moves NDCs to one 12-digit 6-4-2 format, so
//! NDCPACKAGECODE may come as 6-4-2 (or 12 bare digits, whose layout is
//! known too) and PRODUCTNDC as 6-4: a leading-zero labeler gives the same
//! package as its 10-digit form, and a new 6-digit labeler's package is kept
//! under its 12-digit key. PRODUCTNDC is kept as published; packages join
//! their product by PRODUCTID.
//!
//! This module must never do I/O (callers hand it bytes), never panic on any
//! input, and never guess: a package code whose layout is not known exactly
//! (10 digits without hyphens, or segments no NDC has) is reported and
//! skipped, not repaired; a product whose ingredient lists disagree is kept
//! with the ingredients that align, and reported.

mod table;

#[cfg(test)]
mod tests;

use super::{Ingredient, Package, Product};
use crate::domain::Ndc12;
use crate::domain::ndc::{self, NdcReading};
use table::{Encoding, Header, field_count, lines, split_row};

/// The name `product.txt` goes by in errors and row problems.
pub const PRODUCT_FILE: &str = "product.txt";
/// The name `package.txt` goes by in errors and row problems.
pub const PACKAGE_FILE: &str = "package.txt";

/// Why a directory file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum FdaError {
    /// A required column is missing from the header line.
    #[error("{file}: the header has no column {column}")]
    MissingColumn {
        file: &'static str,
        column: &'static str,
    },
    /// The file is empty or its first line is blank, so it has no header.
    #[error("{file}: the file is empty (no header line)")]
    Empty { file: &'static str },
}

/// A row that was skipped, or read only in part, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// `product.txt` or `package.txt`.
    pub file: &'static str,
    /// The 1-based line number (the header is line 1).
    pub line: usize,
    /// What was wrong, and whether the row was skipped or partly kept.
    pub detail: String,
}

/// Where the product columns sit in this file.
struct ProductColumns {
    id: usize,
    ndc: usize,
    product_type: usize,
    name: usize,
    /// PROPRIETARYNAMESUFFIX: optional, as it only ever adds to the name.
    suffix: Option<usize>,
    generic: usize,
    form: usize,
    route: usize,
    labeler: usize,
    substances: usize,
    strengths: usize,
    units: usize,
    exclude: usize,
    /// PHARM_CLASSES: optional, as older files lack it (a product then has
    /// no class, and no class duplicate can be found for it).
    classes: Option<usize>,
}

impl ProductColumns {
    fn find(h: &Header) -> Result<ProductColumns, FdaError> {
        Ok(ProductColumns {
            id: h.require("PRODUCTID")?,
            ndc: h.require("PRODUCTNDC")?,
            product_type: h.require("PRODUCTTYPENAME")?,
            name: h.require("PROPRIETARYNAME")?,
            suffix: h.optional("PROPRIETARYNAMESUFFIX"),
            generic: h.require("NONPROPRIETARYNAME")?,
            form: h.require("DOSAGEFORMNAME")?,
            route: h.require("ROUTENAME")?,
            labeler: h.require("LABELERNAME")?,
            substances: h.require("SUBSTANCENAME")?,
            strengths: h.require("ACTIVE_NUMERATOR_STRENGTH")?,
            units: h.require("ACTIVE_INGRED_UNIT")?,
            // Required: without it rxsync could not honour the FDA's exclusions.
            exclude: h.require("NDC_EXCLUDE_FLAG")?,
            classes: h.optional("PHARM_CLASSES"),
        })
    }
}

/// Reads `product.txt` (Windows-1252, tab-separated, CRLF).
pub fn read_products(bytes: &[u8]) -> Result<(Vec<Product>, Vec<RowProblem>), FdaError> {
    let (enc, bytes) = Encoding::sniff(bytes);
    let mut rows = lines(bytes);
    let header = Header::parse(PRODUCT_FILE, enc, rows.next())?;
    let cols = ProductColumns::find(&header)?;
    let mut products = Vec::with_capacity(bytes.len() / 320);
    let mut problems = Vec::new();
    let mut fields = Vec::with_capacity(header.width + 1);
    for (line, row) in rows {
        if row.is_empty() {
            continue;
        }
        if !split_row(row, header.width, &mut fields) {
            problems.push(width_problem(PRODUCT_FILE, line, row, header.width));
            continue;
        }
        let f = |i: usize| enc.field(fields[i]);
        let mut name = f(cols.name);
        if let Some(suffix) = cols.suffix.map(f).filter(|s| !s.is_empty()) {
            name.push(' ');
            name.push_str(&suffix);
        }
        let lists = [cols.substances, cols.strengths, cols.units].map(|i| fields[i]);
        let (ingredients, mismatch) = ingredients(enc, lists);
        if let Some(detail) = mismatch {
            problems.push(RowProblem {
                file: PRODUCT_FILE,
                line,
                detail,
            });
        }
        products.push(Product {
            product_id: f(cols.id),
            product_ndc: f(cols.ndc),
            product_type: f(cols.product_type),
            proprietary_name: name,
            nonproprietary_name: f(cols.generic),
            dosage_form: f(cols.form),
            route: f(cols.route),
            labeler: f(cols.labeler),
            ingredients,
            excluded: fields[cols.exclude].trim_ascii() == b"E",
            epc: cols
                .classes
                .map(|i| established_classes(&enc.field(fields[i])))
                .unwrap_or_default(),
        });
    }
    Ok((products, problems))
}

/// Zips the `;`-separated substance, strength and unit lists.
///
/// A list field left wholly empty means "not published" for every
/// ingredient (the FDA does this for cell therapies such as GINTUIT, whose
/// units read `/; /; /`), so it contributes empty strings rather than a
/// mismatch. When published lists disagree in length, the ingredients that
/// align are kept (dropping the product would hide it from the dictionary)
/// and the mismatch is reported.
fn ingredients(enc: Encoding, lists: [&[u8]; 3]) -> (Vec<Ingredient>, Option<String>) {
    let published = lists.map(|list| Pieces::new(list).count());
    let count = published
        .iter()
        .copied()
        .filter(|&n| n > 0)
        .min()
        .unwrap_or(0);
    let [mut names, mut amounts, mut units] = lists.map(Pieces::new);
    let next = |pieces: &mut Pieces| enc.field(pieces.next().unwrap_or_default());
    let list = (0..count)
        .map(|_| Ingredient {
            name: next(&mut names),
            strength: next(&mut amounts),
            unit: next(&mut units),
        })
        .collect();
    let mismatch = published.iter().any(|&n| n != 0 && n != count).then(|| {
        format!(
            "{} substances, {} strengths and {} units do not align; kept the first {count} ingredients",
            published[0], published[1], published[2]
        )
    });
    (list, mismatch)
}

/// The `[EPC]` entries of a PHARM_CLASSES field, in order, without
/// repeats. Entries are separated by commas, but a few class names hold a
/// comma themselves (`Estrogens, Conjugated (USP) [CS]`), so an entry ends
/// only where a piece ends with its `[…]` type; text that never does
/// (a cut-off field) is no entry.
fn established_classes(field: &str) -> Vec<String> {
    let mut classes: Vec<String> = Vec::new();
    let mut entry = String::new();
    for piece in field.split(',') {
        if !entry.is_empty() {
            entry.push(',');
        }
        entry.push_str(piece);
        if !piece.trim_end().ends_with(']') {
            continue;
        }
        let class = entry.trim();
        if class.ends_with("[EPC]") && !classes.iter().any(|c| c == class) {
            classes.push(class.to_string());
        }
        entry.clear();
    }
    classes
}

/// Reads `package.txt` (Windows-1252, tab-separated, CRLF).
pub fn read_packages(bytes: &[u8]) -> Result<(Vec<Package>, Vec<RowProblem>), FdaError> {
    let (enc, bytes) = Encoding::sniff(bytes);
    let mut rows = lines(bytes);
    let header = Header::parse(PACKAGE_FILE, enc, rows.next())?;
    let id_col = header.require("PRODUCTID")?;
    let code_col = header.require("NDCPACKAGECODE")?;
    let desc_col = header.require("PACKAGEDESCRIPTION")?;
    let mut packages = Vec::with_capacity(bytes.len() / 130);
    let mut problems = Vec::new();
    let mut fields = Vec::with_capacity(header.width + 1);
    for (line, row) in rows {
        if row.is_empty() {
            continue;
        }
        if !split_row(row, header.width, &mut fields) {
            problems.push(width_problem(PACKAGE_FILE, line, row, header.width));
            continue;
        }
        let code = enc.field(fields[code_col]);
        let ndc = match package_ndc(&code) {
            Ok(n) => n,
            Err(detail) => {
                problems.push(RowProblem {
                    file: PACKAGE_FILE,
                    line,
                    detail,
                });
                continue;
            }
        };
        packages.push(Package {
            ndc,
            package_ndc: code,
            product_id: enc.field(fields[id_col]),
            description: enc.field(fields[desc_col]),
        });
    }
    Ok((packages, problems))
}

/// The pieces of one `;`-separated list, without allocating; a blank field
/// has no pieces. A `;` inside parentheses belongs to a substance's name, as
/// in `HYDROLYZED SOY PROTEIN (ENZYMATIC; 2000 MW)`, and does not split.
struct Pieces<'a> {
    /// What is left of the list; `None` once the last piece was given.
    rest: Option<&'a [u8]>,
}

impl<'a> Pieces<'a> {
    fn new(list: &'a [u8]) -> Pieces<'a> {
        Pieces {
            rest: (!list.trim_ascii().is_empty()).then_some(list),
        }
    }
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let list = self.rest?;
        let mut depth = 0usize;
        for (i, &b) in list.iter().enumerate() {
            match b {
                b'(' => depth += 1,
                b')' => depth = depth.saturating_sub(1),
                b';' if depth == 0 => {
                    self.rest = Some(&list[i + 1..]);
                    return Some(&list[..i]);
                }
                _ => {}
            }
        }
        self.rest = None;
        Some(list)
    }
}

/// The 12-digit key of NDCPACKAGECODE (an NDC-11's, or a new 6-digit
/// labeler's own), or why the row is skipped.
fn package_ndc(code: &str) -> Result<Ndc12, String> {
    match ndc::parse(code) {
        Ok(parsed) => match parsed.reading {
            NdcReading::Exact(n) => Ok(n.to_ndc12()),
            NdcReading::NewLabeler(n) => Ok(n),
            NdcReading::Ambiguous(_) => Err(format!(
                "NDCPACKAGECODE {code:?} has no hyphens, so its layout is unknown; row skipped"
            )),
        },
        Err(e) => Err(format!("NDCPACKAGECODE is not an NDC: {e}; row skipped")),
    }
}

fn width_problem(file: &'static str, line: usize, row: &[u8], width: usize) -> RowProblem {
    let detail = format!(
        "{} fields where the header has {width}; row skipped",
        field_count(row)
    );
    RowProblem { file, line, detail }
}
