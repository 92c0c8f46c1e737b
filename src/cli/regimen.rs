//! `rxsync regimen show|history`

use super::context::Global;
use super::output::{self, Format, cell};
use super::table::{self, Column, Table};
use super::{CliResult, Failure, usage};
use anyhow::anyhow;
use rxsync::domain::PatientId;
use rxsync::store::{RegimenView, Store};

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
        /// Output: table for people, json for scripts
        #[arg(long, value_enum, default_value_t)]
        format: Format,
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
            let view = ctx
                .store
                .regimen(&patient, &source, version)?
                .ok_or_else(|| {
                    Failure::Failed(anyhow!(
                        "patient {patient} has no regimen{} from {source}",
                        version.map(|v| format!(" version {v}")).unwrap_or_default()
                    ))
                })?;
            match format {
                Format::Json => output::json(&view)?,
                Format::Table => print_regimen(&view),
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
                    let mut t = Table::new(HISTORY_COLUMNS);
                    for r in &rows {
                        t.row(vec![
                            r.source.clone(),
                            r.version.to_string(),
                            r.status.clone(),
                            r.items.to_string(),
                            r.open_exceptions.to_string(),
                            r.created_at.clone(),
                            r.sha256[..12].to_string(),
                        ]);
                    }
                    t.print();
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

/// `regimen show`'s columns: the drug and its NDC stay longest, then what
/// needs a look (flags, status), then strength, sig, form and route.
const REGIMEN_COLUMNS: &[Column] = &[
    Column::whole("#", 0),
    Column::cut("drug", 0, 24),
    Column::cut("NDC-11", 1, 12),
    Column::cut("strength", 4, 8),
    Column::cut("form", 6, 8),
    Column::cut("route", 7, 6),
    Column::cut("sig", 5, 20),
    Column::whole("status", 3),
    Column::cut("flags", 2, 12),
];

/// `regimen history`'s columns.
const HISTORY_COLUMNS: &[Column] = &[
    Column::cut("source", 0, 10),
    Column::whole("version", 0),
    Column::whole("status", 1),
    Column::whole("items", 2),
    Column::whole("open", 3),
    Column::whole("created", 4),
    Column::whole("sha256", 5),
];

/// Prints a regimen as a table, for people.
pub fn print_regimen(v: &RegimenView) {
    table::say(
        &format!(
            "Patient {} — regimen version {} from {} — {} ({} open exception(s))",
            v.patient,
            v.version,
            v.source,
            v.status.replace('_', " "),
            v.open_exceptions
        ),
        2,
    );
    for f in &v.flags {
        table::say(&format!("  regimen flag: {f}"), 4);
    }
    let mut t = Table::new(REGIMEN_COLUMNS);
    for i in &v.items {
        let ndc = match (&i.ndc11, i.ndc_inferred, &i.mapping) {
            (Some(n), true, _) => format!("{n} (inferred)"),
            (Some(n), _, Some(_)) => format!("{n} (mapped)"),
            (Some(n), _, None) => n.clone(),
            (None, _, _) => "—".to_string(),
        };
        t.row(vec![
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
    t.print();
    for i in &v.removed_items {
        if let Some(r) = &i.removed {
            table::say(
                &format!(
                    "  removed: #{} {} (by {} at {})",
                    i.position,
                    cell(&i.name),
                    r.by,
                    r.at
                ),
                4,
            );
        }
    }
}
