//! Tests for the CCR reader.
use super::*;

#[test]
fn smoke() {
    for f in [
        "1_Sofia_Weideman.xml",
        "patient_with_providers.xml",
        "test1.xml",
        "sample_ccr.xml",
        "1_Sofia_Weideman_SAK.xml",
    ] {
        let path = format!(
            "{}/tests/corpus/ccr/health-data-standards/{f}",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(path).unwrap();
        match parse(&bytes) {
            Ok(doc) => {
                println!(
                    "{f}: {} records, patient {:?}",
                    doc.records.len(),
                    doc.patient_ref
                );
                for r in &doc.records {
                    let mut r = r.clone();
                    r.excerpt = r.excerpt.len().to_string();
                    println!("  {r:?}");
                }
            }
            Err(e) => println!("{f}: ERR {e}"),
        }
    }
}
