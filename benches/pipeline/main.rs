//! Benchmarks of the import pipeline, reported as ratios against baselines
//! measured in the same run (absolute times drift on a shared machine).
//!
//! `cargo bench --bench pipeline` runs the full measurement; under
//! `cargo test` (no `--bench` argument) it runs once on tiny inputs as a
//! smoke test, so the harness cannot rot. `RXSYNC_FDA_DIR` points at the
//! full FDA NDC directory for the dictionary-load figure (`.ci/run` and
//! BENCHMARKS.md say how to get it).

/// The allocator the binary uses (see src/main.rs), so the figures are the
/// binary's; `--features system-allocator` measures with the system's.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod generate;
mod generate_fhir;

use rxsync::dict::{MemoryDictionary, fda};
use rxsync::domain::{PatientId, SourceName, Trigger};
use rxsync::import::{ImportRequest, import};
use rxsync::normalize::{CodeMappings, Options, normalize};
use rxsync::parse::{self, DocFormat, ParseOptions};
use rxsync::store::{ImportWrite, NewPatient, Store, SyncContext};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Runs `f` `reps` times after one warm-up and returns the median duration.
fn median<T>(reps: usize, mut f: impl FnMut() -> T) -> Duration {
    black_box(f());
    let mut times: Vec<Duration> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Times a baseline and a candidate alternately, `reps` pairs after a
/// warm-up, and returns their median times and the median of the per-pair
/// ratios (candidate time / baseline time). Pairing keeps the ratio honest
/// when the machine's speed drifts during the run.
fn paired<A, B>(
    reps: usize,
    mut base: impl FnMut() -> A,
    mut cand: impl FnMut() -> B,
) -> (Duration, Duration, f64) {
    black_box(base());
    black_box(cand());
    let mut b = Vec::with_capacity(reps);
    let mut c = Vec::with_capacity(reps);
    let mut ratios = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        black_box(base());
        let tb = t.elapsed();
        let t = Instant::now();
        black_box(cand());
        let tc = t.elapsed();
        ratios.push(tc.as_secs_f64() / tb.as_secs_f64());
        b.push(tb);
        c.push(tc);
    }
    b.sort();
    c.sort();
    ratios.sort_by(f64::total_cmp);
    (b[reps / 2], c[reps / 2], ratios[reps / 2])
}

fn mb_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

/// The baseline: every quick-xml event of the document, borrowed from the
/// slice (the fastest way quick-xml reads, and the API the CCR parser uses),
/// with nothing done for them.
fn raw_quick_xml_scan(bytes: &[u8]) -> usize {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut events = 0usize;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) | Err(_) => break,
            Ok(_) => events += 1,
        }
    }
    events
}

fn sample_dictionary() -> MemoryDictionary {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples/ndc");
    let products = std::fs::read(root.join("product.txt")).expect("samples/ndc/product.txt");
    let packages = std::fs::read(root.join("package.txt")).expect("samples/ndc/package.txt");
    let (products, _) = fda::read_products(&products).expect("sample products");
    let (packages, _) = fda::read_packages(&packages).expect("sample packages");
    MemoryDictionary::new(&products, &packages)
}

struct Sizes {
    meds: usize,
    import_items: usize,
    reps: usize,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full {
        Sizes {
            meds: 20_000,
            import_items: 20_000,
            reps: 7,
        }
    } else {
        Sizes {
            meds: 200,
            import_items: 200,
            reps: 1,
        }
    };
    println!(
        "rxsync pipeline benchmarks ({} mode)",
        if full { "full" } else { "smoke" }
    );
    // RXSYNC_BENCH_ONLY=ccr|fhir|import|dict runs one stage (for profiling).
    let only = std::env::var("RXSYNC_BENCH_ONLY").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only == name;
    if wanted("ccr") {
        ccr_extraction(&sizes);
    }
    if wanted("fhir") {
        fhir_extraction(&sizes);
    }
    if wanted("import") {
        sqlite_import(&sizes);
    }
    if wanted("dict") {
        dictionary_load(full);
    }
    if !full {
        // Closing line in the plain form CI reads: the smoke run passed.
        println!("bench smoke: 1 passed, 0 failed");
    }
}

fn ccr_extraction(s: &Sizes) {
    // The worst case: every byte inside a <Medication>, no indentation.
    let dense = generate::ccr(s.meds);
    let label = format!("{} meds", s.meds);
    ccr_ratio(s, &dense, s.meds, &label);
    // A realistic shape of about the same size: an Atom feed of indented
    // CCRs, 20 medications each among the other sections CCRs carry.
    let (feed, meds) = generate::ccr_feed(dense.len(), 20);
    let label = format!("realistic feed, {} CCRs x 20 meds", meds / 20);
    ccr_ratio(s, &feed, meds, &label);
}

/// Times the CCR parser against a raw quick-xml scan of the same bytes: as
/// the import path reads (no excerpts), and as a reviewer's re-parse does.
fn ccr_ratio(s: &Sizes, doc: &[u8], meds: usize, label: &str) {
    for excerpts in [false, true] {
        let options = ParseOptions { excerpts };
        let (raw, ours, ratio) = paired(
            s.reps,
            || raw_quick_xml_scan(doc),
            || parse::parse_with(doc, DocFormat::Ccr, options).map(|d| d.records.len()),
        );
        let parsed = parse::parse_with(doc, DocFormat::Ccr, options).expect("generated CCR parses");
        assert_eq!(
            parsed.records.len(),
            meds,
            "every generated medication is read"
        );
        println!(
            "CCR extraction, {label}, {:.1} MB, excerpts {}: raw quick-xml scan {:.0} MB/s, rxsync {:.0} MB/s = {:.0}% of raw (goal >= 60%)",
            doc.len() as f64 / 1e6,
            if excerpts {
                "on (review)"
            } else {
                "off (import)"
            },
            mb_per_s(doc.len(), raw),
            mb_per_s(doc.len(), ours),
            100.0 / ratio
        );
        if !excerpts {
            // Roughly what the parser cannot go under: building and dropping
            // the records it returns (about 20 allocations each), timed as a
            // clone of them against the same raw scan. A clone runs while the
            // parsed records are still alive, so it is an estimate.
            let (_, _, floor) = paired(
                s.reps,
                || raw_quick_xml_scan(doc),
                || parsed.records.clone().len(),
            );
            println!(
                "  (building and dropping those records alone, timed as a clone, takes {:.0}% of the raw scan's time: the ratio above could reach about {:.0}% at best)",
                100.0 * floor,
                100.0 / (1.0 + floor)
            );
        }
    }
}

fn fhir_extraction(s: &Sizes) {
    // Two shapes: lean synthetic requests, and EHR-shaped ones (narrative,
    // identifiers, extensions, contained Medication; mostly skipped bytes).
    let shapes = [
        ("lean", generate::fhir(s.meds)),
        ("EHR-shaped", generate_fhir::ehr(s.meds)),
    ];
    for (shape, doc) in &shapes {
        // The import path asks for no excerpts; reviewers' re-parses do.
        for excerpts in [false, true] {
            let options = ParseOptions { excerpts };
            let (value, ours, ratio) = paired(
                s.reps,
                || serde_json::from_slice::<serde_json::Value>(doc).map(|_| ()),
                || parse::parse_with(doc, DocFormat::FhirJson, options).map(|d| d.records.len()),
            );
            let parsed = parse::parse_with(doc, DocFormat::FhirJson, options)
                .expect("generated bundle parses");
            assert_eq!(
                parsed.records.len(),
                s.meds,
                "every generated request is read"
            );
            println!(
                "FHIR JSON extraction ({shape}, excerpts: {excerpts}), {} requests, {:.1} MB: serde_json::Value {:.0} MB/s, rxsync {:.0} MB/s = {:.2}x (goal >= 5x{})",
                s.meds,
                doc.len() as f64 / 1e6,
                mb_per_s(doc.len(), value),
                mb_per_s(doc.len(), ours),
                1.0 / ratio,
                if excerpts {
                    ", import path has none"
                } else {
                    ""
                }
            );
        }
    }
}

fn sqlite_import(s: &Sizes) {
    let doc = generate::ccr(s.import_items);
    let dir = tempfile::tempdir().expect("temp dir");
    let dict = sample_dictionary();
    let options = Options {
        max_regimen_items: usize::MAX,
        ..Options::default()
    };
    let parsed = parse::parse(&doc, DocFormat::Ccr).expect("parses");
    let regimen = normalize(&parsed, &dict, &CodeMappings::new(), &options);
    let items = regimen.items.len();
    let flags = regimen.flags.len();
    let t_parse = median(s.reps, || {
        parse::parse(&doc, DocFormat::Ccr).map(|d| d.records.len())
    });
    let t_normalize = median(s.reps, || {
        normalize(&parsed, &dict, &CodeMappings::new(), &options)
            .items
            .len()
    });

    let mut store = Store::open(&dir.path().join("bench.db")).expect("store");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples/ndc");
    load_dictionary(&mut store, &root);
    let patient = PatientId::parse("bench-patient").expect("id");
    store
        .add_patient(&NewPatient::with_id(patient.clone()), "bench")
        .expect("patient");
    let source = SourceName::parse("bench").expect("source");
    // The SQLite stage alone: one transaction writing the document, the
    // regimen version, its items and exceptions, the sync and the audit row.
    // Each round is a new version (another hash), as a changed document is.
    let mut round = 0u32;
    let sync = SyncContext {
        patient: patient.clone(),
        source: source.clone(),
        trigger: Trigger::File,
        actor: "bench".to_string(),
        started_at: chrono::Utc::now(),
        origin: None,
        pull: None,
    };
    let t_write = median(s.reps, || {
        round += 1;
        let sha = format!("{round:064x}");
        store
            .write_import(&ImportWrite {
                sync: &sync,
                format: DocFormat::Ccr,
                bytes: &doc,
                sha256: &sha,
                regimen: &regimen,
            })
            .expect("write")
    });
    // End to end through the import use case (hash, parse, dictionary reads,
    // normalize, write), with a distinct document each round.
    let t_full = median(s.reps, || {
        round += 1;
        let mut bytes = doc.clone();
        bytes.extend(format!("<!-- round {round} -->").as_bytes());
        import(
            &mut store,
            &ImportRequest {
                sync: &sync,
                bytes: &bytes,
                format: Some(DocFormat::Ccr),
                keep_unreadable: false,
                max_document_bytes: u64::MAX,
                options: &options,
                expected_patient: None,
            },
        )
        .expect("import")
    });
    let rate = |d: Duration| items as f64 / d.as_secs_f64();
    println!(
        "Import of a {}-medication CCR ({:.1} MB; {items} items, {flags} exceptions): SQLite write stage {:.0} items/s (goal >= 200,000); \
         parse {:.0} items/s; normalize {:.0} items/s; end to end {:.0} items/s",
        s.import_items,
        doc.len() as f64 / 1e6,
        rate(t_write),
        rate(t_parse),
        rate(t_normalize),
        rate(t_full)
    );
}

fn load_dictionary(store: &mut Store, dir: &Path) -> (Duration, Duration, usize, usize) {
    let t = Instant::now();
    let products = std::fs::read(dir.join("product.txt")).expect("product.txt");
    let packages = std::fs::read(dir.join("package.txt")).expect("package.txt");
    let (products, _) = fda::read_products(&products).expect("products");
    let (packages, _) = fda::read_packages(&packages).expect("packages");
    let parsed = t.elapsed();
    let t = Instant::now();
    store
        .replace_dictionary(&products, &packages, &dir.display().to_string(), "bench")
        .expect("load");
    (parsed, t.elapsed(), products.len(), packages.len())
}

fn dictionary_load(full: bool) {
    // The smoke run (under `cargo test`) always uses the samples: the full
    // snapshot's load is checked by its own test, and timed only here in
    // full mode.
    let dir = match std::env::var("RXSYNC_FDA_DIR") {
        Ok(d) if full && !d.is_empty() => PathBuf::from(d),
        _ if full => {
            println!(
                "Dictionary load: RXSYNC_FDA_DIR is not set; see BENCHMARKS.md for the 2019 FDA snapshot"
            );
            return;
        }
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples/ndc"),
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut store = Store::open(&tmp.path().join("dict.db")).expect("store");
    let (parse, write, np, nk) = load_dictionary(&mut store, &dir);
    println!(
        "Dictionary load from {}: {np} products, {nk} packages: read+decode+parse {:.2} s, SQLite write {:.2} s, total {:.2} s",
        dir.display(),
        parse.as_secs_f64(),
        write.as_secs_f64(),
        (parse + write).as_secs_f64()
    );
}
