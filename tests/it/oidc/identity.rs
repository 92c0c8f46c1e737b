//! The wrong-patient guard against oidc-provider's real tokens, through
//! `rxsync link start` and its login and consent pages: the ID token it
//! signs is validated with its JWKS (`id_token:mrn`), its userinfo and its
//! introspection answer are read; a match is audited and recorded on the
//! link, another account's MRN holds the link and writes no regimen, a
//! wrong issuer refuses the token. `prompt_login` reaches oidc-provider as
//! `prompt=login` (its own interaction says so), and with `discover = true`
//! the JWKS, issuer, algorithms, userinfo and introspection endpoints come
//! from its `/.well-known/openid-configuration`.

use serde_json::Value;

use super::consent::{Browser, free_port};
use super::server::{OidcServer, SECRET, issued_tokens_in};
use crate::consent::{get, spawn_link_start};
use crate::support::{Run, TestEnv};

const SECRET_ENV: &str = "RXSYNC_TEST_OIDC_SECRET";
/// The account signed in at oidc-provider; its claims say `MRN-ehr-2002`.
const ACCOUNT: &str = "ehr-2002";
const ACCOUNT_MRN: &str = "MRN-ehr-2002";

/// One `[[providers]]` entry at the server, linking by consent on `port`.
struct ProviderSpec<'a> {
    id: &'a str,
    /// Top-level keys (`discover = true`) and the base URL.
    base_url: &'a str,
    top: &'a str,
    /// The endpoint keys of `[providers.auth]` (none with discovery).
    endpoints: &'a str,
    /// More `[providers.auth]` keys (`prompt_login`, `introspection_url`).
    auth: &'a str,
    /// The `[providers.identity]` table's body.
    identity: &'a str,
}

fn provider_toml(p: &ProviderSpec<'_>, port: u16) -> String {
    format!(
        r#"[[providers]]
id = "{id}"
kind = "fhir"
base_url = "{base_url}"
resources = ["MedicationRequest"]
{top}
[providers.auth]
scheme = "oauth2"
{endpoints}
client_id = "rxsync"
client_auth = "basic"
client_secret_env = "{SECRET_ENV}"
redirect_uri = "http://127.0.0.1:{port}/callback"
placement = "header"
scopes = ["openid", "offline_access", "patient/MedicationRequest.rs"]
authorize_params = {{ prompt = "consent" }}
{auth}
[providers.identity]
{identity}
"#,
        id = p.id,
        base_url = p.base_url,
        top = p.top,
        endpoints = p.endpoints,
        auth = p.auth,
        identity = p.identity,
    )
}

/// The configured endpoints of the server (no discovery).
fn configured_endpoints(server: &OidcServer) -> String {
    let e = &server.endpoints;
    format!(
        "token_url = \"{}\"\nauthorize_url = \"{}\"",
        e.token_endpoint, e.authorization_endpoint
    )
}

/// An rxsync home with the sample dictionary, patient `patient` (MRN
/// `mrn`, Pat Doe, born 1980-04-02) and `providers`.
fn home(patient: &str, mrn: &str, providers: &[String]) -> (TestEnv, String) {
    let env = TestEnv::with_dictionary_and(&[]);
    env.run(&[
        "patient",
        "add",
        "--id",
        patient,
        "--mrn",
        mrn,
        "--name",
        "Pat Doe",
        "--birth-date",
        "1980-04-02",
    ])
    .ok();
    let config = env.write("config.toml", providers.join("\n").as_bytes());
    (env, config)
}

/// `link start` for `patient` at `provider`, the consent given at
/// oidc-provider as `ACCOUNT`; the run (stdout after the URL line) and the
/// authorization URL.
fn consent(
    server: &OidcServer,
    env: &TestEnv,
    config: &str,
    patient: &str,
    provider: &str,
) -> (Run, String) {
    let started = spawn_link_start(env, config, patient, provider, &[], &[(SECRET_ENV, SECRET)]);
    let url = started.url.clone();
    assert!(
        url.starts_with(&server.endpoints.issuer),
        "the first line is the authorization URL at oidc-provider: {url}"
    );
    let callback = Browser::default().consent(&url, ACCOUNT, &server.endpoints.issuer);
    assert!(callback.contains("code="), "{callback}");
    let (status, _, page) = get(&callback);
    assert!(status == 200 || status == 400, "{status} {page}");
    (started.finish(), url)
}

fn rx(env: &TestEnv, config: &str, args: &[&str]) -> Run {
    let mut all = vec!["--config", config];
    all.extend(args);
    env.run_with_env(&all, &[(SECRET_ENV, SECRET)])
}

fn link_row(env: &TestEnv, config: &str, provider: &str) -> Value {
    let v = rx(env, config, &["link", "list", "--format", "json"]).json();
    v.as_array()
        .and_then(|rows| rows.iter().find(|r| r["provider"] == provider))
        .cloned()
        .unwrap_or_else(|| panic!("no link at {provider}: {v}"))
}

fn audit_details(env: &TestEnv, action: &str) -> Vec<Value> {
    env.query_strings(&format!(
        "SELECT detail FROM audit WHERE action = '{}' ORDER BY id",
        action.replace('\'', "''")
    ))
    .into_iter()
    .map(|d| serde_json::from_str(&d.expect("a detail")).expect("audit detail JSON"))
    .collect()
}

/// Neither the client secret nor any token oidc-provider issued is in `runs`.
fn nothing_leaked(server: &OidcServer, runs: &[&Run]) {
    let issued = server.issued();
    for run in runs {
        for text in [&run.stdout, &run.stderr] {
            assert_eq!(issued_tokens_in(text, &issued), 0, "a token leaked: {text}");
            assert!(!text.contains(SECRET), "the secret leaked: {text}");
        }
    }
}

fn import(env: &TestEnv, config: &str, patient: &str, provider: &str) -> Value {
    let run = rx(
        env,
        config,
        &[
            "import",
            "--patient",
            patient,
            "--provider",
            provider,
            "--format",
            "json",
        ],
    );
    let v: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("import JSON ({e}): {run:?}"));
    match v {
        Value::Array(mut a) if a.len() == 1 => a.remove(0),
        other => other,
    }
}

/// oidc-provider's ID token (RS256, its JWKS, `iss` its issuer, `aud`
/// rxsync, the flow's nonce) is validated and its `mrn` claim matches the
/// local patient: audited as `identity.match`, recorded on the link, and
/// the pull imports. `prompt_login = true` reaches oidc-provider as
/// `prompt=login`: its login interaction gives `login_prompt` as a reason.
#[test]
fn oidc_providers_id_token_is_validated_and_its_mrn_matches_the_patient() {
    let port = free_port();
    let server = OidcServer::start_with(&[
        "--redirect-uri",
        &format!("http://127.0.0.1:{port}/callback"),
    ]);
    let e = &server.endpoints;
    let identity = format!(
        "remote = \"id_token:mrn\"\njwks_url = \"{}\"\nissuer = \"{}\"\nalso = [\"family_name\", \"birth_date\"]",
        e.jwks_uri, e.issuer
    );
    let endpoints = configured_endpoints(&server);
    let spec = ProviderSpec {
        id: "oidc",
        base_url: &e.fhir_base,
        top: "",
        endpoints: &endpoints,
        auth: "prompt_login = true",
        identity: &identity,
    };
    let (env, config) = home("P1", ACCOUNT_MRN, &[provider_toml(&spec, port)]);
    let (run, url) = consent(&server, &env, &config, "P1", "oidc");
    assert_eq!(run.code, 0, "{run:?}");
    let q: std::collections::HashMap<String, String> = url::Url::parse(&url)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["prompt"], "login consent", "{url}");

    // oidc-provider's side: the request carried prompt=login and a nonce,
    // and its login interaction was started because of it.
    let stats = server.stats();
    let auths = stats["authorizations"].as_array().expect("authorizations");
    assert_eq!(auths.len(), 1, "{stats}");
    assert_eq!(auths[0]["prompt"], "login consent", "{stats}");
    assert_eq!(auths[0]["nonce"], true, "{stats}");
    let login = stats["interactions"]
        .as_array()
        .and_then(|i| i.iter().find(|x| x["prompt"] == "login"))
        .cloned()
        .unwrap_or_else(|| panic!("no login interaction: {stats}"));
    assert!(
        login["reasons"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x == "login_prompt")),
        "{login}"
    );

    let row = link_row(&env, &config, "oidc");
    assert_eq!(row["state"], "active", "{row}");
    let remote = &row["remote_identity"];
    assert_eq!(remote["subject"], ACCOUNT, "{row}");
    assert_eq!(remote["identifiers"]["id_token:mrn"], ACCOUNT_MRN, "{row}");
    assert_eq!(remote["family_name"], "Doe", "{row}");
    assert_eq!(remote["birth_date"], "1980-04-02", "{row}");
    assert!(remote["read_at"].is_string(), "{row}");
    let matched = audit_details(&env, "identity.match");
    assert_eq!(matched.len(), 1, "{matched:?}");
    assert_eq!(
        matched[0]["remote_identity"]["identifiers"]["id_token:mrn"], ACCOUNT_MRN,
        "{matched:?}"
    );
    assert!(
        matched[0]["verdict"].to_string().contains("birth_date"),
        "what was compared is audited: {matched:?}"
    );
    assert!(audit_details(&env, "identity.held").is_empty());

    let pulled = import(&env, &config, "P1", "oidc");
    assert_eq!(pulled["outcome"], "imported", "{pulled}");
    assert_eq!(
        env.query_i64("SELECT COUNT(*) FROM regimens WHERE patient_id = 'P1'"),
        1
    );
    nothing_leaked(&server, &[&run]);
}

/// The account signed in at oidc-provider is not the local patient (its
/// MRN differs): the link is held with an `identity_mismatch` exception
/// showing both identities, and a pull writes no regimen. Without
/// `prompt_login` the request carries no `prompt=login`. An issuer that is
/// not the token's makes no link at all.
#[test]
fn another_accounts_id_token_holds_the_link_and_a_wrong_issuer_makes_none() {
    let port = free_port();
    let server = OidcServer::start_with(&[
        "--redirect-uri",
        &format!("http://127.0.0.1:{port}/callback"),
    ]);
    let e = &server.endpoints;
    let identity = format!(
        "remote = \"id_token:mrn\"\njwks_url = \"{}\"\nissuer = \"{}\"",
        e.jwks_uri, e.issuer
    );
    let endpoints = configured_endpoints(&server);
    let spec = ProviderSpec {
        id: "oidc",
        base_url: &e.fhir_base,
        top: "",
        endpoints: &endpoints,
        auth: "",
        identity: &identity,
    };
    let (env, config) = home("P1", "MRN-7777", &[provider_toml(&spec, port)]);
    let (run, url) = consent(&server, &env, &config, "P1", "oidc");
    assert_eq!(run.code, 0, "a held link is still made: {run:?}");
    assert!(!url.contains("login"), "{url}");
    let stats = server.stats();
    assert_eq!(stats["authorizations"][0]["prompt"], "consent", "{stats}");
    let login = stats["interactions"]
        .as_array()
        .and_then(|i| i.iter().find(|x| x["prompt"] == "login"))
        .cloned()
        .unwrap_or_else(|| panic!("no login interaction: {stats}"));
    assert!(
        !login["reasons"].to_string().contains("login_prompt"),
        "{login}"
    );

    let row = link_row(&env, &config, "oidc");
    assert_eq!(row["state"], "held", "{row}");
    assert_eq!(
        row["remote_identity"]["identifiers"]["id_token:mrn"], ACCOUNT_MRN,
        "{row}"
    );
    assert_eq!(audit_details(&env, "identity.held").len(), 1);
    assert!(audit_details(&env, "identity.match").is_empty());
    let queue = rx(&env, &config, &["queue", "list", "--format", "json"]).json();
    let held: Vec<&Value> = queue
        .as_array()
        .expect("queue rows")
        .iter()
        .filter(|r| r["kind"] == "identity_mismatch")
        .collect();
    assert_eq!(held.len(), 1, "{queue}");
    assert_eq!(held[0]["state"], "open", "{queue}");
    let detail = held[0].to_string();
    assert!(
        detail.contains("MRN-7777") && detail.contains(ACCOUNT_MRN),
        "both identities: {detail}"
    );
    let pulled = rx(
        &env,
        &config,
        &["import", "--patient", "P1", "--provider", "oidc"],
    );
    assert!(pulled.fails(1).contains("is held"), "{pulled:?}");
    assert_eq!(env.query_i64("SELECT COUNT(*) FROM regimens"), 0);
    assert_eq!(env.query_i64("SELECT COUNT(*) FROM documents"), 0);
    nothing_leaked(&server, &[&run]);

    // The token's `iss` is the server's; another configured issuer refuses it.
    let identity = format!(
        "remote = \"id_token:mrn\"\njwks_url = \"{}\"\nissuer = \"https://idp.example.org\"",
        e.jwks_uri
    );
    let spec = ProviderSpec {
        identity: &identity,
        ..spec
    };
    let (env, config) = home("P1", ACCOUNT_MRN, &[provider_toml(&spec, port)]);
    let (run, _) = consent(&server, &env, &config, "P1", "oidc");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("issuer"), "{}", run.stderr);
    assert_eq!(
        env.query_i64("SELECT COUNT(*) FROM links WHERE state <> 'revoked'"),
        0
    );
    assert!(audit_details(&env, "identity.match").is_empty());
    nothing_leaked(&server, &[&run]);
}

/// The identity read from oidc-provider's userinfo endpoint (the ID token
/// validated too, the token introspected first), then from its RFC 7662
/// introspection answer (`sub`, for the opaque access token).
#[test]
fn userinfo_and_introspection_at_oidc_provider_check_a_consented_link() {
    let port = free_port();
    let server = OidcServer::start_with(&[
        "--redirect-uri",
        &format!("http://127.0.0.1:{port}/callback"),
    ]);
    let e = &server.endpoints;
    let endpoints = configured_endpoints(&server);
    let introspection = format!("introspection_url = \"{}\"", e.introspection_endpoint);
    let userinfo = format!(
        "remote = \"userinfo:mrn\"\nuserinfo_url = \"{}\"\njwks_url = \"{}\"\nissuer = \"{}\"\nalso = [\"family_name\", \"birth_date\"]",
        e.userinfo_endpoint, e.jwks_uri, e.issuer
    );
    let by_userinfo = ProviderSpec {
        id: "oidc",
        base_url: &e.fhir_base,
        top: "",
        endpoints: &endpoints,
        auth: &introspection,
        identity: &userinfo,
    };
    let (env, config) = home("P1", ACCOUNT_MRN, &[provider_toml(&by_userinfo, port)]);
    let (run, _) = consent(&server, &env, &config, "P1", "oidc");
    assert_eq!(run.code, 0, "{run:?}");
    let row = link_row(&env, &config, "oidc");
    assert_eq!(row["state"], "active", "{row}");
    assert_eq!(
        row["remote_identity"]["identifiers"]["userinfo:mrn"], ACCOUNT_MRN,
        "{row}"
    );
    assert_eq!(row["remote_identity"]["subject"], ACCOUNT, "{row}");
    assert_eq!(audit_details(&env, "identity.match").len(), 1);
    nothing_leaked(&server, &[&run]);

    // Introspection as the source: oidc-provider's `sub` is the account,
    // compared with the local patient's id.
    let by_sub = ProviderSpec {
        identity: "remote = \"introspection:sub\"\nlocal = \"id\"",
        ..by_userinfo
    };
    let (env, config) = home(ACCOUNT, "MRN-1", &[provider_toml(&by_sub, port)]);
    let (run, _) = consent(&server, &env, &config, ACCOUNT, "oidc");
    assert_eq!(run.code, 0, "{run:?}");
    let row = link_row(&env, &config, "oidc");
    assert_eq!(row["state"], "active", "{row}");
    assert_eq!(
        row["remote_identity"]["identifiers"]["introspection:sub"], ACCOUNT,
        "{row}"
    );
    assert_eq!(audit_details(&env, "identity.match").len(), 1);
    nothing_leaked(&server, &[&run]);
}

/// `discover = true` at oidc-provider's issuer: the token and
/// authorization endpoints, and for the guard the JWKS, the issuer, the
/// announced ID token algorithms, userinfo and introspection, all come from
/// its `/.well-known/openid-configuration` — `[providers.identity]` names
/// only where the identifier is read.
#[test]
fn discover_true_gives_the_guard_oidc_providers_jwks_issuer_userinfo_and_introspection() {
    let port = free_port();
    let server = OidcServer::start_with(&[
        "--redirect-uri",
        &format!("http://127.0.0.1:{port}/callback"),
    ]);
    let base = format!("{}/", server.endpoints.issuer);
    let spec = |id: &'static str, identity: &'static str| {
        provider_toml(
            &ProviderSpec {
                id,
                base_url: &base,
                top: "discover = true",
                endpoints: "",
                auth: "",
                identity,
            },
            port,
        )
    };
    let providers = [
        spec("by-id-token", "remote = \"id_token:mrn\""),
        spec("by-userinfo", "remote = \"userinfo:mrn\""),
        spec(
            "by-introspection",
            "remote = \"introspection:sub\"\nlocal = \"id\"",
        ),
    ];
    // The local patient's id is the account (introspection's `sub`), its
    // MRN the account's `mrn` claim.
    let (env, config) = home(ACCOUNT, ACCOUNT_MRN, &providers);
    let mut runs = Vec::new();
    for provider in ["by-id-token", "by-userinfo", "by-introspection"] {
        let (run, url) = consent(&server, &env, &config, ACCOUNT, provider);
        assert_eq!(run.code, 0, "{provider}: {run:?}");
        assert!(
            url.starts_with(&server.endpoints.authorization_endpoint),
            "{provider}: the discovered authorization endpoint: {url}"
        );
        let row = link_row(&env, &config, provider);
        assert_eq!(row["state"], "active", "{provider}: {row}");
        assert_eq!(row["remote_identity"]["subject"], ACCOUNT, "{row}");
        runs.push(run);
    }
    let identifiers = |provider: &str| {
        link_row(&env, &config, provider)["remote_identity"]["identifiers"].clone()
    };
    assert_eq!(identifiers("by-id-token")["id_token:mrn"], ACCOUNT_MRN);
    assert_eq!(identifiers("by-userinfo")["userinfo:mrn"], ACCOUNT_MRN);
    assert_eq!(
        identifiers("by-introspection")["introspection:sub"],
        ACCOUNT
    );
    assert_eq!(audit_details(&env, "identity.match").len(), 3);
    // Each provider read oidc-provider's own discovery document once.
    let documents = env.query_i64(
        "SELECT COUNT(*) FROM provider_discovery WHERE document_url LIKE '%/.well-known/openid-configuration'",
    );
    assert_eq!(documents, 3);

    // Discovery at the FHIR base finds the SMART configuration, which names
    // no JWKS: the ID token cannot be validated, so no link is left active,
    // and the error says what discovery lacked.
    let endpoints = configured_endpoints(&server);
    let smart = provider_toml(
        &ProviderSpec {
            id: "smart-only",
            base_url: &server.endpoints.fhir_base,
            top: "discover = true",
            endpoints: &endpoints,
            auth: "",
            identity: "remote = \"id_token:mrn\"",
        },
        port,
    );
    let (env, config) = home(ACCOUNT, ACCOUNT_MRN, &[smart]);
    let (run, _) = consent(&server, &env, &config, ACCOUNT, "smart-only");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("jwks_uri"), "{}", run.stderr);
    assert_eq!(
        env.query_i64("SELECT COUNT(*) FROM links WHERE state <> 'revoked'"),
        0
    );
    runs.push(run);
    let runs: Vec<&Run> = runs.iter().collect();
    nothing_leaked(&server, &runs);
}
