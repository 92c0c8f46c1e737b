//! Command-line interface: one file per subcommand, each with an `Args`
//! struct (its doc comment is the help text) and a `run` function. Only this
//! module formats output for people; `anyhow` lives here and nowhere in
//! the library.

mod context;
mod db;
mod demo;
mod dict;
mod export;
mod import;
mod key;
mod link;
mod link_invite;
mod link_start;
mod output;
mod patient;
mod provider;
mod queue;
mod regimen;
mod run;
mod sandbox;
mod serve;
mod table;
mod user;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// rxsync: pulls patients' medication lists (CCR XML, C-CDA, FHIR), maps NDC codes
/// through the FDA drug dictionary, and queues what it cannot trust for
/// clinicians to review.
#[derive(Debug, Parser)]
#[command(
    name = "rxsync",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Configuration file [default: $RXSYNC_CONFIG, else ./config.toml when present]
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// SQLite database file (overrides [database] path)
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Log format on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Tables: every column, uncut [default: fit $COLUMNS, else the terminal's width; uncut when
    /// stdout is not a terminal]
    #[arg(long, global = true)]
    wide: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Register and list local patients
    #[command(subcommand)]
    Patient(patient::Command),
    /// Load and query the drug dictionary (FDA NDC directory)
    #[command(subcommand)]
    Dict(dict::Command),
    /// Import a document for a patient, or pull now from the patient's provider links
    Import(import::Args),
    /// Link patients to provider accounts (tokens in the vault), list and revoke links
    #[command(subcommand)]
    Link(link::Command),
    /// Discover a provider's OAuth endpoints, and register rxsync as its client
    #[command(subcommand)]
    Provider(provider::Command),
    /// FHIR Bulk Data $export from a provider (SMART Backend Services): start, status, resume, cancel
    #[command(subcommand)]
    Export(export::Command),
    /// Show a patient's normalized regimens
    #[command(subcommand)]
    Regimen(regimen::Command),
    /// Review the exception queue
    #[command(subcommand)]
    Queue(queue::Command),
    /// Manage the vault key that encrypts stored tokens
    #[command(subcommand)]
    Key(key::Command),
    /// Sync every active link on its schedule (the daemon), or one pass with --once
    Run(run::Args),
    /// Set up a demo database from the embedded samples and show the result
    Demo(demo::Args),
    /// Run the loopback sandbox provider (OAuth 1.0a/2.0, CCR, C-CDA, FHIR) for tests and demos
    Sandbox(sandbox::Args),
    /// Serve the clinician review web application (pages and JSON API)
    Serve(serve::Args),
    /// Accounts of the review web application
    #[command(subcommand)]
    User(user::Command),
    /// API tokens for the review JSON API
    #[command(subcommand)]
    Token(user::TokenCommand),
    /// The database itself: migrate, check integrity, copy SQLite to PostgreSQL
    #[command(subcommand)]
    Db(db::Command),
}

/// How a command failed, which decides the exit code.
#[derive(Debug)]
pub enum Failure {
    /// A usage or configuration error: exit 2.
    Usage(anyhow::Error),
    /// The command ran and failed: exit 1.
    Failed(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::Failed(e.into())
    }
}

/// Shorthand for a usage error.
pub fn usage(message: impl std::fmt::Display) -> Failure {
    Failure::Usage(anyhow::anyhow!("{message}"))
}

pub type CliResult = Result<(), Failure>;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    init_tracing(cli.log_format);
    table::init(cli.wide);
    // TLS for every HTTP client of the process (rustls with ring).
    rxsync::fetch::http::install_crypto_provider();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            eprintln!("error: {}", chain(&e));
            ExitCode::from(2)
        }
        Err(Failure::Failed(e)) => {
            eprintln!("error: {}", chain(&e));
            ExitCode::from(1)
        }
    }
}

fn chain(e: &anyhow::Error) -> String {
    e.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RXSYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // The PostgreSQL client logs every statement with its parameters at
    // debug (patient data, sealed tokens): never shown, whatever RXSYNC_LOG says.
    let filter = ["tokio_postgres=info", "postgres=info"]
        .iter()
        .filter_map(|d| d.parse().ok())
        .fold(filter, |f, d| f.add_directive(d));
    // Colour codes only for a person at a terminal, never into a log file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn dispatch(cli: Cli) -> CliResult {
    let global = context::Global {
        config: cli.config,
        db: cli.db,
    };
    match cli.command {
        Command::Patient(c) => patient::run(&global, c),
        Command::Dict(c) => dict::run(&global, c),
        Command::Import(a) => import::run(&global, a),
        Command::Link(c) => link::run(&global, c),
        Command::Export(c) => export::run(&global, c),
        Command::Provider(c) => provider::run(&global, c),
        Command::Regimen(c) => regimen::run(&global, c),
        Command::Queue(c) => queue::run(&global, c),
        Command::Key(c) => key::run(&global, c),
        Command::Run(a) => run::run(&global, a),
        Command::Demo(a) => demo::run(&global, a),
        Command::Sandbox(a) => sandbox::run(a),
        Command::Serve(a) => serve::run(&global, a),
        Command::User(c) => user::run(&global, c),
        Command::Token(c) => user::run_token(&global, c),
        Command::Db(c) => db::run(&global, c),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        // clap's own checks: conflicting flags, bad defaults, duplicate names.
        super::Cli::command().debug_assert();
    }
}
