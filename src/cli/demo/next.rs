//! What the demo tells its user to do next, and how it says it stopped.
//! Every command printed here works as printed, pasted into a fresh shell
//! (this program's own path when `rxsync` on PATH is not it, paths quoted
//! for the shell, nothing to set in the environment);
//! `tests/it/demo.rs` runs them.

use super::consented::{self, Outcome};
use crate::cli::run::{human, syncs_sentence};
use crate::cli::{Failure, table};
use rxsync::daemon::Summary;
use rxsync::dict;
use rxsync::domain::{ExceptionKind, ExceptionState, LinkState};
use rxsync::store::{ExceptionFilter, Store};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Where the demo's things are, for the commands it prints.
pub struct Next<'a> {
    pub dir: &'a Path,
    pub config: &'a Path,
    pub sandbox_addr: SocketAddr,
    pub sandbox_dir: &'a Path,
}

/// The demo drug whose mapping the README shows, and the package of the
/// sample dictionary it maps to (Norvasc 5 mg, 90 tablets).
const MAP_EXAMPLE: (&str, &str, &str) = (
    "Amlodipine",
    "0069-1530-68",
    "RxNorm 197361 is Norvasc 5 mg",
);

/// The medicines of the patient's page shown in the summary; the rest are counted.
const PAGE_ROWS: usize = 5;

impl Next<'_> {
    /// Says which links were made by consent — what the browser went
    /// through and what the patient's page showed (`outcomes`: this run's;
    /// none when an earlier run made them) — and which links are held for
    /// identity review, with the commands that decide them.
    pub fn print_consents(&self, store: &Store, outcomes: &[Outcome]) -> Result<(), Failure> {
        let rx = format!("{} --config {}", program(), sh(self.config));
        let links = store.links(None)?;
        let link_of = |patient: &str| {
            links
                .iter()
                .find(|l| l.provider == consented::PROVIDER && l.patient == patient)
        };
        println!();
        println!(
            "Linked by consent at {}, as patients do (invitation → sandbox consent → callback → first pull):",
            consented::PROVIDER
        );
        for i in &consented::INVITED {
            let Some(link) = link_of(i.patient) else {
                println!("  {}: no link", i.patient);
                continue;
            };
            let Some(o) = outcomes.iter().find(|o| o.patient == i.patient) else {
                table::say(
                    &format!(
                        "  link {} {}: {} — made by consent in an earlier run of the demo",
                        link.id, i.patient, link.state
                    ),
                    4,
                );
                continue;
            };
            table::say(
                &format!(
                    "  link {} {}: {} — the invitation (made as `rxsync link invite` does) opened in a browser: {}; at the sandbox the patient signed in as {} and approved; at the callback rxsync exchanged the code, checked the ID token and compared the identity{}",
                    link.id,
                    i.patient,
                    link.state,
                    o.hops.join(" → "),
                    o.account,
                    if o.outcome == "linked" {
                        ", then ran the first pull"
                    } else {
                        ""
                    }
                ),
                4,
            );
            println!("    The patient's page said:");
            // Table rows (the header is one) past the first few are counted.
            let (mut rows, mut left_out) = (0, 0);
            for line in &o.page {
                if line.contains(" · ") {
                    rows += 1;
                    if rows > PAGE_ROWS + 1 {
                        left_out += 1;
                        continue;
                    }
                } else if left_out > 0 {
                    println!("      | … and {left_out} more");
                    left_out = 0;
                }
                table::say(&format!("      | {line}"), 8);
            }
            if left_out > 0 {
                println!("      | … and {left_out} more");
            }
        }
        let held: Vec<_> = links
            .iter()
            .filter(|l| l.state == LinkState::Held)
            .collect();
        if held.is_empty() {
            return Ok(());
        }
        let open = store.exceptions(&ExceptionFilter {
            state: Some(ExceptionState::Open),
            kind: Some(ExceptionKind::IdentityMismatch),
            ..Default::default()
        })?;
        println!();
        println!(
            "{} held for identity review (nothing is imported from a held link until a clinician decides):",
            held.len()
        );
        for l in held {
            // The exception's closing sentence names the commands printed below.
            let why = open
                .iter()
                .find(|e| e.patient == l.patient && l.provider == e.source.as_str())
                .map(|e| {
                    let detail = e.detail.split(" Nothing is imported").next();
                    format!(" exception {}: {}", e.id, detail.unwrap_or_default())
                })
                .unwrap_or_default();
            table::say(
                &format!("  link {} {} → {},{why}", l.id, l.patient, l.provider),
                4,
            );
            println!(
                "    confirm (it is the patient: imports) or reject (it is not: revokes the link):"
            );
            println!("    {rx} link confirm {} --by NAME --note TEXT", l.id);
            println!("    {rx} link reject {} --by NAME --note TEXT", l.id);
        }
        Ok(())
    }

    /// Prints the follow-up commands, with the ids of this database.
    pub fn print(&self, store: &Store) -> Result<(), Failure> {
        let program = program();
        let rx = format!("{program} --config {}", sh(self.config));
        println!();
        match store.database() {
            rxsync::store::Database::Sqlite(_) => println!(
                "Next, from any shell (nothing to set: the provider secrets are files in {}):",
                sh(&self.dir.join("secrets"))
            ),
            rxsync::store::Database::Postgres(target) => println!(
                "Next, from a shell with RXSYNC_DATABASE_URL set as now (the database is PostgreSQL {target}; the provider secrets are files in {}):",
                sh(&self.dir.join("secrets"))
            ),
        }
        println!("  {rx} queue list");
        println!("  {rx} link list");
        println!("  {rx} regimen show --patient demo-ccr-1");
        let open = store.exceptions(&ExceptionFilter {
            state: Some(ExceptionState::Open),
            ..Default::default()
        })?;
        let (drug, ndc, note) = MAP_EXAMPLE;
        if let Some(e) = open.iter().find(|e| {
            e.kind == ExceptionKind::NonNdcCode.as_str()
                && e.item
                    .as_ref()
                    .and_then(|i| i.name.as_deref())
                    .is_some_and(|n| n.starts_with(drug))
        }) {
            println!(
                "  {rx} queue resolve {} --action map --ndc {ndc} --by dr.lee --note \"{note}\"",
                e.id
            );
        }
        let stats = store.dictionary_stats()?;
        if stats.loaded_from.as_deref().is_some_and(dict::is_sample) {
            for e in &open {
                let Some(name) = e.item.as_ref().and_then(|i| i.name.as_deref()) else {
                    continue;
                };
                let word = name.split_whitespace().next().unwrap_or(name);
                if e.kind != ExceptionKind::NonNdcCode.as_str()
                    && store.dict_search(word, 1)?.is_empty()
                {
                    table::say(
                        &format!(
                            "Exception {} ({name}): the sample dictionary holds only {} products of the FDA NDC directory, none of them {word}; to map it, load the whole directory (unzip {}) into this database:",
                            e.id,
                            stats.products,
                            dict::FDA_DIRECTORY_URL
                        ),
                        2,
                    );
                    println!("  {rx} dict import --fda DIR");
                }
            }
        }
        println!(
            "Pull again while the demo is not running: start its sandbox, then pull now (or `run` for the daemon):"
        );
        println!(
            "  {program} sandbox --listen {} --data {}",
            self.sandbox_addr,
            sh(self.sandbox_dir)
        );
        println!("  {rx} import --patient demo-ccr-1");
        Ok(())
    }
}

/// How the printed commands call rxsync: `rxsync` when that is this
/// program on PATH, else this program's own path (run through `cargo run`,
/// or from a build folder), so that they work as printed.
fn program() -> String {
    let Ok(me) = std::env::current_exe().and_then(|p| p.canonicalize()) else {
        return "rxsync".into();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .filter_map(|dir| dir.join("rxsync").canonicalize().ok())
            .next()
            .is_some_and(|found| found == me)
    });
    if on_path { "rxsync".into() } else { sh(&me) }
}

/// The sentence the demo ends with after a signal: how long it served,
/// what the daemon did meanwhile, and how to carry on.
pub fn stopped(
    signal: &str,
    served: Duration,
    interval: Duration,
    s: &Summary,
    dir: &Path,
) -> String {
    let what = if s.syncs() == 0 && s.abandoned == 0 {
        format!(
            "no link fell due in that time (each is synced every {}), so nothing was pulled",
            human(interval)
        )
    } else {
        format!("in that time {}", syncs_sentence(s))
    };
    format!(
        "{signal}: the demo stopped after serving for {}; {what}. Everything stays in {}: `rxsync demo --dir {}` carries on.",
        human(served),
        dir.display(),
        sh(dir)
    )
}

/// A path as a shell word: as it is when that is safe, else single-quoted.
fn sh(path: &Path) -> String {
    let text = path.display().to_string();
    let safe = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@,=%".contains(c));
    if safe {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_for_the_shell_only_when_needed() {
        assert_eq!(sh(Path::new("/tmp/rxsync-demo")), "/tmp/rxsync-demo");
        assert_eq!(sh(Path::new("/tmp/my demo")), "'/tmp/my demo'");
        assert_eq!(sh(Path::new("/tmp/it's")), r"'/tmp/it'\''s'");
    }

    #[test]
    fn the_stop_sentence_says_what_happened() {
        let nothing = Summary::default();
        let text = stopped(
            "Ctrl-C",
            Duration::from_secs(204),
            Duration::from_secs(600),
            &nothing,
            Path::new("/tmp/d"),
        );
        assert_eq!(
            text,
            "Ctrl-C: the demo stopped after serving for 3 min 24 s; no link fell due in that time (each is synced every 10 min), so nothing was pulled. Everything stays in /tmp/d: `rxsync demo --dir /tmp/d` carries on."
        );
        let mut some = Summary::default();
        some.outcomes.insert("unchanged".into(), 5);
        some.abandoned = 1;
        let text = stopped(
            "SIGTERM",
            Duration::from_secs(3700),
            Duration::from_secs(600),
            &some,
            Path::new("/tmp/d"),
        );
        assert!(
            text.starts_with("SIGTERM: the demo stopped after serving for 1 h 1 min; in that time 5 sync(s) ran (5 unchanged); 1 in flight were abandoned"),
            "{text}"
        );
    }
}
