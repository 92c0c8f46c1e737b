//! The drug dictionary: NDC → product, as the FDA NDC directory describes it.
//! Packages are keyed by their 12-digit NDC (`Ndc12`), which every NDC has:
//! an NDC-11 is found under `to_ndc12()`, and a new 6-digit labeler's
//! package, which has no 11-digit form, under its own.
//!
//! `fda` reads the directory's `product.txt` and `package.txt` (pure, over
//! bytes); `brand` keys proprietary names and tells which substances a
//! brand stands for. `DrugDictionary` is the one question normalization
//! asks; `MemoryDictionary` answers it, filled from the SQLite store per
//! import in production, from products in tests.
//! Nothing here writes to a database.

pub mod brand;
pub mod fda;

pub use brand::{BrandIndex, brand_key};

use crate::domain::{Ndc11, Ndc12};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// One active ingredient of a product, as the FDA lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ingredient {
    /// Substance name, upper case as the FDA writes it (`LISINOPRIL`).
    pub name: String,
    /// Numerator strength as text (`10`, `12.5`).
    pub strength: String,
    /// Unit (`mg/1`, `mg/mL`).
    pub unit: String,
}

/// A product of the FDA NDC directory (one row of `product.txt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    /// PRODUCTID: the FDA's key joining products and packages.
    pub product_id: String,
    /// PRODUCTNDC as published (hyphenated labeler-product).
    pub product_ndc: String,
    /// PRODUCTTYPENAME (`HUMAN PRESCRIPTION DRUG`, …).
    pub product_type: String,
    /// PROPRIETARYNAME (+ suffix), the brand or trade name.
    pub proprietary_name: String,
    /// NONPROPRIETARYNAME, the generic name.
    pub nonproprietary_name: String,
    /// DOSAGEFORMNAME (`TABLET, FILM COATED`).
    pub dosage_form: String,
    /// ROUTENAME (`ORAL`; several are separated by `; `).
    pub route: String,
    /// LABELERNAME.
    pub labeler: String,
    /// Active ingredients with their strengths, in FDA order.
    pub ingredients: Vec<Ingredient>,
    /// NDC_EXCLUDE_FLAG = E: listed in the file, excluded from the NDC Directory.
    pub excluded: bool,
    /// The Established Pharmacologic Classes of the product: the `[EPC]`
    /// entries of PHARM_CLASSES as the FDA writes them
    /// (`HMG-CoA Reductase Inhibitor [EPC]`), in file order. The classes
    /// belong to the product, not to one ingredient: a combination lists
    /// the class of each of its ingredients. Empty when the file has no
    /// PHARM_CLASSES column or the product has no EPC.
    pub epc: Vec<String>,
}

impl Product {
    /// A key equal for two products with the same active ingredients,
    /// strengths and dose form (the same clinical drug; RxNorm's SCD level).
    pub fn clinical_key(&self) -> String {
        let mut parts: Vec<String> = self
            .ingredients
            .iter()
            .map(|i| {
                format!(
                    "{}={}{}",
                    i.name.to_lowercase(),
                    i.strength,
                    i.unit.to_lowercase()
                )
            })
            .collect();
        parts.sort();
        format!(
            "{}|{}",
            parts.join("+"),
            dose_form_family(&self.dosage_form)
        )
    }

    /// A key equal for two products with the same active ingredients at any
    /// strength or form.
    pub fn ingredient_key(&self) -> String {
        let mut names: Vec<String> = self
            .ingredients
            .iter()
            .map(|i| i.name.to_lowercase())
            .collect();
        names.sort();
        names.dedup();
        names.join("+")
    }

    /// Strength for people: `10 mg/1` or `12.5 mg/1; 10 mg/1`.
    pub fn strength_text(&self) -> String {
        self.ingredients
            .iter()
            .map(|i| format!("{} {}", i.strength, i.unit))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The FDA dose form without the qualifiers that do not make another
/// clinical drug: a film-coated or sugar-coated tablet is a tablet (RxNorm's
/// "Oral Tablet"), a gelatin-coated or liquid-filled capsule a capsule, while
/// extended release, delayed release, chewable or orally disintegrating stay
/// distinct.
fn dose_form_family(form: &str) -> String {
    let lower = form.to_lowercase();
    let mut parts: Vec<&str> = lower.split(',').map(str::trim).collect();
    parts.retain(|p| {
        !matches!(
            *p,
            "film coated" | "coated" | "sugar coated" | "gelatin coated" | "liquid filled"
        )
    });
    parts.join(", ")
}

/// A package (one row of `package.txt`) with its product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "PackageJson")]
pub struct Package {
    /// The package NDC in its 12-digit 6-4-2 form, the dictionary's key:
    /// every NDC has one, and a new 6-digit labeler's has no 11-digit form.
    pub ndc: Ndc12,
    /// NDCPACKAGECODE as published (hyphenated 10-digit, or 6-4-2).
    pub package_ndc: String,
    /// PRODUCTID of the product it packages.
    pub product_id: String,
    /// PACKAGEDESCRIPTION.
    pub description: String,
}

impl Package {
    /// The package NDC in 11-digit form; None for a new 6-digit labeler.
    pub fn ndc11(&self) -> Option<Ndc11> {
        self.ndc.to_ndc11()
    }
}

/// A package as JSON shows it: `ndc11` as before (null when the NDC has no
/// 11-digit form) and `ndc12` beside it.
#[derive(Serialize)]
struct PackageJson {
    ndc11: Option<Ndc11>,
    ndc12: Ndc12,
    package_ndc: String,
    product_id: String,
    description: String,
}

impl From<Package> for PackageJson {
    fn from(p: Package) -> PackageJson {
        PackageJson {
            ndc11: p.ndc11(),
            ndc12: p.ndc,
            package_ndc: p.package_ndc,
            product_id: p.product_id,
            description: p.description,
        }
    }
}

/// What the dictionary knows of one package NDC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DictEntry {
    pub package: Package,
    pub product: Product,
}

/// The question normalization asks of the drug space.
pub trait DrugDictionary {
    /// The package and product for an NDC, by its 12-digit form (an NDC-11
    /// is looked up as `to_ndc12()`), if the dictionary has it. Entries are
    /// shared, not copied: a regimen of thousands of items names a few
    /// hundred products.
    fn lookup(&self, ndc: &Ndc12) -> Option<Arc<DictEntry>>;

    /// Which load of the directory the answers come from (see
    /// `snapshot_label`), so that a flag resting on dictionary knowledge
    /// (a therapeutic class) can say what it used. None: not recorded.
    fn snapshot(&self) -> Option<&str> {
        None
    }

    /// The active substances (upper case, as the FDA writes them) of every
    /// brand whose normalized proprietary name (`brand_key`) is
    /// `word_or_name` or starts with it at a word boundary: `zestril`,
    /// `bactrim` or `bactrim ds`. None: no brand the dictionary holds.
    /// A proprietary name that names its own substance is no brand
    /// (`Product::brand_key`).
    fn brand_substances(&self, word_or_name: &str) -> Option<Vec<String>>;
}

/// How a dictionary snapshot is named in flags: where it was loaded from
/// and when (`dict_meta`'s `loaded_from` and `loaded_at`).
pub fn snapshot_label(loaded_from: &str, loaded_at: &str) -> String {
    format!("{loaded_from} loaded {loaded_at}")
}

/// How the demo names the sample dictionary it loads from the binary
/// (`dict_meta.loaded_from`).
pub const SAMPLE_SOURCE: &str = "embedded samples/ndc";

/// Where the FDA publishes the whole NDC directory (`product.txt` and
/// `package.txt`, zipped).
pub const FDA_DIRECTORY_URL: &str = "https://www.accessdata.fda.gov/cder/ndctext.zip";

/// Whether a dictionary loaded from `loaded_from` is the repository's
/// sample, a small subset of the FDA directory: the demo's embedded copy,
/// or `rxsync dict import --fda samples/ndc`.
pub fn is_sample(loaded_from: &str) -> bool {
    loaded_from == SAMPLE_SOURCE || std::path::Path::new(loaded_from).ends_with("samples/ndc")
}

/// What to add when the dictionary cannot answer a lookup or a mapping:
/// for the sample (`loaded_from`, holding `products` products), that it is
/// partial and how to load the whole directory; None for any other load.
pub fn sample_note(loaded_from: Option<&str>, products: usize) -> Option<String> {
    loaded_from.filter(|f| is_sample(f)).map(|_| {
        format!(
            "the sample dictionary holds only {products} products of the FDA NDC directory; \
             load the whole directory (unzip {FDA_DIRECTORY_URL}) into this database with: \
             rxsync dict import --fda DIR"
        )
    })
}

/// A dictionary held in memory: the entries one import needs, and tests.
#[derive(Debug, Default, Clone)]
pub struct MemoryDictionary {
    entries: HashMap<Ndc12, Arc<DictEntry>>,
    /// The label of the snapshot the entries were read from (`snapshot_label`).
    snapshot: Option<String>,
    /// The brands the import's texts may name (read from the store by
    /// `import::dictionary_for`), or every brand of the products it was
    /// built from.
    brands: BrandIndex,
}

impl MemoryDictionary {
    /// Builds a dictionary from products and their packages, with the
    /// brands of every product; packages whose product is missing are left
    /// out.
    pub fn new(products: &[Product], packages: &[Package]) -> MemoryDictionary {
        let by_id: HashMap<&str, &Product> = products
            .iter()
            .map(|p| (p.product_id.as_str(), p))
            .collect();
        let entries = packages
            .iter()
            .filter_map(|pkg| {
                let product = by_id.get(pkg.product_id.as_str())?;
                Some((
                    pkg.ndc,
                    Arc::new(DictEntry {
                        package: pkg.clone(),
                        product: (*product).clone(),
                    }),
                ))
            })
            .collect();
        MemoryDictionary {
            entries,
            snapshot: None,
            brands: BrandIndex::of(products),
        }
    }

    /// Names the snapshot the entries come from (`snapshot_label`).
    pub fn with_snapshot(mut self, label: Option<String>) -> MemoryDictionary {
        self.snapshot = label;
        self
    }

    /// Adds (or replaces) one entry.
    pub fn insert(&mut self, entry: DictEntry) {
        self.entries.insert(entry.package.ndc, Arc::new(entry));
    }

    /// Adds the substances of the brand `key` (a `brand_key`).
    pub fn insert_brand(&mut self, key: &str, substances: impl IntoIterator<Item = String>) {
        self.brands.insert(key, substances);
    }

    /// How many packages it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl DrugDictionary for MemoryDictionary {
    fn lookup(&self, ndc: &Ndc12) -> Option<Arc<DictEntry>> {
        self.entries.get(ndc).cloned()
    }

    fn snapshot(&self) -> Option<&str> {
        self.snapshot.as_deref()
    }

    fn brand_substances(&self, word_or_name: &str) -> Option<Vec<String>> {
        self.brands.substances(word_or_name)
    }
}

#[cfg(test)]
mod tests {
    use super::{SAMPLE_SOURCE, dose_form_family, sample_note};

    #[test]
    fn only_the_sample_dictionary_is_called_partial() {
        let note = sample_note(Some(SAMPLE_SOURCE), 118).expect("the demo's sample");
        assert!(note.contains("holds only 118 products"), "{note}");
        assert!(note.contains("rxsync dict import --fda DIR"), "{note}");
        assert!(sample_note(Some("/home/me/rxsync/samples/ndc"), 118).is_some());
        assert!(sample_note(Some("/srv/fda/ndctext"), 128_241).is_none());
        assert!(sample_note(None, 0).is_none());
    }

    #[test]
    fn dose_forms_fold_only_qualifiers_that_make_no_other_drug() {
        let rows = [
            ("TABLET, FILM COATED", "tablet"),
            ("TABLET", "tablet"),
            ("TABLET, SUGAR COATED", "tablet"),
            ("CAPSULE, GELATIN COATED", "capsule"),
            ("CAPSULE, LIQUID FILLED", "capsule"),
            (
                "TABLET, FILM COATED, EXTENDED RELEASE",
                "tablet, extended release",
            ),
            ("TABLET, EXTENDED RELEASE", "tablet, extended release"),
            ("CAPSULE, DELAYED RELEASE", "capsule, delayed release"),
            ("TABLET, CHEWABLE", "tablet, chewable"),
        ];
        for (form, family) in rows {
            assert_eq!(dose_form_family(form), family, "{form}");
        }
    }
}
