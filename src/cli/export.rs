//! `rxsync export start|status|resume|cancel --provider ID`: FHIR Bulk Data
//! `$export` with SMART Backend Services auth. Files are downloaded to
//! `<database dir>/exports/<export id>/` and handed to the importer; until
//! the NDJSON bulk importer is wired in, that importer counts each file and
//! leaves it "awaiting bulk import".

use super::context::{Global, runtime};
use super::output::{self, Format};
use super::{CliResult, Failure, usage};
use anyhow::anyhow;
use rxsync::domain::ProviderId;
use rxsync::export::{BulkSink, Exporter};
use rxsync::store::Store;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Kick off a new export and run it to the end (polling, downloads, import, DELETE)
    Start(StartArgs),
    /// Show the provider's latest export (or --id) and its files
    Status(StatusArgs),
    /// Carry on with an interrupted export from its stored status URL and manifest
    Resume(OneArgs),
    /// Cancel an unfinished export (DELETE of its status URL)
    Cancel(OneArgs),
}

/// Start a FHIR Bulk Data export at the provider.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    #[arg(long, value_name = "ID")]
    provider: String,
    /// `_since` (an RFC 3339 instant) [default: the last completed export's transactionTime]
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Export this Group instead of the configured level
    #[arg(long, value_name = "ID")]
    group: Option<String>,
}

/// An export of a provider.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[arg(long, value_name = "ID")]
    provider: String,
    /// The export [default: the provider's latest]
    #[arg(long)]
    id: Option<i64>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// An unfinished export of a provider.
#[derive(Debug, clap::Args)]
pub struct OneArgs {
    #[arg(long, value_name = "ID")]
    provider: String,
    /// The export [default: the provider's unfinished one]
    #[arg(long)]
    id: Option<i64>,
}

pub fn run(global: &Global, c: Command) -> CliResult {
    match c {
        Command::Start(a) => start(global, a),
        Command::Status(a) => status(global, a),
        Command::Resume(a) => resume(global, a),
        Command::Cancel(a) => cancel(global, a),
    }
}

/// `--provider` as a provider id, or a usage error saying why not.
fn provider_id(raw: &str) -> Result<ProviderId, Failure> {
    ProviderId::parse(raw).map_err(|e| usage(format!("--provider {raw:?}: {e}")))
}

/// The configured provider named by `--provider`.
fn provider<'a>(
    ctx: &'a super::context::Context,
    id: &str,
) -> Result<&'a rxsync::config::Provider, Failure> {
    ctx.config
        .provider(provider_id(id)?.as_str())
        .ok_or_else(|| usage(format!("--provider: no provider {id:?} is configured")))
}

fn exporter(ctx: &super::context::Context, provider_id: &str) -> Result<Exporter, Failure> {
    Exporter::new(provider(ctx, provider_id)?, &ctx.config.database_path)
        .map_err(|e| usage(e.to_string()))
}

/// The importer an export's files go to: the NDJSON bulk importer, with the
/// configuration's normalization settings.
fn sink(ctx: &super::context::Context, provider_id: &str) -> Result<BulkSink, Failure> {
    Ok(BulkSink::new(
        &ctx.database,
        provider(ctx, provider_id)?,
        ctx.config.normalize_options(),
    ))
}

fn start(global: &Global, a: StartArgs) -> CliResult {
    if let Some(s) = &a.since {
        chrono::DateTime::parse_from_rfc3339(s)
            .map_err(|_| usage(format!("--since {s:?} is not an RFC 3339 instant")))?;
    }
    if let Some(g) = &a.group
        && (g.is_empty()
            || !g
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
    {
        return Err(usage(format!("--group {g:?} is not a FHIR id")));
    }
    let mut ctx = global.open()?;
    let exporter = exporter(&ctx, &a.provider)?;
    let mut sink = sink(&ctx, &a.provider)?;
    let rt = runtime()?;
    let result = rt.block_on(exporter.start(&mut ctx.store, &mut sink, a.since, a.group, "cli"));
    match result {
        Ok(id) => {
            print_export(&ctx.store, id)?;
            Ok(())
        }
        Err((Some(id), e)) => {
            let _ = print_export(&ctx.store, id);
            Err(Failure::Failed(anyhow!("{e}")))
        }
        Err((None, e)) => Err(Failure::Failed(anyhow!("{e}"))),
    }
}

fn chosen(
    store: &Store,
    provider: &ProviderId,
    id: Option<i64>,
    open_only: bool,
) -> Result<i64, Failure> {
    if let Some(id) = id {
        let row = store.export(id)?;
        if row.provider != *provider {
            return Err(usage(format!("export {id} is not of provider {provider}")));
        }
        return Ok(id);
    }
    let row = if open_only {
        store.open_export(provider)?
    } else {
        store.exports(provider, 1)?.into_iter().next()
    };
    row.map(|r| r.id).ok_or_else(|| {
        Failure::Failed(anyhow!(
            "provider {provider} has no {}export",
            if open_only { "unfinished " } else { "" }
        ))
    })
}

fn status(global: &Global, a: StatusArgs) -> CliResult {
    let ctx = global.open_existing()?;
    let id = chosen(&ctx.store, &provider_id(&a.provider)?, a.id, false)?;
    if a.format == Format::Json {
        let row = ctx.store.export(id)?;
        let files = ctx.store.export_files(id)?;
        let mut v = serde_json::to_value(&row)?;
        v["files"] = serde_json::to_value(&files)?;
        output::json(&v)?;
        return Ok(());
    }
    print_export(&ctx.store, id)?;
    Ok(())
}

fn resume(global: &Global, a: OneArgs) -> CliResult {
    let mut ctx = global.open()?;
    let exporter = exporter(&ctx, &a.provider)?;
    let id = chosen(&ctx.store, &provider_id(&a.provider)?, a.id, true)?;
    let mut sink = sink(&ctx, &a.provider)?;
    let rt = runtime()?;
    let result = rt.block_on(exporter.resume(&mut ctx.store, &mut sink, id));
    let _ = print_export(&ctx.store, id);
    result.map_err(|e| Failure::Failed(anyhow!("{e}")))
}

fn cancel(global: &Global, a: OneArgs) -> CliResult {
    let mut ctx = global.open()?;
    let exporter = exporter(&ctx, &a.provider)?;
    let id = chosen(&ctx.store, &provider_id(&a.provider)?, a.id, true)?;
    let rt = runtime()?;
    rt.block_on(exporter.cancel(&mut ctx.store, id, "cli"))
        .map_err(|e| Failure::Failed(anyhow!("{e}")))?;
    println!("export {id} cancelled");
    Ok(())
}

/// An export and its files, one line each; every error file and failed
/// file with its reason.
fn print_export(store: &Store, id: i64) -> anyhow::Result<()> {
    let e = store.export(id)?;
    println!(
        "export {} of {} ({}{}): {}",
        e.id,
        e.provider,
        e.level,
        e.group
            .as_deref()
            .map(|g| format!(" {g}"))
            .unwrap_or_default(),
        e.state.as_str()
    );
    if let Some(t) = &e.transaction_time {
        println!("  transactionTime {t}");
    }
    if let Some(p) = &e.progress {
        println!("  progress: {p}");
    }
    if let Some(err) = &e.error {
        println!("  stopped: {err}");
    }
    for f in store.export_files(id)? {
        let state = match (&f.kind[..], &f.imported_at, &f.downloaded_at, &f.error) {
            ("error", _, Some(_), Some(issues)) => format!("ERROR FILE: {issues}"),
            (_, _, _, Some(err)) => format!("FAILED: {err}"),
            (_, Some(_), _, _) => format!("imported: {}", f.import_note.as_deref().unwrap_or("")),
            (_, None, Some(_), _) => f.import_note.clone().unwrap_or_else(|| "downloaded".into()),
            _ => "not downloaded".into(),
        };
        println!(
            "  {:>3} {} {} ({} bytes): {state}",
            f.n,
            f.kind,
            f.resource_type,
            f.bytes.map_or("?".into(), |b| b.to_string())
        );
    }
    Ok(())
}
