//! Therapeutic class duplicates through the binary: the FDA's PHARM_CLASSES
//! read by `dict import`, stored, read back for an import and named in the
//! `therapeutic_duplicate` exceptions with the dictionary snapshot used.
//! One test runs on the sample dictionary; one (ignored unless
//! RXSYNC_FDA_DIR names the 2019 snapshot, as `.ci/run` does) on the real
//! FDA NDC directory.

use crate::support::TestEnv;
use serde_json::json;
use std::path::Path;

/// A CCR listing one active medication per `(name, NDC)`.
fn ccr(meds: &[(&str, &str)]) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ContinuityOfCareRecord xmlns=\"urn:astm-org:CCR\">\n  <CCRDocumentObjectID>classes</CCRDocumentObjectID>\n  <Body>\n    <Medications>\n",
    );
    for (i, (name, ndc)) in meds.iter().enumerate() {
        out.push_str(&format!(
            "      <Medication>\n        <CCRDataObjectID>M{i}</CCRDataObjectID>\n        <Status><Text>Active</Text></Status>\n        <Product>\n          <ProductName>\n            <Text>{name}</Text>\n            <Code><Value>{ndc}</Value><CodingSystem>NDC</CodingSystem></Code>\n          </ProductName>\n        </Product>\n      </Medication>\n"
        ));
    }
    out.push_str("    </Medications>\n  </Body>\n</ContinuityOfCareRecord>\n");
    out
}

/// Imports `meds` for a new patient of `env`; returns the exceptions
/// summary and every `therapeutic_duplicate` as (item position, related
/// item position, detail), in item order.
fn import(env: &TestEnv, meds: &[(&str, &str)]) -> (serde_json::Value, Vec<(i64, i64, String)>) {
    env.run(&["patient", "add", "--id", "p-classes"]).ok();
    let file = env.write("classes.xml", ccr(meds).as_bytes());
    let summary = env.import(Path::new(&file), "p-classes");
    let flags = env
        .query_rows(
            "SELECT i.position, r.position, e.detail FROM exceptions e
             JOIN items i ON i.id = e.item_id JOIN items r ON r.id = e.related_item_id
             WHERE e.kind = 'therapeutic_duplicate' ORDER BY i.position",
        )
        .into_iter()
        .map(|r| {
            (
                r[0].as_i64().expect("a position"),
                r[1].as_i64().expect("a position"),
                r[2].as_str().expect("a detail").to_string(),
            )
        })
        .collect();
    (summary["exceptions"].clone(), flags)
}

/// The snapshot label `dict import` recorded for the dictionary.
fn snapshot(env: &TestEnv) -> String {
    let row = env.query_rows("SELECT loaded_from, loaded_at FROM dict_meta WHERE id = 1");
    let (from, at) = (&row[0][0], &row[0][1]);
    format!(
        "{} loaded {}",
        from.as_str().expect("loaded_from"),
        at.as_str().expect("loaded_at")
    )
}

#[test]
fn two_statins_of_the_sample_dictionary_are_a_therapeutic_duplicate_naming_the_snapshot() {
    let env = TestEnv::with_dictionary_and(&[]);
    let (kinds, flags) = import(
        &env,
        &[("Lipitor 10 MG", "0071-0155-23"), ("Zocor", "0006-0740-31")],
    );
    assert_eq!(kinds, json!({"therapeutic_duplicate": 1}));
    let want = format!(
        "both HMG-CoA Reductase Inhibitor [EPC] (item 1 Lipitor 10 MG, item 2 Zocor); dictionary snapshot {}",
        snapshot(&env)
    );
    assert_eq!(flags, vec![(2, 1, want)]);
}

#[test]
#[ignore = "needs RXSYNC_FDA_DIR (the 2019 FDA snapshot); run by .ci/run"]
fn class_duplicates_from_the_real_fda_directory() {
    let dir =
        std::env::var("RXSYNC_FDA_DIR").expect("RXSYNC_FDA_DIR must name the snapshot's directory");
    let env = TestEnv::new();
    env.run(&["dict", "import", "--fda", &dir]).ok();
    // Package NDCs of the FDA NDC directory of 2019-04-29, each with its
    // product's [EPC] entries of PHARM_CLASSES.
    let meds = [
        // HMG-CoA Reductase Inhibitor [EPC]
        ("Lipitor 10 MG Oral Tablet", "0071-0155-23"),
        // HMG-CoA Reductase Inhibitor [EPC]
        ("Zocor 10 MG Oral Tablet", "0006-0735-54"),
        // Angiotensin Converting Enzyme Inhibitor [EPC]
        ("Prinivil 10 MG Oral Tablet", "0006-0106-54"),
        // Angiotensin Converting Enzyme Inhibitor [EPC]
        ("Enalapril Maleate 2.5 MG Oral Tablet", "0093-0026-01"),
        // Dihydropyridine Calcium Channel Blocker [EPC], Angiotensin
        // Converting Enzyme Inhibitor [EPC]: amlodipine and benazepril
        ("Lotrel 10/20 Oral Capsule", "0078-0364-05"),
        // Vitamin D [EPC]: folic acid and vitamin D
        ("DermacinRx PureFolix Oral Tablet", "59088-090-54"),
        // Vitamin D [EPC]: cholecalciferol and sodium fluoride
        ("Floriva Oral Liquid", "52796-172-50"),
    ];
    let (kinds, flags) = import(&env, &meds);
    assert_eq!(kinds, json!({"therapeutic_duplicate": 3}), "{flags:?}");
    let label = snapshot(&env);
    assert!(
        label.starts_with(
            &std::fs::canonicalize(&dir)
                .expect("dir")
                .display()
                .to_string()
        )
    );
    let detail = |text: &str| format!("{text}; dictionary snapshot {label}");
    assert_eq!(
        flags,
        vec![
            (
                2,
                1,
                detail(
                    "both HMG-CoA Reductase Inhibitor [EPC] (item 1 Lipitor 10 MG Oral Tablet, item 2 Zocor 10 MG Oral Tablet)"
                )
            ),
            (
                4,
                3,
                detail(
                    "both Angiotensin Converting Enzyme Inhibitor [EPC] (item 3 Prinivil 10 MG Oral Tablet, item 4 Enalapril Maleate 2.5 MG Oral Tablet)"
                )
            ),
            (
                5,
                3,
                detail(
                    "both Angiotensin Converting Enzyme Inhibitor [EPC] (item 3 Prinivil 10 MG Oral Tablet, item 5 Lotrel 10/20 Oral Capsule)"
                )
            ),
        ],
        "the two vitamins share only an excluded class"
    );
    // The classes came from the file: the stored products carry them.
    let stored = env.query_string(
        "SELECT p.epc FROM dict_products p JOIN dict_packages k ON k.product_id = p.product_id
         WHERE k.ndc11 = '00078036405'",
    );
    // Compared as JSON: PostgreSQL's jsonb spaces its text otherwise.
    let stored: serde_json::Value = serde_json::from_str(&stored).expect("JSON classes");
    assert_eq!(
        stored,
        serde_json::json!([
            "Dihydropyridine Calcium Channel Blocker [EPC]",
            "Angiotensin Converting Enzyme Inhibitor [EPC]"
        ])
    );
}
