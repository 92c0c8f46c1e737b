//! The store's safety properties: concurrent writers and first opens,
//! decisions that race or reach too far, idempotency by bytes, and the
//! error and JSON texts scripts read.

use crate::support::{Run, TestEnv};
use serde_json::Value;

/// One CCR medication: name, optional (coding system, code), sig.
struct Med<'a> {
    name: &'a str,
    code: Option<(&'a str, &'a str)>,
    sig: &'a str,
    status: &'a str,
}

fn med<'a>(name: &'a str, code: Option<(&'a str, &'a str)>, sig: &'a str) -> Med<'a> {
    Med {
        name,
        code,
        sig,
        status: "Active",
    }
}

/// A minimal CCR document listing `meds`.
fn ccr(doc_id: &str, meds: &[Med<'_>]) -> Vec<u8> {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ContinuityOfCareRecord xmlns=\"urn:astm-org:CCR\">\
         <CCRDocumentObjectID>{doc_id}</CCRDocumentObjectID><Body><Medications>"
    );
    for (i, m) in meds.iter().enumerate() {
        let code = m
            .code
            .map(|(system, value)| {
                format!("<Code><Value>{value}</Value><CodingSystem>{system}</CodingSystem></Code>")
            })
            .unwrap_or_default();
        out.push_str(&format!(
            "<Medication><CCRDataObjectID>MED-{i}</CCRDataObjectID><Status><Text>{}</Text></Status>\
             <Product><ProductName><Text>{}</Text>{code}</ProductName></Product>\
             <Directions><Direction><Description><Text>{}</Text></Description></Direction></Directions>\
             </Medication>",
            m.status, m.name, m.sig
        ));
    }
    out.push_str("</Medications></Body></ContinuityOfCareRecord>\n");
    out.into_bytes()
}

fn import_args<'a>(file: &'a str, patient: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["import", "--file", file, "--patient", patient];
    args.extend_from_slice(extra);
    args
}

fn import_json(env: &TestEnv, file: &str, patient: &str) -> Value {
    env.run(&import_args(file, patient, &["--format", "json"]))
        .json()
}

/// Open exceptions of the patient, as `queue list --format json` shows them.
fn open_exceptions(env: &TestEnv, patient: &str) -> Vec<Value> {
    env.run(&["queue", "list", "--patient", patient, "--format", "json"])
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn item_position(e: &Value, key: &str) -> Option<i64> {
    e[key]["position"].as_i64()
}

// ---------------------------------------------------------------- 1

#[test]
fn concurrent_imports_of_different_files_all_succeed_with_dense_versions() {
    const N: usize = 16;
    let env = TestEnv::with_dictionary_and(&["p-conc"]);
    let files: Vec<String> = (0..N)
        .map(|i| {
            let name = format!("Drug number {i}");
            let bytes = ccr(
                &format!("doc-{i}"),
                &[med(&name, None, "Take 1 tablet daily")],
            );
            env.write(&format!("doc-{i}.xml"), &bytes)
        })
        .collect();
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .iter()
            .map(|f| s.spawn(|| env.run(&import_args(f, "p-conc", &["--format", "json"]))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let mut versions: Vec<i64> = runs
        .iter()
        .map(|r| r.json()["version"].as_i64().expect("a version"))
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=N as i64).collect::<Vec<_>>());
    assert_eq!(
        env.query_i64("SELECT COUNT(*) FROM regimens WHERE patient_id = 'p-conc'"),
        N as i64
    );
}

#[test]
fn concurrent_first_opens_of_a_fresh_database_all_succeed() {
    const N: usize = 10;
    let env = TestEnv::new();
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|_| s.spawn(|| env.run(&["patient", "list", "--format", "json"])))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    for r in &runs {
        r.ok();
    }
    assert_eq!(env.query_i64("PRAGMA user_version"), 1);
}

// ---------------------------------------------------------------- 7

#[test]
fn a_non_sqlite_database_file_names_its_cause_once() {
    let env = TestEnv::new();
    std::fs::write(
        &env.db,
        b"this is not a database, just text that is long enough to look like a header....",
    )
    .expect("write");
    let err = env.run(&["patient", "list"]).fails(1).to_string();
    let cause = "file is not a database";
    assert!(err.contains("cannot open database"), "{err}");
    assert_eq!(err.matches(cause).count(), 1, "{err}");
}
