//! `rxsync regimen show|history|reconcile`

use super::context::Global;
use super::output::{self, Format, cell};
use super::{CliResult, Failure, usage};
use anyhow::anyhow;
use rxsync::domain::PatientId;
use rxsync::reconcile::{Listed, Reconciled};
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
    /// Line up the current regimen of every source of a patient: one row
    /// per drug (same NDC, product, code or clinical drug; the same
    /// ingredients at another strength across sources), a column per
    /// source, and where the sources disagree (`source_conflict`)
    Reconcile {
        #[arg(long, value_name = "ID")]
        patient: String,
        /// Output: table for people, json for scripts (shape: README,
        /// "Reconciled list")
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
        Command::Reconcile { patient, format } => {
            let patient =
                PatientId::parse(&patient).map_err(|e| usage(format!("--patient: {e}")))?;
            let ctx = global.open_existing()?;
            let r = ctx
                .store
                .reconciled(&patient)?
                .ok_or_else(|| Failure::Failed(anyhow!("unknown patient {patient}")))?;
            match format {
                Format::Json => output::json(&r)?,
                Format::Table => print_reconciled(&r),
            }
            Ok(())
        }
    }
}

/// Prints a reconciled list as a table, for people: a column per source.
fn print_reconciled(r: &Reconciled) {
    let lists: Vec<String> = r
        .sources
        .iter()
        .map(|s| format!("{} (version {}, {} item(s))", s.source, s.version, s.items))
        .collect();
    println!(
        "Patient {} — {} drug(s) across {} source(s): {}",
        r.patient,
        r.rows.len(),
        r.sources.len(),
        if lists.is_empty() {
            "no regimen yet".to_string()
        } else {
            lists.join(", ")
        }
    );
    if r.rows.is_empty() {
        return;
    }
    let mut header: Vec<&str> = vec!["drug", "matched by"];
    header.extend(r.sources.iter().map(|s| s.source.as_str()));
    header.push("conflicts");
    let mut t = output::table(&header);
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
                c.items.iter().map(says).collect::<Vec<_>>().join("\n")
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
                .join("\n"),
        );
        t.add_row(cells);
    }
    println!("{t}");
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
