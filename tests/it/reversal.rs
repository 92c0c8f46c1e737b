//! Reversing a decision (`queue reopen`): what a decision changed comes
//! back, until the regimen is reviewed or superseded.

use crate::support::{TestEnv, repo_path};
use serde_json::Value;

/// The review sample: item 2 a duplicate of item 1 (exception 1), item 3
/// an unmapped NDC (exception 2).
fn review_env() -> TestEnv {
    let env = TestEnv::with_dictionary_and(&["review-1"]);
    env.import(&repo_path("samples/ccr/review.xml"), "review-1");
    env
}

fn exception(env: &TestEnv, id: &str) -> Value {
    env.run(&["queue", "show", id, "--format", "json"]).json()["exception"].clone()
}

fn regimen(env: &TestEnv) -> Value {
    env.run(&[
        "regimen",
        "show",
        "--patient",
        "review-1",
        "--format",
        "json",
    ])
    .json()
}

fn reopen(env: &TestEnv, id: &str) -> crate::support::Run {
    env.run(&[
        "queue",
        "reopen",
        id,
        "--by",
        "dr-b",
        "--note",
        "misread the label",
    ])
}

#[test]
fn reopening_a_map_restores_the_item_and_forgets_the_remembered_mapping() {
    let env = review_env();
    assert_eq!(exception(&env, "2")["kind"], "unmapped_ndc");
    env.run(&[
        "queue",
        "resolve",
        "2",
        "--action",
        "map",
        "--ndc",
        "0006-0952-31",
        "--by",
        "dr-a",
    ])
    .ok();
    assert_eq!(regimen(&env)["items"][2]["ndc11"], "00006095231");
    assert_eq!(env.query_i64("SELECT COUNT(*) FROM code_mappings"), 1);

    let shown = reopen(&env, "2");
    shown.ok();
    let e = exception(&env, "2");
    assert_eq!(e["state"], "open");
    assert_eq!(e["resolution"], Value::Null);
    assert_eq!(e["resolved_by"], Value::Null);
    let r = regimen(&env);
    assert_eq!(r["items"][2]["ndc11"], "68180051301", "the NDC as imported");
    assert_eq!(r["items"][2]["mapping"], Value::Null);
    assert_eq!(r["status"], "needs_review");
    assert_eq!(
        env.query_i64("SELECT COUNT(*) FROM code_mappings"),
        0,
        "later imports no longer apply it"
    );
    assert_eq!(
        env.query_i64(
            "SELECT COUNT(*) FROM decisions WHERE exception_id = 2 AND reversed_by = 'dr-b'
             AND reversal_note = 'misread the label'"
        ),
        1
    );
    assert_eq!(
        env.query_i64(
            "SELECT COUNT(*) FROM audit WHERE action = 'exception.reopen' AND actor = 'dr-b'
             AND subject = 'exception/2'"
        ),
        1
    );
    // Decided again, it maps as before.
    env.run(&[
        "queue",
        "resolve",
        "2",
        "--action",
        "map",
        "--ndc",
        "0006-0952-31",
        "--by",
        "dr-b",
    ])
    .ok();
    assert_eq!(regimen(&env)["items"][2]["ndc11"], "00006095231");
}

#[test]
fn decisions_on_a_reviewed_regimen_are_final() {
    let env = review_env();
    // Item 2 gets a second exception of its own, so removing it closes both.
    env.run(&[
        "queue", "resolve", "2", "--action", "accept", "--by", "dr-a",
    ])
    .ok();
    env.run(&[
        "queue", "resolve", "1", "--action", "remove", "--by", "dr-a",
    ])
    .ok();
    let r = regimen(&env);
    assert_eq!(r["status"], "reviewed", "nothing open");
    // Reviewed: every decision on it is final.
    let before = env.counts();
    let err = reopen(&env, "1").fails(1).to_string();
    assert!(err.contains("reviewed"), "{err}");
    let err = reopen(&env, "2").fails(1).to_string();
    assert!(err.contains("reviewed"), "{err}");
    assert_eq!(env.counts(), before, "a refused reversal stores nothing");
}

#[test]
fn reopening_a_remove_while_under_review_restores_the_item() {
    let env = review_env();
    env.run(&[
        "queue", "resolve", "1", "--action", "remove", "--by", "dr-a",
    ])
    .ok();
    assert_eq!(
        regimen(&env)["removed_items"].as_array().map(Vec::len),
        Some(1)
    );
    reopen(&env, "1").ok();
    let r = regimen(&env);
    assert_eq!(r["removed_items"].as_array().map(Vec::len), Some(0));
    assert_eq!(r["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(r["items"][1]["flags"][0], "duplicate");
    assert_eq!(exception(&env, "1")["state"], "open");
}

#[test]
fn a_map_whose_duplicate_was_decided_is_reversed_after_that_one() {
    let env = review_env();
    // Mapping the losartan to the NDC of item 1 makes them the same drug:
    // the map opens a duplicate (exception 3).
    env.run(&[
        "queue",
        "resolve",
        "2",
        "--action",
        "map",
        "--ndc",
        "0006-0106-54",
        "--by",
        "dr-a",
    ])
    .ok();
    let opened = exception(&env, "3");
    assert_eq!(opened["kind"], "duplicate");
    env.run(&["queue", "resolve", "3", "--action", "keep", "--by", "dr-a"])
        .ok();
    let err = reopen(&env, "2").fails(1).to_string();
    assert!(
        err.contains("exception 3") && err.contains("reopen it first"),
        "{err}"
    );
    reopen(&env, "3").ok();
    reopen(&env, "2").ok();
    let dup = exception(&env, "3");
    assert_eq!(dup["state"], "dismissed", "its cause is gone");
    assert!(
        dup["note"].as_str().is_some_and(|n| n.contains("reversed")),
        "{dup}"
    );
    assert_eq!(exception(&env, "2")["state"], "open");
}

#[test]
fn decisions_on_a_superseded_version_and_on_open_exceptions_are_not_reversed() {
    let env = review_env();
    let err = reopen(&env, "2").fails(1).to_string();
    assert!(err.contains("is open"), "{err}");
    env.run(&["queue", "dismiss", "2", "--by", "dr-a", "--note", "later"])
        .ok();
    // A new version of the list (other bytes) supersedes version 1.
    let text = std::fs::read_to_string(repo_path("samples/ccr/review.xml")).expect("sample");
    let file = env.write(
        "v2.xml",
        text.replacen(
            "</ContinuityOfCareRecord>",
            "<!-- v2 --></ContinuityOfCareRecord>",
            1,
        )
        .as_bytes(),
    );
    env.run(&["import", "--file", &file, "--patient", "review-1"])
        .ok();
    let err = reopen(&env, "2").fails(1).to_string();
    assert!(err.contains("superseded"), "{err}");
    let err = env
        .run(&["queue", "reopen", "2", "--by", "dr-b", "--note", " "])
        .fails(1)
        .to_string();
    assert!(err.contains("note"), "{err}");
}
