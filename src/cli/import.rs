//! `rxsync import --file PATH --patient ID` (a file; an `.ndjson` file for one of its patients),
//! `rxsync import --patient ID [--provider ID]` (pull now from the patient's links) and
//! `rxsync import --bulk PATH... --provider ID` (a FHIR Bulk Data export, every linked patient)

use super::context::Global;
use super::output::{self, Format};
use super::{CliResult, Failure, usage};
use anyhow::anyhow;
use rxsync::domain::{LinkState, PatientId, ProviderId, SourceName, Trigger};
use rxsync::import::{ImportError, ImportReport, ImportRequest, import};
use rxsync::parse::DocFormat;
use rxsync::store::{ImportOutcome, SyncContext};
use std::io::Read;
use std::path::PathBuf;

/// Import a CCR, C-CDA or FHIR document for a patient. The result is a new regimen
/// version (or none, when the same bytes were imported before) and the
/// exceptions that need a clinician. Bad input stores nothing.
///
/// With --bulk, import a FHIR Bulk Data export (NDJSON files, gzip or not, one
/// resource per line): each patient linked at --provider (or matched by MRN,
/// `[providers.bulk] match = "mrn"`) gets a regimen version from its own
/// records, in its own transaction; unknown patients are counted, never stored.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The document to import (an `.ndjson` file: one patient's resources of it);
    /// without it, pull now from the patient's active links
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// NDJSON files of a FHIR Bulk Data export (needs --provider)
    #[arg(long, value_name = "PATH", num_args = 1.., conflicts_with_all = ["file", "patient", "source", "keep_unreadable"])]
    bulk: Vec<PathBuf>,
    /// Pull only from this provider's link (pull mode); the export's provider (--bulk)
    #[arg(long, value_name = "ID", conflicts_with_all = ["file", "source", "keep_unreadable"])]
    provider: Option<String>,
    /// The local patient the document belongs to
    #[arg(long, value_name = "ID", required_unless_present = "bulk")]
    patient: Option<String>,
    /// Document format (ccr, ccda, fhir, fhir-json, fhir-xml; sniffed when not given) and/or
    /// summary format (table, json); may be given twice, e.g. --format ccr --format json
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Vec<FormatArg>,
    /// The source the regimen is versioned under [default: file]
    #[arg(long, value_name = "NAME", default_value = "file")]
    source: String,
    /// Keep a document that cannot be parsed, with an `unreadable` exception (still exits 1)
    #[arg(long)]
    keep_unreadable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FormatArg {
    Ccr,
    Ccda,
    Fhir,
    FhirJson,
    FhirXml,
    Table,
    Json,
}

pub fn run(global: &Global, a: Args) -> CliResult {
    let provider = a
        .provider
        .as_deref()
        .map(|p| ProviderId::parse(p).map_err(|e| usage(format!("--provider {p:?}: {e}"))))
        .transpose()?;
    if !a.bulk.is_empty() {
        let out = output_format(&a.format)?;
        return bulk(global, &a.bulk, provider.as_ref(), out);
    }
    let Some(patient) = a.patient.as_deref() else {
        return Err(usage(
            "--patient is required (or --bulk PATH... --provider ID)",
        ));
    };
    let patient = PatientId::parse(patient).map_err(|e| usage(format!("--patient: {e}")))?;
    let source = SourceName::parse(&a.source).map_err(|e| usage(format!("--source: {e}")))?;
    let mut doc_format = None;
    let mut out = Format::Table;
    for f in &a.format {
        match f {
            FormatArg::Table => out = Format::Table,
            FormatArg::Json => out = Format::Json,
            FormatArg::Ccr => doc_format = Some(DocFormat::Ccr),
            FormatArg::Ccda => doc_format = Some(DocFormat::Ccda),
            FormatArg::FhirXml => doc_format = Some(DocFormat::FhirXml),
            // `fhir` means JSON unless the bytes are XML: sniffing tells.
            FormatArg::Fhir | FormatArg::FhirJson => doc_format = Some(DocFormat::FhirJson),
        }
    }
    if doc_format.is_some() && a.file.is_none() {
        return Err(usage(
            "a document format (--format ccr/fhir/...) only applies with --file",
        ));
    }
    let Some(file) = a.file else {
        return pull(global, &patient, provider.as_ref(), out);
    };
    let mut ctx = global.open()?;
    let path = file.display().to_string();
    let limit = ctx.config.max_document_bytes;
    let bytes = read_limited(&file, limit).map_err(|e| Failure::Failed(anyhow!("{path}: {e}")))?;
    if bytes.len() as u64 > limit {
        // Only limit + 1 bytes were read: say the file's real size.
        let size = std::fs::metadata(&file).map_or(bytes.len() as u64, |m| m.len());
        return Err(Failure::Failed(anyhow!(
            "{path}: the document is {size} bytes, over import.max_document_bytes = {limit} (nothing stored)"
        )));
    }
    let mut ndjson = if rxsync::bulk::is_ndjson_name(&path) {
        let candidates: Vec<String> = std::iter::once(patient.to_string())
            .chain(
                ctx.store
                    .links(Some(&patient))?
                    .into_iter()
                    .filter(|l| l.state != LinkState::Revoked)
                    .map(|l| l.remote_patient),
            )
            .collect();
        let one = rxsync::bulk::one_patient(&bytes, limit, &candidates)
            .map_err(|e| Failure::Failed(anyhow!("{path}: {e} (nothing stored)")))?;
        doc_format = Some(DocFormat::FhirJson);
        Some(one)
    } else {
        None
    };
    let bytes = match &mut ndjson {
        Some(one) => std::mem::take(&mut one.bytes),
        None => bytes,
    };
    if matches!(doc_format, Some(DocFormat::FhirJson))
        && rxsync::parse::sniff(&bytes).is_ok_and(|f| f == DocFormat::FhirXml)
    {
        doc_format = Some(DocFormat::FhirXml);
    }
    if ctx.store.dictionary_stats()?.packages == 0 {
        eprintln!(
            "warning: the drug dictionary is empty, so every NDC will be unmapped (rxsync dict import --fda DIR)"
        );
    }
    let origin = file
        .canonicalize()
        .unwrap_or(file.clone())
        .display()
        .to_string();
    let sync = SyncContext {
        patient: patient.clone(),
        source: source.clone(),
        trigger: Trigger::File,
        actor: "cli".to_string(),
        started_at: chrono::Utc::now(),
        origin: Some(origin),
        pull: None,
    };
    let request = ImportRequest {
        sync: &sync,
        bytes: &bytes,
        format: doc_format,
        keep_unreadable: a.keep_unreadable,
        max_document_bytes: limit,
        options: &ctx.config.normalize_options(),
        expected_patient: None,
    };
    match import(&mut ctx.store, &request) {
        Ok(report) => match ndjson {
            Some(one) => ndjson_done(&path, &report, &one, out),
            None => {
                print_report(&report, out)?;
                Ok(())
            }
        },
        Err(ImportError::Unreadable { error, kept }) => {
            let also = match kept.as_deref() {
                Some(ImportOutcome::Unreadable {
                    exception_id,
                    document_id,
                    ..
                }) => format!(
                    " (document kept as {document_id}; exception {exception_id} opened; the regimen is unchanged)"
                ),
                _ => " (nothing stored)".to_string(),
            };
            Err(Failure::Failed(anyhow!(
                "{path}: cannot import: {error}{also}"
            )))
        }
        Err(e @ (ImportError::TooLarge { .. } | ImportError::UnknownPatient(_))) => {
            Err(Failure::Failed(anyhow!("{path}: {e} (nothing stored)")))
        }
        Err(ImportError::Store(e)) => Err(Failure::Failed(anyhow!("{path}: {e}"))),
    }
}

/// The summary format asked for (`--format json|table`); a document
/// format is a usage error here.
fn output_format(formats: &[FormatArg]) -> Result<Format, Failure> {
    let mut out = Format::Table;
    for f in formats {
        match f {
            FormatArg::Table => out = Format::Table,
            FormatArg::Json => out = Format::Json,
            _ => {
                return Err(usage(
                    "--bulk reads NDJSON (FHIR JSON): only --format table|json applies",
                ));
            }
        }
    }
    Ok(out)
}

/// An `.ndjson` file's import: the report, and what of the file was not
/// the patient's (a warning, and `ndjson` in JSON).
fn ndjson_done(
    path: &str,
    report: &ImportReport,
    one: &rxsync::bulk::OnePatient,
    out: Format,
) -> CliResult {
    #[derive(serde::Serialize)]
    struct WithNdjson<'a> {
        #[serde(flatten)]
        report: &'a ImportReport,
        ndjson: NdjsonNote<'a>,
    }
    #[derive(serde::Serialize)]
    struct NdjsonNote<'a> {
        remote_patient: &'a str,
        other_patients: &'a [String],
        other_resources: u64,
        bad_lines: Vec<String>,
    }
    let bad: Vec<String> = one
        .bad_lines
        .iter()
        .map(|b| format!("{path}:{}: {}", b.line, b.reason))
        .collect();
    if out == Format::Json {
        output::json(&WithNdjson {
            report,
            ndjson: NdjsonNote {
                remote_patient: &one.remote_patient,
                other_patients: &one.other_patients,
                other_resources: one.other_resources,
                bad_lines: bad.clone(),
            },
        })?;
    } else {
        print_report(report, out)?;
    }
    if !one.other_patients.is_empty() {
        let shown: Vec<&str> = one
            .other_patients
            .iter()
            .take(5)
            .map(String::as_str)
            .collect();
        eprintln!(
            "warning: {path} also holds {} resource(s) of {} other patient(s) ({}{}); they were not imported (rxsync import --bulk {path} --provider ID imports every linked patient)",
            one.other_resources,
            one.other_patients.len(),
            shown.join(", "),
            if one.other_patients.len() > 5 {
                ", …"
            } else {
                ""
            }
        );
    }
    if bad.is_empty() {
        return Ok(());
    }
    for b in &bad {
        eprintln!("bad line: {b}");
    }
    Err(Failure::Failed(anyhow!(
        "{path}: {} bad line(s) not imported; the patient's other records are stored",
        bad.len()
    )))
}

/// `import --bulk`: stage, import every matched patient, print the summary.
fn bulk(
    global: &Global,
    files: &[PathBuf],
    provider: Option<&ProviderId>,
    out: Format,
) -> CliResult {
    let Some(provider) = provider else {
        return Err(usage(
            "--bulk needs --provider ID: the provider whose links name the export's patients",
        ));
    };
    let mut ctx = global.open()?;
    let Some(p) = ctx.config.provider(provider.as_str()) else {
        return Err(usage(format!(
            "--provider {provider}: no such provider in the configuration"
        )));
    };
    let source = p.id.as_source();
    let matching = p.bulk_match;
    let max_document_bytes = p.limits.max_document_bytes;
    let options = ctx.config.normalize_options();
    if ctx.store.dictionary_stats()?.packages == 0 {
        eprintln!(
            "warning: the drug dictionary is empty, so every NDC will be unmapped (rxsync dict import --fda DIR)"
        );
    }
    let request = rxsync::bulk::BulkRequest {
        files,
        provider: &source,
        matching,
        actor: "cli",
        max_document_bytes,
        options: &options,
    };
    let report = rxsync::bulk::run(&mut ctx.store, &request).map_err(|e| match e {
        rxsync::bulk::BulkError::Read { .. } => Failure::Failed(anyhow!(
            "{e} (the run stopped before importing anyone: nothing stored)"
        )),
        rxsync::bulk::BulkError::Store(e) => Failure::Failed(anyhow!(
            "{e} (the run stopped; patients imported before it are stored, each whole)"
        )),
    })?;
    if out == Format::Json {
        output::json(&report)?;
    } else {
        print_bulk(&report);
    }
    if report.complete() {
        return Ok(());
    }
    let c = &report.patients;
    Err(Failure::Failed(anyhow!(
        "{} bad line(s), {} patient(s) failed; stored: {} patient(s) imported, {} unchanged (each whole); nothing for the {} unknown or the failed",
        report.bad_line_count,
        c.failed,
        c.imported,
        c.unchanged,
        c.unknown
    )))
}

fn print_bulk(r: &rxsync::bulk::BulkReport) {
    let c = &r.patients;
    println!(
        "bulk import from {} (run {}): {} file(s), {} line(s), {:.1} MB, {} resource(s)",
        r.provider,
        r.run,
        r.files.len(),
        r.lines,
        r.bytes as f64 / 1e6,
        r.resources
    );
    println!(
        "  patients: {} imported, {} unchanged, {} unknown (not stored), {} failed{}",
        c.imported,
        c.unchanged,
        c.unknown,
        c.failed,
        if c.matched_by_mrn > 0 {
            format!(" ({} matched by MRN)", c.matched_by_mrn)
        } else {
            String::new()
        }
    );
    if r.unreadable_records > 0 {
        println!(
            "  {} record(s) could not be read: each is an unreadable_record exception",
            r.unreadable_records
        );
    }
    for (kind, n) in &r.ignored {
        println!("  ignored: {n} × {kind} (not read by rxsync)");
    }
    for u in &r.unknown_patients {
        println!("  unknown patient: {u}");
    }
    if c.unknown as usize > r.unknown_patients.len() {
        println!(
            "  … and {} more unknown",
            c.unknown as usize - r.unknown_patients.len()
        );
    }
    for f in &r.failures {
        println!(
            "  failed: {} (patient {}): {}",
            f.remote_patient, f.patient, f.error
        );
    }
    for b in &r.bad_lines {
        let whose = b
            .patient
            .as_deref()
            .map(|p| format!(" (patient {p}: an unreadable_record if imported)"))
            .unwrap_or_default();
        println!("  bad line: {}:{}: {}{whose}", b.file, b.line, b.reason);
    }
    if r.bad_line_count as usize > r.bad_lines.len() {
        println!(
            "  … and {} more bad line(s) (all in the audit as bulk.bad_line when no patient is named)",
            r.bad_line_count as usize - r.bad_lines.len()
        );
    }
}

/// Reads at most `limit + 1` bytes, so a huge file is refused without
/// reading it whole.
fn read_limited(path: &std::path::Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn print_report(r: &ImportReport, format: Format) -> anyhow::Result<()> {
    if format == Format::Json {
        return output::json(r);
    }
    match &r.outcome {
        ImportOutcome::Imported {
            version,
            status,
            items,
            exceptions,
            skipped_count: skipped,
            unreadable_records,
            ..
        } => {
            println!(
                "imported {} ({}) for patient {}: regimen version {version} from source {}, {items} item(s), {}",
                r.format.as_str(),
                &r.sha256[..12],
                r.patient,
                r.source,
                status.replace('_', " ")
            );
            if exceptions.is_empty() {
                println!("  no exceptions");
            }
            for (kind, n) in exceptions {
                println!("  {n} × {kind}");
            }
            println!("  {} record(s) read", r.records);
            if *unreadable_records > 0 {
                println!(
                    "  PARTIAL READING: {unreadable_records} record(s) could not be read; each has an unreadable_record exception"
                );
            }
            if *skipped > 0 {
                println!("  {skipped} record(s) or resource(s) left out:");
                for s in &r.skipped {
                    let what = match (&s.source, &s.name) {
                        (Some(src), name) => {
                            let id = src
                                .id
                                .as_deref()
                                .map(|id| format!("/{id}"))
                                .unwrap_or_default();
                            match name {
                                Some(n) => format!("{}{id} ({n})", src.kind),
                                None => format!("{}{id}", src.kind),
                            }
                        }
                        (None, Some(n)) => n.clone(),
                        (None, None) => "unnamed".to_string(),
                    };
                    println!("    {what}: {}", s.reason);
                }
            }
        }
        ImportOutcome::Unchanged { version, .. } => {
            let v = version.map_or_else(
                || "no regimen".to_string(),
                |v| format!("regimen version {v}"),
            );
            println!(
                "unchanged: the same document was imported before for {} from {} ({v})",
                r.patient, r.source
            );
        }
        ImportOutcome::Unreadable { .. } => {}
    }
    for p in &r.problems {
        println!("  note: {}", p.detail);
    }
    Ok(())
}

/// Pulls now from every active link of the patient (or the one of `provider`).
fn pull(
    global: &Global,
    patient: &PatientId,
    provider: Option<&ProviderId>,
    out: Format,
) -> CliResult {
    let ctx = global.open()?;
    if let Some(p) = provider
        && ctx.config.provider(p.as_str()).is_none()
    {
        return Err(usage(format!(
            "--provider {p}: no such provider in the configuration"
        )));
    }
    if ctx.store.patient(patient)?.is_none() {
        return Err(Failure::Failed(anyhow!(
            "unknown patient {patient} (add it first: rxsync patient add --id {patient})"
        )));
    }
    let links = ctx.store.links(Some(patient))?;
    let active = links
        .iter()
        .filter(|l| l.state == LinkState::Active && provider.is_none_or(|p| *p == l.provider))
        .count();
    if active == 0 {
        let others: Vec<String> = links
            .iter()
            .filter(|l| provider.is_none_or(|p| *p == l.provider))
            .map(|l| match l.state {
                LinkState::Held => format!(
                    "link {} to {} is held: its remote identity does not match (rxsync link confirm {} --by NAME --note TEXT, or link reject)",
                    l.id, l.provider, l.id
                ),
                _ => format!("link {} to {} is {}", l.id, l.provider, l.state),
            })
            .collect();
        return Err(Failure::Failed(anyhow!(
            "patient {patient} has no active link{}{} (rxsync link add --patient {patient} --provider ID < tokens.json)",
            provider.map(|p| format!(" to {p}")).unwrap_or_default(),
            if others.is_empty() {
                String::new()
            } else {
                format!(": {}", others.join("; "))
            }
        )));
    }
    let (puller, store) = ctx.puller()?;
    let writer = rxsync::store::Writer::start(store)?;
    let rt = super::context::runtime()?;
    let reports = rt.block_on(async {
        let reports = rxsync::pull::pull_patient(&puller, &writer, patient, provider, "cli").await;
        writer.close().await;
        reports
    })?;
    if out == Format::Json {
        output::json(&reports)?;
    } else {
        for r in &reports {
            match (&r.import, &r.error) {
                (Some(i), _) => {
                    print!("link {} ({}): ", r.link, r.provider);
                    print_report(i, Format::Table)?;
                }
                (None, Some(e)) => println!("link {} ({}): {}: {e}", r.link, r.provider, r.outcome),
                (None, None) => println!("link {} ({}): {}", r.link, r.provider, r.outcome),
            }
        }
    }
    // The table above already said why each link failed: the error names
    // them only, so that nothing is said twice. Under JSON, stdout is for
    // scripts, and the error says it all for the person reading stderr.
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| r.failed() || r.outcome == rxsync::pull::PullOutcome::Busy)
        .map(|r| match (&r.error, out) {
            (Some(e), Format::Json) => {
                format!("link {} ({}): {}: {e}", r.link, r.provider, r.outcome)
            }
            _ => format!("link {} ({}): {}", r.link, r.provider, r.outcome),
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Failed(anyhow!(
            "{} of {} pull(s) failed{}; nothing partial was stored. {}",
            failed.len(),
            reports.len(),
            if out == Format::Json {
                ""
            } else {
                " (why: above)"
            },
            failed.join("; ")
        )))
    }
}
