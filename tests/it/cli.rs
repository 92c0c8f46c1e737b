//! The import → regimen → queue flow through the binary, on the demo samples.

use crate::support::{TestEnv, repo_path};
use serde_json::Value;

fn kinds(summary: &Value) -> Vec<(String, u64)> {
    summary["exceptions"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn dict_import_and_lookup_in_every_format() {
    let env = TestEnv::new();
    let out = env
        .run(&[
            "dict",
            "import",
            "--fda",
            &repo_path("samples/ndc").display().to_string(),
        ])
        .ok()
        .to_string();
    assert!(out.contains("loaded") && out.contains("products"), "{out}");
    assert!(
        env.query_i64("SELECT COUNT(*) FROM dict_products WHERE excluded") >= 1,
        "the excluded product is kept, marked"
    );

    for code in ["0777-3105-02", "00777310502", "0777-3105-*2"] {
        let v = env
            .run(&["dict", "lookup", code, "--format", "json"])
            .json();
        assert_eq!(v[0]["package"]["ndc11"], "00777310502", "lookup {code}");
        assert_eq!(
            v[0]["product"]["proprietary_name"], "Prozac",
            "lookup {code}"
        );
    }
    // A bare 10-digit code lists what its readings match.
    let v = env
        .run(&["dict", "lookup", "0087606005", "--format", "json"])
        .json();
    assert_eq!(v[0]["package"]["ndc11"], "00087606005");
    let table = env
        .run(&["dict", "lookup", "0006-0106-54"])
        .ok()
        .to_string();
    for needle in [
        "PRINIVIL",
        "LISINOPRIL",
        "10 mg/1",
        "TABLET",
        "ORAL",
        "Merck",
    ] {
        assert!(
            table.to_uppercase().contains(&needle.to_uppercase()),
            "{needle} in {table}"
        );
    }
    let by_name = env
        .run(&["dict", "lookup", "glucophage", "--format", "json"])
        .json();
    assert!(by_name.as_array().is_some_and(|a| !a.is_empty()));
    env.run(&["dict", "lookup", "68180-0513-01"]).fails(1);
    let err = env
        .run(&["dict", "lookup", "2501-813-16"])
        .fails(2)
        .to_string();
    assert!(err.contains("4-3-2"), "{err}");
}

#[test]
fn patients_are_validated_and_listed() {
    let env = TestEnv::new();
    env.run(&[
        "patient",
        "add",
        "--id",
        "p-1",
        "--mrn",
        "M1",
        "--name",
        "Ada Synthetic",
        "--birth-date",
        "1950-02-03",
    ])
    .ok();
    env.run(&["patient", "add", "--id", "p-1"]).fails(1);
    env.run(&["patient", "add", "--id", "bad id"]).fails(2);
    env.run(&[
        "patient",
        "add",
        "--id",
        "p-2",
        "--birth-date",
        "1950-13-40",
    ])
    .fails(2);
    let v = env.run(&["patient", "list", "--format", "json"]).json();
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert_eq!(v[0]["id"], "p-1");
    assert_eq!(v[0]["birth_date"], "1950-02-03");
}

#[test]
fn importing_the_demo_ccr_raises_each_expected_exception() {
    let env = TestEnv::with_dictionary_and(&["pat-1"]);
    let s = env.import(&repo_path("samples/ccr/demo.xml"), "pat-1");
    assert_eq!(s["outcome"], "imported");
    assert_eq!(s["version"], 1);
    assert_eq!(s["status"], "needs_review");
    assert_eq!(s["items"], 6, "{s}");
    assert_eq!(
        kinds(&s),
        [
            ("duplicate", 1),
            ("invalid_ndc", 1),
            ("non_ndc_code", 1),
            ("unmapped_ndc", 1)
        ]
        .map(|(k, n)| (k.to_string(), n))
        .to_vec()
    );

    let r = env
        .run(&["regimen", "show", "--patient", "pat-1", "--format", "json"])
        .json();
    for key in ["patient", "version", "status", "source", "items"] {
        assert!(r.get(key).is_some(), "regimen JSON lacks {key}: {r}");
    }
    let items = r["items"].as_array().expect("items");
    for item in items {
        for key in [
            "ndc11",
            "name",
            "codes",
            "strength",
            "form",
            "route",
            "dose",
            "frequency",
            "status",
            "flags",
        ] {
            assert!(item.get(key).is_some(), "item JSON lacks {key}: {item}");
        }
        for code in item["codes"].as_array().expect("codes") {
            assert!(
                code["system"].is_string() && code["code"].is_string(),
                "{code}"
            );
        }
    }
    let prinivil = &items[0];
    assert_eq!(prinivil["ndc11"], "00006010654");
    assert_eq!(prinivil["flags"], serde_json::json!([]));
    let flagged: Vec<(&str, &str)> = items
        .iter()
        .flat_map(|i| {
            i["flags"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |f| (i["name"].as_str().unwrap_or(""), f.as_str().unwrap_or("")))
        })
        .collect();
    assert!(
        flagged
            .iter()
            .any(|(n, f)| n.contains("Losartan") && *f == "unmapped_ndc"),
        "{flagged:?}"
    );
    assert!(
        flagged
            .iter()
            .any(|(n, f)| n.contains("Ibuprofen") && *f == "invalid_ndc"),
        "{flagged:?}"
    );
    assert!(
        flagged
            .iter()
            .any(|(n, f)| n.to_lowercase().contains("amlodipine") && *f == "non_ndc_code"),
        "{flagged:?}"
    );
    assert!(
        flagged.iter().any(|(_, f)| *f == "duplicate"),
        "{flagged:?}"
    );
    let table = env
        .run(&["regimen", "show", "--patient", "pat-1"])
        .ok()
        .to_string();
    assert!(
        table.contains("needs review") && table.contains("00006010654"),
        "{table}"
    );
}

#[test]
fn importing_the_demo_fhir_bundle_folds_repeats_and_flags_duplicates() {
    let env = TestEnv::with_dictionary_and(&["pat-2"]);
    let s = env.import(&repo_path("samples/fhir/demo.json"), "pat-2");
    assert_eq!(s["outcome"], "imported", "{s}");
    assert_eq!(s["format"], "fhir-json");
    assert_eq!(s["items"], 7, "{s}");
    assert_eq!(
        s["skipped"].as_array().map(Vec::len),
        Some(3),
        "the entered-in-error request, the Patient and the AllergyIntolerance: {s}"
    );
    assert_eq!(
        kinds(&s),
        [
            ("duplicate", 1),
            ("non_ndc_code", 1),
            ("therapeutic_duplicate", 1)
        ]
        .map(|(k, n)| (k.to_string(), n))
        .to_vec()
    );
    let r = env
        .run(&["regimen", "show", "--patient", "pat-2", "--format", "json"])
        .json();
    let items = r["items"].as_array().expect("items");
    let lipitor = items
        .iter()
        .find(|i| i["ndc11"] == "00071015523")
        .expect("Lipitor item");
    assert_eq!(
        lipitor["sources"].as_array().map(Vec::len),
        Some(2),
        "request and dispense fold: {lipitor}"
    );
    let glucophage = items
        .iter()
        .find(|i| i["ndc11"] == "00087606005")
        .expect("Glucophage item");
    assert_eq!(glucophage["ndc_inferred"], true);
}

#[test]
fn the_same_bytes_make_no_new_version_and_new_bytes_do() {
    let env = TestEnv::with_dictionary_and(&["pat-1"]);
    let file = repo_path("samples/ccr/demo.xml");
    env.import(&file, "pat-1");
    let before = env.counts();
    let again = env.import(&file, "pat-1");
    assert_eq!(again["outcome"], "unchanged");
    assert_eq!(again["version"], 1);
    let after = env.counts();
    for ((table, a), (_, b)) in before.iter().zip(&after) {
        match table.as_str() {
            "syncs" | "audit" => assert_eq!(*b, a + 1, "{table} records the attempt"),
            _ => assert_eq!(a, b, "{table} unchanged"),
        }
    }
    let edited = env.demo_ccr_with_other_bytes("demo-v2.xml");
    let v2 = env
        .run(&[
            "import",
            "--file",
            &edited,
            "--patient",
            "pat-1",
            "--format",
            "json",
        ])
        .json();
    assert_eq!(v2["version"], 2);
    let h = env
        .run(&[
            "regimen",
            "history",
            "--patient",
            "pat-1",
            "--format",
            "json",
        ])
        .json();
    assert_eq!(h.as_array().map(Vec::len), Some(2));
    assert_eq!(h[0]["version"], 2);
    let v1 = env
        .run(&[
            "regimen",
            "show",
            "--patient",
            "pat-1",
            "--version",
            "1",
            "--format",
            "json",
        ])
        .json();
    assert_eq!(v1["version"], 1);
}

#[test]
fn a_clinician_clears_the_queue_and_the_regimen_becomes_reviewed() {
    let env = TestEnv::with_dictionary_and(&["pat-1"]);
    env.import(&repo_path("samples/ccr/demo.xml"), "pat-1");
    let q = env.run(&["queue", "list", "--format", "json"]).json();
    let rows = q.as_array().expect("queue rows").clone();
    assert_eq!(rows.len(), 4);
    for row in &rows {
        for key in ["id", "patient", "kind", "state", "item", "detail"] {
            assert!(row.get(key).is_some(), "queue row lacks {key}: {row}");
        }
        assert_eq!(row["state"], "open");
    }
    let id_of = |kind: &str| -> String {
        rows.iter()
            .find(|r| r["kind"] == kind)
            .map(|r| r["id"].to_string())
            .unwrap_or_else(|| panic!("no {kind}"))
    };
    let amlodipine_ndc = env
        .run(&["dict", "lookup", "amlodipine", "--format", "json"])
        .json()[0]["package"]["ndc11"]
        .as_str()
        .expect("an amlodipine product in the sample dictionary")
        .to_string();

    // A wrong action for the kind, and map without an NDC, are refused.
    let err = env
        .run(&[
            "queue",
            "resolve",
            &id_of("duplicate"),
            "--action",
            "map",
            "--ndc",
            "0087-6060-05",
            "--by",
            "dr.lee",
        ])
        .fails(1)
        .to_string();
    assert!(err.contains("does not fit"), "{err}");
    env.run(&[
        "queue",
        "resolve",
        &id_of("unmapped_ndc"),
        "--action",
        "map",
        "--by",
        "dr.lee",
    ])
    .fails(2);
    env.run(&[
        "queue",
        "resolve",
        &id_of("unmapped_ndc"),
        "--action",
        "map",
        "--ndc",
        "68180-0513-01",
        "--by",
        "dr.lee",
    ])
    .fails(1);

    let mapped = env
        .run(&[
            "queue",
            "resolve",
            &id_of("non_ndc_code"),
            "--action",
            "map",
            "--ndc",
            &amlodipine_ndc,
            "--by",
            "dr.lee",
            "--note",
            "RxNorm 197361",
            "--format",
            "json",
        ])
        .json();
    assert_eq!(mapped["state"], "resolved");
    assert_eq!(mapped["resolved_by"], "dr.lee");
    env.run(&[
        "queue",
        "resolve",
        &id_of("duplicate"),
        "--action",
        "remove",
        "--by",
        "dr.lee",
    ])
    .ok();
    env.run(&[
        "queue",
        "resolve",
        &id_of("invalid_ndc"),
        "--action",
        "accept",
        "--by",
        "dr.lee",
    ])
    .ok();
    let again = env
        .run(&[
            "queue",
            "resolve",
            &id_of("invalid_ndc"),
            "--action",
            "accept",
            "--by",
            "dr.lee",
        ])
        .fails(1)
        .to_string();
    assert!(again.contains("already resolved"), "{again}");
    let r = env
        .run(&["regimen", "show", "--patient", "pat-1", "--format", "json"])
        .json();
    assert_eq!(r["status"], "needs_review", "one exception is still open");
    env.run(&[
        "queue",
        "dismiss",
        &id_of("unmapped_ndc"),
        "--by",
        "dr.lee",
        "--note",
        "",
    ])
    .fails(2);
    env.run(&[
        "queue",
        "dismiss",
        &id_of("unmapped_ndc"),
        "--by",
        "dr.lee",
        "--note",
        "repackager code, checked",
    ])
    .ok();

    let r = env
        .run(&["regimen", "show", "--patient", "pat-1", "--format", "json"])
        .json();
    assert_eq!(r["status"], "reviewed");
    assert_eq!(r["items"].as_array().map(Vec::len), Some(5));
    assert_eq!(r["removed_items"].as_array().map(Vec::len), Some(1));
    assert!(env.query_i64("SELECT COUNT(*) FROM audit WHERE actor = 'dr.lee'") >= 4);
    assert_eq!(
        env.run(&["queue", "list", "--format", "json"]).json(),
        serde_json::json!([])
    );
    let all = env
        .run(&["queue", "list", "--state", "all", "--format", "json"])
        .json();
    assert_eq!(all.as_array().map(Vec::len), Some(4));

    // The mapping is remembered: a later document with the same code maps
    // without an exception, and says who decided.
    let v2 = env.demo_ccr_with_other_bytes("v2.xml");
    let s = env
        .run(&[
            "import",
            "--file",
            &v2,
            "--patient",
            "pat-1",
            "--format",
            "json",
        ])
        .json();
    assert!(
        !s["exceptions"]
            .as_object()
            .expect("counts")
            .contains_key("non_ndc_code"),
        "{s}"
    );
    let r = env
        .run(&["regimen", "show", "--patient", "pat-1", "--format", "json"])
        .json();
    let amlo = r["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["ndc11"] == amlodipine_ndc.as_str())
        .expect("mapped item");
    assert_eq!(amlo["mapping"]["decided_by"], "dr.lee");
}

#[test]
fn listings_filter_by_kind_state_and_patient() {
    let env = TestEnv::with_dictionary_and(&["pat-1", "pat-2"]);
    env.import(&repo_path("samples/ccr/demo.xml"), "pat-1");
    env.import(&repo_path("samples/fhir/demo.json"), "pat-2");
    let only = env
        .run(&["queue", "list", "--kind", "duplicate", "--format", "json"])
        .json();
    assert_eq!(only.as_array().map(Vec::len), Some(2));
    let p2 = env
        .run(&["queue", "list", "--patient", "pat-2", "--format", "json"])
        .json();
    assert!(
        p2.as_array()
            .expect("rows")
            .iter()
            .all(|r| r["patient"] == "pat-2")
    );
    env.run(&["queue", "list", "--kind", "nonsense"]).fails(2);
    env.run(&["queue", "list", "--state", "closed"]).fails(2);
    let table = env.run(&["queue", "list"]).ok().to_string();
    assert!(table.contains("therapeutic_duplicate"), "{table}");
    let first = only[0]["id"].to_string();
    let shown = env
        .run(&["queue", "show", &first, "--format", "json"])
        .json();
    assert!(
        shown["excerpt"].as_str().is_some_and(|x| !x.is_empty()),
        "{shown}"
    );
    env.run(&["queue", "show", "99999"]).fails(1);
}

#[test]
fn a_partial_reading_is_reported_and_never_approved() {
    let env = TestEnv::with_dictionary_and(&["pat-1"]);
    let path = repo_path("samples/fhir/partial-reading.json");
    let s = env.import(&path, "pat-1");
    assert_eq!(s["outcome"], "imported", "{s}");
    assert_eq!(s["records"], 2, "{s}");
    assert_eq!(s["items"], 2, "{s}");
    assert_eq!(s["unreadable_records"], 1, "{s}");
    assert_eq!(s["status"], "needs_review", "{s}");
    assert_eq!(s["exceptions"]["unreadable_record"], 1, "{s}");
    // Everything left out is listed with its reason.
    let skipped: Vec<(String, String)> = s["skipped"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        format!(
                            "{}/{}",
                            x["source"]["kind"].as_str().unwrap_or(""),
                            x["source"]["id"].as_str().unwrap_or("")
                        ),
                        x["reason"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let ids: Vec<&str> = skipped.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "MedicationRequest/warfarin-1",
            "Patient/partial-1",
            "Medication/prozac"
        ],
        "{skipped:?}"
    );
    assert!(
        skipped[0].1.contains("invalid type: integer"),
        "{skipped:?}"
    );
    assert!(skipped[2].1.contains("search.mode include"), "{skipped:?}");
    assert_eq!(s["skipped_count"], 3, "{s}");
    // Prozac was only included: no item says it.
    let r = env
        .run(&["regimen", "show", "--patient", "pat-1", "--format", "json"])
        .json();
    let names: Vec<&str> = r["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(!names.iter().any(|n| n.contains("Prozac")), "{names:?}");
    assert_eq!(r["status"], "needs_review");
    // The table output says the reading was partial, and names the record.
    let env2 = TestEnv::with_dictionary_and(&["pat-2"]);
    let shown = path.display().to_string();
    let table = env2
        .run(&["import", "--file", &shown, "--patient", "pat-2"])
        .ok()
        .to_string();
    assert!(table.contains("PARTIAL READING: 1 record(s)"), "{table}");
    assert!(
        table.contains("MedicationRequest/warfarin-1: could not be read"),
        "{table}"
    );
}

#[test]
fn a_document_naming_several_patients_is_flagged_for_a_clinician() {
    let env = TestEnv::with_dictionary_and(&["pat-1"]);
    let s = env.import(&repo_path("samples/fhir/several-patients.json"), "pat-1");
    assert_eq!(s["exceptions"]["identity_mismatch"], 1, "{s}");
    let q = env
        .run(&[
            "queue",
            "list",
            "--kind",
            "identity_mismatch",
            "--format",
            "json",
        ])
        .json();
    let detail = q[0]["detail"].as_str().unwrap_or_default().to_string();
    // Patient/synthetic-a is named twice (relative and absolute): two patients, not three.
    assert!(
        detail.contains("2 patients") && detail.contains("Patient/synthetic-b"),
        "{detail}"
    );
    let r = env
        .run(&["regimen", "show", "--patient", "pat-1", "--format", "json"])
        .json();
    assert_eq!(r["status"], "needs_review");
    assert_eq!(r["flags"], serde_json::json!(["identity_mismatch"]));
}

#[test]
fn an_excerpt_is_withheld_when_the_stored_document_no_longer_matches_the_item() {
    let env = TestEnv::with_dictionary_and(&["pat-1"]);
    env.import(&repo_path("samples/ccr/demo.xml"), "pat-1");
    let q = env
        .run(&[
            "queue",
            "list",
            "--kind",
            "unmapped_ndc",
            "--format",
            "json",
        ])
        .json();
    let id = q[0]["id"].to_string();
    let shown = env.run(&["queue", "show", &id, "--format", "json"]).json();
    assert!(
        shown["excerpt"]
            .as_str()
            .is_some_and(|x| x.contains("68180-0513-01")),
        "{shown}"
    );
    // As if the parser had numbered records differently since the import.
    let tampered = env.execute(&format!(
        "UPDATE items SET sources = '[{{\"kind\":\"Medication\",\"id\":\"someone-else\"}}]' WHERE id = {}",
        shown["item"]["id"].as_i64().expect("item id")
    ));
    assert_eq!(tampered, 1);
    let shown = env.run(&["queue", "show", &id, "--format", "json"]).json();
    assert_eq!(shown["excerpt"], serde_json::Value::Null);
}

#[test]
fn a_searchset_of_pharmacy_claims_imports_as_dispensed_fills() {
    let env = TestEnv::with_dictionary_and(&["pat-1", "pat-2"]);
    let import = |file: &str, patient: &str, after: &str| {
        env.run_with_env(
            &[
                "import",
                "--file",
                &repo_path(file).display().to_string(),
                "--patient",
                patient,
                "--format",
                "json",
            ],
            &[("RXSYNC_IMPORT_CLAIMS_COMPLETED_AFTER", after)],
        )
        .json()
    };
    // Long enough that every fixture fill still counts as recent.
    let s = import("samples/fhir/eob-carin-searchset.json", "pat-1", "100000");
    assert_eq!(s["outcome"], "imported", "{s}");
    assert_eq!(s["items"], 2, "{s}");
    assert_eq!(
        s["skipped"][0]["reason"],
        "ExplanationOfBenefit/eob-3 line 1: a professional claim line without a drug code (HCPCS 99213)",
        "{s}"
    );
    assert_eq!(
        kinds(&s),
        [("invalid_ndc".to_string(), 1)].to_vec(),
        "the placeholder NDC, and never none_shared: {s}"
    );
    let r = env
        .run(&["regimen", "show", "--patient", "pat-1", "--format", "json"])
        .json();
    let items = r["items"].as_array().expect("items");
    let lipitor = items
        .iter()
        .find(|i| i["ndc11"] == "00071015523")
        .expect("Lipitor item");
    assert_eq!(lipitor["status"], "dispensed", "{lipitor}");
    assert_eq!(lipitor["evidence"], "claim", "{lipitor}");
    assert_eq!(lipitor["sig"], "last filled on 2026-10-01 for 30 days");
    assert_eq!(lipitor["prescribed"], "2026-10-01");
    assert_eq!(lipitor["days_supply"], "30");
    assert_eq!(lipitor["quantity"], "30 tablet");
    assert_eq!(lipitor["dispenser"], "Main Street Pharmacy");
    assert_eq!(lipitor["prescriber"], "Dr. Ada Example");
    let placeholder = items
        .iter()
        .find(|i| i["name"] == "Synthetic placeholder drug")
        .expect("placeholder item");
    assert_eq!(
        placeholder["ndc11"],
        serde_json::Value::Null,
        "{placeholder}"
    );
    assert_eq!(placeholder["flags"], serde_json::json!(["invalid_ndc"]));
    // The excerpt of a claim line is its claim, re-derived from the stored document.
    let q = env
        .run(&["queue", "list", "--kind", "invalid_ndc", "--format", "json"])
        .json();
    let id = q[0]["id"].to_string();
    let shown = env.run(&["queue", "show", &id, "--format", "json"]).json();
    assert!(
        shown["excerpt"]
            .as_str()
            .is_some_and(|x| x.contains("\"eob-2\"") && !x.contains("\"eob-1\"")),
        "{shown}"
    );

    // The XML twin, judged with no grace at all: the supplies have ended.
    let s = import("samples/fhir/eob-carin-searchset.xml", "pat-2", "0");
    assert_eq!(s["items"], 2, "{s}");
    let r = env
        .run(&["regimen", "show", "--patient", "pat-2", "--format", "json"])
        .json();
    let statuses: Vec<&str> = r["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["status"].as_str())
        .collect();
    assert_eq!(statuses, ["completed", "completed"], "{r}");
    let table = env
        .run(&["regimen", "show", "--patient", "pat-2"])
        .ok()
        .to_string();
    assert!(table.contains("completed (claims)"), "{table}");
}

#[test]
fn read_only_commands_never_create_a_database_and_say_where_they_looked() {
    let env = TestEnv::new();
    let dir = env.dir.path();
    let default_db = dir.join("rxsync.db");
    for args in [
        &["queue", "list"][..],
        &["queue", "show", "1"],
        &["regimen", "show", "--patient", "p"],
        &["patient", "list"],
        &["link", "list"],
        &["dict", "lookup", "0071-0155-23"],
        &["user", "list"],
    ] {
        let err = env.run_bare(args, &[]).fails(2).to_string();
        assert!(
            err.contains(&format!("no database at {}", default_db.display()))
                && err.contains("--db PATH, --config FILE or RXSYNC_CONFIG"),
            "{args:?}: {err}"
        );
        assert!(
            !default_db.exists(),
            "{args:?} created {}",
            default_db.display()
        );
    }
    // Named with --db, the message says so.
    let err = env
        .run_bare(&["--db", "elsewhere.db", "queue", "list"], &[])
        .fails(2)
        .to_string();
    assert!(err.contains("elsewhere.db (from --db)"), "{err}");
    // A command that writes creates it, and says where.
    let run = env.run_bare(&["patient", "add", "--id", "p-1"], &[]);
    let err = run.stderr.clone();
    run.ok();
    assert!(
        err.contains(&format!(
            "note: created the database {}",
            default_db.display()
        )),
        "{err}"
    );
    assert!(default_db.exists());
    // Now the read-only commands read it.
    env.run_bare(&["queue", "list"], &[]).ok();
}
