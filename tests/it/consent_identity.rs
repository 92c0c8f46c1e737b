//! Consent and the wrong-patient guard together: `rxsync link start` with
//! `openid` in scope against the sandbox, whose code exchange answers a
//! signed ID token carrying the flow's `nonce`. The guard reads the MRN from
//! that ID token: a match links and imports; a mismatch (the sandbox's
//! identity changed first) holds the link and writes no regimen until `link
//! confirm`; an ID token with a wrong `nonce`, `aud` or `iss`, a signature
//! that does not verify or an `exp` past the skew (a sandbox knob), and an
//! introspection that calls the new token inactive, each make `link start`
//! exit 1 saying why, store no link and no token, and revoke the grant at
//! the provider. `local = "id"` compares the remote identifier with the
//! local patient's rxsync id instead of its MRN.

use serde_json::{Value, json};

use crate::consent::{consent, free_port, get, spawn_link_start};
use crate::pull::harness::{Home, REMOTE, SECRETS, fhir_at};
use crate::support::{Run, Sandbox};

/// An OpenID Connect provider at the sandbox that links by consent through
/// `port` and reads the MRN from the ID token.
fn provider(sandbox: &Sandbox, port: u16) -> String {
    let base = &sandbox.base;
    format!(
        "{}authorize_url = \"{base}/oauth2/authorize\"\nredirect_uri = \"http://127.0.0.1:{port}/callback\"\nscopes = [\"openid\", \"patient/MedicationRequest.rs\", \"offline_access\"]\nauthorize_params = {{ aud = \"{base}/fhir\" }}\n[providers.identity]\nremote = \"id_token:mrn\"\njwks_url = \"{base}/oauth2/jwks\"\nissuer = \"{base}\"\nalso = [\"family_name\", \"birth_date\"]\n",
        fhir_at(sandbox, "idp", "demo-client", "header"),
    )
}

/// A home with patient P2, who is the sandbox's `remote-p1`.
fn home(sandbox: &Sandbox, port: u16) -> Home {
    let home = Home::new(&provider(sandbox, port));
    home.add_p2(true);
    home
}

/// `link start` for P2, the consent as `remote-p1`, the callback: the run.
fn link_start(home: &Home) -> Run {
    let started = spawn_link_start(&home.env, &home.config, "P2", "idp", &[], SECRETS);
    let auth = url::Url::parse(&started.url).expect("the authorization URL");
    assert!(
        auth.query_pairs().any(|(k, _)| k == "nonce"),
        "openid in scope: a nonce is sent"
    );
    let callback = consent(&format!("{}&login_hint={REMOTE}", started.url));
    get(&callback);
    started.finish()
}

fn regimens(home: &Home) -> i64 {
    home.env
        .query_i64("SELECT COUNT(*) FROM regimens WHERE patient_id = 'P2'")
}

fn import(home: &Home) -> Run {
    home.rx(&["import", "--patient", "P2", "--format", "json"])
}

fn knobs(sandbox: &Sandbox, body: Value) {
    let (status, answer) = sandbox.admin("/admin/consent", Some(&body));
    assert_eq!(status, 200, "{answer}");
}

#[test]
fn a_consent_whose_id_token_matches_links_records_the_identity_and_imports() {
    let sandbox = Sandbox::start();
    let home = home(&sandbox, free_port());
    let run = link_start(&home);
    assert_eq!(run.code, 0, "{run:?}");
    let link = run.json();
    assert_eq!(link["state"], "active", "{link}");
    let id = link["id"].as_i64().expect("id");
    let row = home.link_row(id);
    assert_eq!(
        row["remote_identity"]["identifiers"]["id_token:mrn"],
        format!("MRN-{REMOTE}"),
        "{row}"
    );
    assert_eq!(row["remote_identity"]["subject"], REMOTE);
    assert_eq!(
        home.env
            .query_i64("SELECT COUNT(*) FROM audit WHERE action = 'identity.match'"),
        1
    );
    import(&home).ok();
    assert!(regimens(&home) > 0, "a matched link imports");
}

#[test]
fn a_consent_by_another_person_holds_the_link_until_confirmed() {
    let sandbox = Sandbox::start();
    let (status, answer) = sandbox.admin(
        "/admin/identities",
        Some(&json!({"patient": REMOTE, "family_name": "Roe"})),
    );
    assert_eq!(status, 200, "{answer}");
    let home = home(&sandbox, free_port());
    let run = link_start(&home);
    assert_eq!(run.code, 0, "{run:?}");
    let id = run.json()["id"].as_i64().expect("id");
    assert_eq!(home.link_row(id)["state"], "held");
    assert_eq!(
        home.env.query_i64(
            "SELECT COUNT(*) FROM exceptions WHERE kind = 'identity_mismatch' AND state = 'open'"
        ),
        1
    );
    // Judged before it was stored: the consent's own record says held.
    let linked: Value = serde_json::from_str(
        &home
            .env
            .query_string("SELECT detail FROM audit WHERE action = 'consent.linked'"),
    )
    .expect("JSON");
    assert_eq!(linked["identity"], "held", "{linked}");
    import(&home);
    assert_eq!(regimens(&home), 0, "a held link wrote a regimen");
    home.rx(&[
        "link",
        "confirm",
        &id.to_string(),
        "--by",
        "dr-who",
        "--note",
        "maiden name",
    ])
    .ok();
    assert_eq!(home.link_row(id)["state"], "active");
    import(&home).ok();
    assert!(regimens(&home) > 0, "a confirmed link imports");
}

/// What a consent whose identity could not be established must leave: no
/// link row and no token in the store, the flow ended `failed` at its
/// `identity` step, the token revoked at the provider, and a message
/// saying why.
fn nothing_stored_and_revoked(home: &Home, sandbox: &Sandbox, run: &Run, reason: &str) {
    assert_eq!(run.code, 1, "{run:?}");
    for part in [
        reason,
        "could not be established",
        "asked to revoke",
        "nothing stored",
    ] {
        assert!(run.stderr.contains(part), "{part}: {}", run.stderr);
    }
    assert!(
        run.stdout.lines().count() <= 1,
        "only the URL: {}",
        run.stdout
    );
    assert_eq!(
        home.env.query_i64("SELECT COUNT(*) FROM links"),
        0,
        "no link, not even a revoked one"
    );
    assert_eq!(
        home.env.query_i64("SELECT COUNT(*) FROM audit WHERE action IN ('link.add', 'consent.linked', 'identity.match', 'identity.held')"),
        0
    );
    let failed = home
        .env
        .query_string("SELECT detail FROM audit WHERE action = 'consent.failed'");
    let failed: Value = serde_json::from_str(&failed).expect("JSON");
    assert_eq!(failed["step"], "identity", "{failed}");
    assert_eq!(failed["token"], "revoked", "{failed}");
    assert_eq!(
        home.env.query_string("SELECT outcome FROM consent_flows"),
        "failed"
    );
    assert_eq!(
        crate::pull::harness::stats(sandbox)["revocations"],
        1,
        "the provider was asked to revoke the grant it had just issued"
    );
    import(home).fails(1);
    assert_eq!(regimens(home), 0);
}

/// A broken ID token: exit 1 with the reason, no link, the grant revoked.
fn refused(fault: &str, reason: &str) {
    let sandbox = Sandbox::start();
    knobs(&sandbox, json!({"id_token_fault": fault}));
    let home = home(&sandbox, free_port());
    let run = link_start(&home);
    nothing_stored_and_revoked(&home, &sandbox, &run, reason);
}

/// The identity endpoint cannot be reached: no link (a crash-free version
/// of the old order, which stored the link active and then revoked it
/// locally only), the grant revoked at the provider.
#[test]
fn an_identity_endpoint_that_cannot_be_read_makes_no_link_and_revokes_the_grant() {
    let sandbox = Sandbox::start();
    let port = free_port();
    let closed = free_port();
    let block = provider(&sandbox, port).replace(
        "remote = \"id_token:mrn\"",
        &format!(
            "remote = \"userinfo:mrn\"\nuserinfo_url = \"http://127.0.0.1:{closed}/userinfo\""
        ),
    );
    let home = Home::new(&block);
    home.add_p2(false);
    let run = link_start(&home);
    nothing_stored_and_revoked(&home, &sandbox, &run, "userinfo");
    for (_, secret) in SECRETS {
        assert!(!run.stderr.contains(secret) && !run.stdout.contains(secret));
    }
}

#[test]
fn an_id_token_with_another_nonce_makes_no_usable_link() {
    refused("nonce", "nonce");
}

#[test]
fn an_id_token_for_another_audience_makes_no_usable_link() {
    refused("aud", "aud");
}

/// The ID token is read as the identity (`remote = "id_token:mrn"`) with
/// the JWKS and issuer configured: a signature that does not verify, a
/// token expired beyond the clock skew, another issuer — each no link.
#[test]
fn an_id_token_whose_signature_does_not_verify_makes_no_link() {
    refused("signature", "signature does not verify");
}

#[test]
fn an_expired_id_token_makes_no_link() {
    refused("expired", "the token has expired");
}

#[test]
fn an_id_token_from_another_issuer_makes_no_link() {
    refused("issuer", "issuer is not the provider's configured issuer");
}

/// The identity read by introspection at consent (`remote =
/// "introspection:mrn"`): the provider calls the token it just issued
/// inactive — no link, the grant revoked; the same consent with the token
/// honoured links, so introspection alone made the difference.
#[test]
fn an_inactive_introspection_at_consent_makes_no_link() {
    let sandbox = Sandbox::start();
    let base = &sandbox.base;
    let block = provider(&sandbox, free_port())
        .replace(
            "remote = \"id_token:mrn\"",
            "remote = \"introspection:mrn\"",
        )
        // Introspection carries no name or birth date to compare.
        .replace("also = [\"family_name\", \"birth_date\"]\n", "")
        .replace(
            "[providers.identity]",
            &format!("introspection_url = \"{base}/oauth2/introspect\"\n[providers.identity]"),
        );
    let home = home_with(&block);
    knobs(&sandbox, json!({"introspection_inactive": true}));
    let run = link_start(&home);
    nothing_stored_and_revoked(&home, &sandbox, &run, "introspection refuses the token");
    knobs(&sandbox, json!({}));
    let run = link_start(&home);
    assert_eq!(run.code, 0, "{run:?}");
    let link = run.json();
    assert_eq!(link["state"], "active", "{link}");
    let id = link["id"].as_i64().expect("id");
    assert_eq!(
        home.link_row(id)["remote_identity"]["identifiers"]["introspection:mrn"],
        format!("MRN-{REMOTE}")
    );
}

/// `provider(…)` comparing the ID token's MRN claim with the local
/// patient's rxsync id (`local = "id"`) instead of the local MRN.
fn provider_comparing_the_local_id(sandbox: &Sandbox, port: u16) -> String {
    provider(sandbox, port).replace(
        "remote = \"id_token:mrn\"",
        "remote = \"id_token:mrn\"\nlocal = \"id\"",
    )
}

/// P2 with a local MRN equal to the sandbox's default one, so that only
/// the id comparison can tell a match from a mismatch.
fn home_comparing_the_local_id(sandbox: &Sandbox) -> Home {
    let home = Home::new(&provider_comparing_the_local_id(sandbox, free_port()));
    home.add_p2(true);
    home
}

/// `local = "id"`: the remote identifier must equal the local patient's
/// rxsync id. The sandbox's MRN claim saying `P2` matches: the link is
/// active and the audit records the id compared. Its default MRN (equal
/// to the local MRN, which is not what is compared) does not: the link is
/// held with both identities shown and writes no regimen.
#[test]
fn the_local_id_is_compared_when_configured() {
    let sandbox = Sandbox::start();
    let (status, answer) = sandbox.admin(
        "/admin/identities",
        Some(&json!({"patient": REMOTE, "mrn": "P2"})),
    );
    assert_eq!(status, 200, "{answer}");
    let matched = home_comparing_the_local_id(&sandbox);
    let run = link_start(&matched);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["state"], "active", "{}", run.stdout);
    let audit: Value = serde_json::from_str(
        &matched
            .env
            .query_string("SELECT detail FROM audit WHERE action = 'identity.match'"),
    )
    .expect("JSON");
    let compared = &audit["verdict"]["compared"][0];
    assert_eq!(
        compared,
        &json!({"what": "id", "local": "P2", "remote": "P2", "equal": true}),
        "{audit}"
    );
    import(&matched).ok();
    assert!(regimens(&matched) > 0, "a matched link imports");

    let (status, answer) = sandbox.admin(
        "/admin/identities",
        Some(&json!({"patient": REMOTE, "mrn": format!("MRN-{REMOTE}")})),
    );
    assert_eq!(status, 200, "{answer}");
    let held = home_comparing_the_local_id(&sandbox);
    let run = link_start(&held);
    assert_eq!(run.code, 0, "{run:?}");
    let id = run.json()["id"].as_i64().expect("id");
    assert_eq!(held.link_row(id)["state"], "held");
    let detail = held.env.query_string(
        "SELECT detail FROM exceptions WHERE kind = 'identity_mismatch' AND state = 'open'",
    );
    assert!(
        detail.contains("the id differs")
            && detail.contains("id P2")
            && detail.contains(&format!("id_token:mrn=MRN-{REMOTE}")),
        "{detail}"
    );
    import(&held);
    assert_eq!(regimens(&held), 0, "a held link wrote a regimen");
}

#[test]
fn rejecting_a_held_link_revokes_the_grant_at_the_provider() {
    let sandbox = Sandbox::start();
    let (status, answer) = sandbox.admin(
        "/admin/identities",
        Some(&json!({"patient": REMOTE, "mrn": "MRN-someone-else"})),
    );
    assert_eq!(status, 200, "{answer}");
    let home = home(&sandbox, free_port());
    let run = link_start(&home);
    assert_eq!(run.code, 0, "{run:?}");
    let id = run.json()["id"].as_i64().expect("id");
    assert_eq!(home.link_row(id)["state"], "held");
    assert_eq!(crate::pull::harness::stats(&sandbox)["revocations"], 0);
    let run = home.rx(&[
        "link",
        "reject",
        &id.to_string(),
        "--by",
        "dr-who",
        "--note",
        "not our patient",
    ]);
    let rejected = run.ok();
    assert!(rejected.contains("revoked at"), "{rejected}");
    assert_eq!(
        crate::pull::harness::stats(&sandbox)["revocations"],
        1,
        "the provider was told"
    );
    let row = home.link_row(id);
    assert_eq!(row["state"], "revoked");
    assert!(
        row["state_reason"]
            .as_str()
            .is_some_and(|r| r.contains("not our patient") && r.contains("revoked at")),
        "{row}"
    );
    // A link that is not held is refused before the provider hears of it.
    home.rx(&[
        "link",
        "reject",
        &id.to_string(),
        "--by",
        "dr-who",
        "--note",
        "again",
    ])
    .fails(1);
    assert_eq!(crate::pull::harness::stats(&sandbox)["revocations"], 1);
}

fn open_expiring(home: &Home) -> i64 {
    home.env.query_i64(
        "SELECT COUNT(*) FROM exceptions WHERE kind = 'link_expiring' AND state = 'open'",
    )
}

/// Grants over time: the sandbox says the grant ends in 5 days
/// (`access_grant_expiration`); the link records it, `link list` shows it,
/// a pull raises `link_expiring` once (not at every pull), and a new
/// consent closes it.
#[test]
fn a_grant_that_ends_soon_is_recorded_raised_once_and_closed_by_a_new_consent() {
    let sandbox = Sandbox::start();
    knobs(&sandbox, json!({"grant_expires_in": 5 * 86_400}));
    let home = home(&sandbox, free_port());
    let run = link_start(&home);
    assert_eq!(run.code, 0, "{run:?}");
    let id = run.json()["id"].as_i64().expect("id");
    let ends = home.link_row(id)["grant_expires_at"]
        .as_str()
        .map(str::to_string)
        .expect("grant_expires_at recorded");
    let at = chrono::DateTime::parse_from_rfc3339(&ends).expect("RFC 3339");
    let days = (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
    assert!((4..=5).contains(&days), "{ends}");
    let table = home.rx(&["link", "list", "--wide"]);
    assert!(table.ok().contains(&ends[..10]), "{}", table.stdout);
    assert_eq!(open_expiring(&home), 0, "nothing raised before a pull");
    import(&home).ok();
    assert_eq!(open_expiring(&home), 1);
    let detail = home.env.query_string(
        "SELECT detail || '|' || severity FROM exceptions WHERE kind = 'link_expiring'",
    );
    assert!(
        detail.contains(&ends) && detail.ends_with("|warning"),
        "{detail}"
    );
    import(&home).ok();
    assert_eq!(open_expiring(&home), 1, "raised once per grant end");
    // The patient consents again: a new grant, the warning closed.
    knobs(&sandbox, json!({}));
    let again = link_start(&home);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.json()["id"].as_i64(), Some(id));
    assert_eq!(open_expiring(&home), 0);
    assert!(home.link_row(id)["grant_expires_at"].is_null());
    import(&home).ok();
    assert_eq!(open_expiring(&home), 0);
}

/// A grant end far away raises nothing; `[sync] link_expiring_days` widens
/// the window.
#[test]
fn the_warning_window_is_configurable() {
    let sandbox = Sandbox::start();
    knobs(&sandbox, json!({"grant_expires_in": 30 * 86_400}));
    let port = free_port();
    let home = home(&sandbox, port);
    assert_eq!(link_start(&home).code, 0);
    import(&home).ok();
    assert_eq!(open_expiring(&home), 0, "30 days out, default window 14");
    let wider = format!(
        "[sync]\nlink_expiring_days = 45\n{}",
        provider(&sandbox, port)
    );
    std::fs::write(&home.config, wider).expect("config");
    import(&home).ok();
    assert_eq!(open_expiring(&home), 1);
    // A clinician notes the patient was asked: accepted, not raised again.
    let exception = home
        .env
        .query_i64("SELECT id FROM exceptions WHERE kind = 'link_expiring'");
    home.rx(&[
        "queue",
        "resolve",
        &exception.to_string(),
        "--action",
        "accept",
        "--by",
        "dr-who",
        "--note",
        "patient asked to consent again",
    ])
    .ok();
    import(&home).ok();
    assert_eq!(open_expiring(&home), 0);
}

/// The review app's admin "Revoke" tells the provider (RFC 7009) as `link
/// revoke` does, then drops the tokens; a server without the vault key
/// revokes here only and says the provider was not told.
#[tokio::test]
async fn the_admin_page_revokes_at_the_provider_too() {
    use crate::review_server::{ADMIN, Review, add_user};
    let sandbox = Sandbox::start();
    let home = home(&sandbox, free_port());
    let run = link_start(&home);
    assert_eq!(run.code, 0, "{run:?}");
    let id = run.json()["id"].as_i64().expect("id");
    add_user(&home.env, ADMIN.0, ADMIN.1, "admin");
    let Home { env, config } = home;
    let r = Review::serve_with_env(env, &["--config", &config], SECRETS);
    let cookie = r.login(ADMIN).await;
    let csrf = r.csrf(&cookie).await;
    let page = r.get("/admin/links", Some(&cookie)).await;
    assert!(page.body.contains("tells the provider"), "{}", page.body);
    let a = r
        .post_form(
            &format!("/admin/links/{id}/revoke"),
            Some(&cookie),
            &[("csrf", &csrf), ("reason", "patient moved away")],
        )
        .await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(
        crate::pull::harness::stats(&sandbox)["revocations"],
        1,
        "the provider was told"
    );
    let reason = r.env.query_string(&format!(
        "SELECT state || ': ' || state_reason FROM links WHERE id = {id}"
    ));
    assert!(
        reason.starts_with("revoked: ")
            && reason.contains("patient moved away")
            && reason.contains("revoked at"),
        "{reason}"
    );
    assert_eq!(
        r.env.query_i64(&format!(
            "SELECT COUNT(*) FROM links WHERE id = {id} AND token IS NULL AND refresh_token IS NULL"
        )),
        1,
        "the tokens are dropped"
    );
    let page = r.get("/admin/links", Some(&cookie)).await;
    assert!(page.body.contains("revoked at"), "{}", page.body);
}

/// `link add` records the grant end of the token answer it is handed, as
/// the provider gave it (`access_grant_expiration`).
#[test]
fn link_add_records_the_grant_end_of_the_token_answer() {
    let sandbox = Sandbox::start();
    knobs(&sandbox, json!({"grant_expires_in": 86_400}));
    let home = Home::new(&fhir_at(&sandbox, "ehr", "demo-client", "header"));
    let (status, tokens) = sandbox.admin(
        "/admin/oauth2/grants",
        Some(&json!({"client_id": "demo-client", "patient": REMOTE})),
    );
    assert_eq!(status, 200, "{tokens}");
    let secs = tokens["access_grant_expiration"]
        .as_i64()
        .expect("the knob");
    let id = home.link_as("P1", "ehr", &tokens);
    let ends = home.link_row(id)["grant_expires_at"]
        .as_str()
        .map(str::to_string)
        .expect("recorded");
    let at = chrono::DateTime::parse_from_rfc3339(&ends).expect("RFC 3339");
    assert_eq!(at.timestamp(), secs);
    home.pull(Some("ehr"));
    assert_eq!(open_expiring(&home), 1, "one day left: within 14");
}

/// A grant's end may move with a refresh: the refresh answer's
/// `access_grant_expiration` is recorded on the link with the rotated pair
/// (one store job), `link list` shows it, and the next pull raises
/// `link_expiring` for it.
#[test]
fn a_refresh_answer_s_grant_end_is_recorded_with_the_rotated_pair() {
    let sandbox = Sandbox::start();
    let home = Home::new(&fhir_at(&sandbox, "ehr", "demo-client", "header"));
    // Linked with no grant end said; the access token expires within the
    // refresh margin, so the pull refreshes first.
    let (id, _) = home.link_oauth2(&sandbox, "ehr", "demo-client", json!({"expires_in": 30}));
    assert!(home.link_row(id)["grant_expires_at"].is_null());
    knobs(&sandbox, json!({"grant_expires_in": 5 * 86_400}));
    let run = home.pull(Some("ehr"));
    run.ok();
    let report = &crate::pull::harness::Home::reports(&run)[0];
    assert_eq!(report["refreshed"], true, "{report}");
    assert_eq!(report["outcome"], "imported", "{report}");
    let ends = home.link_row(id)["grant_expires_at"]
        .as_str()
        .map(str::to_string)
        .expect("the refresh answer's grant end is recorded");
    let at = chrono::DateTime::parse_from_rfc3339(&ends).expect("RFC 3339");
    let days = (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
    assert!((4..=5).contains(&days), "{ends}");
    let table = home.rx(&["link", "list", "--wide"]);
    assert!(table.ok().contains(&ends[..10]), "{}", table.stdout);
    // The warning is raised by the next pull (each pull asks before it fetches).
    home.pull(Some("ehr")).ok();
    let detail = home.env.query_string(
        "SELECT detail FROM exceptions WHERE kind = 'link_expiring' AND state = 'open'",
    );
    assert!(
        detail.contains(&ends) && detail.contains(&format!("link {id}")),
        "{detail}"
    );
}

/// `provider(…)` without its `[providers.identity]`: the guard compares
/// nothing, but `openid` is still in scope, so an ID token comes back.
fn provider_without_identity(sandbox: &Sandbox, port: u16) -> String {
    let block = provider(sandbox, port);
    let at = block
        .find("[providers.identity]")
        .expect("an identity section");
    block[..at].to_string()
}

/// A home for P2 (the sandbox's `remote-p1`) with the provider `block`.
fn home_with(block: &str) -> Home {
    let home = Home::new(block);
    home.add_p2(false);
    home
}

/// No `[providers.identity]` used to skip the ID token altogether: a
/// token with another flow's nonce (an injected one) still made a link.
/// Now its claims are checked even with no JWKS known.
#[test]
fn an_id_token_with_another_nonce_makes_no_link_without_an_identity_section() {
    let sandbox = Sandbox::start();
    knobs(&sandbox, json!({"id_token_fault": "nonce"}));
    let home = home_with(&provider_without_identity(&sandbox, free_port()));
    let run = link_start(&home);
    nothing_stored_and_revoked(&home, &sandbox, &run, "nonce");
}

#[test]
fn an_id_token_for_another_audience_makes_no_link_without_an_identity_section() {
    let sandbox = Sandbox::start();
    knobs(&sandbox, json!({"id_token_fault": "aud"}));
    let home = home_with(&provider_without_identity(&sandbox, free_port()));
    let run = link_start(&home);
    nothing_stored_and_revoked(&home, &sandbox, &run, "not for this client");
}

/// With `discover = true` the provider's announced JWKS and issuer check
/// the signature too; a good token links, unchecked by the guard.
#[test]
fn an_id_token_without_an_identity_section_is_validated_with_the_discovered_jwks() {
    let sandbox = Sandbox::start();
    let block = provider_without_identity(&sandbox, free_port())
        .replace("[providers.auth]", "discover = true\n[providers.auth]");
    let home = home_with(&block);
    let run = link_start(&home);
    assert_eq!(run.code, 0, "{run:?}");
    let link = run.json();
    assert_eq!(link["remote_patient"], REMOTE, "{link}");
    let linked: Value = serde_json::from_str(
        &home
            .env
            .query_string("SELECT detail FROM audit WHERE action = 'consent.linked'"),
    )
    .expect("JSON");
    assert_eq!(linked["identity"], "unchecked", "{linked}");
    // A token with another nonce fails there as well.
    knobs(&sandbox, json!({"id_token_fault": "nonce"}));
    let run = link_start(&home);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("nonce"), "{}", run.stderr);
}

/// A token answer without SMART's `patient` whose ID token names the
/// patient by `fhirUser` (an absolute URL on the FHIR base): the link's
/// remote patient is that Patient, not the local id.
#[test]
fn fhir_user_names_the_remote_patient_when_the_token_answer_has_no_patient() {
    let sandbox = Sandbox::start();
    knobs(&sandbox, json!({"omit_patient": true}));
    let home = home(&sandbox, free_port());
    let run = link_start(&home);
    assert_eq!(run.code, 0, "{run:?}");
    let link = run.json();
    assert_eq!(link["remote_patient"], REMOTE, "{link}");
    assert_eq!(link["state"], "active", "{link}");
    import(&home).ok();
    assert!(regimens(&home) > 0, "the pull asks for the right patient");
}

/// Neither `patient` nor an ID token: a FHIR provider's link would not
/// know whose records to ask for, so none is made.
#[test]
fn a_fhir_token_answer_naming_no_patient_makes_no_link() {
    let sandbox = Sandbox::start();
    knobs(&sandbox, json!({"omit_patient": true}));
    let block = provider_without_identity(&sandbox, free_port()).replace("[\"openid\", ", "[");
    let home = home_with(&block);
    let started = spawn_link_start(&home.env, &home.config, "P2", "idp", &[], SECRETS);
    get(&consent(&format!("{}&login_hint={REMOTE}", started.url)));
    let run = started.finish();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("names no patient"), "{}", run.stderr);
    assert_eq!(home.env.query_i64("SELECT COUNT(*) FROM links"), 0);
    assert_eq!(
        crate::pull::harness::stats(&sandbox)["revocations"],
        1,
        "the tokens just issued were revoked"
    );
}

/// The identity read at consent leaves its HTTP trail in the audit, as a
/// pull's does: one `provider.access` row per request (introspection,
/// userinfo), about the new link, without a token.
#[test]
fn the_identity_read_at_consent_is_audited_as_provider_accesses() {
    let sandbox = Sandbox::start();
    let base = &sandbox.base;
    let block = provider(&sandbox, free_port())
        .replace(
            "remote = \"id_token:mrn\"",
            &format!("remote = \"userinfo:mrn\"\nuserinfo_url = \"{base}/oauth2/userinfo\""),
        )
        .replace(
            "[providers.identity]",
            &format!("introspection_url = \"{base}/oauth2/introspect\"\n[providers.identity]"),
        );
    let home = home_with(&block);
    let run = link_start(&home);
    assert_eq!(run.code, 0, "{run:?}");
    let id = run.json()["id"].as_i64().expect("id");
    let rows: Vec<Value> = home
        .env
        .query_strings(&format!(
            "SELECT detail FROM audit WHERE action = 'provider.access' AND subject = 'link:{id}' ORDER BY id"
        ))
        .into_iter()
        .map(|d| serde_json::from_str(&d.expect("a detail")).expect("JSON"))
        .collect();
    let purposes: Vec<&str> = rows.iter().filter_map(|r| r["purpose"].as_str()).collect();
    assert_eq!(purposes, ["introspection", "identity"], "{rows:?}");
    let userinfo = &rows[1];
    assert!(
        userinfo["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/oauth2/userinfo")),
        "{userinfo}"
    );
    assert_eq!(userinfo["status"], 200, "{userinfo}");
    assert_eq!(rows[0]["outcome"], "ok");
    let audit = home
        .env
        .query_strings("SELECT detail FROM audit")
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!audit.contains("Bearer"), "{audit}");
    for (_, secret) in SECRETS {
        assert!(!audit.contains(secret), "a secret in the audit");
    }
}
