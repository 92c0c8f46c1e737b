//! Tables for people fit the width they are given (`$COLUMNS`, else the
//! terminal): the columns of low priority go first, then cells are cut at a
//! word boundary with "…"; a row stays one line, so no word is broken
//! across lines; `--wide` shows everything, and JSON never changes.

use crate::support::{Run, TestEnv};
use std::collections::HashSet;
use unicode_width::UnicodeWidthStr;

/// A demo database (links, regimens, an open queue, patients) and its config.
fn demo() -> (TestEnv, String) {
    let env = TestEnv::new();
    let dir = env.dir.path().join("demo");
    env.run_bare(
        &["demo", "--once", "--dir", &dir.display().to_string()],
        &[],
    )
    .ok();
    let config = dir.join("config.toml").display().to_string();
    (env, config)
}

fn rx(env: &TestEnv, config: &str, args: &[&str], columns: Option<&str>) -> String {
    let mut all = vec!["--config", config];
    all.extend_from_slice(args);
    let env_vars: Vec<(&str, &str)> = columns.map(|c| ("COLUMNS", c)).into_iter().collect();
    env.run_bare(&all, &env_vars).ok().to_string()
}

/// The lines of a table's header and rows.
fn rows(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with('│')).collect()
}

/// The words of a table's cells.
fn words(out: &str) -> Vec<String> {
    rows(out)
        .iter()
        .flat_map(|l| l.split(['│', '┆']))
        .flat_map(str::split_whitespace)
        .map(str::to_string)
        .collect()
}

const LISTINGS: [&[&str]; 6] = [
    &["queue", "list"],
    &["link", "list"],
    &["regimen", "show", "--patient", "demo-ccr-1"],
    &[
        "regimen",
        "show",
        "--patient",
        "demo-3",
        "--source",
        "demo-ccr-rsa",
    ],
    &["patient", "list"],
    &["regimen", "history", "--patient", "demo-fhir-1"],
];

/// Every line of `args`' table fits 80 and 120 columns, one line per row
/// as with `--wide`, and every word is whole or a cut ending in "…".
/// `rx(args, columns)` runs the command and returns its output.
fn assert_fits(args: &[&str], rx: impl Fn(&[&str], Option<&str>) -> String) {
    let wide = rx(&[args, &["--wide"]].concat(), Some("80"));
    let whole: HashSet<String> = words(&wide).into_iter().collect();
    for width in [80usize, 120] {
        let out = rx(args, Some(&width.to_string()));
        for line in out.lines() {
            assert!(
                line.width() <= width,
                "{args:?} at {width}: a line of {} columns:\n{line}\n{out}",
                line.width()
            );
        }
        assert_eq!(
            rows(&out).len(),
            rows(&wide).len(),
            "{args:?} at {width}: one line per row, nothing wrapped:\n{out}"
        );
        for word in words(&out) {
            match word.strip_suffix('…') {
                None => assert!(
                    whole.contains(&word),
                    "{args:?} at {width}: {word:?} is not a whole word of the table:\n{out}"
                ),
                Some(stem) => assert!(
                    whole.iter().any(|w| w.starts_with(stem)),
                    "{args:?} at {width}: {word:?} is no cut of a word:\n{out}"
                ),
            }
        }
    }
}

#[test]
fn tables_fit_80_and_120_columns_without_breaking_a_word_and_wide_shows_everything() {
    let (env, config) = demo();
    for args in LISTINGS {
        assert_fits(args, |a, columns| rx(&env, &config, a, columns));
    }
    // At 80 the queue keeps what it is about and drops the rest.
    let queue = rx(&env, &config, &["queue", "list"], Some("80"));
    let header = rows(&queue)[0];
    for kept in ["id", "kind", "item", "detail"] {
        assert!(header.contains(kept), "{kept}: {header}");
    }
    assert!(!header.contains("severity"), "{header}");
    assert!(queue.contains('…'), "long details are cut: {queue}");
}

#[test]
fn wide_shows_every_column_uncut_and_json_ignores_the_width() {
    let (env, config) = demo();
    let wide = rx(&env, &config, &["queue", "list", "--wide"], Some("80"));
    let header = rows(&wide)[0];
    for column in [
        "id", "patient", "source", "kind", "severity", "state", "item", "detail",
    ] {
        assert!(header.contains(column), "{column}: {header}");
    }
    let json = rx(
        &env,
        &config,
        &["queue", "list", "--format", "json"],
        Some("40"),
    );
    let listed: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    for e in listed.as_array().expect("array") {
        let detail = e["detail"].as_str().expect("detail");
        assert!(
            wide.contains(detail),
            "--wide shows {detail:?} whole:\n{wide}"
        );
    }
    assert_eq!(
        json,
        rx(&env, &config, &["queue", "list", "--format", "json"], None),
        "JSON does not depend on the width"
    );
    // Not a terminal and no $COLUMNS: everything, as with --wide.
    assert_eq!(rx(&env, &config, &["queue", "list"], None), wide);
    let link_wide = rx(&env, &config, &["link", "list", "--wide"], Some("80"));
    assert!(
        link_wide.contains("last sync") && link_wide.contains("scheme"),
        "{link_wide}"
    );
    let run: Run = env.run_bare(&["--config", &config, "link", "list", "--wide"], &[]);
    assert_eq!(run.ok(), link_wide);
}

#[test]
fn the_reconciled_list_fits_80_and_120_columns_without_breaking_a_word() {
    let env = crate::reconcile::two_sources();
    let args = ["regimen", "reconcile", "--patient", "p1"];
    assert_fits(&args, |a, columns| {
        let vars: Vec<(&str, &str)> = columns.map(|c| ("COLUMNS", c)).into_iter().collect();
        env.run_with_env(a, &vars).ok().to_string()
    });
    // At 80 the drug and what each source says stay; the wording of the
    // conflicts is cut, not dropped.
    let out = env
        .run_with_env(&args, &[("COLUMNS", "80")])
        .ok()
        .to_string();
    let header = rows(&out)[0];
    for kept in ["drug", "clinic", "pharmacy"] {
        assert!(header.contains(kept), "{kept}: {header}\n{out}");
    }
}
