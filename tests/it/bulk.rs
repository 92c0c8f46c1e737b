//! `rxsync import --bulk`: a FHIR Bulk Data export (NDJSON files, gzip or
//! not, one resource per line, many patients per file) imported patient by
//! patient; `import --file` of one `.ndjson` file for one patient.

use crate::support::TestEnv;
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};

const PROVIDER: &str = "payer";

/// A home with a FHIR provider `payer` (MRN matching on) and the sample dictionary.
fn home() -> (TestEnv, String) {
    let env = TestEnv::with_dictionary_and(&[]);
    let config = env.write(
        "config.toml",
        br#"
[[providers]]
id = "payer"
kind = "fhir"
base_url = "https://payer.example/fhir"
[providers.auth]
scheme = "oauth2"
token_url = "https://payer.example/token"
client_id = "rxsync"
[providers.bulk]
match = "mrn"
"#,
    );
    (env, config)
}

fn rx(env: &TestEnv, config: &str, args: &[&str]) -> crate::support::Run {
    let mut all = vec!["--config", config];
    all.extend_from_slice(args);
    env.run(&all)
}

/// Registers local patient `id` linked at the provider as remote `remote`
/// (the link's row written directly: a bulk import needs no tokens).
fn link(env: &TestEnv, id: &str, remote: &str) {
    env.run(&["patient", "add", "--id", id]).ok();
    // Names only this test makes (no quote to escape).
    let inserted = env.execute(&format!(
        "INSERT INTO links (patient_id, provider, scheme, remote_patient, state, key_id, created_at, updated_at)
         VALUES ('{id}', '{PROVIDER}', 'oauth2', '{remote}', 'active', 'test', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"
    ));
    assert_eq!(inserted, 1, "link row");
}

/// The resources of remote patient `n`: two requests (one referencing a
/// shared Medication), a statement, a dispense, a claim, and its Patient.
fn patient_resources(n: usize) -> Vec<(&'static str, Value)> {
    let p = format!("Patient/r{n}");
    let ndc = |k: usize| ["0003-5194-10", "0002-7715-59", "0006-0106-54"][k % 3];
    vec![
        (
            "MedicationRequest",
            json!({"resourceType":"MedicationRequest","id":format!("rq{n}a"),"status":"active","intent":"order","subject":{"reference":p},
            "medicationCodeableConcept":{"coding":[{"system":"http://hl7.org/fhir/sid/ndc","code":ndc(n)}],"text":"drug a"}}),
        ),
        (
            "MedicationRequest",
            json!({"resourceType":"MedicationRequest","id":format!("rq{n}b"),"status":"active","intent":"order","subject":{"reference":p},
            "medicationReference":{"reference":format!("Medication/m{}", n % 7)}}),
        ),
        (
            "MedicationStatement",
            json!({"resourceType":"MedicationStatement","id":format!("st{n}"),"status":"active","subject":{"reference":p},
            "medicationCodeableConcept":{"text":"vitamin d 1000 unit"}}),
        ),
        (
            "MedicationDispense",
            json!({"resourceType":"MedicationDispense","id":format!("dp{n}"),"status":"completed","subject":{"reference":p},
            "medicationCodeableConcept":{"coding":[{"system":"http://hl7.org/fhir/sid/ndc","code":ndc(n + 1)}]}}),
        ),
        (
            "ExplanationOfBenefit",
            json!({"resourceType":"ExplanationOfBenefit","id":format!("eob{n}"),"status":"active","patient":{"reference":p},
            "item":[{"sequence":1,"productOrService":{"coding":[{"system":"http://hl7.org/fhir/sid/ndc","code":"00093505601"}]},"servicedDate":"2026-01-02"}]}),
        ),
        (
            "Patient",
            json!({"resourceType":"Patient","id":format!("r{n}"),"identifier":[{"system":"urn:mrn","value":format!("MRN{n}")}]}),
        ),
    ]
}

/// Writes an export of `patients` patients: each type split over
/// `per_type` files, every other one gzipped. Returns the paths.
fn export(dir: &Path, patients: usize, per_type: usize) -> Vec<PathBuf> {
    let mut files: std::collections::BTreeMap<(String, usize), Vec<u8>> = Default::default();
    let mut put = |kind: &str, n: usize, v: &Value| {
        let buf = files.entry((kind.to_string(), n % per_type)).or_default();
        buf.extend_from_slice(v.to_string().as_bytes());
        buf.push(b'\n');
    };
    for m in 0..7 {
        let med = json!({"resourceType":"Medication","id":format!("m{m}"),
            "code":{"coding":[{"system":"http://hl7.org/fhir/sid/ndc","code":"0002-7715-63"}],"text":"shared drug"}});
        put("Medication", m, &med);
    }
    for n in 0..patients {
        for (kind, v) in patient_resources(n) {
            put(kind, n, &v);
        }
    }
    files
        .into_iter()
        .map(|((kind, part), bytes)| {
            let gz = part % 2 == 1;
            let path = dir.join(format!(
                "{kind}.{part}.ndjson{}",
                if gz { ".gz" } else { "" }
            ));
            if gz {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&bytes).expect("gzip");
                std::fs::write(&path, e.finish().expect("gzip")).expect("write");
            } else {
                std::fs::write(&path, bytes).expect("write");
            }
            path
        })
        .collect()
}

fn bulk(env: &TestEnv, config: &str, files: &[PathBuf]) -> crate::support::Run {
    let mut args = vec!["import", "--bulk"];
    let paths: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    args.extend(["--provider", PROVIDER, "--format", "json"]);
    rx(env, config, &args)
}

#[test]
fn an_export_of_ten_thousand_patients_gives_one_regimen_per_known_patient() {
    let (env, config) = home();
    for n in (0..10_000).step_by(500) {
        link(&env, &format!("L{n}"), &format!("r{n}"));
    }
    // Matched by the Patient resource's identifier (no link).
    for n in [7, 4_321, 9_999] {
        env.run(&[
            "patient",
            "add",
            "--id",
            &format!("M{n}"),
            "--mrn",
            &format!("MRN{n}"),
        ])
        .ok();
    }
    let dir = env.dir.path().join("export");
    std::fs::create_dir(&dir).expect("dir");
    let files = export(&dir, 10_000, 3);
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "gz"))
    );

    let first = bulk(&env, &config, &files);
    let report = first.json();
    assert_eq!(report["patients"]["imported"], 23, "{report:#}");
    assert_eq!(report["patients"]["matched_by_mrn"], 3);
    assert_eq!(report["patients"]["unknown"], 10_000 - 23);
    assert_eq!(report["patients"]["failed"], 0);
    assert_eq!(report["bad_line_count"], 0);
    assert_eq!(report["resources"], 10_000 * 6 + 7);
    assert_eq!(report["files"].as_array().map(Vec::len), Some(18));
    assert_eq!(
        env.query_i64("SELECT COUNT(*) FROM regimens WHERE source = 'payer'"),
        23
    );
    assert_eq!(
        env.query_i64("SELECT COUNT(DISTINCT patient_id) FROM regimens WHERE source = 'payer'"),
        23
    );
    // Each patient's own records only: its 5, the shared drug folded in.
    let documents = env.query_i64(
        "SELECT COUNT(*) FROM documents d JOIN regimens r ON r.document_id = d.id WHERE r.patient_id = 'L500'",
    );
    assert_eq!(documents, 1);
    assert_eq!(
        env.query_i64("SELECT COUNT(*) FROM bulk_staging"),
        0,
        "staging is cleared"
    );
    assert_eq!(
        env.query_i64("SELECT COUNT(*) FROM patients"),
        23,
        "unknown patients are never stored"
    );

    // The same export again: no new version for anyone.
    let again = bulk(&env, &config, &files).json();
    assert_eq!(again["patients"]["imported"], 0, "{again:#}");
    assert_eq!(again["patients"]["unchanged"], 23);
    assert_eq!(
        env.query_i64("SELECT COUNT(*) FROM regimens WHERE source = 'payer'"),
        23
    );
}

#[test]
fn a_bad_line_is_named_by_file_and_line_and_reaches_its_patient() {
    let (env, config) = home();
    link(&env, "L1", "r1");
    let good = patient_resources(1)[0].1.to_string();
    let text = format!(
        "{good}\nthis is not json\n{{\"id\":\"x\",\"subject\":{{\"reference\":\"Patient/r1\"}}}}\n{{\"resourceType\":\"MedicationRequest\",\"id\":\"nobody\"}}\n"
    );
    let file = env.write("MedicationRequest.ndjson", text.as_bytes());
    let run = rx(
        &env,
        &config,
        &[
            "import",
            "--bulk",
            &file,
            "--provider",
            PROVIDER,
            "--format",
            "json",
        ],
    );
    let out = run.fails(1).to_string();
    assert!(out.contains("3 bad line(s)"), "{out}");
    let report: Value = serde_json::from_str(&run.stdout).expect("JSON summary");
    assert_eq!(report["patients"]["imported"], 1, "{report:#}");
    assert_eq!(report["bad_line_count"], 3);
    let lines: Vec<String> = report["bad_lines"]
        .as_array()
        .expect("bad lines")
        .iter()
        .map(|b| format!("{}:{}", b["file"].as_str().unwrap_or(""), b["line"]))
        .collect();
    assert_eq!(
        lines,
        [
            format!("{file}:2"),
            format!("{file}:3"),
            format!("{file}:4")
        ]
    );
    assert!(
        report["bad_lines"][0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("malformed JSON")
    );
    assert_eq!(report["bad_lines"][1]["patient"], "r1");
    assert!(
        report["bad_lines"][2]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("names no patient")
    );
    // The line without resourceType is r1's unreadable record.
    assert_eq!(report["unreadable_records"], 1);
    assert_eq!(
        env.query_i64(
            "SELECT COUNT(*) FROM exceptions WHERE patient_id = 'L1' AND kind = 'unreadable_record'"
        ),
        1
    );
    // The lines no patient can be named for are in the audit.
    assert_eq!(
        env.query_i64("SELECT COUNT(*) FROM audit WHERE action = 'bulk.bad_line'"),
        2
    );
}

#[test]
fn unknown_patients_are_counted_and_nothing_of_them_is_stored() {
    let (env, config) = home();
    let dir = env.dir.path().join("export");
    std::fs::create_dir(&dir).expect("dir");
    let files = export(&dir, 30, 2);
    let before = env.counts();
    let run = bulk(&env, &config, &files);
    let report = run.json();
    run.ok();
    assert_eq!(report["patients"]["unknown"], 30, "{report:#}");
    assert_eq!(report["patients"]["imported"], 0);
    assert!(
        report["unknown_patients"][0]
            .as_str()
            .unwrap_or("")
            .contains("no identifier is a local MRN")
    );
    assert_eq!(env.counts(), before, "nothing stored");
}

#[test]
fn an_ndjson_file_imports_for_one_patient_and_names_the_others() {
    let (env, config) = home();
    link(&env, "L1", "r1");
    let mut text = String::new();
    for n in [1, 2] {
        for (kind, v) in patient_resources(n) {
            if kind == "MedicationRequest" || kind == "MedicationStatement" {
                text.push_str(&v.to_string());
                text.push('\n');
            }
        }
    }
    let file = env.write("mixed.ndjson", text.as_bytes());
    let run = rx(
        &env,
        &config,
        &[
            "import",
            "--file",
            &file,
            "--patient",
            "L1",
            "--format",
            "json",
        ],
    );
    let report = run.json();
    run.ok();
    assert!(
        run.stderr.contains("other patient(s) (r2)"),
        "{}",
        run.stderr
    );
    assert_eq!(report["ndjson"]["remote_patient"], "r1", "{report:#}");
    assert_eq!(report["ndjson"]["other_patients"], json!(["r2"]));
    assert_eq!(report["ndjson"]["other_resources"], 3);
    assert_eq!(report["records"], 3);
    // A patient the file cannot be attributed to: refused, nothing stored.
    env.run(&["patient", "add", "--id", "Z9"]).ok();
    let out = rx(
        &env,
        &config,
        &["import", "--file", &file, "--patient", "Z9"],
    );
    assert!(out.fails(1).contains("2 patients"), "{}", out.stderr);
}
