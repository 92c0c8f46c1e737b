//! `rxsync demo`: the README's first command. Sets up a working folder with
//! its own configuration and SQLite database, loads the embedded sample
//! dictionary, registers two synthetic demo patients, imports the embedded
//! sample CCR and FHIR documents through the same import path as
//! `rxsync import`, and prints the regimens and the exception queue. Run
//! again on the same folder it carries on with what is there (imports of
//! the same bytes are idempotent).

use super::context::Global;
use super::{CliResult, Failure, regimen};
use anyhow::{Context as _, anyhow};
use rxsync::dict::fda;
use rxsync::domain::{PatientId, SourceName};
use rxsync::import::{ImportError, ImportRequest, import};
use rxsync::store::{ExceptionFilter, ImportOutcome, NewPatient};
use std::path::PathBuf;

/// The sample dictionary and documents, built into the binary so the demo
/// works from any folder.
const PRODUCTS: &[u8] = include_bytes!("../../samples/ndc/product.txt");
const PACKAGES: &[u8] = include_bytes!("../../samples/ndc/package.txt");
const DEMO_CCR: &[u8] = include_bytes!("../../samples/ccr/demo.xml");
const DEMO_FHIR: &[u8] = include_bytes!("../../samples/fhir/demo.json");

/// Set up a demo database from the embedded samples and show the result.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The working folder; its database is DIR/rxsync.db and its configuration DIR/config.toml
    #[arg(long, value_name = "DIR", default_value = "rxsync-demo")]
    dir: PathBuf,
}

struct DemoPatient {
    id: &'static str,
    name: &'static str,
    birth_date: &'static str,
    source: &'static str,
    document: &'static [u8],
    label: &'static str,
}

const PATIENTS: [DemoPatient; 2] = [
    DemoPatient {
        id: "demo-ccr-1",
        name: "Ada Synthetic",
        birth_date: "1948-03-14",
        source: "demo-pharmacy-ccr",
        document: DEMO_CCR,
        label: "samples/ccr/demo.xml",
    },
    DemoPatient {
        id: "demo-fhir-1",
        name: "Grace Example",
        birth_date: "1952-07-30",
        source: "demo-ehr-fhir",
        document: DEMO_FHIR,
        label: "samples/fhir/demo.json",
    },
];

pub fn run(global: &Global, args: Args) -> CliResult {
    if global.config.is_some() || global.db.is_some() {
        return Err(super::usage(
            "demo makes its own configuration and database: use --dir instead of --config/--db",
        ));
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let dir = args
        .dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", args.dir.display()))?;
    let config_path = dir.join("config.toml");
    if !config_path.exists() {
        std::fs::write(&config_path, DEMO_CONFIG)
            .with_context(|| format!("cannot write {}", config_path.display()))?;
    }
    let demo_global = Global {
        config: Some(config_path.clone()),
        db: None,
    };
    let mut ctx = demo_global.open()?;
    println!(
        "rxsync demo in {} (database {})",
        dir.display(),
        ctx.config.database_path.display()
    );

    if ctx.store.dictionary_stats()?.packages == 0 {
        let (products, _) =
            fda::read_products(PRODUCTS).context("embedded samples/ndc/product.txt")?;
        let (packages, _) =
            fda::read_packages(PACKAGES).context("embedded samples/ndc/package.txt")?;
        let stats =
            ctx.store
                .replace_dictionary(&products, &packages, "embedded samples/ndc", "demo")?;
        println!(
            "loaded the sample dictionary: {} products, {} packages",
            stats.products, stats.packages
        );
    }

    for p in &PATIENTS {
        let id = PatientId::parse(p.id).map_err(|e| anyhow!("{e}"))?;
        if ctx.store.patient(&id)?.is_none() {
            ctx.store.add_patient(
                &NewPatient {
                    id: id.clone(),
                    mrn: None,
                    name: Some(p.name.to_string()),
                    birth_date: Some(p.birth_date.to_string()),
                },
                "demo",
            )?;
        }
        let source = SourceName::parse(p.source).map_err(|e| anyhow!("{e}"))?;
        let request = ImportRequest {
            patient: &id,
            source: &source,
            bytes: p.document,
            format: None,
            origin: Some(p.label),
            trigger: "file",
            actor: "demo",
            keep_unreadable: false,
            max_document_bytes: ctx.config.max_document_bytes,
            max_regimen_items: ctx.config.max_regimen_items,
            pull: None,
        };
        match import(&mut ctx.store, &request) {
            Ok(r) => match r.outcome {
                ImportOutcome::Imported { version, items, .. } => {
                    println!(
                        "imported {} for {}: version {version}, {items} items",
                        p.label, p.id
                    );
                }
                _ => println!("{} for {} is unchanged since the last run", p.label, p.id),
            },
            Err(ImportError::Store(e)) => return Err(Failure::Failed(e.into())),
            Err(e) => return Err(Failure::Failed(anyhow!("{}: {e}", p.label))),
        }
    }

    println!();
    for p in &PATIENTS {
        let id = PatientId::parse(p.id).map_err(|e| anyhow!("{e}"))?;
        if let Some(view) = ctx.store.regimen(&id, p.source, None)? {
            regimen::print_regimen(&view);
            println!();
        }
    }
    let open = ctx.store.exceptions(&ExceptionFilter {
        state: Some(rxsync::domain::ExceptionState::Open),
        ..Default::default()
    })?;
    println!("Exception queue: {} open", open.len());
    for e in &open {
        let item = e
            .item
            .as_ref()
            .map(|i| format!("#{} {}", i.position, i.name.as_deref().unwrap_or("")))
            .unwrap_or_default();
        println!(
            "  [{}] {} {} {} — {}",
            e.id, e.patient, e.kind, item, e.detail
        );
    }
    println!();
    println!("Next: rxsync --config {} queue list", config_path.display());
    println!(
        "      rxsync --config {} queue resolve ID --action accept --by YOUR-NAME",
        config_path.display()
    );
    println!(
        "Or in the browser: rxsync --config {} user add --name YOUR-NAME --role clinician",
        config_path.display()
    );
    println!(
        "      rxsync --config {} serve   (then open the URL it prints)",
        config_path.display()
    );
    Ok(())
}

const DEMO_CONFIG: &str = "# Written by `rxsync demo`. Use it with: rxsync --config THIS-FILE ...\n\n[database]\npath = \"rxsync.db\"\n\n[import]\nmax_document_bytes = 16777216\nmax_regimen_items = 200\n";
