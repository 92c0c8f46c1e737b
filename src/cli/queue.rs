//! `rxsync queue list|show|resolve|dismiss|reopen`

use super::context::{Global, runtime};
use super::output::{self, Format, cell};
use super::table::{self, Column, Table};
use super::{CliResult, usage};
use rxsync::domain::{Decision, DecisionError, ExceptionKind, ExceptionState};
use rxsync::store::{ExceptionFilter, ExceptionView, Resolve};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List exceptions, newest first
    List {
        /// open, resolved, dismissed or all
        #[arg(long, default_value = "open")]
        state: String,
        /// Only this kind (unmapped_ndc, invalid_ndc, non_ndc_code, duplicate, …)
        #[arg(long)]
        kind: Option<String>,
        /// Only this patient
        #[arg(long, value_name = "ID")]
        patient: Option<String>,
        /// Output: table for people, json for scripts
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Show one exception: the item as read and normalized, and the source excerpt
    Show {
        /// The exception id (from queue list)
        id: i64,
        /// Output: table for people, json for scripts
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Resolve an exception with an action
    Resolve {
        /// The exception id (from queue list)
        id: i64,
        /// map (needs --ndc), remove, keep (duplicates), accept, dismiss (needs --note),
        /// or confirm / reject (identity_mismatch: the held link is activated /
        /// revoked; needs --note)
        #[arg(long)]
        action: String,
        /// Who decides (recorded with the decision)
        #[arg(long, value_name = "NAME")]
        by: String,
        /// The NDC to map to, in any format
        #[arg(long, value_name = "CODE")]
        ndc: Option<String>,
        /// Why, in a few words (recorded with the decision)
        #[arg(long)]
        note: Option<String>,
        /// Output: table for people, json for scripts
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Dismiss an exception, saying why
    Dismiss {
        /// The exception id (from queue list)
        id: i64,
        #[arg(long, value_name = "NAME")]
        by: String,
        /// Why (recorded with the decision)
        #[arg(long)]
        note: String,
        /// Output: table for people, json for scripts
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Reverse the decision on an exception (open again, its effects undone), until the regimen is reviewed
    Reopen {
        /// The exception id (from queue list --state all)
        id: i64,
        #[arg(long, value_name = "NAME")]
        by: String,
        /// Why (recorded with the reversal)
        #[arg(long)]
        note: String,
        /// Output: table for people, json for scripts
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

pub fn run(global: &Global, command: Command) -> CliResult {
    match command {
        Command::List {
            state,
            kind,
            patient,
            format,
        } => {
            let state = match state.as_str() {
                "all" => None,
                s => Some(
                    s.parse::<ExceptionState>()
                        .map_err(|e| usage(format!("--state: {e} or all")))?,
                ),
            };
            let kind = kind
                .map(|k| k.parse::<ExceptionKind>())
                .transpose()
                .map_err(|e| usage(format!("--kind: {e}")))?;
            let ctx = global.open_existing()?;
            let rows = ctx.store.exceptions(&ExceptionFilter {
                state,
                kind,
                patient,
                ..Default::default()
            })?;
            match format {
                Format::Json => output::json(&rows)?,
                Format::Table => print_list(&rows),
            }
            Ok(())
        }
        Command::Show { id, format } => {
            let ctx = global.open_existing()?;
            let (view, item) = ctx.store.exception(id)?;
            let excerpt =
                rxsync::excerpt::exception_excerpt(&ctx.store, id, item.as_ref().map(|i| i.id))?;
            match format {
                Format::Json => output::json(
                    &serde_json::json!({"exception": view, "item": item, "excerpt": excerpt}),
                )?,
                Format::Table => {
                    print_one(&view);
                    if let Some(item) = item {
                        println!(
                            "item as normalized:\n{}",
                            serde_json::to_string_pretty(&item)?
                        );
                    }
                    if let Some(x) = excerpt {
                        println!("source excerpt:\n{x}");
                    }
                }
            }
            Ok(())
        }
        Command::Resolve {
            id,
            action,
            by,
            ndc,
            note,
            format,
        } => {
            let decision = Decision::parse(&action, ndc.as_deref(), note.as_deref())
                .map_err(decision_usage)?;
            let by = nonempty_by(by)?;
            let resolve = Resolve { decision, by, note };
            if matches!(resolve.decision, Decision::Reject { .. }) {
                return reject(global, id, resolve, format);
            }
            let mut ctx = global.open()?;
            let view = ctx.store.resolve_exception(id, &resolve)?;
            show_result(&view, format)
        }
        Command::Dismiss {
            id,
            by,
            note,
            format,
        } => {
            let decision = Decision::parse("dismiss", None, Some(&note)).map_err(decision_usage)?;
            let by = nonempty_by(by)?;
            let mut ctx = global.open()?;
            let view = ctx.store.resolve_exception(
                id,
                &Resolve {
                    decision,
                    by,
                    note: None,
                },
            )?;
            show_result(&view, format)
        }
        Command::Reopen {
            id,
            by,
            note,
            format,
        } => {
            let by = nonempty_by(by)?;
            let mut ctx = global.open()?;
            let view = ctx.store.reopen_exception(id, &by, &note)?;
            show_result(&view, format)
        }
    }
}

/// `resolve --action reject`: the held link is revoked in the store, then
/// its provider is told the grant is over, as `link reject` tells it.
fn reject(global: &Global, id: i64, resolve: Resolve, format: Format) -> CliResult {
    let (puller, store) = global.open()?.puller()?;
    let writer = rxsync::store::Writer::start(store)?;
    let resolved = runtime()?.block_on(async {
        let resolved = puller.resolve_exception(&writer, id, resolve).await;
        writer.close().await;
        resolved
    })?;
    show_result(&resolved.view, format)?;
    if let (Format::Table, Some((link, told))) = (format, &resolved.told) {
        println!("link {link} revoked, its tokens dropped here ({told})");
    }
    Ok(())
}

fn nonempty_by(by: String) -> Result<String, super::Failure> {
    let by = by.trim().to_string();
    if by.is_empty() {
        return Err(usage("--by must name who decides"));
    }
    Ok(by)
}

/// A decision's flags that are not one, as a usage error naming the flag.
fn decision_usage(e: DecisionError) -> super::Failure {
    match e {
        DecisionError::MapNeedsNdc => usage("--action map needs --ndc CODE"),
        DecisionError::NdcOnlyWithMap => usage("--ndc goes only with --action map"),
        DecisionError::DismissNeedsNote => usage(format!("--note: {e}")),
        e if e.about_ndc() => usage(format!("--ndc {e}")),
        e => usage(format!("--action: {e}")),
    }
}

fn show_result(view: &ExceptionView, format: Format) -> CliResult {
    match format {
        Format::Json => output::json(view)?,
        Format::Table => print_one(view),
    }
    Ok(())
}

/// `queue list`'s columns: the id, the kind and what it is about stay longest.
const LIST_COLUMNS: &[Column] = &[
    Column::whole("id", 0),
    Column::cut("patient", 3, 12),
    Column::cut("source", 4, 16),
    Column::whole("kind", 0),
    Column::whole("severity", 6),
    Column::whole("state", 5),
    Column::cut("item", 1, 20),
    Column::cut("detail", 2, 24),
];

fn print_list(rows: &[ExceptionView]) {
    let mut t = Table::new(LIST_COLUMNS);
    for e in rows {
        let item = e
            .item
            .as_ref()
            .map(|i| format!("#{} {}", i.position, cell(&i.name)))
            .unwrap_or_default();
        t.row(vec![
            e.id.to_string(),
            e.patient.clone(),
            e.source.clone(),
            e.kind.clone(),
            e.severity.clone(),
            e.state.as_str().to_string(),
            item,
            e.detail.clone(),
        ]);
    }
    t.print();
    println!("{} exception(s)", rows.len());
}

fn print_one(e: &ExceptionView) {
    println!(
        "exception {} — {} ({}) — {}",
        e.id, e.kind, e.severity, e.state
    );
    println!(
        "  patient {} from {} (regimen version {})",
        e.patient,
        e.source,
        e.regimen_version.map_or("—".into(), |v| v.to_string())
    );
    if let Some(i) = &e.item {
        println!(
            "  item #{} {} {}",
            i.position,
            cell(&i.name),
            i.ndc11.as_deref().unwrap_or("")
        );
    }
    if let Some(i) = &e.related_item {
        println!("  other item #{} {}", i.position, cell(&i.name));
    }
    table::say(&format!("  why: {}", e.detail), 4);
    if let Some(r) = &e.resolution {
        println!(
            "  resolution: {r}{}",
            e.resolution_ndc
                .as_ref()
                .map(|n| format!(" → {n}"))
                .unwrap_or_default()
        );
    }
    if let Some(by) = &e.resolved_by {
        println!("  by {by} at {}", cell(&e.resolved_at));
    }
    if let Some(n) = &e.note {
        table::say(&format!("  note: {n}"), 4);
    }
    if e.state == ExceptionState::Open {
        println!("  actions: {} or dismiss", e.actions.join(", "));
    }
}
