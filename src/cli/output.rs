//! Output for scripts (JSON) and the `--format` choice; tables for people
//! are `super::table`.

use serde::Serialize;

/// `--format table|json` for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
}

/// Prints a value as pretty JSON on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// An optional text for a table cell.
pub fn cell(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}
