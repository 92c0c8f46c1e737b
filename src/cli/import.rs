//! `rxsync import --file PATH --patient ID`

use super::context::Global;
use super::output::{self, Format};
use super::{CliResult, Failure, usage};
use anyhow::anyhow;
use rxsync::domain::{PatientId, SourceName};
use rxsync::import::{ImportError, ImportReport, ImportRequest, import};
use rxsync::parse::DocFormat;
use rxsync::store::ImportOutcome;
use std::io::Read;
use std::path::PathBuf;

/// Import a CCR or FHIR document for a patient. The result is a new regimen
/// version (or none, when the same bytes were imported before) and the
/// exceptions that need a clinician. Bad input stores nothing.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The document to import
    #[arg(long, value_name = "PATH")]
    file: PathBuf,
    /// The local patient the document belongs to
    #[arg(long, value_name = "ID")]
    patient: String,
    /// Document format (ccr, fhir, fhir-json, fhir-xml; sniffed when not given) and/or
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
    Fhir,
    FhirJson,
    FhirXml,
    Table,
    Json,
}

pub fn run(global: &Global, a: Args) -> CliResult {
    let patient = PatientId::parse(&a.patient).map_err(|e| usage(format!("--patient: {e}")))?;
    let source = SourceName::parse(&a.source).map_err(|e| usage(format!("--source: {e}")))?;
    let mut doc_format = None;
    let mut out = Format::Table;
    for f in &a.format {
        match f {
            FormatArg::Table => out = Format::Table,
            FormatArg::Json => out = Format::Json,
            FormatArg::Ccr => doc_format = Some(DocFormat::Ccr),
            FormatArg::FhirXml => doc_format = Some(DocFormat::FhirXml),
            // `fhir` means JSON unless the bytes are XML: sniffing tells.
            FormatArg::Fhir | FormatArg::FhirJson => doc_format = Some(DocFormat::FhirJson),
        }
    }
    let mut ctx = global.open()?;
    let path = a.file.display().to_string();
    let limit = ctx.config.max_document_bytes;
    let bytes =
        read_limited(&a.file, limit).map_err(|e| Failure::Failed(anyhow!("{path}: {e}")))?;
    if bytes.len() as u64 > limit {
        // Only limit + 1 bytes were read: say the file's real size.
        let size = std::fs::metadata(&a.file).map_or(bytes.len() as u64, |m| m.len());
        return Err(Failure::Failed(anyhow!(
            "{path}: the document is {size} bytes, over import.max_document_bytes = {limit} (nothing stored)"
        )));
    }
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
    let origin = a
        .file
        .canonicalize()
        .unwrap_or(a.file.clone())
        .display()
        .to_string();
    let request = ImportRequest {
        patient: &patient,
        source: &source,
        bytes: &bytes,
        format: doc_format,
        origin: Some(&origin),
        trigger: "file",
        actor: "cli",
        keep_unreadable: a.keep_unreadable,
        max_document_bytes: limit,
        max_regimen_items: ctx.config.max_regimen_items,
    };
    match import(&mut ctx.store, &request) {
        Ok(report) => {
            print_report(&report, out)?;
            Ok(())
        }
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
            if *skipped > 0 {
                println!("  {skipped} record(s) left out:");
                for s in &r.skipped {
                    println!(
                        "    {}: {}",
                        s.name.as_deref().unwrap_or("unnamed"),
                        s.reason
                    );
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
