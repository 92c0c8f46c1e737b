use super::statement::RXNORM_SYSTEM;
use super::*;
use crate::store::DocumentMeta;
use crate::store::{CodeView, RegimenView};
use crate::store::{ExceptionView, ItemView};

fn patient() -> Patient {
    Patient {
        id: "p_1".into(),
        mrn: Some("MRN-7".into()),
        name: Some("Ada Example".into()),
        birth_date: Some("1960-02-29".into()),
        created_at: "2026-01-01T00:00:00.000Z".into(),
    }
}

fn item(id: i64, ndc11: Option<&str>, name: &str, status: &str) -> ItemView {
    ItemView {
        id,
        position: id,
        ndc11: ndc11.map(str::to_string),
        ndc_original: ndc11.map(str::to_string),
        ndc_inferred: false,
        name: Some(name.into()),
        brand: None,
        codes: vec![CodeView {
            system: "RxNorm".into(),
            code: "314076".into(),
            system_original: "RxNorm".into(),
            display: None,
        }],
        ingredient_codes: vec![],
        strength: None,
        form: None,
        route: Some("Oral".into()),
        dose: Some("1 tablet".into()),
        frequency: Some("once daily".into()),
        sig: Some("Take 1 tablet by mouth once daily".into()),
        status: status.into(),
        status_original: Some(status.into()),
        start: Some("2023-03-01".into()),
        stop: None,
        prescribed: None,
        prescriber: None,
        evidence: "record".into(),
        days_supply: None,
        quantity: None,
        dispenser: None,
        section: None,
        flags: vec![],
        exceptions: vec![],
        mapping: None,
        product: ndc11
            .map(|_| json!({"package_ndc": "0006-0106-54", "package": "90 TABLET in 1 BOTTLE"})),
        sources: json!([]),
        removed: None,
    }
}

fn exception(
    id: i64,
    kind: &str,
    state: &str,
    on: Option<i64>,
    related: Option<i64>,
) -> ExceptionView {
    let item_ref = |i: i64| crate::store::ItemRef {
        id: i,
        position: i,
        name: None,
        ndc11: None,
    };
    ExceptionView {
        id,
        patient: "p_1".into(),
        kind: kind.into(),
        state: state.parse().expect("a state"),
        item: on.map(item_ref),
        detail: format!("why {id}"),
        severity: "error".into(),
        source: "file".into(),
        regimen_version: Some(1),
        related_item: related.map(item_ref),
        resolution: (state != "open").then(|| "keep".to_string()),
        resolution_ndc: None,
        resolved_by: (state != "open").then(|| "dr-a".to_string()),
        resolved_at: (state != "open").then(|| "2026-02-01T10:00:00.000Z".to_string()),
        note: Some("both are meant".into()),
        created_at: "2026-01-02T00:00:00.000Z".into(),
        actions: vec![],
    }
}

fn source(
    name: &str,
    sha: char,
    items: Vec<ItemView>,
    exceptions: Vec<ExceptionView>,
) -> SourceRegimen {
    SourceRegimen {
        regimen: RegimenView {
            patient: "p_1".into(),
            version: 1,
            status: "needs_review".into(),
            source: name.into(),
            id: 1,
            created_at: "2026-01-02T00:00:00.000Z".into(),
            reviewed_at: None,
            document_id: 1,
            items,
            removed_items: vec![],
            flags: vec![],
            open_exceptions: 0,
        },
        document: DocumentMeta {
            id: 1,
            source: name.into(),
            format: "ccr".into(),
            media_type: "application/xml".into(),
            sha256: sha.to_string().repeat(64),
            size: 1234,
            origin: Some("/tmp/demo.xml".into()),
            received_at: "2026-01-02T00:00:00.000Z".into(),
            arrived_by: Some(if name == "file" { "file" } else { "pull" }.into()),
        },
        exceptions,
    }
}

fn at() -> DateTime<Utc> {
    "2026-03-01T12:00:00Z".parse().expect("a time")
}

fn resources<'a>(bundle: &'a Value, kind: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["resource"]["resourceType"] == kind)
        .collect()
}

#[test]
fn item_statuses_map_to_r4_statement_codes() {
    let rows = [
        ("active", "active"),
        ("on-hold", "on-hold"),
        ("completed", "completed"),
        ("stopped", "stopped"),
        ("intended", "intended"),
        ("not-taken", "not-taken"),
        ("entered-in-error", "entered-in-error"),
        ("unknown", "unknown"),
        ("cancelled", "not-taken"),
        ("draft", "intended"),
        ("dispensed", "unknown"),
        ("something else", "unknown"),
    ];
    for (rxsync, fhir) in rows {
        assert_eq!(statement_status(rxsync).0, fhir, "status {rxsync:?}");
    }
}

#[test]
fn duplicates_are_dupthpy_and_data_findings_are_text() {
    for kind in ["duplicate", "therapeutic_duplicate"] {
        let c = issue_code(kind);
        assert_eq!(c["coding"][0]["system"], ACT_CODE_SYSTEM);
        assert_eq!(c["coding"][0]["code"], "DUPTHPY");
    }
    assert_eq!(issue_code("invalid_ndc")["coding"][0]["code"], "CODE_INVAL");
    for kind in [
        "unmapped_ndc",
        "non_ndc_code",
        "ndc_name_mismatch",
        "source_conflict",
        "link_expiring",
    ] {
        let c = issue_code(kind);
        assert!(c.get("coding").is_none(), "{kind}: {c}");
        assert!(
            c["text"].as_str().is_some_and(|t| t.contains(kind)),
            "{kind}: {c}"
        );
    }
    assert_eq!(issue_severity("error"), Some("high"));
    assert_eq!(issue_severity("warning"), Some("moderate"));
    assert_eq!(issue_severity("info"), Some("low"));
}

#[test]
fn a_statement_carries_both_ndc_forms_the_codes_read_and_the_source() {
    let s = source(
        "file",
        'a',
        vec![item(1, Some("00006010654"), "Lisinopril 10 MG", "active")],
        vec![],
    );
    let b = regimen_bundle(&patient(), &s, at());
    assert_eq!(b["resourceType"], "Bundle");
    assert_eq!(b["type"], "collection");
    assert_eq!(b["timestamp"], "2026-03-01T12:00:00.000Z");
    let st = &resources(&b, "MedicationStatement")[0]["resource"];
    let codings = st["medicationCodeableConcept"]["coding"]
        .as_array()
        .expect("codings");
    let codes: Vec<(&str, &str)> = codings
        .iter()
        .map(|c| {
            (
                c["system"].as_str().unwrap_or(""),
                c["code"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            (NDC_SYSTEM, "0006-0106-54"),
            (NDC_SYSTEM, "00006-0106-54"),
            (RXNORM_SYSTEM, "314076")
        ]
    );
    assert_eq!(st["medicationCodeableConcept"]["text"], "Lisinopril 10 MG");
    assert_eq!(st["status"], "active");
    assert_eq!(st["effectivePeriod"], json!({"start": "2023-03-01"}));
    assert_eq!(st["dosage"][0]["text"], "Take 1 tablet by mouth once daily");
    let doc = &resources(&b, "DocumentReference")[0];
    assert_eq!(st["derivedFrom"][0]["reference"], doc["fullUrl"]);
    assert!(
        st["informationSource"]["display"]
            .as_str()
            .is_some_and(|d| d.contains("/tmp/demo.xml"))
    );
    let patient_url = &resources(&b, "Patient")[0]["fullUrl"];
    assert_eq!(&st["subject"]["reference"], patient_url);
    assert!(
        doc["resource"]["masterIdentifier"]["value"]
            .as_str()
            .is_some_and(|v| v.starts_with("ni:///sha-256;"))
    );
}

#[test]
fn open_exceptions_are_issues_implicating_statements_and_closed_ones_are_notes() {
    let items = vec![
        item(1, Some("00006010654"), "Lisinopril", "active"),
        item(2, Some("00006010654"), "Lisinopril again", "active"),
    ];
    let exceptions = vec![
        exception(7, "duplicate", "open", Some(2), Some(1)),
        exception(8, "unmapped_ndc", "resolved", Some(1), None),
        exception(9, "none_shared", "open", None, None),
        // Points at an item no longer in force: not implicated.
        exception(10, "duplicate", "open", Some(1), Some(99)),
    ];
    let b = regimen_bundle(&patient(), &source("file", 'a', items, exceptions), at());
    let statements = resources(&b, "MedicationStatement");
    let issues = resources(&b, "DetectedIssue");
    assert_eq!(issues.len(), 3, "only open exceptions: {b}");
    let dup = &issues[0]["resource"];
    assert_eq!(dup["status"], "preliminary");
    assert_eq!(dup["severity"], "high");
    assert_eq!(dup["detail"], "why 7");
    assert_eq!(
        dup["implicated"],
        json!([{"reference": statements[1]["fullUrl"]}, {"reference": statements[0]["fullUrl"]}])
    );
    let doc_url = &resources(&b, "DocumentReference")[0]["fullUrl"];
    assert_eq!(
        issues[1]["resource"]["implicated"],
        json!([{"reference": doc_url}])
    );
    assert_eq!(
        issues[2]["resource"]["implicated"],
        json!([{"reference": statements[0]["fullUrl"]}])
    );
    let note = &statements[0]["resource"]["note"][0];
    assert_eq!(note["authorString"], "dr-a");
    assert!(
        note["text"]
            .as_str()
            .is_some_and(|t| t.contains("keep") && t.contains("both are meant"))
    );
}

#[test]
fn ids_are_stable_and_sources_never_collide() {
    let one = source("file", 'a', vec![item(1, None, "A", "active")], vec![]);
    let other = source("ehr", 'b', vec![item(1, None, "A", "active")], vec![]);
    let a = sources_bundle(&patient(), &[one.clone(), other.clone()], at());
    let again = sources_bundle(&patient(), &[one.clone(), other], at());
    assert_eq!(a, again);
    let urls: std::collections::BTreeSet<&str> = a["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["fullUrl"].as_str())
        .collect();
    assert_eq!(urls.len(), 5, "patient, two documents, two statements: {a}");
    assert!(
        urls.iter()
            .all(|u| u.starts_with("urn:uuid:") && u.len() == 45)
    );
    let alone = regimen_bundle(&patient(), &one, at());
    assert_ne!(a["id"], alone["id"], "other content, other id");
    let informant = &resources(&a, "MedicationStatement")[1]["resource"]["informationSource"];
    assert_eq!(informant["type"], "Organization");
    assert_eq!(informant["display"], "provider ehr");
}

#[test]
fn what_rxsync_does_not_know_stays_out() {
    let mut it = item(3, None, "", "dispensed");
    it.name = None;
    it.start = Some("last spring".into());
    it.codes = vec![CodeView {
        system: "Multum".into(),
        code: "d 0412  7".into(),
        system_original: "Multum".into(),
        display: None,
    }];
    it.sig = None;
    it.dose = None;
    it.frequency = None;
    it.route = None;
    let b = regimen_bundle(&patient(), &source("file", 'a', vec![it], vec![]), at());
    let st = &resources(&b, "MedicationStatement")[0]["resource"];
    // A code of a system with no URI keeps its code, as a FHIR code.
    assert_eq!(
        st["medicationCodeableConcept"],
        json!({"coding": [{"code": "d 0412 7"}], "text": "unnamed drug (item 3)"})
    );
    assert_eq!(st["status"], "unknown");
    assert!(
        st["statusReason"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("pharmacy"))
    );
    assert!(st.get("effectivePeriod").is_none());
    assert!(st.get("dosage").is_none());
}

#[test]
fn a_claims_only_item_says_so_in_a_note_not_in_its_dosage() {
    let mut it = item(4, Some("00006010654"), "Lipitor", "dispensed");
    it.evidence = "claim".into();
    it.sig = Some("last filled on 2026-10-01 for 30 days".into());
    it.dose = None;
    it.frequency = None;
    it.quantity = Some("30".into());
    it.days_supply = Some("30".into());
    it.dispenser = Some("Corner Pharmacy".into());
    let b = regimen_bundle(&patient(), &source("file", 'a', vec![it], vec![]), at());
    let st = &resources(&b, "MedicationStatement")[0]["resource"];
    assert_eq!(
        st["dosage"][0],
        json!({"route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006", "display": "Oral route"}], "text": "Oral"}})
    );
    assert_eq!(
        st["note"][0]["text"],
        "known from pharmacy claims only: last filled on 2026-10-01 for 30 days (quantity 30, days supply 30, pharmacy Corner Pharmacy)"
    );
    assert_eq!(st["status"], "unknown");
}

#[test]
fn a_finding_across_sources_is_one_issue_implicating_both() {
    // Item 1 from a file, item 2 from a provider; one exception relating
    // them, listed by both sources.
    let across = exception(11, "source_conflict", "open", Some(2), Some(1));
    let file = source(
        "file",
        'a',
        vec![item(1, None, "A", "active")],
        vec![across.clone()],
    );
    let ehr = source(
        "ehr",
        'b',
        vec![item(2, None, "A", "stopped")],
        vec![across],
    );
    let b = sources_bundle(&patient(), &[file, ehr], at());
    let statements = resources(&b, "MedicationStatement");
    let issues = resources(&b, "DetectedIssue");
    assert_eq!(issues.len(), 1, "{b}");
    assert_eq!(
        issues[0]["resource"]["implicated"],
        json!([{"reference": statements[1]["fullUrl"]}, {"reference": statements[0]["fullUrl"]}])
    );
    assert_eq!(
        issues[0]["resource"]["code"],
        json!({"text": "Sources disagree (source_conflict)"})
    );
}
