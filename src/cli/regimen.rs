//! `rxsync regimen show|history`

use super::context::Global;
use super::output::{self, Format, cell};
use super::{CliResult, Failure, usage};
use anyhow::anyhow;
use chrono::Utc;
use rxsync::domain::PatientId;
use rxsync::present::fhir;
use rxsync::store::{RegimenView, Store};

/// `regimen show --format`: the listing formats and FHIR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ShowFormat {
    #[default]
    Table,
    Json,
    Fhir,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Show a patient's current regimen (or a given version)
    #[command(disable_version_flag = true)]
    Show {
        #[arg(long, value_name = "ID")]
        patient: String,
        /// The source, when the patient has regimens from several
        #[arg(long, value_name = "NAME")]
        source: Option<String>,
        /// A version other than the newest
        #[arg(long)]
        version: Option<i64>,
        /// Output: table for people, json for scripts, fhir for other
        /// systems (a FHIR R4 collection Bundle: a MedicationStatement per
        /// item, a DetectedIssue per open exception)
        #[arg(long, value_enum, default_value_t)]
        format: ShowFormat,
    },
    /// List every version of a patient's regimens
    History {
        #[arg(long, value_name = "ID")]
        patient: String,
        #[arg(long, value_name = "NAME")]
        source: Option<String>,
        /// Output: table for people, json for scripts
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

pub fn run(global: &Global, command: Command) -> CliResult {
    match command {
        Command::Show {
            patient,
            source,
            version,
            format,
        } => {
            let patient =
                PatientId::parse(&patient).map_err(|e| usage(format!("--patient: {e}")))?;
            let ctx = global.open_existing()?;
            let source = pick_source(&ctx.store, &patient, source)?;
            let missing = || {
                Failure::Failed(anyhow!(
                    "patient {patient} has no regimen{} from {source}",
                    version.map(|v| format!(" version {v}")).unwrap_or_default()
                ))
            };
            let view = || -> Result<RegimenView, Failure> {
                ctx.store
                    .regimen(&patient, &source, version)?
                    .ok_or_else(missing)
            };
            match format {
                ShowFormat::Fhir => {
                    let record = ctx
                        .store
                        .patient(&patient)?
                        .ok_or_else(|| Failure::Failed(anyhow!("unknown patient {patient}")))?;
                    let regimen = ctx
                        .store
                        .source_regimen(&patient, &source, version)?
                        .ok_or_else(missing)?;
                    output::json(&fhir::regimen_bundle(&record, &regimen, Utc::now()))?;
                }
                ShowFormat::Json => output::json(&view()?)?,
                ShowFormat::Table => print_regimen(&view()?),
            }
            Ok(())
        }
        Command::History {
            patient,
            source,
            format,
        } => {
            let patient =
                PatientId::parse(&patient).map_err(|e| usage(format!("--patient: {e}")))?;
            let ctx = global.open_existing()?;
            if ctx.store.patient(&patient)?.is_none() {
                return Err(Failure::Failed(anyhow!("unknown patient {patient}")));
            }
            let rows = ctx.store.regimen_history(&patient, source.as_deref())?;
            match format {
                Format::Json => output::json(&rows)?,
                Format::Table => {
                    let mut t = output::table(&[
                        "source", "version", "status", "items", "open", "created", "sha256",
                    ]);
                    for r in &rows {
                        t.add_row(vec![
                            r.source.clone(),
                            r.version.to_string(),
                            r.status.clone(),
                            r.items.to_string(),
                            r.open_exceptions.to_string(),
                            r.created_at.clone(),
                            r.sha256[..12].to_string(),
                        ]);
                    }
                    println!("{t}");
                }
            }
            Ok(())
        }
    }
}

/// The source to show: the one named, or the only one the patient has.
fn pick_source(
    store: &Store,
    patient: &PatientId,
    source: Option<String>,
) -> Result<String, Failure> {
    if let Some(s) = source {
        return Ok(s);
    }
    if store.patient(patient)?.is_none() {
        return Err(Failure::Failed(anyhow!("unknown patient {patient}")));
    }
    let sources = store.regimen_sources(patient)?;
    match sources.as_slice() {
        [] => Err(Failure::Failed(anyhow!(
            "patient {patient} has no regimen yet"
        ))),
        [one] => Ok(one.clone()),
        many => Err(usage(format!(
            "patient {patient} has regimens from several sources ({}): name one with --source",
            many.join(", ")
        ))),
    }
}

/// Prints a regimen as a table, for people.
pub fn print_regimen(v: &RegimenView) {
    println!(
        "Patient {} — regimen version {} from {} — {} ({} open exception(s))",
        v.patient,
        v.version,
        v.source,
        v.status.replace('_', " "),
        v.open_exceptions
    );
    for f in &v.flags {
        println!("  regimen flag: {f}");
    }
    let mut t = output::table(&[
        "#", "drug", "NDC-11", "strength", "form", "route", "sig", "status", "flags",
    ]);
    for i in &v.items {
        let ndc = match (&i.ndc11, i.ndc_inferred, &i.mapping) {
            (Some(n), true, _) => format!("{n} (inferred)"),
            (Some(n), _, Some(_)) => format!("{n} (mapped)"),
            (Some(n), _, None) => n.clone(),
            (None, _, _) => "—".to_string(),
        };
        t.add_row(vec![
            i.position.to_string(),
            cell(&i.name),
            ndc,
            cell(&i.strength),
            cell(&i.form),
            cell(&i.route),
            cell(&i.sig),
            if i.evidence == "claim" {
                format!("{} (claims)", i.status)
            } else {
                i.status.clone()
            },
            i.flags.join(", "),
        ]);
    }
    println!("{t}");
    for i in &v.removed_items {
        if let Some(r) = &i.removed {
            println!(
                "  removed: #{} {} (by {} at {})",
                i.position,
                cell(&i.name),
                r.by,
                r.at
            );
        }
    }
}
