//! The store's safety properties: concurrent writers and first opens,
//! decisions that race or reach too far, idempotency by bytes, and the
//! error and JSON texts scripts read.

use crate::support::{Run, TestEnv, repo_path};
use serde_json::Value;

/// One CCR medication: name, optional (coding system, code), sig.
struct Med<'a> {
    name: &'a str,
    codes: &'a [(&'a str, &'a str)],
    sig: &'a str,
    status: &'a str,
}

fn med<'a>(name: &'a str, codes: &'a [(&'a str, &'a str)], sig: &'a str) -> Med<'a> {
    Med {
        name,
        codes,
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
        let code: String = m
            .codes
            .iter()
            .map(|(system, value)| {
                format!("<Code><Value>{value}</Value><CodingSystem>{system}</CodingSystem></Code>")
            })
            .collect();
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
                &[med(&name, &[], "Take 1 tablet daily")],
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
        // Commands that write (read-only ones never create a database).
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let env = &env;
                s.spawn(move || env.run(&["patient", "add", "--id", &format!("p-{i}")]))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    for r in &runs {
        r.ok();
    }
    // Every migration applied exactly once.
    let (applied, folder) = if crate::support::on_postgres() {
        (
            env.query_i64("SELECT COUNT(*) FROM rxsync_schema"),
            "/schemas/postgres",
        )
    } else {
        (env.query_i64("PRAGMA user_version"), "/schemas/sqlite")
    };
    assert_eq!(
        applied,
        std::fs::read_dir(format!("{}{folder}", env!("CARGO_MANIFEST_DIR")))
            .expect("schemas")
            .filter(|e| e
                .as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql")))
            .count() as i64
    );
}

// ---------------------------------------------------------------- 7

#[test]
fn a_non_sqlite_database_file_names_its_cause_once() {
    if crate::support::sqlite_only("a_non_sqlite_database_file_names_its_cause_once") {
        return;
    }
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

/// The single open exception of `kind` whose item is at `position`.
fn open_one(env: &TestEnv, patient: &str, kind: &str, position: i64) -> i64 {
    let found: Vec<i64> = open_exceptions(env, patient)
        .iter()
        .filter(|e| e["kind"] == kind && item_position(e, "item") == Some(position))
        .filter_map(|e| e["id"].as_i64())
        .collect();
    assert_eq!(found.len(), 1, "one open {kind} at item {position}");
    found[0]
}

fn regimen_status(env: &TestEnv, patient: &str) -> String {
    env.run(&["regimen", "show", "--patient", patient, "--format", "json"])
        .json()["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

// ---------------------------------------------------------------- 2

#[test]
fn resolving_a_dismissed_exception_is_refused_and_changes_nothing() {
    let env = TestEnv::with_dictionary_and(&["p-2"]);
    let file = env.write(
        "one.xml",
        &ccr("d2", &[med("Mystery pill", &[], "Take 1 daily")]),
    );
    import_json(&env, &file, "p-2");
    let id = open_one(&env, "p-2", "non_ndc_code", 1).to_string();
    env.run(&[
        "queue",
        "dismiss",
        &id,
        "--by",
        "dr-a",
        "--note",
        "not a drug",
    ])
    .ok();
    let before = env.counts();
    let err = env
        .run(&[
            "queue",
            "resolve",
            &id,
            "--action",
            "map",
            "--ndc",
            "0069-1530-68",
            "--by",
            "dr-b",
        ])
        .fails(1)
        .to_string();
    assert!(
        err.contains(&format!("exception {id} is already dismissed")),
        "{err}"
    );
    assert_eq!(env.counts(), before, "a refused decision stores nothing");
    let shown = env.run(&["queue", "show", &id, "--format", "json"]).json();
    assert_eq!(shown["exception"]["state"], "dismissed");
    assert_eq!(shown["exception"]["resolution"], Value::Null);
    assert_eq!(shown["exception"]["resolution_ndc"], Value::Null);
    assert_eq!(shown["exception"]["resolved_by"], "dr-a");
    assert_eq!(
        env.query_i64("SELECT COUNT(*) FROM items WHERE ndc11 IS NOT NULL"),
        0,
        "the item was not mapped"
    );
    // Dismissing twice is refused too.
    let err = env
        .run(&["queue", "dismiss", &id, "--by", "dr-b", "--note", "again"])
        .fails(1)
        .to_string();
    assert!(err.contains("already dismissed"), "{err}");
}

// ---------------------------------------------------------------- 3

#[test]
fn removing_the_first_of_three_repeats_leaves_the_others_duplicates_open() {
    let env = TestEnv::with_dictionary_and(&["p-3"]);
    // 68180-0513-01 is a valid NDC the sample dictionary lacks: every item
    // gets its own unmapped_ndc, and items 2 and 3 a duplicate of item 1.
    let ndc: &[(&str, &str)] = &[("NDC", "68180-0513-01")];
    let file = env.write(
        "three.xml",
        &ccr(
            "d3",
            &[
                med("Drug A", ndc, "Take 1 tablet in the morning"),
                med("Drug A", ndc, "Take 1 tablet at noon"),
                med("Drug A", ndc, "Take 1 tablet at bedtime"),
            ],
        ),
    );
    let s = import_json(&env, &file, "p-3");
    assert_eq!(s["items"], 3, "{s}");
    assert_eq!(s["exceptions"]["duplicate"], 2, "{s}");
    let dups_before: Vec<(Option<i64>, Option<i64>)> = open_exceptions(&env, "p-3")
        .iter()
        .filter(|e| e["kind"] == "duplicate")
        .map(|e| (item_position(e, "item"), item_position(e, "related_item")))
        .collect();
    assert_eq!(dups_before.len(), 2);
    assert!(
        dups_before.iter().all(|(_, related)| *related == Some(1)),
        "repeats point at the first item: {dups_before:?}"
    );

    let first = open_one(&env, "p-3", "unmapped_ndc", 1).to_string();
    env.run(&[
        "queue", "resolve", &first, "--action", "remove", "--by", "dr-a",
    ])
    .ok();

    let open = open_exceptions(&env, "p-3");
    let mut dups: Vec<i64> = open
        .iter()
        .filter(|e| e["kind"] == "duplicate")
        .filter_map(|e| item_position(e, "item"))
        .collect();
    dups.sort_unstable();
    assert_eq!(
        dups,
        [2, 3],
        "items 2 and 3 are still duplicates to decide on"
    );
    assert!(
        open.iter().all(|e| item_position(e, "item") != Some(1)),
        "item 1's own exceptions are closed"
    );
    assert_eq!(regimen_status(&env, "p-3"), "needs_review");
}

#[test]
fn removing_an_item_does_not_mark_the_regimen_reviewed_while_repeats_are_open() {
    let env = TestEnv::with_dictionary_and(&["p-3b"]);
    // Item 1 has an exception of its own (an unmapped NDC) and item 2
    // carries that NDC too, as the same drug: its only exception is the
    // duplicate pointing at item 1.
    let ndc: &[(&str, &str)] = &[("NDC", "68180-0513-01")];
    let file = env.write(
        "two.xml",
        &ccr(
            "d3b",
            &[
                med("Drug A", ndc, "Take 1 tablet in the morning"),
                med("Drug A", ndc, "Take 1 tablet at bedtime"),
            ],
        ),
    );
    import_json(&env, &file, "p-3b");
    let item2_unmapped = open_one(&env, "p-3b", "unmapped_ndc", 2).to_string();
    env.run(&[
        "queue",
        "dismiss",
        &item2_unmapped,
        "--by",
        "dr-a",
        "--note",
        "known local stock",
    ])
    .ok();
    let first = open_one(&env, "p-3b", "unmapped_ndc", 1).to_string();
    env.run(&[
        "queue", "resolve", &first, "--action", "remove", "--by", "dr-a",
    ])
    .ok();
    open_one(&env, "p-3b", "duplicate", 2);
    assert_eq!(regimen_status(&env, "p-3b"), "needs_review");
}

// ---------------------------------------------------------------- 4

#[test]
fn mapping_two_items_to_one_ndc_opens_a_duplicate() {
    let env = TestEnv::with_dictionary_and(&["p-4"]);
    let file = env.write(
        "amlo.xml",
        &ccr(
            "d4",
            &[
                med("amlodipine", &[("RxNorm", "197361")], "Take 1 tablet daily"),
                med("Norvasc 5 mg", &[], "Take 1 tablet in the evening"),
            ],
        ),
    );
    let s = import_json(&env, &file, "p-4");
    assert_eq!(s["exceptions"]["non_ndc_code"], 2, "{s}");
    for position in [1, 2] {
        let id = open_one(&env, "p-4", "non_ndc_code", position).to_string();
        env.run(&[
            "queue",
            "resolve",
            &id,
            "--action",
            "map",
            "--ndc",
            "0069-1530-68",
            "--by",
            "dr-a",
        ])
        .ok();
    }
    let open = open_exceptions(&env, "p-4");
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["kind"], "duplicate");
    assert_eq!(item_position(&open[0], "item"), Some(2));
    assert_eq!(item_position(&open[0], "related_item"), Some(1));
    assert_eq!(open[0]["severity"], "error");
    assert_eq!(regimen_status(&env, "p-4"), "needs_review");

    // Keeping both closes it, and only then is the regimen reviewed.
    let id = open[0]["id"].as_i64().expect("id").to_string();
    env.run(&["queue", "resolve", &id, "--action", "keep", "--by", "dr-a"])
        .ok();
    assert_eq!(regimen_status(&env, "p-4"), "reviewed");
}

// ---------------------------------------------------------------- 5

#[test]
fn mapping_an_unmapped_ndc_is_remembered_under_the_ndc_only() {
    let env = TestEnv::with_dictionary_and(&["p-5"]);
    let file = env.write(
        "both.xml",
        &ccr(
            "d5",
            &[med(
                "Some drug",
                &[("NDC", "68180-0513-01"), ("RxNorm", "999001")],
                "Take 1 daily",
            )],
        ),
    );
    import_json(&env, &file, "p-5");
    let id = open_one(&env, "p-5", "unmapped_ndc", 1).to_string();
    env.run(&[
        "queue",
        "resolve",
        &id,
        "--action",
        "map",
        "--ndc",
        "0069-1530-68",
        "--by",
        "dr-a",
    ])
    .ok();
    assert_eq!(
        env.query_i64("SELECT COUNT(*) FROM code_mappings WHERE code = '999001'"),
        0,
        "the RxNorm code did not cause the exception"
    );
    assert_eq!(
        env.query_i64(
            "SELECT COUNT(*) FROM code_mappings WHERE code = '68180-0513-01' AND ndc11 = '00069153068'"
        ),
        1
    );
}

#[test]
fn a_decision_for_a_placeholder_ndc_reaches_no_other_drug() {
    let env = TestEnv::with_dictionary_and(&["p-6", "p-7"]);
    // Decisions are per source: a decision under a name reaches the same
    // name again (which is right), so each row names its own drug.
    for (doc, placeholder, patient, name) in [
        ("d6a", "00000000000", "p-6", "Lisinopril 10 mg tablet"),
        ("d6b", "99999999999", "p-7", "Atorvastatin 20 mg tablet"),
    ] {
        let first = env.write(
            &format!("{doc}-1.xml"),
            &ccr(doc, &[med(name, &[("NDC", placeholder)], "Take 1 daily")]),
        );
        import_json(&env, &first, patient);
        let id = open_one(&env, patient, "invalid_ndc", 1).to_string();
        env.run(&[
            "queue",
            "resolve",
            &id,
            "--action",
            "map",
            "--ndc",
            "0069-1530-68",
            "--by",
            "dr-a",
        ])
        .ok();
        assert_eq!(
            env.query_i64(&format!(
                "SELECT COUNT(*) FROM code_mappings WHERE code = '{placeholder}'"
            )),
            0,
            "{placeholder}: never a key"
        );
        let second = env.write(
            &format!("{doc}-2.xml"),
            &ccr(
                &format!("{doc}-2"),
                &[med(
                    "Metformin 500 mg tablet",
                    &[("NDC", placeholder)],
                    "Take 1 daily",
                )],
            ),
        );
        import_json(&env, &second, patient);
        let open: Vec<String> = open_exceptions(&env, patient)
            .iter()
            .map(|e| e["kind"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(
            open,
            vec!["invalid_ndc"],
            "{placeholder}: Metformin is not mapped"
        );
    }
}

// ---------------------------------------------------------------- 6

fn outcome(v: &Value) -> (String, Option<i64>) {
    (
        v["outcome"].as_str().unwrap_or_default().to_string(),
        v["version"].as_i64(),
    )
}

#[test]
fn the_same_bytes_after_other_bytes_make_a_new_version_from_the_stored_document() {
    let env = TestEnv::with_dictionary_and(&["p-6"]);
    let a = env.write("a.xml", &ccr("a", &[med("Drug A", &[], "Take 1 daily")]));
    let b = env.write("b.xml", &ccr("b", &[med("Drug B", &[], "Take 1 daily")]));
    let runs: Vec<(String, Option<i64>)> = [&a, &b, &a]
        .iter()
        .map(|f| outcome(&import_json(&env, f, "p-6")))
        .collect();
    let imported = |v| ("imported".to_string(), Some(v));
    assert_eq!(runs, [imported(1), imported(2), imported(3)]);
    assert_eq!(env.query_i64("SELECT COUNT(*) FROM documents"), 2);
    assert_eq!(
        env.query_i64("SELECT COUNT(DISTINCT document_id) FROM regimens WHERE version IN (1, 3)"),
        1,
        "versions 1 and 3 are read from the same stored document"
    );
    // A again, now current: unchanged, at version 3.
    assert_eq!(
        outcome(&import_json(&env, &a, "p-6")),
        ("unchanged".to_string(), Some(3))
    );
    assert_eq!(env.query_i64("SELECT COUNT(*) FROM regimens"), 3);
}

#[test]
fn a_kept_unreadable_document_parsed_later_gets_its_regimen_and_its_exception_closed() {
    let env = TestEnv::with_dictionary_and(&["p-6b"]);
    let file = env.write(
        "real.xml",
        &ccr("d6b", &[med("Drug A", &[], "Take 1 daily")]),
    );
    // Read as FHIR it cannot be parsed; it is kept.
    let forced = import_args(&file, "p-6b", &["--format", "fhir", "--keep-unreadable"]);
    env.run(&forced).fails(1);
    // The same unreadable bytes again: a failed sync, no second exception.
    env.run(&forced).fails(1);
    assert_eq!(
        env.query_i64("SELECT COUNT(*) FROM exceptions WHERE kind = 'unreadable'"),
        1
    );
    assert_eq!(
        env.query_i64("SELECT COUNT(*) FROM syncs WHERE outcome = 'failed'"),
        2
    );
    assert_eq!(env.query_i64("SELECT COUNT(*) FROM documents"), 1);

    let s = import_json(&env, &file, "p-6b");
    assert_eq!(outcome(&s), ("imported".to_string(), Some(1)), "{s}");
    assert_eq!(s["format"], "ccr");
    assert_eq!(env.query_i64("SELECT COUNT(*) FROM documents"), 1);
    assert_eq!(
        env.query_i64("SELECT COUNT(*) FROM documents WHERE format = 'ccr' AND media_type != 'application/octet-stream'"),
        1
    );
    assert_eq!(
        env.query_i64(
            "SELECT COUNT(*) FROM exceptions WHERE kind = 'unreadable' AND state = 'resolved'
             AND note = 'parsed on a later import'"
        ),
        1
    );
    assert_eq!(
        env.query_i64("SELECT COUNT(*) FROM audit WHERE action = 'exception.parsed'"),
        1
    );
    // And once parsed, the same bytes are unchanged.
    assert_eq!(
        outcome(&import_json(&env, &file, "p-6b")),
        ("unchanged".to_string(), Some(1))
    );
}

// ---------------------------------------------------------------- 9, 10

#[test]
fn skipped_records_are_listed_in_the_audit_and_once_in_the_json_summary() {
    let env = TestEnv::with_dictionary_and(&["p-9"]);
    let file = env.write(
        "skip.xml",
        &ccr(
            "d9",
            &[
                med("Drug A", &[], "Take 1 daily"),
                Med {
                    status: "Entered in error",
                    ..med("Wrong drug", &[], "Take 2 daily")
                },
            ],
        ),
    );
    let run = env.run(&import_args(&file, "p-9", &["--format", "json"]));
    let raw = run.ok().to_string();
    assert_eq!(raw.matches("\"skipped\"").count(), 1, "{raw}");
    let s = run.json();
    assert_eq!(s["skipped_count"], 1, "{s}");
    assert_eq!(s["skipped"][0]["name"], "Wrong drug", "{s}");

    let detail =
        env.query_string("SELECT detail FROM audit WHERE action = 'import' AND patient_id = 'p-9'");
    let detail: Value = serde_json::from_str(&detail).expect("JSON detail");
    let skipped = detail["skipped"]
        .as_array()
        .expect("a list of skipped records");
    assert_eq!(skipped.len(), 1, "{detail}");
    assert_eq!(skipped[0]["name"], "Wrong drug");
    assert!(
        skipped[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("entered-in-error")),
        "{detail}"
    );
    assert!(skipped[0]["source"].is_object(), "{detail}");
}

// ---------------------------------------------------------------- 8

#[test]
fn the_lookups_decisions_and_imports_make_are_indexed() {
    let env = TestEnv::new();
    env.run(&["patient", "add", "--id", "p-1"]).ok();
    for (table, column) in [
        ("exceptions", "item_id"),
        ("exceptions", "related_item_id"),
        ("exceptions", "document_id"),
        ("regimens", "document_id"),
        ("items", "ndc11"),
    ] {
        let indexes = env.query_i64(&if crate::support::on_postgres() {
            format!(
                "SELECT COUNT(*) FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid
                 JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
                 WHERE t.relname = '{table}' AND a.attname = '{column}'"
            )
        } else {
            format!(
                "SELECT COUNT(*) FROM pragma_index_list('{table}') l
                 JOIN pragma_index_info(l.name) i WHERE i.seqno = 0 AND i.name = '{column}'"
            )
        });
        assert!(indexes > 0, "{table}({column}) leads an index");
    }
}

#[test]
fn a_new_version_closes_the_open_exceptions_of_the_versions_before_it() {
    let env = TestEnv::with_dictionary_and(&["pat-1"]);
    env.import(&repo_path("samples/fhir/demo.json"), "pat-1");
    let before = env.run(&["queue", "list", "--format", "json"]).json();
    assert_eq!(before.as_array().map(Vec::len), Some(3));
    let v2 = env.import(&repo_path("samples/fhir/single-request.json"), "pat-1");
    assert_eq!(v2["version"], 2);
    let open = env.run(&["queue", "list", "--format", "json"]).json();
    assert!(
        open.as_array()
            .expect("rows")
            .iter()
            .all(|r| r["regimen_version"] == 2),
        "{open}"
    );
    let dismissed = env
        .run(&["queue", "list", "--state", "dismissed", "--format", "json"])
        .json();
    let rows = dismissed.as_array().expect("rows");
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| r["note"] == "superseded by regimen version 2"),
        "{dismissed}"
    );
    let superseded_3 = if crate::support::on_postgres() {
        "SELECT COUNT(*) FROM audit WHERE action = 'import' AND detail->>'superseded_exceptions' = '3'"
    } else {
        "SELECT COUNT(*) FROM audit WHERE action = 'import' AND detail LIKE '%\"superseded_exceptions\":3%'"
    };
    assert_eq!(env.query_i64(superseded_3), 1);
}
