//! FHIR Bulk Data import benchmark (issue 12): the real binary's
//! `rxsync import --bulk FILES --provider payer --format json` over a
//! generated NDJSON export, against `serde_json::from_str::<Value>` of the
//! same lines in the same run, and the child's peak RSS (`wait4` rusage)
//! against the export's size.
//!
//! `RXSYNC_BENCH_BULK_MB` (default 20): the export's size, uncompressed.
//! `RXSYNC_BENCH_BULK_LINKED` (default 1.0): the share of its patients that
//! are linked (the others are unknown: read, counted, not imported).
//! Half the files of each type are gzip-compressed.

use serde_json::Value;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TYPES: [&str; 6] = [
    "MedicationRequest",
    "MedicationStatement",
    "MedicationDispense",
    "ExplanationOfBenefit",
    "Medication",
    "Patient",
];
const FILES_PER_TYPE: usize = 2;
const NDCS: [&str; 4] = [
    "0003-5194-10",
    "0002-7715-59",
    "0006-0106-54",
    "0002-7715-63",
];

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One patient's lines, by type index.
fn patient_lines(n: usize) -> [(usize, String); 6] {
    let p = format!("Patient/r{n}");
    let ndc = NDCS[n % NDCS.len()];
    let ndc2 = NDCS[(n + 1) % NDCS.len()];
    [
        (
            0,
            format!(
                r#"{{"resourceType":"MedicationRequest","id":"rq{n}","status":"active","intent":"order","subject":{{"reference":"{p}"}},"authoredOn":"2026-01-02","medicationReference":{{"reference":"Medication/m{}"}},"dosageInstruction":[{{"text":"1 tablet by mouth daily"}}]}}"#,
                n % 50
            ),
        ),
        (
            0,
            format!(
                r#"{{"resourceType":"MedicationRequest","id":"rq{n}b","status":"active","intent":"order","subject":{{"reference":"{p}"}},"medicationCodeableConcept":{{"coding":[{{"system":"http://hl7.org/fhir/sid/ndc","code":"{ndc}"}}],"text":"drug {n}"}}}}"#
            ),
        ),
        (
            1,
            format!(
                r#"{{"resourceType":"MedicationStatement","id":"st{n}","status":"active","subject":{{"reference":"{p}"}},"medicationCodeableConcept":{{"coding":[{{"system":"http://hl7.org/fhir/sid/ndc","code":"{ndc2}"}}]}},"dosage":[{{"text":"twice daily"}}]}}"#
            ),
        ),
        (
            2,
            format!(
                r#"{{"resourceType":"MedicationDispense","id":"dp{n}","status":"completed","subject":{{"reference":"{p}"}},"medicationCodeableConcept":{{"coding":[{{"system":"http://hl7.org/fhir/sid/ndc","code":"{ndc}"}}]}},"quantity":{{"value":30}},"daysSupply":{{"value":30}}}}"#
            ),
        ),
        (
            3,
            format!(
                r#"{{"resourceType":"ExplanationOfBenefit","id":"eob{n}","status":"active","type":{{"coding":[{{"code":"pharmacy"}}]}},"patient":{{"reference":"{p}"}},"item":[{{"sequence":1,"productOrService":{{"coding":[{{"system":"http://hl7.org/fhir/sid/ndc","code":"00093505601"}}]}},"servicedDate":"2026-01-02"}}]}}"#
            ),
        ),
        (
            5,
            format!(
                r#"{{"resourceType":"Patient","id":"r{n}","identifier":[{{"system":"urn:mrn","value":"MRN{n}"}}],"birthDate":"1950-01-01"}}"#
            ),
        ),
    ]
}

/// Writes the export; returns the files, the patients and the bytes written.
fn generate(dir: &Path, target: u64) -> (Vec<PathBuf>, usize, u64) {
    let mut paths = Vec::new();
    let mut writers: Vec<Box<dyn Write>> = Vec::new();
    for kind in TYPES {
        for part in 0..FILES_PER_TYPE {
            let gz = part % 2 == 1;
            let path = dir.join(format!(
                "{kind}.{part}.ndjson{}",
                if gz { ".gz" } else { "" }
            ));
            let file = BufWriter::new(File::create(&path).expect("create"));
            writers.push(if gz {
                Box::new(flate2::write::GzEncoder::new(
                    file,
                    flate2::Compression::fast(),
                ))
            } else {
                Box::new(file)
            });
            paths.push(path);
        }
    }
    let mut bytes = 0u64;
    for m in 0..50 {
        let line = format!(
            r#"{{"resourceType":"Medication","id":"m{m}","code":{{"coding":[{{"system":"http://hl7.org/fhir/sid/ndc","code":"{}"}}],"text":"shared drug {m}"}}}}"#,
            NDCS[m % 4]
        );
        writeln!(writers[4 * FILES_PER_TYPE + m % FILES_PER_TYPE], "{line}").expect("write");
        bytes += line.len() as u64 + 1;
    }
    let mut n = 0;
    while bytes < target {
        for (t, line) in patient_lines(n) {
            writeln!(writers[t * FILES_PER_TYPE + n % FILES_PER_TYPE], "{line}").expect("write");
            bytes += line.len() as u64 + 1;
        }
        n += 1;
    }
    for w in writers {
        drop(w); // GzEncoder finishes on drop.
    }
    (paths, n, bytes)
}

/// serde_json into `Value`, line by line, over the same files: (resources, time).
fn baseline(files: &[PathBuf]) -> (u64, Duration) {
    let t0 = Instant::now();
    let mut n = 0u64;
    for path in files {
        let mut raw = BufReader::new(File::open(path).expect("open"));
        let gz = raw.fill_buf().expect("read").starts_with(&[0x1f, 0x8b]);
        let reader: Box<dyn BufRead> = if gz {
            Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(raw)))
        } else {
            Box::new(raw)
        };
        for line in reader.lines() {
            let line = line.expect("line");
            let v: Value = serde_json::from_str(&line).expect("JSON");
            std::hint::black_box(&v);
            n += 1;
        }
    }
    (n, t0.elapsed())
}

fn wait4(child: std::process::Child) -> (i32, libc::rusage) {
    let pid = child.id();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, not yet reaped; both pointers are to live locals.
    let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(r, pid as libc::pid_t, "wait4 failed");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    (code, usage)
}

fn main() {
    let mb = env_f64("RXSYNC_BENCH_BULK_MB", 20.0);
    let linked = env_f64("RXSYNC_BENCH_BULK_LINKED", 1.0).clamp(0.0, 1.0);
    let dir = tempfile::tempdir().expect("temp dir");
    let export = dir.path().join("export");
    std::fs::create_dir(&export).expect("dir");
    let t = Instant::now();
    let (files, patients, bytes) = generate(&export, (mb * 1e6) as u64);
    let on_disk: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    eprintln!(
        "generated {patients} patients, {:.1} MB ({:.1} MB on disk) in {:.1?}",
        bytes as f64 / 1e6,
        on_disk as f64 / 1e6,
        t.elapsed()
    );

    // The database: every `linked` share of the patients registered and linked.
    let db = dir.path().join("rxsync.db");
    drop(rxsync::store::Store::open(&db).expect("store"));
    {
        let mut conn = rusqlite::Connection::open(&db).expect("db");
        let tx = conn.transaction().expect("tx");
        let every = if linked > 0.0 {
            (1.0 / linked).round() as usize
        } else {
            usize::MAX
        };
        for n in (0..patients).step_by(every.max(1)) {
            tx.execute(
                "INSERT INTO patients (id, created_at) VALUES (?1, '2026-01-01T00:00:00Z')",
                [format!("L{n}")],
            )
            .expect("patient");
            tx.execute(
                "INSERT INTO links (patient_id, provider, scheme, remote_patient, state, key_id, created_at, updated_at)
                 VALUES (?1, 'payer', 'oauth2', ?2, 'active', 'bench', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
                [format!("L{n}"), format!("r{n}")],
            )
            .expect("link");
        }
        tx.commit().expect("commit");
    }
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[[providers]]\nid = \"payer\"\nkind = \"fhir\"\nbase_url = \"https://payer.example/fhir\"\n\
         [providers.auth]\nscheme = \"oauth2\"\ntoken_url = \"https://payer.example/token\"\nclient_id = \"rxsync\"\n",
    )
    .expect("config");

    let (resources, base) = baseline(&files);

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rxsync"));
    cmd.arg("--config")
        .arg(&config)
        .arg("--db")
        .arg(&db)
        .args([
            "import",
            "--provider",
            "payer",
            "--format",
            "json",
            "--bulk",
        ])
        .args(&files)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let t0 = Instant::now();
    let mut child = cmd.spawn().expect("spawn rxsync");
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("summary");
    let (status, usage) = wait4(child);
    let wall = t0.elapsed();
    assert_eq!(status, 0, "rxsync import --bulk failed: {out}");
    let summary: Value = serde_json::from_str(&out).expect("summary JSON");
    let cpu = usage.ru_utime.tv_sec as f64
        + usage.ru_utime.tv_usec as f64 / 1e6
        + usage.ru_stime.tv_sec as f64
        + usage.ru_stime.tv_usec as f64 / 1e6;
    let rss_mib = usage.ru_maxrss as f64 / 1024.0;
    let secs = wall.as_secs_f64();
    let mbytes = bytes as f64 / 1e6;
    println!(
        "export: {patients} patients, {resources} resources, {mbytes:.1} MB ({:.1} MB on disk, {} files, half gzip)",
        on_disk as f64 / 1e6,
        files.len()
    );
    println!(
        "patients: {} imported, {} unchanged, {} unknown, {} failed",
        summary["patients"]["imported"],
        summary["patients"]["unchanged"],
        summary["patients"]["unknown"],
        summary["patients"]["failed"]
    );
    println!(
        "| serde_json → Value (same lines) | {:.0} resources/s | {:.1} MB/s | {:.2} s |",
        resources as f64 / base.as_secs_f64(),
        mbytes / base.as_secs_f64(),
        base.as_secs_f64()
    );
    println!(
        "| rxsync import --bulk | {:.0} resources/s | {:.1} MB/s | {secs:.2} s (CPU {cpu:.2} s) | peak RSS {rss_mib:.1} MiB |",
        resources as f64 / secs,
        mbytes / secs
    );
    println!(
        "ratio: import --bulk takes {:.1}× the time of serde_json into Value",
        secs / base.as_secs_f64()
    );
}
