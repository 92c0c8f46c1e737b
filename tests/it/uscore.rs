//! US Core medication searches against the sandbox in reference mode: its
//! MedicationRequests name their drug only by `medicationReference`. With
//! `_include` announced in its CapabilityStatement the searches bring the
//! Medications; without, rxsync reads each referenced Medication once.

use crate::pull::harness::*;
use crate::support::Sandbox;
use serde_json::{Value, json};

/// A sandbox generating `medications` drugs per patient by reference.
fn reference_sandbox(medications: usize, search_include: bool) -> (Sandbox, tempfile::TempDir) {
    let data = tempfile::tempdir().expect("dir");
    std::fs::write(
        data.path().join("sandbox.toml"),
        format!(
            "medications = {medications}\nmedication_reference = true\nsearch_include = {search_include}\n"
        ),
    )
    .expect("write");
    let sb = Sandbox::start_with(&["--data", &data.path().display().to_string()]);
    (sb, data)
}

/// A home with one FHIR provider at `sb` (extra TOML appended to its table), linked.
fn linked_home(sb: &Sandbox, extra: &str) -> Home {
    let home = Home::new(&format!(
        "{}{extra}",
        fhir_at(sb, "ehr", "demo-client", "header")
    ));
    home.link_oauth2(sb, "ehr", "demo-client", json!({}));
    home
}

fn medication_reads(sb: &Sandbox) -> Vec<String> {
    requests(sb)
        .iter()
        .filter_map(|r| r["path"].as_str())
        .filter(|p| p.starts_with("/fhir/Medication/"))
        .map(str::to_string)
        .collect()
}

fn searches(sb: &Sandbox) -> Vec<Value> {
    requests(sb)
        .into_iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/fhir/Medication") && p.matches('/').count() == 2)
        })
        .collect()
}

fn non_ndc_details(home: &Home) -> Vec<String> {
    home.env
        .query_rows("SELECT detail FROM exceptions WHERE kind = 'non_ndc_code' ORDER BY id")
        .into_iter()
        .map(|r| r[0].as_str().expect("a detail").to_string())
        .collect()
}

#[test]
fn without_include_support_each_referenced_medication_is_read_once_and_its_ndc_used() {
    let (sb, _data) = reference_sandbox(5, false);
    let home = linked_home(&sb, "");
    let run = home.pull(None);
    run.ok();
    let report = &Home::reports(&run)[0];
    assert_eq!(report["outcome"], "imported", "{report}");
    // Five drugs, the first named by a request and a statement: five reads.
    let mut reads = medication_reads(&sb);
    assert_eq!(reads.len(), 5, "{reads:?}");
    reads.dedup();
    assert_eq!(reads.len(), 5, "each Medication once: {reads:?}");
    // The searches were US Core's, without an `_include` the server does not offer.
    for s in searches(&sb) {
        let q = s["query"].as_str().unwrap_or("");
        assert!(!q.contains("_include"), "{s}");
        if s["path"] == "/fhir/MedicationRequest" {
            assert!(q.contains("intent=order%2Cplan"), "{s}");
        }
    }
    let with_ndc = home
        .env
        .query_i64("SELECT COUNT(*) FROM items WHERE ndc11 IS NOT NULL");
    let all = home.env.query_i64("SELECT COUNT(*) FROM items");
    assert!(
        all >= 5 && with_ndc == all,
        "{with_ndc} of {all} items have an NDC"
    );
    assert!(non_ndc_details(&home).is_empty());
    // The stored document holds what was read: pulling again changes nothing.
    let again = home.pull(None);
    again.ok();
    assert_eq!(Home::reports(&again)[0]["outcome"], "unchanged");
}

#[test]
fn with_include_support_the_searches_bring_the_medications_and_nothing_more_is_read() {
    let (sb, _data) = reference_sandbox(5, true);
    let home = linked_home(&sb, "");
    let run = home.pull(None);
    run.ok();
    assert_eq!(Home::reports(&run)[0]["outcome"], "imported");
    assert_eq!(medication_reads(&sb), Vec::<String>::new());
    let searched = searches(&sb);
    assert_eq!(searched.len(), 2, "{searched:?}");
    for s in &searched {
        let q = s["query"].as_str().unwrap_or("");
        assert!(q.contains("_include=Medication"), "{s}");
    }
    let with_ndc = home
        .env
        .query_i64("SELECT COUNT(*) FROM items WHERE ndc11 IS NOT NULL");
    let all = home.env.query_i64("SELECT COUNT(*) FROM items");
    assert!(
        all >= 5 && with_ndc == all,
        "{with_ndc} of {all} items have an NDC"
    );
    // `include = false` in the configuration overrides the server.
    clear_requests(&sb);
    let home = linked_home(&sb, "[providers.search]\ninclude = false\n");
    home.pull(None).ok();
    assert_eq!(medication_reads(&sb).len(), 5);
}

#[test]
fn at_most_max_reference_fetches_are_read_and_the_rest_say_why() {
    let (sb, _data) = reference_sandbox(5, false);
    let home = linked_home(&sb, "[providers.search]\nmax_reference_fetches = 2\n");
    let run = home.pull(None);
    run.ok();
    assert_eq!(medication_reads(&sb).len(), 2);
    let details = non_ndc_details(&home);
    assert_eq!(details.len(), 3, "{details:?}");
    for d in &details {
        assert!(d.contains("max_reference_fetches = 2"), "{d}");
    }
}

#[test]
fn a_reference_to_another_origin_is_not_read_and_its_record_says_so() {
    let foreign = Sandbox::start();
    let data = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(data.path().join("fhir")).expect("dir");
    let bundle = json!({
        "resourceType": "Bundle", "type": "collection",
        "entry": [{"resource": {
            "resourceType": "MedicationRequest", "id": "r1", "status": "active", "intent": "order",
            "subject": {"reference": format!("Patient/{REMOTE}")},
            "medicationReference": {
                "reference": format!("{}/fhir/Medication/elsewhere", foreign.base),
                "display": "Lisinopril 10 MG Oral Tablet"
            }
        }}]
    });
    std::fs::write(
        data.path().join(format!("fhir/{REMOTE}.json")),
        bundle.to_string(),
    )
    .expect("write");
    let sb = Sandbox::start_with(&["--data", &data.path().display().to_string()]);
    let home = linked_home(&sb, "");
    let run = home.pull(None);
    run.ok();
    assert!(requests(&foreign).is_empty(), "{:?}", requests(&foreign));
    let details = non_ndc_details(&home);
    assert_eq!(details.len(), 1, "{details:?}");
    assert!(
        details[0].contains("elsewhere") && details[0].contains("origin"),
        "{}",
        details[0]
    );
}
