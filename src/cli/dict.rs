//! `rxsync dict import|lookup`

use super::context::Global;
use super::output::{self, Format};
use super::{CliResult, Failure, usage};
use anyhow::Context as _;
use rxsync::dict::{DictEntry, fda};
use rxsync::domain::ndc;
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Load the FDA NDC directory (product.txt and package.txt) into the database, replacing the dictionary
    Import {
        /// Folder holding product.txt and package.txt as the FDA publishes them
        #[arg(long, value_name = "DIR")]
        fda: PathBuf,
    },
    /// Show what the dictionary knows of an NDC (any format) or a drug name
    Lookup {
        /// An NDC in any format (0777-3105-02, 00777310502, 0777310502) or part of a name
        code: String,
        /// Output: table for people, json for scripts
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

pub fn run(global: &Global, command: Command) -> CliResult {
    match command {
        Command::Import { fda: dir } => import(global, dir),
        Command::Lookup { code, format } => lookup(global, &code, format),
    }
}

fn read(dir: &std::path::Path, name: &str) -> Result<Vec<u8>, Failure> {
    let path = dir.join(name);
    std::fs::read(&path)
        .with_context(|| format!("cannot read {}", path.display()))
        .map_err(Failure::Failed)
}

fn import(global: &Global, dir: PathBuf) -> CliResult {
    let products_bytes = read(&dir, "product.txt")?;
    let packages_bytes = read(&dir, "package.txt")?;
    let (products, p_problems) = fda::read_products(&products_bytes)
        .with_context(|| format!("{}", dir.join("product.txt").display()))?;
    let (packages, k_problems) = fda::read_packages(&packages_bytes)
        .with_context(|| format!("{}", dir.join("package.txt").display()))?;
    for p in p_problems.iter().chain(&k_problems).take(20) {
        eprintln!(
            "warning: {}:{}: {} (row skipped)",
            dir.join(p.file).display(),
            p.line,
            p.detail
        );
    }
    let skipped = p_problems.len() + k_problems.len();
    if skipped > 20 {
        eprintln!("warning: {} more rows skipped", skipped - 20);
    }
    let mut ctx = global.open()?;
    let loaded_from = dir
        .canonicalize()
        .unwrap_or(dir.clone())
        .display()
        .to_string();
    let stats = ctx
        .store
        .replace_dictionary(&products, &packages, &loaded_from, "cli")?;
    let orphans = packages.len().saturating_sub(stats.packages);
    println!(
        "loaded {} products ({} excluded from the NDC Directory) and {} packages from {}",
        stats.products, stats.excluded_products, stats.packages, loaded_from
    );
    if orphans > 0 {
        eprintln!(
            "warning: {orphans} packages name a product that product.txt does not have (left out)"
        );
    }
    Ok(())
}

fn lookup(global: &Global, code: &str, format: Format) -> CliResult {
    let ctx = global.open_existing()?;
    let entries: Vec<DictEntry> = match ndc::parse(code) {
        Ok(parsed) => {
            let mut found = Vec::new();
            for n in parsed.reading.keys() {
                found.extend(ctx.store.dict_entry(&n)?);
            }
            found
        }
        Err(e)
            if code
                .chars()
                .all(|c| c.is_ascii_digit() || c == '-' || c == '*') =>
        {
            return Err(usage(format!("{code:?} is not an NDC: {e}")));
        }
        Err(_) => ctx.store.dict_search(code, 50)?,
    };
    if entries.is_empty() {
        let stats = ctx.store.dictionary_stats()?;
        let hint = if stats.packages == 0 {
            " (the dictionary is empty: run rxsync dict import --fda DIR)".to_string()
        } else {
            ctx.store
                .dictionary_sample_note()?
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        };
        return Err(Failure::Failed(anyhow::anyhow!(
            "{code:?} is not in the drug dictionary{hint}"
        )));
    }
    match format {
        Format::Json => output::json(&entries)?,
        Format::Table => {
            for e in &entries {
                let p = &e.product;
                match e.package.ndc11() {
                    Some(n) => println!("NDC {}  (11-digit {n})", e.package.package_ndc),
                    None => println!(
                        "NDC {}  (12-digit {}; no 11-digit form)",
                        e.package.package_ndc, e.package.ndc
                    ),
                }
                println!(
                    "  product       {} {}",
                    p.proprietary_name,
                    if p.excluded {
                        "[EXCLUDED from the NDC Directory]"
                    } else {
                        ""
                    }
                );
                println!("  generic name  {}", p.nonproprietary_name);
                println!("  strength      {}", p.strength_text());
                println!("  dose form     {}", p.dosage_form);
                println!("  route         {}", p.route);
                println!("  labeler       {}", p.labeler);
                println!(
                    "  ingredients   {}",
                    p.ingredients
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                println!("  package       {}", e.package.description);
                println!("  product type  {}", p.product_type);
            }
        }
    }
    Ok(())
}
