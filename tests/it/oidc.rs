//! Pulls through a real OAuth 2.0 authorization server: npm `oidc-provider`
//! with a tiny SMART-on-FHIR resource server (tests/oidc/server.mjs; its
//! README says what it serves and how oidc-provider behaves on refresh,
//! rotation, reuse and revocation). Each test starts its own server on a
//! loopback port, mints a grant through the server's test endpoint (rxsync
//! receives tokens from another system, so there is no consent dance),
//! links it with `rxsync link add`, and drives the real binary: pull, expiry
//! and refresh with rotation, a grant revoked at the server, `link revoke`,
//! and both ways of sending the client secret. Every test also checks that
//! neither the client secret nor any token the server issued shows up in
//! rxsync's stdout or stderr.
//!
//! Without Node.js and `npm ci --prefix tests/oidc` (which `.ci/run` does)
//! these tests fail; they never skip.

mod consent;
mod identity;
mod linked;
mod registration;
pub(crate) mod server;

use std::time::Duration;

use serde_json::{Value, json};

use linked::{
    ClientAuth, LOCAL_PATIENT, Linked, SMART_PATIENT, expected_ndcs, fhir_requests, id_text,
    items_of, refreshes,
};

#[test]
fn a_pull_with_a_valid_token_imports_three_items_over_two_pages() {
    let linked = Linked::new(ClientAuth::Basic, None);
    assert_eq!(linked.link_row()["state"], "active");

    let run = linked.pull();
    run.ok();
    let result = linked.result_of(&run);
    assert_eq!(result["outcome"], "imported", "{result}");
    assert_eq!(items_of(&result), 3, "{result}");
    assert_eq!(linked.regimen_ndcs(), expected_ndcs());

    let stats = linked.server.stats();
    assert_eq!(
        fhir_requests(&stats),
        [(1, 200), (2, 200)],
        "page 1, then the absolute next link: {stats}"
    );
    assert_eq!(
        stats["refreshes"], 0,
        "a valid token needs no refresh: {stats}"
    );
    assert_eq!(stats["token_requests"], json!([]), "{stats}");

    let row = linked.link_row();
    assert_eq!(row["state"], "active", "{row}");
    assert!(!row["last_sync"].is_null(), "{row}");
    linked.assert_nothing_leaked();
}

#[test]
fn an_expired_access_token_is_refreshed_and_the_rotated_refresh_token_is_used_next() {
    let linked = Linked::new(ClientAuth::Basic, Some(1));
    std::thread::sleep(Duration::from_secs(2));

    // First pull: the access token has expired; rxsync refreshes with the
    // refresh token it was given, and oidc-provider rotates it.
    let run = linked.pull();
    run.ok();
    let result = linked.result_of(&run);
    assert_eq!(result["outcome"], "imported", "{result}");
    assert_eq!(items_of(&result), 3, "{result}");
    let stats = linked.server.stats();
    let done = refreshes(&stats);
    assert_eq!(done.len(), 1, "one refresh: {stats}");
    assert_eq!(done[0]["client_id"], "rxsync", "{stats}");
    assert_eq!(done[0]["client_auth"], "client_secret_basic", "{stats}");
    assert_eq!(
        done[0]["presented_rotations"], 0,
        "the minted refresh token: {stats}"
    );
    assert_eq!(done[0]["rotated"], true, "{stats}");
    // Later the new access token stops working at the server; the next pull
    // gets a 401, refreshes once with the rotated refresh token (a reuse of
    // the first one would have revoked the whole grant), and goes on.
    linked.server.expire_access(SMART_PATIENT);
    let run = linked.pull();
    run.ok();
    let result = linked.result_of(&run);
    assert!(
        result["outcome"] == "imported" || result["outcome"] == "unchanged",
        "{result}"
    );
    let stats = linked.server.stats();
    assert_eq!(stats["refreshes"], 2, "{stats}");
    assert_eq!(
        stats["token_errors"],
        json!([]),
        "no invalid_grant: {stats}"
    );
    let rotations: Vec<Value> = refreshes(&stats)
        .iter()
        .map(|e| e["presented_rotations"].clone())
        .collect();
    assert_eq!(
        rotations,
        [json!(0), json!(1)],
        "the second refresh presents the rotated token: {stats}"
    );
    assert!(
        fhir_requests(&stats).contains(&(1, 401)),
        "the second pull met the 401: {stats}"
    );
    assert_eq!(linked.regimen_ndcs(), expected_ndcs());
    assert_eq!(linked.link_row()["state"], "active");
    // The refresh token handed to `link add` is spent: rotated out, never reused.
    assert!(
        !linked
            .server
            .active(linked.token["refresh_token"].as_str().expect("rt"))
    );
    linked.assert_nothing_leaked();
}

#[test]
fn a_grant_revoked_at_the_server_leaves_the_link_needing_relink_with_a_link_broken_exception() {
    let linked = Linked::new(ClientAuth::Basic, None);
    linked.pull().ok();

    // The patient (or the provider) ends the grant: revoking the refresh
    // token ends every token of the grant at oidc-provider.
    linked.server.revoke(
        linked.token["refresh_token"].as_str().expect("rt"),
        "refresh_token",
    );

    let run = linked.pull();
    assert_eq!(
        run.code, 1,
        "a broken link fails the pull\nstdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    let v: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("the per-link results are JSON ({e}): {}", run.stdout));
    let result = &v[0];
    assert_eq!(id_text(&result["link"]), linked.link, "{v}");
    assert_eq!(result["outcome"], "needs_relink", "{v}");
    assert!(
        result["error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid_grant")),
        "{v}"
    );

    let stats = linked.server.stats();
    assert_eq!(
        stats["token_errors"],
        json!(["invalid_grant"]),
        "one refresh after the 401, refused, never retried: {stats}"
    );
    assert_eq!(stats["refreshes"], 0, "{stats}");
    assert_eq!(linked.link_row()["state"], "needs_relink");

    let queue = linked.rxsync(&["queue", "list", "--format", "json"]).json();
    let broken: Vec<&Value> = queue
        .as_array()
        .expect("queue rows")
        .iter()
        .filter(|r| r["kind"] == "link_broken")
        .collect();
    assert_eq!(broken.len(), 1, "{queue}");
    assert_eq!(broken[0]["patient"], LOCAL_PATIENT, "{queue}");
    assert_eq!(broken[0]["state"], "open", "{queue}");
    // The regimen of the first pull is still there.
    assert_eq!(linked.regimen_ndcs(), expected_ndcs());
    linked.assert_nothing_leaked();
}

#[test]
fn link_revoke_revokes_the_grant_at_the_server() {
    let linked = Linked::new(ClientAuth::Basic, None);
    linked.rxsync(&["link", "revoke", &linked.link]).ok();

    assert_eq!(linked.link_row()["state"], "revoked");
    let stats = linked.server.stats();
    assert!(
        stats["revocations"].as_u64() >= Some(1),
        "rxsync called the revocation endpoint: {stats}"
    );
    // Whichever token rxsync revoked, oidc-provider ends the whole grant.
    for key in ["access_token", "refresh_token"] {
        let token = linked.token[key].as_str().expect("token");
        assert!(!linked.server.active(token), "{key} still active");
    }
    linked.assert_nothing_leaked();
}

#[test]
fn client_secret_post_sends_the_secret_in_the_form_body() {
    let linked = Linked::new(ClientAuth::Post, Some(1));
    std::thread::sleep(Duration::from_secs(2));

    let run = linked.pull();
    run.ok();
    let result = linked.result_of(&run);
    assert_eq!(result["outcome"], "imported", "{result}");
    assert_eq!(items_of(&result), 3, "{result}");

    let stats = linked.server.stats();
    let done = refreshes(&stats);
    assert_eq!(done.len(), 1, "{stats}");
    assert_eq!(done[0]["client_id"], "rxsync-post", "{stats}");
    assert_eq!(done[0]["client_auth"], ClientAuth::Post.method(), "{stats}");
    assert_eq!(stats["token_errors"], json!([]), "{stats}");
    assert_eq!(linked.regimen_ndcs(), expected_ndcs());
    linked.assert_nothing_leaked();
}

/// The wrong-patient guard against oidc-provider: rxsync reads the
/// patient's MRN from its userinfo endpoint (after introspecting the token)
/// and imports when it is the local patient's; another MRN holds the link.
#[test]
fn userinfo_and_introspection_read_the_identity_at_oidc_provider() {
    let identity = |e: &server::Endpoints| {
        format!(
            "introspection_url = \"{}\"\n[providers.identity]\nremote = \"userinfo:mrn\"\nuserinfo_url = \"{}\"\nalso = [\"family_name\", \"birth_date\"]\n",
            e.introspection_endpoint, e.userinfo_endpoint
        )
    };
    let mrn = format!("MRN-{SMART_PATIENT}");
    let linked = Linked::with_identity(
        ClientAuth::Basic,
        None,
        identity,
        &[
            "--mrn",
            &mrn,
            "--name",
            "Pat Doe",
            "--birth-date",
            "1980-04-02",
        ],
    );
    let run = linked.pull();
    run.ok();
    let result = linked.result_of(&run);
    assert_eq!(result["outcome"], "imported", "{result}");
    let row = linked.link_row();
    assert_eq!(row["remote_identity"]["subject"], SMART_PATIENT, "{row}");
    assert_eq!(
        row["remote_identity"]["identifiers"]["userinfo:mrn"], mrn,
        "{row}"
    );
    assert_eq!(row["remote_identity"]["birth_date"], "1980-04-02", "{row}");
    linked.assert_nothing_leaked();

    // Introspection as the identity source: oidc-provider answers `sub`
    // (the account), which must equal the local patient's id here.
    let by_sub = |e: &server::Endpoints| {
        format!(
            "introspection_url = \"{}\"\n[providers.identity]\nremote = \"introspection:sub\"\nlocal = \"mrn\"\n",
            e.introspection_endpoint
        )
    };
    let linked = Linked::with_identity(ClientAuth::Post, None, by_sub, &["--mrn", SMART_PATIENT]);
    let run = linked.pull();
    run.ok();
    assert_eq!(linked.result_of(&run)["outcome"], "imported");
    assert_eq!(
        linked.link_row()["remote_identity"]["identifiers"]["introspection:sub"],
        SMART_PATIENT
    );

    // Another patient's account: held, nothing imported.
    let linked = Linked::with_identity(ClientAuth::Basic, None, identity, &["--mrn", "MRN-other"]);
    let run = linked.pull();
    run.ok();
    assert_eq!(linked.result_of(&run)["outcome"], "held");
    assert_eq!(linked.link_row()["state"], "held");
    linked.assert_nothing_leaked();
}
