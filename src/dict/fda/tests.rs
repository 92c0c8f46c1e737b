//! The reader against the sample subset, against small byte strings that
//! each show one rule, against arbitrary bytes, and (ignored unless
//! RXSYNC_FDA_DIR is set) against the full 2019 snapshot.

use super::*;
use proptest::prelude::*;

const SAMPLE_PRODUCTS: &[u8] = include_bytes!("../../../samples/ndc/product.txt");
const SAMPLE_PACKAGES: &[u8] = include_bytes!("../../../samples/ndc/package.txt");

fn sample_products() -> Vec<Product> {
    let (products, problems) = read_products(SAMPLE_PRODUCTS).expect("the sample has every column");
    assert_eq!(problems, vec![]);
    products
}

fn sample_packages() -> Vec<Package> {
    let (packages, problems) = read_packages(SAMPLE_PACKAGES).expect("the sample has every column");
    assert_eq!(problems, vec![]);
    packages
}

fn product<'a>(products: &'a [Product], ndc: &str) -> &'a Product {
    products
        .iter()
        .find(|p| p.product_ndc == ndc)
        .unwrap_or_else(|| panic!("{ndc} is in the sample"))
}

fn ingredient(name: &str, strength: &str, unit: &str) -> Ingredient {
    Ingredient {
        name: name.into(),
        strength: strength.into(),
        unit: unit.into(),
    }
}

#[test]
fn the_sample_reads_whole_with_every_package_joined_to_its_product() {
    let (products, packages) = (sample_products(), sample_packages());
    assert_eq!((products.len(), packages.len()), (118, 250));
    let ids: std::collections::HashSet<&str> =
        products.iter().map(|p| p.product_id.as_str()).collect();
    assert!(packages.iter().all(|k| ids.contains(k.product_id.as_str())));
    // Only the Vagistat-3 kit lists no active substance in the FDA's file.
    let without: Vec<&str> = products
        .iter()
        .filter(|p| p.ingredients.is_empty())
        .map(|p| p.product_ndc.as_str())
        .collect();
    assert_eq!(without, ["0067-2091"]);
}

#[test]
fn sample_products_carry_the_fields_the_fda_published() {
    // (PRODUCTNDC, name with suffix, generic, form, route, labeler, ingredients, excluded)
    type Row = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    );
    let rows: &[(Row, Vec<Ingredient>, bool)] = &[
        (
            (
                "0006-0106",
                "PRINIVIL",
                "lisinopril",
                "TABLET",
                "ORAL",
                "Merck Sharp & Dohme Corp.",
            ),
            vec![ingredient("LISINOPRIL", "10", "mg/1")],
            false,
        ),
        (
            (
                "0069-2150",
                "Caduet",
                "amlodipine besylate and atorvastatin calcium",
                "TABLET, FILM COATED",
                "ORAL",
                "Pfizer Laboratories Div Pfizer Inc",
            ),
            vec![
                ingredient("AMLODIPINE BESYLATE", "5", "mg/1"),
                ingredient("ATORVASTATIN CALCIUM TRIHYDRATE", "10", "mg/1"),
            ],
            false,
        ),
        (
            (
                "0143-1266",
                "Lisinopril",
                "Lisinopril",
                "TABLET",
                "ORAL",
                "West-Ward Pharmaceuticals Corp",
            ),
            vec![ingredient("LISINOPRIL", "5", "mg/1")],
            true,
        ),
        (
            // PROPRIETARYNAMESUFFIX joins the name; ™ is Windows-1252 0x99.
            (
                "58633-315",
                "Dark Spot Sun Defense Broad Spectrum SPF 50",
                "Titanium Dioxide and Zinc Oxide",
                "CREAM",
                "TOPICAL",
                "Dr. Dennis Gross Skincare™, LLC",
            ),
            vec![
                ingredient("TITANIUM DIOXIDE", "49", "mg/mL"),
                ingredient("ZINC OXIDE", "44.2", "mg/mL"),
            ],
            true,
        ),
        (
            // – is Windows-1252 0x96 (Latin-1 would give a control character).
            (
                "61748-301",
                "Myorisan",
                "isotretinoin",
                "CAPSULE, LIQUID FILLED",
                "ORAL",
                "VersaPharm, Inc. – An Akorn Company",
            ),
            vec![ingredient("ISOTRETINOIN", "10", "mg/1")],
            false,
        ),
        (
            (
                "11446-188",
                "Easy",
                "Menthol",
                "PATCH",
                "TOPICAL",
                "Wong’s Pharmaceutical International",
            ),
            vec![ingredient("MENTHOL", "4", "g/1")],
            true,
        ),
    ];
    let products = sample_products();
    for ((ndc, name, generic, form, route, labeler), ingredients, excluded) in rows {
        let p = product(&products, ndc);
        let got = (
            &*p.proprietary_name,
            &*p.nonproprietary_name,
            &*p.dosage_form,
            &*p.route,
            &*p.labeler,
        );
        assert_eq!(got, (*name, *generic, *form, *route, *labeler), "row {ndc}");
        assert_eq!(&p.ingredients, ingredients, "row {ndc}");
        assert_eq!(p.excluded, *excluded, "row {ndc}");
    }
}

#[test]
fn sample_package_codes_normalize_to_5_4_2() {
    let rows = [
        ("0777-3105-02", "00777310502"), // 4-4-2: the labeler is padded
        ("0006-0106-54", "00006010654"),
        ("51144-050-01", "51144005001"), // 5-3-2: the product is padded
        ("11822-0453-1", "11822045301"), // 5-4-1: the package is padded
    ];
    let packages = sample_packages();
    for (code, want) in rows {
        let got = packages
            .iter()
            .find(|k| k.package_ndc == code)
            .and_then(|k| k.ndc11())
            .map(|n| n.as_str().to_string());
        assert_eq!(got.as_deref(), Some(want), "row {code}");
    }
    // Every code: the 11-digit form is the 10 digits with a zero put in
    // front of the short segment.
    for k in &packages {
        let segments: Vec<&str> = k.package_ndc.split('-').collect();
        let widths: Vec<usize> = segments.iter().map(|s| s.len()).collect();
        let padded: Vec<String> = segments
            .iter()
            .zip([5, 4, 2])
            .map(|(s, full)| {
                if s.len() + 1 == full {
                    format!("0{s}")
                } else {
                    s.to_string()
                }
            })
            .collect();
        assert!(
            matches!(widths.as_slice(), [4, 4, 2] | [5, 3, 2] | [5, 4, 1]),
            "{}",
            k.package_ndc
        );
        assert_eq!(
            k.ndc11().map(|n| n.to_string()),
            Some(padded.concat()),
            "{}",
            k.package_ndc
        );
    }
    assert!(
        packages.iter().all(|k| k.package_ndc != "68180-0513-01"),
        "the demo needs it unmapped"
    );
}

const PRODUCT_HEADER: &str = "PRODUCTID\tPRODUCTNDC\tPRODUCTTYPENAME\tPROPRIETARYNAME\tPROPRIETARYNAMESUFFIX\tNONPROPRIETARYNAME\tDOSAGEFORMNAME\tROUTENAME\tLABELERNAME\tSUBSTANCENAME\tACTIVE_NUMERATOR_STRENGTH\tACTIVE_INGRED_UNIT\tNDC_EXCLUDE_FLAG";
const PRODUCT_ROW: &str = "0006-0106_x\t0006-0106\tHUMAN PRESCRIPTION DRUG\tPRINIVIL\t\tlisinopril\tTABLET\tORAL\tMerck\tLISINOPRIL\t10\tmg/1\tN";
const PACKAGE_HEADER: &str = "PRODUCTID\tPRODUCTNDC\tNDCPACKAGECODE\tPACKAGEDESCRIPTION";

fn one_product(text: &str) -> (Vec<Product>, Vec<RowProblem>) {
    read_products(text.as_bytes()).expect("the header is complete")
}

#[test]
fn line_endings_and_byte_order_marks_are_tolerated() {
    let rows = [
        (
            "CRLF",
            format!("{PRODUCT_HEADER}\r\n{PRODUCT_ROW}\r\n").into_bytes(),
        ),
        (
            "LF only",
            format!("{PRODUCT_HEADER}\n{PRODUCT_ROW}\n").into_bytes(),
        ),
        (
            "no final newline",
            format!("{PRODUCT_HEADER}\r\n{PRODUCT_ROW}").into_bytes(),
        ),
        (
            "UTF-8 BOM",
            format!("\u{feff}{PRODUCT_HEADER}\r\n{PRODUCT_ROW}\r\n").into_bytes(),
        ),
        (
            "blank line",
            format!("{PRODUCT_HEADER}\r\n\r\n{PRODUCT_ROW}\r\n").into_bytes(),
        ),
    ];
    for (name, bytes) in rows {
        let (products, problems) = read_products(&bytes).expect(name);
        assert_eq!(problems, vec![], "row {name}");
        assert_eq!(products.len(), 1, "row {name}");
        assert_eq!(products[0].proprietary_name, "PRINIVIL", "row {name}");
        assert_eq!(
            products[0].ingredients,
            vec![ingredient("LISINOPRIL", "10", "mg/1")],
            "row {name}"
        );
    }
}

#[test]
fn columns_are_found_by_name_not_position() {
    // Reversed order, plus a column the reader does not know.
    let header: Vec<&str> = PRODUCT_HEADER
        .split('\t')
        .rev()
        .chain(["NEW_FDA_COLUMN"])
        .collect();
    let row: Vec<&str> = PRODUCT_ROW.split('\t').rev().chain(["whatever"]).collect();
    let (products, problems) =
        one_product(&format!("{}\r\n{}\r\n", header.join("\t"), row.join("\t")));
    assert_eq!(problems, vec![]);
    assert_eq!(products[0].product_ndc, "0006-0106");
    assert_eq!(products[0].labeler, "Merck");
    assert!(!products[0].excluded);
}

#[test]
fn a_file_without_its_header_or_a_required_column_is_an_error() {
    let without_labeler = PRODUCT_HEADER.replace("\tLABELERNAME", "");
    let rows: [(&str, &[u8], &str); 5] = [
        (
            "empty",
            b"",
            "product.txt: the file is empty (no header line)",
        ),
        (
            "blank first line",
            b"\r\n",
            "product.txt: the file is empty (no header line)",
        ),
        (
            "only a BOM",
            b"\xEF\xBB\xBF",
            "product.txt: the file is empty (no header line)",
        ),
        (
            "no LABELERNAME",
            without_labeler.as_bytes(),
            "product.txt: the header has no column LABELERNAME",
        ),
        (
            "not a header",
            b"hello\tworld\r\n",
            "product.txt: the header has no column PRODUCTID",
        ),
    ];
    for (name, bytes, want) in rows {
        let got = read_products(bytes).map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(got, Err(want.to_string()), "row {name}");
    }
    let got = read_packages(b"PRODUCTID\tNDCPACKAGECODE\r\n")
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert_eq!(
        got,
        Err("package.txt: the header has no column PACKAGEDESCRIPTION".to_string())
    );
}

#[test]
fn rows_that_cannot_be_read_are_reported_with_their_line() {
    let short = PRODUCT_ROW
        .rsplit_once('\t')
        .map(|(head, _)| head)
        .unwrap_or_default();
    let text = format!("{PRODUCT_HEADER}\r\n{short}\r\n{PRODUCT_ROW}\tEXTRA\r\n{PRODUCT_ROW}\r\n");
    let (products, problems) = one_product(&text);
    assert_eq!(products.len(), 1);
    let want = [
        (2, "12 fields where the header has 13; row skipped"),
        (3, "14 fields where the header has 13; row skipped"),
    ];
    let got: Vec<(usize, &str)> = problems
        .iter()
        .map(|p| (p.line, p.detail.as_str()))
        .collect();
    assert_eq!(got, want);
    assert!(problems.iter().all(|p| p.file == PRODUCT_FILE));
}

#[test]
fn ingredient_lists_are_zipped_and_mismatches_reported() {
    // (SUBSTANCENAME, STRENGTH, UNIT, ingredients kept, problem reported)
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        Vec<Ingredient>,
        Option<&'static str>,
    );
    let rows: &[Case] = &[
        (
            "LISINOPRIL",
            "10",
            "mg/1",
            vec![ingredient("LISINOPRIL", "10", "mg/1")],
            None,
        ),
        (
            "AMLODIPINE BESYLATE; ATORVASTATIN CALCIUM",
            "5; 10",
            "mg/1; mg/1",
            vec![
                ingredient("AMLODIPINE BESYLATE", "5", "mg/1"),
                ingredient("ATORVASTATIN CALCIUM", "10", "mg/1"),
            ],
            None,
        ),
        (
            // A semicolon inside parentheses is part of the name.
            "GLYCERIN; HYDROLYZED SOY PROTEIN (ENZYMATIC; 2000 MW)",
            "10; .12",
            "g/100g; g/100g",
            vec![
                ingredient("GLYCERIN", "10", "g/100g"),
                ingredient(
                    "HYDROLYZED SOY PROTEIN (ENZYMATIC; 2000 MW)",
                    ".12",
                    "g/100g",
                ),
            ],
            None,
        ),
        (
            // Strengths not published at all (GINTUIT): names kept, no problem.
            "A; B",
            "",
            "/; /",
            vec![ingredient("A", "", "/"), ingredient("B", "", "/")],
            None,
        ),
        (
            "A; B; C",
            "1; 2",
            "mg/1; mg/1; mg/1",
            vec![ingredient("A", "1", "mg/1"), ingredient("B", "2", "mg/1")],
            Some(
                "3 substances, 2 strengths and 3 units do not align; kept the first 2 ingredients",
            ),
        ),
        ("", "", "", vec![], None),
    ];
    for (substances, strengths, units, want, problem) in rows {
        let row = PRODUCT_ROW.replace(
            "LISINOPRIL\t10\tmg/1",
            &format!("{substances}\t{strengths}\t{units}"),
        );
        let (products, problems) = one_product(&format!("{PRODUCT_HEADER}\n{row}\n"));
        assert_eq!(&products[0].ingredients, want, "row {substances:?}");
        let got: Vec<(usize, &str)> = problems
            .iter()
            .map(|p| (p.line, p.detail.as_str()))
            .collect();
        assert_eq!(
            got,
            problem.iter().map(|d| (2, *d)).collect::<Vec<_>>(),
            "row {substances:?}"
        );
    }
}

#[test]
fn package_codes_must_be_exact_ndcs() {
    // (NDCPACKAGECODE, the NDC-11 read, or the problem reported)
    let rows: &[(&str, Result<&str, &str>)] = &[
        ("0777-3105-02", Ok("00777310502")),
        ("16590-619-30", Ok("16590061930")),
        ("60505-7001-2", Ok("60505700102")),
        // The FDA numbers some products 000/0000; ndc::parse refuses them.
        ("15631-0000-1", Ok("15631000001")),
        ("10613-000-42", Ok("10613000042")),
        (
            "0000-1234-12",
            Err(
                "NDCPACKAGECODE is not an NDC: \"0000-1234-12\" has the all-zero labeler 00000, which the FDA assigns to no one; row skipped",
            ),
        ),
        (
            "0777310502",
            Err(
                "NDCPACKAGECODE \"0777310502\" has no hyphens, so its layout is unknown; row skipped",
            ),
        ),
        (
            "2501-813-16",
            Err(
                "NDCPACKAGECODE is not an NDC: \"2501-813-16\" has segments 4-3-2, which is not 4-4-2, 5-3-2, 5-4-1, 5-4-2 or 6-4-2; row skipped",
            ),
        ),
        (
            "",
            Err("NDCPACKAGECODE is not an NDC: empty code; row skipped"),
        ),
    ];
    for (code, want) in rows {
        let text = format!(
            "{PACKAGE_HEADER}\r\nP_1\t0777-3105\t{code}\t100 CAPSULE in 1 BOTTLE ({code})\r\n"
        );
        let (packages, problems) = read_packages(text.as_bytes()).expect("the header is complete");
        let got = match (packages.as_slice(), problems.as_slice()) {
            ([k], []) => Ok(k.ndc11().map(|n| n.to_string())),
            ([], [p]) if p.line == 2 && p.file == PACKAGE_FILE => Err(p.detail.as_str()),
            other => panic!("row {code:?}: {other:?}"),
        };
        assert_eq!(got, want.map(|n| Some(n.to_string())), "row {code:?}");
    }
}

#[test]
fn twelve_digit_package_codes_are_read_in_both_forms() {
    // (NDCPACKAGECODE, its 12-digit key, its NDC-11 when it has one, or the
    // problem reported)
    type Want = Result<(&'static str, Option<&'static str>), &'static str>;
    let rows: &[(&str, Want)] = &[
        // A leading-zero labeler: the same package as its 10-digit form.
        ("000777-3105-02", Ok(("000777310502", Some("00777310502")))),
        ("000777310502", Ok(("000777310502", Some("00777310502")))),
        ("060505-7001-02", Ok(("060505700102", Some("60505700102")))),
        // A new 6-digit labeler: kept under its 12-digit key.
        ("123456-7890-12", Ok(("123456789012", None))),
        ("123456789012", Ok(("123456789012", None))),
        (
            "123456-789-12",
            Err(
                "NDCPACKAGECODE is not an NDC: \"123456-789-12\" has segments 6-3-2, which is not 4-4-2, 5-3-2, 5-4-1, 5-4-2 or 6-4-2; row skipped",
            ),
        ),
        (
            "000000-1234-12",
            Err(
                "NDCPACKAGECODE is not an NDC: \"000000-1234-12\" has the all-zero labeler 00000, which the FDA assigns to no one; row skipped",
            ),
        ),
    ];
    for (code, want) in rows {
        let text =
            format!("{PACKAGE_HEADER}\r\nP_1\t123456-7890\t{code}\t30 TABLET in 1 BOTTLE\r\n");
        let (packages, problems) = read_packages(text.as_bytes()).expect("the header is complete");
        let got = match (packages.as_slice(), problems.as_slice()) {
            ([k], []) => {
                assert_eq!(k.package_ndc, *code, "row {code:?}: kept as published");
                Ok((k.ndc.to_string(), k.ndc11().map(|n| n.to_string())))
            }
            ([], [p]) if p.line == 2 && p.file == PACKAGE_FILE => Err(p.detail.as_str()),
            other => panic!("row {code:?}: {other:?}"),
        };
        let want = want.map(|(k, n)| (k.to_string(), n.map(str::to_string)));
        assert_eq!(got, want, "row {code:?}");
    }
}

#[test]
fn twelve_digit_product_and_package_codes_load_into_the_dictionary() {
    // (PRODUCTID, PRODUCTNDC, NDCPACKAGECODE): an existing labeler written
    // 6-4-2 and a new 6-digit labeler.
    let rows = [
        ("P_OLD", "000777-3105", "000777-3105-02"),
        ("P_NEW", "712345-0101", "712345-0101-01"),
    ];
    let mut products_text = format!("{PRODUCT_HEADER}\r\n");
    let mut packages_text = format!("{PACKAGE_HEADER}\r\n");
    for (id, product_ndc, package_ndc) in rows {
        products_text.push_str(&format!(
            "{id}\t{product_ndc}\tHUMAN PRESCRIPTION DRUG\tDRUG {id}\t\tdrug\tTABLET\tORAL\tLabeler\tSUBSTANCE\t10\tmg/1\tN\r\n"
        ));
        packages_text.push_str(&format!(
            "{id}\t{product_ndc}\t{package_ndc}\t30 TABLET in 1 BOTTLE\r\n"
        ));
    }
    let (products, problems) = one_product(&products_text);
    assert_eq!(problems, vec![]);
    let ndcs: Vec<&str> = products.iter().map(|p| p.product_ndc.as_str()).collect();
    assert_eq!(
        ndcs,
        ["000777-3105", "712345-0101"],
        "PRODUCTNDC kept as published"
    );
    let (packages, problems) = read_packages(packages_text.as_bytes()).expect("header");
    assert_eq!(problems, vec![]);
    let dict = crate::dict::MemoryDictionary::new(&products, &packages);
    assert_eq!(dict.len(), 2);
    let found = |code: &str| {
        let key = crate::domain::Ndc12::parse(code).expect("a 12-digit form");
        crate::dict::DrugDictionary::lookup(&dict, &key).map(|e| e.product.product_id.clone())
    };
    assert_eq!(found("000777-3105-02").as_deref(), Some("P_OLD"));
    let eleven = crate::domain::Ndc11::from_digits("00777310502").expect("11 digits");
    assert_eq!(
        crate::dict::DrugDictionary::lookup(&dict, &eleven.to_ndc12())
            .map(|e| e.product.product_id.clone())
            .as_deref(),
        Some("P_OLD"),
        "the NDC-11 finds the package its 6-4-2 form was published as"
    );
    assert_eq!(found("712345010101").as_deref(), Some("P_NEW"));
    assert_eq!(found("812345010101"), None);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_products(&bytes);
        let _ = read_packages(&bytes);
    }

    #[test]
    fn arbitrary_rows_under_a_good_header_never_panic(rows in "[\\PC\t\r\n;()-]{0,300}") {
        let _ = read_products(format!("{PRODUCT_HEADER}\r\n{rows}").as_bytes());
        let _ = read_packages(format!("{PACKAGE_HEADER}\r\n{rows}").as_bytes());
    }
}

#[test]
#[ignore = "needs RXSYNC_FDA_DIR (the 2019 FDA snapshot); run by .ci/run"]
fn the_full_2019_snapshot_loads_without_a_problem() {
    let dir =
        std::env::var("RXSYNC_FDA_DIR").expect("RXSYNC_FDA_DIR must name the snapshot's directory");
    let dir = std::path::Path::new(&dir);
    let product_bytes = std::fs::read(dir.join("product.txt")).expect("read product.txt");
    let package_bytes = std::fs::read(dir.join("package.txt")).expect("read package.txt");
    let started = std::time::Instant::now();
    let (products, product_problems) =
        read_products(&product_bytes).expect("product.txt has its columns");
    let (packages, package_problems) =
        read_packages(&package_bytes).expect("package.txt has its columns");
    let elapsed = started.elapsed();
    eprintln!(
        "read {} products and {} packages in {elapsed:?}",
        products.len(),
        packages.len()
    );
    for p in product_problems.iter().chain(&package_problems).take(20) {
        eprintln!("{}:{}: {}", p.file, p.line, p.detail);
    }
    assert_eq!(product_problems, vec![]);
    assert_eq!(package_problems, vec![]);
    assert_eq!(products.len(), 128_241);
    assert_eq!(packages.len(), 243_960);
    assert_eq!(products.iter().filter(|p| p.excluded).count(), 31_654);
    assert_eq!(
        products.iter().filter(|p| !p.epc.is_empty()).count(),
        54_590
    );
    // Every default class exclusion is spelled as the FDA spells a class.
    let classes: std::collections::HashSet<&str> = products
        .iter()
        .flat_map(|p| p.epc.iter().map(String::as_str))
        .collect();
    for class in crate::config::DEFAULT_THERAPEUTIC_CLASS_EXCLUSIONS {
        assert!(
            classes.contains(class),
            "{class} is no class of the snapshot"
        );
    }
}

#[test]
fn text_is_windows_1252_unless_a_utf8_bom_says_otherwise() {
    // (bytes of LABELERNAME, with a BOM in front of the file?, the text read)
    let rows: &[(&[u8], bool, &str)] = &[
        (
            b"VersaPharm, Inc. \x96 An Akorn Company",
            false,
            "VersaPharm, Inc. – An Akorn Company",
        ),
        (b"Skincare\x99, LLC", false, "Skincare™, LLC"),
        (b"Wong\x92s", false, "Wong’s"),
        (b"R\xe9Vive", false, "RéVive"),
        // A Windows-1252 no-break space at the end is trimmed like a space.
        (b"Merck\xa0", false, "Merck"),
        ("RéVive ™".as_bytes(), true, "RéVive ™"),
        // Invalid UTF-8 after a BOM is replaced, not a failure.
        (b"R\xe9Vive", true, "R\u{fffd}Vive"),
    ];
    for (labeler, bom, want) in rows {
        let mut bytes = if *bom {
            b"\xEF\xBB\xBF".to_vec()
        } else {
            Vec::new()
        };
        bytes.extend_from_slice(format!("{PRODUCT_HEADER}\r\n").as_bytes());
        bytes.extend_from_slice(PRODUCT_ROW.replace("Merck", "@").as_bytes());
        let at = bytes
            .iter()
            .rposition(|&b| b == b'@')
            .expect("the row has the marker");
        bytes.splice(at..=at, labeler.iter().copied());
        let (products, problems) = read_products(&bytes).expect("the header is complete");
        assert_eq!(problems, vec![], "row {want:?}");
        assert_eq!(products[0].labeler, *want, "row {want:?}");
    }
}

#[test]
fn established_pharmacologic_classes_are_the_epc_entries_of_pharm_classes() {
    // (rule, PHARM_CLASSES as the FDA writes it, the EPC entries kept)
    let rows: &[(&str, &str, &[&str])] = &[
        (
            "one EPC among other kinds",
            "HMG-CoA Reductase Inhibitor [EPC],Hydroxymethylglutaryl-CoA Reductase Inhibitors [MoA]",
            &["HMG-CoA Reductase Inhibitor [EPC]"],
        ),
        (
            "a combination lists each ingredient's class, in order",
            "Calcium Channel Antagonists [MoA],Dihydropyridine Calcium Channel Blocker [EPC],Dihydropyridines [CS],Angiotensin Converting Enzyme Inhibitor [EPC],Angiotensin-converting Enzyme Inhibitors [MoA],Decreased Blood Pressure [PE]",
            &[
                "Dihydropyridine Calcium Channel Blocker [EPC]",
                "Angiotensin Converting Enzyme Inhibitor [EPC]",
            ],
        ),
        (
            "a class name holding a comma does not split",
            "Estrogens, Conjugated (USP) [CS],Estrogen [EPC]",
            &["Estrogen [EPC]"],
        ),
        (
            "a repeated class is kept once",
            "Vitamin D [EPC],Vitamin D [CS],Vitamin D [EPC]",
            &["Vitamin D [EPC]"],
        ),
        ("no EPC", "Insulin [Chemical/Ingredient]", &[]),
        ("empty", "", &[]),
        ("cut off", "HMG-CoA Reductase Inhibitor [EP", &[]),
    ];
    for (rule, field, want) in rows {
        let text = format!("{PRODUCT_HEADER}\tPHARM_CLASSES\r\n{PRODUCT_ROW}\t{field}\r\n");
        let (products, problems) = one_product(&text);
        assert_eq!(problems, vec![], "rule: {rule}");
        assert_eq!(products[0].epc, *want, "rule: {rule}");
    }
}

#[test]
fn a_file_without_pharm_classes_still_loads_without_classes() {
    let (products, problems) = one_product(&format!("{PRODUCT_HEADER}\r\n{PRODUCT_ROW}\r\n"));
    assert_eq!(problems, vec![]);
    assert_eq!(products[0].epc, Vec::<String>::new());
}

#[test]
fn sample_products_carry_their_established_classes() {
    let products = sample_products();
    let rows = [
        ("0071-0155", vec!["HMG-CoA Reductase Inhibitor [EPC]"]),
        (
            "0006-0106",
            vec!["Angiotensin Converting Enzyme Inhibitor [EPC]"],
        ),
        (
            "0069-2150",
            vec![
                "Dihydropyridine Calcium Channel Blocker [EPC]",
                "HMG-CoA Reductase Inhibitor [EPC]",
            ],
        ),
    ];
    for (ndc, want) in rows {
        assert_eq!(product(&products, ndc).epc, want, "{ndc}");
    }
}
