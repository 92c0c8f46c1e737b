//! `rxsync patient add|list`

use super::context::Global;
use super::output::{self, Format, cell};
use super::table::{Column, Table};
use super::{CliResult, usage};
use rxsync::domain::PatientId;
use rxsync::store::NewPatient;

/// `patient list`'s columns.
const COLUMNS: &[Column] = &[
    Column::whole("id", 0),
    Column::cut("mrn", 2, 10),
    Column::cut("name", 1, 16),
    Column::whole("birth date", 3),
];

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Register a local patient
    Add(AddArgs),
    /// List local patients
    List {
        /// Output: table for people, json for scripts
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

/// Register a local patient.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The local patient id (letters, digits, . _ - : @)
    #[arg(long)]
    id: String,
    /// Medical record number
    #[arg(long)]
    mrn: Option<String>,
    /// Display name
    #[arg(long)]
    name: Option<String>,
    /// Birth date, YYYY-MM-DD
    #[arg(long, value_name = "YYYY-MM-DD")]
    birth_date: Option<String>,
}

pub fn run(global: &Global, command: Command) -> CliResult {
    match command {
        Command::Add(a) => {
            let id = PatientId::parse(&a.id).map_err(|e| usage(format!("--id: {e}")))?;
            let birth_date = a
                .birth_date
                .map(|d| {
                    chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                        .map(|_| d.clone())
                        .map_err(|_| {
                            usage(format!(
                                "--birth-date: {d:?} is not a date in YYYY-MM-DD form"
                            ))
                        })
                })
                .transpose()?;
            let mut ctx = global.open()?;
            ctx.store.add_patient(
                &NewPatient {
                    id: id.clone(),
                    mrn: a.mrn,
                    name: a.name,
                    birth_date,
                },
                "cli",
            )?;
            println!("added patient {id}");
            Ok(())
        }
        Command::List { format } => {
            let ctx = global.open_existing()?;
            let patients = ctx.store.patients()?;
            match format {
                Format::Json => output::json(&patients)?,
                Format::Table => {
                    let mut t = Table::new(COLUMNS);
                    for p in &patients {
                        t.row(vec![
                            p.id.clone(),
                            cell(&p.mrn),
                            cell(&p.name),
                            cell(&p.birth_date),
                        ]);
                    }
                    t.print();
                }
            }
            Ok(())
        }
    }
}
