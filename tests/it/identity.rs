//! The wrong-patient guard end to end: the real binary pulls from the
//! sandbox, whose userinfo, introspection and FHIR `Patient` say who the
//! patient is there (`POST /admin/identities` changes it). A match
//! imports; a mismatch, a missing identifier and an allow-list refusal
//! hold the link and write nothing until a clinician confirms it (`link
//! confirm`), after which the pull imports; `link reject` revokes; an
//! inactive introspection refuses.

use crate::pull::harness::{Home, REMOTE, fhir_at};
use crate::support::{Run, Sandbox};
use serde_json::{Value, json};

/// A FHIR provider at the sandbox with introspection and `identity` as its
/// `[providers.identity]` table.
fn provider(sandbox: &Sandbox, identity: &str) -> String {
    format!(
        "{}introspection_url = \"{}/oauth2/introspect\"\n[providers.identity]\n{identity}\n",
        fhir_at(sandbox, "idp", "demo-client", "header"),
        sandbox.base
    )
}

fn userinfo(sandbox: &Sandbox, extra: &str) -> String {
    provider(
        sandbox,
        &format!(
            "remote = \"userinfo:mrn\"\nuserinfo_url = \"{}/oauth2/userinfo\"\nalso = [\"family_name\", \"birth_date\"]\n{extra}",
            sandbox.base
        ),
    )
}

/// A home with patient P2, who is the sandbox's `remote-p1` (same MRN,
/// family name and birth date), linked to `idp` with a fresh grant.
fn linked(sandbox: &Sandbox, config: &str, grant: Value) -> (Home, i64) {
    linked_keeping(sandbox, config, grant, true)
}

/// `linked`, the link holding the grant's refresh token or not.
fn linked_keeping(
    sandbox: &Sandbox,
    config: &str,
    grant: Value,
    refresh_token: bool,
) -> (Home, i64) {
    let home = Home::new(config);
    home.rx(&[
        "patient",
        "add",
        "--id",
        "P2",
        "--mrn",
        &format!("mrn-{REMOTE} "),
        "--name",
        "Pat DOE",
        "--birth-date",
        "1980-04-02",
    ])
    .ok();
    let mut req = json!({"client_id": "demo-client", "patient": REMOTE});
    if let (Some(r), Some(e)) = (req.as_object_mut(), grant.as_object()) {
        r.extend(e.clone());
    }
    let (status, mut tokens) = sandbox.admin("/admin/oauth2/grants", Some(&req));
    assert_eq!(status, 200, "{tokens}");
    if !refresh_token && let Some(t) = tokens.as_object_mut() {
        t.remove("refresh_token");
    }
    let id = home.link_as("P2", "idp", &tokens);
    (home, id)
}

fn pull(home: &Home) -> (Run, Value) {
    let run = home.rx(&["import", "--patient", "P2", "--format", "json"]);
    let report = Home::reports(&run)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no report: {run:?}"));
    (run, report)
}

fn regimens(home: &Home) -> i64 {
    home.env
        .query_i64("SELECT COUNT(*) FROM regimens WHERE patient_id = 'P2'")
}

fn open_mismatches(home: &Home) -> i64 {
    home.env.query_i64(
        "SELECT COUNT(*) FROM exceptions WHERE kind = 'identity_mismatch' AND state = 'open'",
    )
}

fn change_identity(sandbox: &Sandbox, patch: Value) {
    let mut body = json!({"patient": REMOTE});
    if let (Some(b), Some(p)) = (body.as_object_mut(), patch.as_object()) {
        b.extend(p.clone());
    }
    let (status, answer) = sandbox.admin("/admin/identities", Some(&body));
    assert_eq!(status, 200, "{answer}");
}

/// Asserts the link is held with an open exception and nothing imported.
fn assert_held(home: &Home, id: i64, report: &Value) {
    assert_eq!(report["outcome"], "held", "{report}");
    assert_eq!(home.link_row(id)["state"], "held");
    assert_eq!(regimens(home), 0, "a held link wrote a regimen");
    assert_eq!(home.env.query_i64("SELECT COUNT(*) FROM documents"), 0);
    assert_eq!(open_mismatches(home), 1);
    // A held link is not pulled again, and the answer says what to do.
    let again = home.rx(&["import", "--patient", "P2", "--format", "json"]);
    let says = again.fails(1);
    assert!(
        says.contains("is held") && says.contains(&format!("link confirm {id}")),
        "{says}"
    );
    // The scheduler skips it too.
    home.rx(&["run", "--once"]).ok();
    assert_eq!(regimens(home), 0);
    assert_eq!(home.link_row(id)["state"], "held");
}

#[test]
fn a_matching_identity_imports_and_is_recorded_and_audited() {
    let sandbox = Sandbox::start();
    let (home, id) = linked(&sandbox, &userinfo(&sandbox, ""), json!({}));
    let (_, report) = pull(&home);
    assert_eq!(report["outcome"], "imported", "{report}");
    assert_eq!(regimens(&home), 1);
    let row = home.link_row(id);
    assert_eq!(row["state"], "active");
    let identity = &row["remote_identity"];
    assert_eq!(identity["subject"], REMOTE);
    assert_eq!(
        identity["identifiers"]["userinfo:mrn"],
        format!("MRN-{REMOTE}")
    );
    assert_eq!(identity["name"], "Pat Doe");
    assert_eq!(identity["birth_date"], "1980-04-02");
    assert!(
        identity["read_at"]
            .as_str()
            .is_some_and(|t| t.starts_with("20"))
    );
    let audit: Value = serde_json::from_str(
        &home
            .env
            .query_string("SELECT detail FROM audit WHERE action = 'identity.match'"),
    )
    .expect("JSON");
    let compared = audit["verdict"]["compared"].as_array().expect("compared");
    assert!(
        compared.iter().any(|c| c["equal"] == true)
            && compared.iter().any(|c| c["what"] == "family_name"),
        "{audit}"
    );
    // The identity reads are provider accesses like any other.
    assert!(
        home.env.query_i64(
            "SELECT COUNT(*) FROM audit WHERE action = 'provider.access' AND detail ->> 'purpose' = 'identity' AND detail ->> 'url' LIKE '%/oauth2/userinfo%'"
        ) >= 1
    );
    assert!(
        home.env.query_i64(
            "SELECT COUNT(*) FROM audit WHERE action = 'provider.access' AND detail ->> 'purpose' = 'introspection'"
        ) >= 1
    );
    // The same identity again is not compared (nor audited) again.
    let (_, report) = pull(&home);
    assert_eq!(report["outcome"], "unchanged", "{report}");
    assert_eq!(
        home.env
            .query_i64("SELECT COUNT(*) FROM audit WHERE action = 'identity.match'"),
        1
    );
    // No token in what link list shows.
    let listed = home.rx(&["link", "list", "--format", "json"]).stdout;
    assert!(!listed.contains("access_token"));
    let table = home.rx(&["link", "list"]).ok().to_string();
    assert!(table.contains(&format!("MRN-{REMOTE}")), "{table}");
}

#[test]
fn a_mismatch_holds_until_a_clinician_confirms_and_a_changed_identity_compares_again() {
    let sandbox = Sandbox::start();
    change_identity(&sandbox, json!({"family_name": "Roe"}));
    let (home, id) = linked(&sandbox, &userinfo(&sandbox, ""), json!({}));
    let (run, report) = pull(&home);
    run.ok();
    assert_held(&home, id, &report);
    let detail = home.env.query_string(
        "SELECT detail FROM exceptions WHERE kind = 'identity_mismatch' AND state = 'open'",
    );
    assert!(detail.contains("family_name differs"), "{detail}");
    assert!(
        detail.contains("Pat DOE") && detail.contains("Roe"),
        "both identities: {detail}"
    );
    let table = home.rx(&["link", "list"]).ok().to_string();
    assert!(
        table.contains("held") && table.contains("link confirm"),
        "{table}"
    );

    // Handing over new tokens does not lift the hold: a clinician decides.
    let (_, tokens) = sandbox.admin(
        "/admin/oauth2/grants",
        Some(&json!({"client_id": "demo-client", "patient": REMOTE})),
    );
    assert_eq!(home.link_as("P2", "idp", &tokens), id);
    assert_eq!(home.link_row(id)["state"], "held");
    assert_eq!(regimens(&home), 0);

    // Confirming needs a name and a note; a confirmed link imports.
    home.rx(&[
        "link",
        "confirm",
        &id.to_string(),
        "--by",
        " ",
        "--note",
        "x",
    ])
    .fails(2);
    home.rx(&[
        "link",
        "confirm",
        &id.to_string(),
        "--by",
        "dr-who",
        "--note",
        "called the patient: married name",
    ])
    .ok();
    assert_eq!(home.link_row(id)["state"], "active");
    assert_eq!(open_mismatches(&home), 0);
    let (_, report) = pull(&home);
    assert_eq!(report["outcome"], "imported", "{report}");
    assert_eq!(regimens(&home), 1);
    assert_eq!(
        home.env.query_i64(
            "SELECT COUNT(*) FROM audit WHERE action = 'link.confirm' AND actor = 'dr-who'"
        ),
        1
    );
    // A confirmed link is not confirmed twice.
    home.rx(&[
        "link",
        "confirm",
        &id.to_string(),
        "--by",
        "dr-who",
        "--note",
        "again",
    ])
    .fails(1);

    // Another identity at the provider is compared afresh: held again.
    change_identity(&sandbox, json!({"birth_date": "1981-01-01"}));
    let (_, report) = pull(&home);
    assert_eq!(report["outcome"], "held", "{report}");
    assert_eq!(home.link_row(id)["state"], "held");
    assert_eq!(regimens(&home), 1, "no new version from a held link");
}

#[test]
fn a_missing_identifier_holds_the_link() {
    let sandbox = Sandbox::start();
    change_identity(&sandbox, json!({"mrn": null}));
    let (home, id) = linked(&sandbox, &userinfo(&sandbox, ""), json!({}));
    let (_, report) = pull(&home);
    assert_held(&home, id, &report);
    assert!(
        report["error"]
            .as_str()
            .is_some_and(|e| e.contains("gave no userinfo:mrn")),
        "{report}"
    );
}

#[test]
fn an_identity_outside_the_allow_list_holds_the_link_and_reject_revokes_it() {
    let sandbox = Sandbox::start();
    let config = userinfo(&sandbox, "allow = [\"MRN-someone-else\"]");
    let (home, id) = linked(&sandbox, &config, json!({}));
    let (_, report) = pull(&home);
    assert_held(&home, id, &report);
    assert!(
        report["error"]
            .as_str()
            .is_some_and(|e| e.contains("allow-list")),
        "{report}"
    );
    home.rx(&[
        "link",
        "reject",
        &id.to_string(),
        "--by",
        "dr-who",
        "--note",
        "not enrolled",
    ])
    .ok();
    let row = home.link_row(id);
    assert_eq!(row["state"], "revoked");
    assert!(
        row["state_reason"]
            .as_str()
            .is_some_and(|r| r.contains("not enrolled"))
    );
    assert_rejected(&home.env, sandbox_revocations(&sandbox), id, "dr-who");
    home.rx(&["import", "--patient", "P2"]).fails(1);
    assert_eq!(regimens(&home), 0);
}

fn sandbox_revocations(sandbox: &Sandbox) -> u64 {
    crate::pull::harness::stats(sandbox)["revocations"]
        .as_u64()
        .unwrap_or(u64::MAX)
}

/// A rejected link: the provider was told once (RFC 7009), the link is
/// revoked with its tokens dropped and its reason saying so, the
/// exception is resolved, and `by`'s `link.reject` is audited.
fn assert_rejected(env: &crate::support::TestEnv, revocations: u64, id: i64, by: &str) {
    assert_eq!(revocations, 1, "the provider was told");
    let reason = env.query_string(&format!(
        "SELECT state || ': ' || state_reason FROM links WHERE id = {id}"
    ));
    assert!(
        reason.starts_with("revoked: ") && reason.contains("revoked at"),
        "{reason}"
    );
    assert_eq!(
        env.query_i64(&format!(
            "SELECT COUNT(*) FROM links WHERE id = {id} AND token IS NULL AND token_secret IS NULL AND refresh_token IS NULL"
        )),
        1,
        "the tokens are gone"
    );
    assert_eq!(
        env.query_i64(
            "SELECT COUNT(*) FROM exceptions WHERE kind = 'identity_mismatch' AND state = 'open'"
        ),
        0
    );
    assert_eq!(
        env.query_i64(&format!(
            "SELECT COUNT(*) FROM audit WHERE action = 'link.reject' AND actor = '{by}' AND subject = 'link:{id}'"
        )),
        1
    );
}

/// An introspection answer that says when the grant ends
/// (`access_grant_expiration`) dates the link's grant; its `exp`, the
/// access token's own expiry, does not.
#[test]
fn introspection_dates_the_grant_by_its_grant_field_not_exp() {
    let sandbox = Sandbox::start();
    let (home, id) = linked(&sandbox, &userinfo(&sandbox, ""), json!({}));
    let grant_end = || {
        let end = if crate::support::on_postgres() {
            "to_char(grant_expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
        } else {
            "grant_expires_at"
        };
        home.env.query_string(&format!(
            "SELECT COALESCE({end}, 'none') FROM links WHERE id = {id}"
        ))
    };
    let (_, report) = pull(&home);
    assert_eq!(report["outcome"], "imported", "{report}");
    assert_eq!(grant_end(), "none", "exp is not the grant's end");
    let (status, answer) = sandbox.admin(
        "/admin/consent",
        Some(&json!({"grant_expires_in": 3 * 86_400})),
    );
    assert_eq!(status, 200, "{answer}");
    let (_, report) = pull(&home);
    assert_eq!(report["outcome"], "unchanged", "{report}");
    let end = chrono::DateTime::parse_from_rfc3339(&grant_end())
        .unwrap_or_else(|e| panic!("{e}: {}", grant_end()));
    let ahead = end.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(
        (ahead - chrono::Duration::days(3)).num_seconds().abs() < 120,
        "{ahead}"
    );
    assert!(home.link_row(id)["grant_expires_at"].is_string());
}

#[test]
fn the_queue_rejects_a_held_link_and_tells_the_provider() {
    let sandbox = Sandbox::start();
    change_identity(&sandbox, json!({"mrn": "MRN-someone-else"}));
    let (home, id) = linked(&sandbox, &userinfo(&sandbox, ""), json!({}));
    let (_, report) = pull(&home);
    assert_eq!(report["outcome"], "held", "{report}");
    let exception = home
        .env
        .query_i64("SELECT id FROM exceptions WHERE kind = 'identity_mismatch'")
        .to_string();
    let run = home.rx(&[
        "queue", "resolve", &exception, "--action", "reject", "--by", "dr", "--note", "not her",
    ]);
    let says = run.ok();
    assert!(says.contains("revoked at"), "{says}");
    assert_rejected(&home.env, sandbox_revocations(&sandbox), id, "dr");
    assert_eq!(
        home.env
            .query_i64("SELECT COUNT(*) FROM audit WHERE action = 'link.reject.provider'"),
        1
    );
    home.rx(&["import", "--patient", "P2"]).fails(1);
    assert_eq!(regimens(&home), 0);
}

#[test]
fn the_fhir_patient_and_introspection_are_identity_sources_too() {
    let sandbox = Sandbox::start();
    let config = provider(
        &sandbox,
        "remote = \"patient:urn:rxsync:sandbox:mrn\"\nalso = [\"birth_date\"]",
    );
    let (home, id) = linked(&sandbox, &config, json!({}));
    let (_, report) = pull(&home);
    assert_eq!(report["outcome"], "imported", "{report}");
    let row = home.link_row(id);
    assert_eq!(
        row["remote_identity"]["identifiers"]["patient:urn:rxsync:sandbox:mrn"],
        format!("MRN-{REMOTE}")
    );

    let sandbox = Sandbox::start();
    let (home, _) = linked(
        &sandbox,
        &provider(&sandbox, "remote = \"introspection:mrn\""),
        json!({}),
    );
    let (_, report) = pull(&home);
    assert_eq!(report["outcome"], "imported", "{report}");

    // A profile endpoint read with a JSON pointer (the userinfo answer
    // serves as one here), at a path relative to base_url.
    let sandbox = Sandbox::start();
    let config = provider(
        &sandbox,
        "remote = \"profile:/mrn\"\nprofile_url = \"/oauth2/userinfo\"",
    );
    let (home, id) = linked(&sandbox, &config, json!({}));
    let (_, report) = pull(&home);
    assert_eq!(report["outcome"], "imported", "{report}");
    assert_eq!(
        home.link_row(id)["remote_identity"]["identifiers"]["profile:/mrn"],
        format!("MRN-{REMOTE}")
    );
}

/// Introspection calls the token inactive and no refresh can cure it (the
/// link holds no refresh token; with one, the identity is read again with
/// a refreshed token: `an_expired_access_token_is_refreshed_once…`).
#[test]
fn an_inactive_introspection_refuses_and_stores_nothing() {
    let sandbox = Sandbox::start();
    let (home, id) = linked_keeping(
        &sandbox,
        &provider(&sandbox, "remote = \"introspection:mrn\""),
        json!({"access_token_valid": false}),
        false,
    );
    let (run, report) = pull(&home);
    run.fails(1);
    assert_eq!(report["outcome"], "needs_relink", "{report}");
    assert!(
        report["error"]
            .as_str()
            .is_some_and(|e| e.contains("introspection refuses the token")),
        "{report}"
    );
    assert_eq!(home.link_row(id)["state"], "needs_relink");
    assert_eq!(regimens(&home), 0);
    assert_eq!(open_mismatches(&home), 0);
}

#[test]
fn the_queue_confirms_a_held_link_too_and_refuses_to_dismiss_it() {
    let sandbox = Sandbox::start();
    change_identity(&sandbox, json!({"birth_date": "1979-12-31"}));
    let (home, id) = linked(&sandbox, &userinfo(&sandbox, ""), json!({}));
    let (_, report) = pull(&home);
    assert_eq!(report["outcome"], "held", "{report}");
    let exception = home
        .env
        .query_i64("SELECT id FROM exceptions WHERE kind = 'identity_mismatch'")
        .to_string();
    let listed = home.rx(&["queue", "show", &exception, "--format", "json"]);
    let says = listed.stdout.clone();
    assert!(
        says.contains("confirm") && says.contains("reject"),
        "{says}"
    );
    let dismissed = home.rx(&[
        "queue", "dismiss", &exception, "--by", "dr", "--note", "meh",
    ]);
    assert!(dismissed.fails(1).contains("confirm or reject the link"));
    // Without a note it is not a decision at all (a usage error).
    home.rx(&[
        "queue", "resolve", &exception, "--action", "confirm", "--by", "dr",
    ])
    .fails(2);
    home.rx(&[
        "queue", "resolve", &exception, "--action", "confirm", "--by", "dr", "--note", "ID seen",
    ])
    .ok();
    assert_eq!(home.link_row(id)["state"], "active");
    let (_, report) = pull(&home);
    assert_eq!(report["outcome"], "imported", "{report}");
}

/// `identity::judge_new_link`, as the consent engine calls it before it
/// stores a link: the sandbox's ID tokens (RS256 and ES256) validated with
/// its JWKS, the identity read from their claims, a wrong nonce refused, a
/// mismatch judged held — and nothing written by the judging itself.
#[test]
fn judge_new_link_validates_id_tokens_with_the_jwks_and_holds_or_refuses() {
    use rxsync::identity::{
        IdentityError, NewLinkCheck, NewLinkOutcome, NewOauth2, judge_new_link,
    };
    let sandbox = Sandbox::start();
    let config = format!(
        "{}[providers.identity]\nremote = \"id_token:mrn\"\njwks_url = \"{base}/oauth2/jwks\"\nissuer = \"{base}\"\nalso = [\"family_name\"]\n",
        fhir_at(&sandbox, "idp", "demo-client", "header"),
        base = sandbox.base
    );
    let (home, id) = linked(&sandbox, &config, json!({}));
    let provider = resolved(&home);
    let client = rxsync::fetch::http::HttpClient::for_provider(&provider).expect("client");
    let jwks = rxsync::fetch::jwks::JwksCache::default();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let patient = home
        .env
        .store()
        .patient(&rxsync::domain::PatientId::parse("P2").expect("id"))
        .expect("reads")
        .expect("P2");
    let client_auth = rxsync::fetch::oauth2::Client {
        token_url: url::Url::parse(&format!("{}/oauth2/token", sandbox.base)).expect("url"),
        revocation_url: None,
        client_id: "demo-client".into(),
        proof: rxsync::fetch::oauth2::ClientProof::None,
        from: "config",
    };
    let check = |alg: &str, nonce: &str| {
        let req = json!({"client_id": "demo-client", "patient": REMOTE,
            "id_token": {"alg": alg, "nonce": "n-1"}});
        let (status, grant) = sandbox.admin("/admin/oauth2/grants", Some(&req));
        assert_eq!(status, 200, "{grant}");
        let access =
            secrecy::SecretString::from(grant["access_token"].as_str().expect("token").to_string());
        let id_token = grant["id_token"].as_str().expect("an id_token").to_string();
        let bearer = rxsync::fetch::auth::Bearer {
            token: access.clone(),
            placement: rxsync::fetch::oauth1::Placement::Header,
        };
        rt.block_on(judge_new_link(NewLinkCheck {
            provider: &provider,
            client: &client,
            jwks: &jwks,
            patient: &patient,
            credential: &bearer,
            oauth2: Some(NewOauth2 {
                access_token: &access,
                client_auth: &client_auth,
                id_token: Some(&id_token),
                expected_nonce: Some(nonce),
            }),
            remote_patient: Some(REMOTE),
            discovered: Ok(None),
        }))
    };
    let audit_before = home.env.query_i64("SELECT COUNT(*) FROM audit");
    for alg in ["RS256", "ES256"] {
        let out = check(alg, "n-1").unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert!(
            matches!(out.outcome, NewLinkOutcome::Matched(_)),
            "{alg}: {out:?}"
        );
        let write = out.write.expect("what to record");
        assert!(write.hold.is_none() && write.verdict.is_some());
        assert!(
            write.remote_identity.contains(&format!("MRN-{REMOTE}")),
            "{}",
            write.remote_identity
        );
    }

    change_identity(&sandbox, json!({"family_name": "Roe"}));
    let out = check("RS256", "n-1").expect("reads");
    assert!(matches!(out.outcome, NewLinkOutcome::Held(_)), "{out:?}");
    assert!(out.write.expect("what to record").hold.is_some());

    let e = check("ES256", "n-2").expect_err("a wrong nonce");
    assert!(matches!(e, IdentityError::NonceMismatch), "{e:?}");
    // Judging writes nothing: the consent engine stores the verdict with the link.
    assert_eq!(home.link_row(id)["state"], "active");
    assert_eq!(open_mismatches(&home), 0);
    assert_eq!(
        home.env.query_i64("SELECT COUNT(*) FROM audit"),
        audit_before
    );
}

/// The review app's exception page: a held link's `identity_mismatch`
/// offers confirm and reject (each with a required note), not dismiss.
#[test]
fn the_exception_page_confirms_a_held_link() {
    use crate::review_server::{CLINICIAN, Review, add_user};
    let sandbox = Sandbox::start();
    change_identity(&sandbox, json!({"mrn": "MRN-someone-else"}));
    let (home, id) = linked(&sandbox, &userinfo(&sandbox, ""), json!({}));
    let (_, report) = pull(&home);
    assert_eq!(report["outcome"], "held", "{report}");
    let exception = home
        .env
        .query_i64("SELECT id FROM exceptions WHERE kind = 'identity_mismatch'");
    let Home { env, .. } = home;
    add_user(&env, CLINICIAN.0, CLINICIAN.1, "clinician");
    let r = Review::serve(env);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let cookie = r.login(CLINICIAN).await;
        let page = r
            .get(&format!("/exceptions/{exception}"), Some(&cookie))
            .await;
        assert!(
            page.body.contains("do-confirm") && page.body.contains("do-reject"),
            "{}",
            page.body
        );
        assert!(!page.body.contains("do-dismiss"));
        assert!(
            page.body.contains("MRN-someone-else"),
            "both identities shown"
        );
        let csrf = r.csrf(&cookie).await;
        let path = format!("/exceptions/{exception}/decide");
        let a = r
            .post_form(
                &path,
                Some(&cookie),
                &[("action", "confirm"), ("csrf", &csrf)],
            )
            .await;
        assert_eq!(a.status, 400, "a note is required: {}", a.body);
        let a = r
            .post_form(
                &path,
                Some(&cookie),
                &[
                    ("action", "confirm"),
                    ("note", "checked her ID"),
                    ("csrf", &csrf),
                ],
            )
            .await;
        assert_eq!(a.status, 303, "{}", a.body);
    });
    assert_eq!(
        r.env
            .query_string(&format!("SELECT state FROM links WHERE id = {id}")),
        "active"
    );
    assert_eq!(
        r.env.query_i64(
            "SELECT COUNT(*) FROM audit WHERE action = 'link.confirm' AND actor = 'dr.lee'"
        ),
        1
    );
}

#[test]
fn the_exception_page_rejects_a_held_link_and_tells_the_provider() {
    use crate::review_server::{CLINICIAN, Review, add_user};
    let sandbox = Sandbox::start();
    change_identity(&sandbox, json!({"mrn": "MRN-someone-else"}));
    let (home, id) = linked(&sandbox, &userinfo(&sandbox, ""), json!({}));
    let (_, report) = pull(&home);
    assert_eq!(report["outcome"], "held", "{report}");
    let exception = home
        .env
        .query_i64("SELECT id FROM exceptions WHERE kind = 'identity_mismatch'");
    let Home { env, config } = home;
    add_user(&env, CLINICIAN.0, CLINICIAN.1, "clinician");
    // The server holds the vault key (the home's key file), so it can
    // tell the provider.
    let r = Review::serve_with_env(env, &["--config", &config], crate::pull::harness::SECRETS);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let cookie = r.login(CLINICIAN).await;
        let csrf = r.csrf(&cookie).await;
        let a = r
            .post_form(
                &format!("/exceptions/{exception}/decide"),
                Some(&cookie),
                &[
                    ("action", "reject"),
                    ("note", "not the patient"),
                    ("csrf", &csrf),
                ],
            )
            .await;
        assert_eq!(a.status, 303, "{}", a.body);
    });
    assert_rejected(&r.env, sandbox_revocations(&sandbox), id, "dr.lee");
    assert_eq!(
        r.env
            .query_i64("SELECT COUNT(*) FROM audit WHERE action = 'link.reject.provider'"),
        1
    );
}

/// An RFC 9068 access token (the sandbox signs one when asked) is validated
/// with the provider's JWKS before each pull: the right issuer imports, a
/// wrong one refuses the pull and stores nothing.
#[test]
fn a_jwt_access_token_is_validated_before_the_pull() {
    let sandbox = Sandbox::start();
    let jwt = |issuer: &str| {
        userinfo(
            &sandbox,
            &format!(
                "jwt_access_token = true\njwks_url = \"{}/oauth2/jwks\"\nissuer = \"{issuer}\"",
                sandbox.base
            ),
        )
    };
    let (home, _) = linked(
        &sandbox,
        &jwt(&sandbox.base),
        json!({"jwt_access_token": true}),
    );
    let (_, report) = pull(&home);
    assert_eq!(report["outcome"], "imported", "{report}");

    let (home, _) = linked(
        &sandbox,
        &jwt("https://someone-else.example"),
        json!({"jwt_access_token": true}),
    );
    let (run, report) = pull(&home);
    run.fails(1);
    assert_eq!(report["outcome"], "failed", "{report}");
    assert!(
        report["error"]
            .as_str()
            .is_some_and(|e| e.contains("JWT access token is refused") && e.contains("issuer")),
        "{report}"
    );
    assert_eq!(regimens(&home), 0);
}

/// Provider `idp` of a home's config, resolved as rxsync does.
fn resolved(home: &Home) -> rxsync::config::Provider {
    let path = std::path::PathBuf::from(&home.config);
    let text = std::fs::read_to_string(&path).expect("config");
    let raw = rxsync::config::parse(&text, &path).expect("parses");
    let cfg = rxsync::config::resolve(raw, Some(&path), home.env.dir.path(), &|_| None)
        .expect("resolves");
    cfg.provider("idp").expect("provider").clone()
}

/// The JWKS is fetched once and kept; a token naming a key the set lacks
/// makes one more fetch (the provider may have rotated), then is refused
/// as an unknown kid — and a burst of such tokens fetches no more.
#[test]
fn an_unknown_kid_refetches_the_jwks_once() {
    use rxsync::identity::IdentityError;
    use rxsync::identity::remote::{Audience, TokenKind, validate_with_jwks};
    let sandbox = Sandbox::start();
    let config = format!(
        "{}[providers.identity]\nremote = \"id_token:mrn\"\njwks_url = \"{base}/oauth2/jwks\"\nissuer = \"{base}\"\n",
        fhir_at(&sandbox, "idp", "demo-client", "header"),
        base = sandbox.base
    );
    let (home, _) = linked(&sandbox, &config, json!({}));
    let provider = resolved(&home);
    let settings = provider.identity.clone().expect("identity");
    let client = rxsync::fetch::http::HttpClient::for_provider(&provider).expect("client");
    let jwks = rxsync::fetch::jwks::JwksCache::default();
    let (_, grant) = sandbox.admin(
        "/admin/oauth2/grants",
        Some(&json!({"client_id": "demo-client", "patient": REMOTE, "id_token": {"nonce": "n"}})),
    );
    let good = grant["id_token"].as_str().expect("id_token").to_string();
    // The same token, its header naming a key the provider never had.
    let (_, rest) = good.split_once('.').expect("a JWT");
    let header = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        r#"{"alg":"RS256","kid":"rotated-away"}"#,
    );
    let unknown = format!("{header}.{rest}");
    crate::pull::harness::clear_requests(&sandbox);
    let now = chrono::Utc::now().timestamp();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let check = |token: &str| {
        rt.block_on(validate_with_jwks(
            &client,
            &jwks,
            Audience {
                provider: &provider,
                settings: &settings,
                client_id: "demo-client",
            },
            token,
            TokenKind::Id { nonce: Some("n") },
            now,
        ))
    };
    let fetches = || {
        crate::pull::harness::requests(&sandbox)
            .iter()
            .filter(|r| r["path"] == "/oauth2/jwks")
            .count()
    };
    check(&good).expect("valid");
    check(&good).expect("valid again");
    assert_eq!(fetches(), 1, "kept");
    for _ in 0..3 {
        let e = check(&unknown).expect_err("unknown kid");
        assert!(matches!(e, IdentityError::UnknownKid(_)), "{e:?}");
    }
    assert_eq!(
        fetches(),
        2,
        "one refetch for the unknown kid, not one per token"
    );
}

/// The identity is read with a fresh token. The link's access token is
/// refused by the provider (it says `expires_in`, yet the provider has
/// dropped it — introspection calls it inactive, userinfo answers 401), or
/// its known expiry has passed: the pull refreshes once (the new pair
/// committed before it is used), reads the identity with the new token,
/// and imports with it — no second refresh for the document.
#[test]
fn an_expired_access_token_is_refreshed_once_before_the_identity_is_read() {
    let sandbox = Sandbox::start();
    let userinfo_only = format!(
        "{}[providers.identity]\nremote = \"userinfo:mrn\"\nuserinfo_url = \"{}/oauth2/userinfo\"\n",
        fhir_at(&sandbox, "idp", "demo-client", "header"),
        sandbox.base
    );
    let cases = [
        (
            "introspection says inactive",
            userinfo(&sandbox, ""),
            json!({"access_token_valid": false}),
        ),
        (
            "userinfo answers 401",
            userinfo_only.clone(),
            json!({"access_token_valid": false}),
        ),
        (
            "the known expiry passed",
            userinfo_only,
            json!({"expires_in": 1}),
        ),
    ];
    for (case, config, grant) in cases {
        let before = crate::pull::harness::stats(&sandbox)["refreshes"]
            .as_i64()
            .unwrap_or(0);
        let (home, id) = linked(&sandbox, &config, grant);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let (run, report) = pull(&home);
        assert_eq!(report["outcome"], "imported", "{case}: {report} {run:?}");
        assert_eq!(report["refreshed"], true, "{case}: {report}");
        assert_eq!(
            crate::pull::harness::stats(&sandbox)["refreshes"]
                .as_i64()
                .unwrap_or(0)
                - before,
            1,
            "{case}: one refresh per pull"
        );
        assert_eq!(regimens(&home), 1, "{case}");
        let row = home.link_row(id);
        assert_eq!(row["state"], "active", "{case}");
        assert_eq!(row["remote_identity"]["subject"], REMOTE, "{case}: {row}");
        assert_eq!(
            home.env
                .query_i64("SELECT COUNT(*) FROM audit WHERE action = 'link.refresh'"),
            1,
            "{case}: the refreshed pair was committed"
        );
    }
}
