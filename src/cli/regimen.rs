//! `rxsync regimen show|history|reconcile`

use super::context::Global;
use super::output::{self, Format, cell};
use super::table::{self, Column, Table};
use super::{CliResult, Failure, usage};
use anyhow::anyhow;
use chrono::Utc;
use rxsync::domain::PatientId;
use rxsync::present::fhir;
use rxsync::reconcile::{Listed, Reconciled};
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
    /// Line up the current regimen of every source of a patient: one row
    /// per drug (same NDC, product, code or clinical drug; the same
    /// ingredients at another strength across sources), a column per
    /// source, and where the sources disagree (`source_conflict`)
    Reconcile {
        #[arg(long, value_name = "ID")]
        patient: String,
        /// Output: table for people, json for scripts (shape: README,
        /// "Reconciled list"), fhir for the next system (every source's
        /// statements and the open findings as one FHIR R4 Bundle)
        #[arg(long, value_enum, default_value_t)]
        format: ShowFormat,
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
        Command::Reconcile { patient, format } => {
            let patient =
                PatientId::parse(&patient).map_err(|e| usage(format!("--patient: {e}")))?;
            let ctx = global.open_existing()?;
            let unknown = || Failure::Failed(anyhow!("unknown patient {patient}"));
            match format {
                ShowFormat::Fhir => {
                    let record = ctx.store.patient(&patient)?.ok_or_else(unknown)?;
                    let lists = ctx.store.reconciled_sources(&patient)?;
                    output::json(&fhir::sources_bundle(&record, &lists, Utc::now()))?;
                }
                ShowFormat::Json => {
                    output::json(&ctx.store.reconciled(&patient)?.ok_or_else(unknown)?)?
                }
                ShowFormat::Table => {
                    print_reconciled(&ctx.store.reconciled(&patient)?.ok_or_else(unknown)?)
                }
            }
            Ok(())
        }
    }
}

/// Prints a reconciled list as a table, for people: a column per source.
fn print_reconciled(r: &Reconciled) {
    // One line per source, so that the heading fits the table's width
    // however many sources there are.
    println!(
        "Patient {} — {} drug(s) across {} source(s){}",
        r.patient,
        r.rows.len(),
        r.sources.len(),
        if r.sources.is_empty() {
            ": no regimen yet"
        } else {
            ":"
        }
    );
    for s in &r.sources {
        println!("  {}: version {}, {} item(s)", s.source, s.version, s.items);
    }
    if r.rows.is_empty() {
        return;
    }
    // The drug and each source's say are kept; how the row was matched
    // goes first, then the conflicts' wording (their exceptions are listed).
    let mut columns = vec![Column::cut("drug", 0, 16), Column::cut("matched by", 3, 10)];
    columns.extend(
        r.sources
            .iter()
            .map(|s| Column::cut_named(s.source.clone(), 0, 14)),
    );
    columns.push(Column::cut("conflicts", 2, 20));
    let mut t = Table::with_columns(columns);
    for row in &r.rows {
        let mut cells = vec![
            row.drug.clone(),
            match (&row.matched_by, &row.only_in) {
                (_, Some(only)) => format!("only in {only}"),
                (Some(m), None) => m.label().to_string(),
                (None, None) => String::new(),
            },
        ];
        cells.extend(row.cells.iter().map(|c| {
            if c.items.is_empty() {
                "—".to_string()
            } else {
                c.items.iter().map(says).collect::<Vec<_>>().join("; ")
            }
        }));
        cells.push(
            row.conflicts
                .iter()
                .map(|c| {
                    let [a, b] = &c.sides;
                    let exception = c
                        .exception
                        .as_ref()
                        .map(|e| format!(" (exception {} {})", e.id, e.state.as_str()))
                        .unwrap_or_default();
                    format!(
                        "{}: {} says {}, {} says {}{exception}",
                        c.aspect, a.source, a.says, b.source, b.says
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        );
        t.row(cells);
    }
    t.print();
}

/// What one source says of a drug, in one cell: `#2 active, 10 mg, 1
/// tablet, take daily, 2026-01-05`.
fn says(i: &Listed) -> String {
    let mut parts = vec![format!("#{} {}", i.position, i.status.as_str())];
    if i.evidence == rxsync::parse::Evidence::Claim {
        parts[0].push_str(" (claims)");
    }
    parts.extend(
        [&i.strength, &i.dose, &i.sig, &i.last_date]
            .into_iter()
            .flatten()
            .cloned(),
    );
    parts.join(", ")
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
