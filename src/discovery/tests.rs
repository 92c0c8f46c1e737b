use super::*;
use crate::config::{self, ProviderAuth};
use std::path::Path;

fn at(u: &str) -> Url {
    Url::parse(u).unwrap()
}

const SMART: &str = r#"{
  "issuer": "https://ehr.example/fhir",
  "jwks_uri": "https://ehr.example/jwks",
  "authorization_endpoint": "https://ehr.example/auth/authorize",
  "token_endpoint": "https://ehr.example/auth/token",
  "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
  "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
  "registration_endpoint": "/auth/register",
  "scopes_supported": ["openid", "fhirUser", "launch/patient", "offline_access",
     "patient/MedicationRequest.rs", "patient/MedicationStatement.rs", "patient/Observation.rs"],
  "response_types_supported": ["code"],
  "introspection_endpoint": "https://ehr.example/auth/introspect",
  "revocation_endpoint": "https://ehr.example/auth/revoke",
  "code_challenge_methods_supported": ["S256"],
  "capabilities": ["launch-standalone", "client-confidential-symmetric", "permission-v2"]
}"#;

const CAPABILITY: &str = r#"{
  "resourceType": "CapabilityStatement", "fhirVersion": "3.0.2", "kind": "instance",
  "rest": [{"mode": "server", "security": {"extension": [{
    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
    "extension": [
      {"url": "token", "valueUri": "https://ehr.example/oauth/token"},
      {"url": "authorize", "valueUri": "https://ehr.example/oauth/authorize"},
      {"url": "register", "valueUri": "https://ehr.example/oauth/register"},
      {"url": "manage", "valueUri": "https://ehr.example/oauth/manage"},
      {"url": "revoke", "valueUri": "https://ehr.example/oauth/revoke"}
    ]}]}}]
}"#;

const OIDC: &str = r#"{
  "issuer": "https://id.example",
  "authorization_endpoint": "https://id.example/auth",
  "token_endpoint": "https://id.example/token",
  "userinfo_endpoint": "https://id.example/me",
  "jwks_uri": "https://id.example/jwks",
  "registration_endpoint": "https://id.example/reg",
  "scopes_supported": ["openid", "offline_access"],
  "token_endpoint_auth_methods_supported": ["client_secret_post"],
  "code_challenge_methods_supported": ["S256", "plain"]
}"#;

#[test]
fn a_smart_configuration_is_read_whole() {
    let base = at("https://ehr.example/fhir/.well-known/smart-configuration");
    let d = parse(Source::SmartConfiguration, SMART.as_bytes(), &base).unwrap();
    assert_eq!(d.source, Some(Source::SmartConfiguration));
    assert_eq!(
        d.token_endpoint.as_ref().map(Url::as_str),
        Some("https://ehr.example/auth/token")
    );
    // A relative endpoint resolves against the document's URL.
    assert_eq!(
        d.registration_endpoint.as_ref().map(Url::as_str),
        Some("https://ehr.example/auth/register")
    );
    assert_eq!(d.code_challenge_methods, ["S256"]);
    assert_eq!(
        d.client_auth_methods,
        ["client_secret_basic", "private_key_jwt"]
    );
    assert_eq!(d.client_auth_signing_algs, ["RS384", "ES384"]);
    assert!(d.capabilities.iter().any(|c| c == "permission-v2"));
    assert!(d.issuer.is_some() && d.jwks_uri.is_some());
    // What it lacks is said, each by name.
    assert_eq!(d.missing, ["userinfo_endpoint: not announced"]);
}

#[test]
fn capability_statement_oauth_uris_are_read_and_what_they_lack_said() {
    let base = at("https://ehr.example/fhir/metadata");
    let d = parse(Source::CapabilityStatement, CAPABILITY.as_bytes(), &base).unwrap();
    assert_eq!(d.fhir_version.as_deref(), Some("3.0.2"));
    assert_eq!(
        d.token_endpoint.as_ref().map(Url::as_str),
        Some("https://ehr.example/oauth/token")
    );
    assert_eq!(
        d.manage_endpoint.as_ref().map(Url::as_str),
        Some("https://ehr.example/oauth/manage")
    );
    assert!(d.registration_endpoint.is_some() && d.revocation_endpoint.is_some());
    assert!(
        d.missing
            .iter()
            .any(|m| m == "oauth-uris introspect: not announced")
    );
    assert!(d.missing.iter().any(|m| m.starts_with("PKCE methods")));
    assert_eq!(
        fhir_version(CAPABILITY.as_bytes()).as_deref(),
        Some("3.0.2")
    );
}

#[test]
fn an_openid_configuration_is_read() {
    let base = at("https://id.example/.well-known/openid-configuration");
    let d = parse(Source::OpenidConfiguration, OIDC.as_bytes(), &base).unwrap();
    assert_eq!(
        d.userinfo_endpoint.as_ref().map(Url::as_str),
        Some("https://id.example/me")
    );
    assert_eq!(
        d.issuer.as_ref().map(Url::as_str),
        Some("https://id.example/")
    );
    assert_eq!(d.code_challenge_methods, ["S256", "plain"]);
    assert!(
        d.missing
            .iter()
            .any(|m| m == "introspection_endpoint: not announced")
    );
    // OIDC has no SMART capabilities, and does not miss them.
    assert!(!d.missing.iter().any(|m| m.starts_with("capabilities")));
}

#[test]
fn bad_documents_are_refused_saying_why() {
    let base = at("https://ehr.example/fhir/.well-known/smart-configuration");
    let cases: [(&str, Source, &str, &str); 7] = [
        (
            "an HTML page",
            Source::SmartConfiguration,
            "<!doctype html><html><body>Sign in</body></html>",
            "is not JSON",
        ),
        (
            "a JSON array",
            Source::SmartConfiguration,
            "[1, 2]",
            "the top level is an array",
        ),
        (
            "no token endpoint",
            Source::SmartConfiguration,
            r#"{"authorization_endpoint": "https://x/a"}"#,
            "token_endpoint: not announced",
        ),
        (
            "a token endpoint that is a number",
            Source::OpenidConfiguration,
            r#"{"token_endpoint": 7}"#,
            "token_endpoint: is a number",
        ),
        (
            "a token endpoint of another scheme",
            Source::SmartConfiguration,
            r#"{"token_endpoint": "ftp://x/t"}"#,
            "not http(s)",
        ),
        (
            "another FHIR resource",
            Source::CapabilityStatement,
            r#"{"resourceType": "OperationOutcome"}"#,
            "its resourceType is \"OperationOutcome\"",
        ),
        (
            "a CapabilityStatement without oauth-uris",
            Source::CapabilityStatement,
            r#"{"resourceType": "CapabilityStatement", "rest": [{"mode": "server"}]}"#,
            "no rest[].security extension",
        ),
    ];
    for (name, source, body, says) in cases {
        let e = parse(source, body.as_bytes(), &base)
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{name}: {e}");
    }
    let e = parse(Source::SmartConfiguration, b"<html>", &base).unwrap_err();
    assert!(e.to_string().contains("it begins \"<html>\""), "{e}");
}

#[test]
fn a_field_of_the_wrong_type_is_said_not_guessed() {
    let base = at("https://ehr.example/fhir/.well-known/smart-configuration");
    let body = r#"{"token_endpoint": "https://x/t", "scopes_supported": "openid",
                   "code_challenge_methods_supported": [], "revocation_endpoint": {"u": 1}}"#;
    let d = parse(Source::SmartConfiguration, body.as_bytes(), &base).unwrap();
    assert!(d.scopes.is_empty() && d.code_challenge_methods.is_empty());
    for says in [
        "scopes_supported: is a string, not a list of strings",
        "code_challenge_methods_supported: an empty list",
        "revocation_endpoint: is an object, not a URL string",
    ] {
        assert!(
            d.missing.iter().any(|m| m == says),
            "{says}: {:?}",
            d.missing
        );
    }
}

/// The rendered block, plus the client id a user adds, as a config file.
fn load(block: &str, added: &str) -> Result<config::Config, config::ConfigError> {
    let file = Path::new("/etc/rx/config.toml");
    let text = format!("{block}{added}");
    let raw = config::parse(&text, file)?;
    config::resolve(raw, Some(file), Path::new("/"), &|_| None)
}

/// The block with its `[providers.identity]` example switched on: one
/// leading `# ` removed from each line from its heading on, as the block
/// tells the user to do.
fn uncomment_identity(block: &str) -> String {
    let mut inside = false;
    let mut out = String::new();
    for l in block.lines() {
        inside |= l == toml::IDENTITY_HEADING;
        let l = match inside {
            true => l.strip_prefix("# ").unwrap_or(l),
            false => l,
        };
        out.push_str(l);
        out.push('\n');
    }
    assert!(inside, "no identity example:\n{block}");
    out
}

#[test]
fn the_toml_block_loads_with_the_config_parser() {
    let doc = at("https://ehr.example/fhir/.well-known/smart-configuration");
    let mut d = parse(Source::SmartConfiguration, SMART.as_bytes(), &doc).unwrap();
    d.fhir_version = Some("4.0.1".into());
    let base = at("https://ehr.example/fhir");
    let block = toml::render("ehr", &base, &doc, &d);
    // As printed: no client id yet, but registration is offered, so it loads.
    let c = load(&block, "").unwrap();
    let p = c.provider("ehr").unwrap();
    let ProviderAuth::Oauth2(o) = &p.auth else {
        panic!("oauth2")
    };
    assert_eq!(
        o.token_url.as_ref().map(Url::as_str),
        Some("https://ehr.example/auth/token")
    );
    assert_eq!(
        o.revocation_url.as_ref().map(Url::as_str),
        Some("https://ehr.example/auth/revoke")
    );
    assert_eq!(
        o.registration_url.as_ref().map(Url::as_str),
        Some("https://ehr.example/auth/register")
    );
    assert_eq!(
        o.scopes,
        [
            "patient/MedicationRequest.rs",
            "patient/MedicationStatement.rs",
            "offline_access",
            "launch/patient",
            "openid",
            "fhirUser"
        ]
    );
    assert_eq!(o.client_id, None);
    // With what the user adds (appended lines land in [providers.auth]).
    let c = load(
        &block,
        "client_id = \"abc\"\nclient_secret_env = \"EHR_SECRET\"\n",
    )
    .unwrap();
    let ProviderAuth::Oauth2(o) = &c.provider("ehr").unwrap().auth else {
        panic!("oauth2")
    };
    assert_eq!(o.client_id.as_deref(), Some("abc"));
    // The consent's keys are real keys, and load: the discovered
    // authorization endpoint, SMART's aud, the one loopback redirect_uri.
    let consent = o.consent.as_ref().expect("consent settings from the block");
    assert_eq!(
        consent.authorize_url.as_ref().map(Url::as_str),
        Some("https://ehr.example/auth/authorize")
    );
    assert_eq!(
        consent.authorize_params,
        [("aud".to_string(), "https://ehr.example/fhir".to_string())]
    );
    assert_eq!(
        o.redirect_uri.as_ref().map(Url::as_str),
        Some("http://127.0.0.1:8765/callback")
    );
    assert_eq!(o.client_auth, config::ClientAuth::Basic);
    // The identity guard is a commented example with what was discovered.
    assert!(!block.contains("not in this build"), "{block}");
    for key in ["jwks_url", "issuer"] {
        assert!(block.contains(&format!("# {key} = ")), "{key}:\n{block}");
    }
    assert!(!block.contains("# authorize_url"), "{block}");
    assert!(block.contains("# # userinfo_url: not announced"), "{block}");
    // As printed, the block has no guard; uncommented, the example loads
    // as the config parser's `[providers.identity]`.
    assert!(c.provider("ehr").unwrap().identity.is_none());
    let guarded = uncomment_identity(&block);
    let c = load(&guarded, "").unwrap_or_else(|e| panic!("{e}\n{guarded}"));
    let identity = c
        .provider("ehr")
        .unwrap()
        .identity
        .clone()
        .expect("identity");
    assert_eq!(identity.remote.to_string(), "id_token:mrn");
    assert_eq!(identity.local, crate::identity::LocalField::Mrn);
    assert_eq!(identity.allow, None, "the allow-list stays an example");
    assert_eq!(
        identity.jwks_url.as_ref().map(Url::as_str),
        Some("https://ehr.example/jwks")
    );
    assert_eq!(identity.issuer.as_deref(), Some("https://ehr.example/fhir"));
    // With userinfo announced, the example reads it.
    let mut d = d.clone();
    d.userinfo_endpoint = Some(at("https://ehr.example/auth/userinfo"));
    let guarded = uncomment_identity(&toml::render("ehr", &base, &doc, &d));
    let c = load(&guarded, "").unwrap_or_else(|e| panic!("{e}\n{guarded}"));
    let identity = c
        .provider("ehr")
        .unwrap()
        .identity
        .clone()
        .expect("identity");
    assert_eq!(identity.remote.to_string(), "userinfo:mrn");
    assert_eq!(
        identity.userinfo_url.as_ref().map(Url::as_str),
        Some("https://ehr.example/auth/userinfo")
    );
    assert!(block.contains("# FHIR version (CapabilityStatement fhirVersion): 4.0.1"));
    assert!(block.contains("#   - userinfo_endpoint: not announced"));
}

#[test]
fn every_shape_renders_a_block_that_loads() {
    let cases = [
        (
            Source::CapabilityStatement,
            CAPABILITY,
            "https://ehr.example/fhir/metadata",
        ),
        (
            Source::OpenidConfiguration,
            OIDC,
            "https://id.example/.well-known/openid-configuration",
        ),
        (
            Source::SmartConfiguration,
            r#"{"token_endpoint": "https://x.example/t", "token_endpoint_auth_methods_supported": ["private_key_jwt"]}"#,
            "https://x.example/.well-known/smart-configuration",
        ),
    ];
    for (source, body, doc) in cases {
        let doc = at(doc);
        let d = parse(source, body.as_bytes(), &doc).unwrap();
        let block = toml::render("p-1", &at("https://x.example/fhir"), &doc, &d);
        let added = if d.registration_endpoint.is_some() {
            ""
        } else {
            "client_id = \"c\"\n"
        };
        let c = load(&block, added).unwrap_or_else(|e| panic!("{source:?}: {e}\n{block}"));
        assert!(c.provider("p-1").is_some());
        // The identity example loads too, the client id put above it.
        let marker = "# --- The wrong-patient guard";
        let guarded = uncomment_identity(&block.replacen(marker, &format!("{added}{marker}"), 1));
        let c = load(&guarded, "").unwrap_or_else(|e| panic!("{source:?}: {e}\n{guarded}"));
        assert!(
            c.provider("p-1")
                .and_then(|p| p.identity.as_ref())
                .is_some()
        );
    }
}

#[test]
fn v1_servers_get_read_scopes() {
    let d = Discovered {
        scopes: vec![
            "patient/MedicationRequest.read".into(),
            "patient/*.read".into(),
            "offline_access".into(),
        ],
        ..Discovered::default()
    };
    assert_eq!(
        toml::choose_scopes(&d),
        ["patient/MedicationRequest.read", "offline_access"]
    );
    let none_announced = Discovered::default();
    assert_eq!(toml::choose_scopes(&none_announced).len(), 5);
    assert!(toml::choose_scopes(&none_announced)[0].ends_with(".read"));
}

#[test]
fn an_endpoint_in_plain_http_to_another_host_is_not_used_and_said_why() {
    let base = at("https://ehr.example/fhir/.well-known/smart-configuration");
    // Every endpoint a client would send a code, a verifier, a secret or a
    // token to: each one in plain http to a host that is not loopback.
    let doc = SMART
        .replace(
            "https://ehr.example/auth/revoke",
            "http://evil.example/revoke",
        )
        .replace(
            "https://ehr.example/auth/introspect",
            "http://evil.example/introspect",
        )
        .replace(
            "https://ehr.example/auth/authorize",
            "http://evil.example/authorize",
        )
        .replace("https://ehr.example/jwks", "http://evil.example/jwks")
        .replace("\"/auth/register\"", "\"http://evil.example/register\"");
    let d = parse(Source::SmartConfiguration, doc.as_bytes(), &base).unwrap();
    assert!(d.revocation_endpoint.is_none());
    assert!(d.introspection_endpoint.is_none());
    assert!(d.authorization_endpoint.is_none());
    assert!(d.jwks_uri.is_none());
    assert!(d.registration_endpoint.is_none());
    for name in [
        "revocation_endpoint",
        "introspection_endpoint",
        "authorization_endpoint",
        "jwks_uri",
        "registration_endpoint",
    ] {
        assert!(
            d.missing.iter().any(|m| m.starts_with(&format!("{name}: "))
                && m.contains("plain http to a host that is not loopback")),
            "{name} in {:?}",
            d.missing
        );
    }
    // The token endpoint: the document has no usable one, and says why.
    let doc = SMART.replace(
        "https://ehr.example/auth/token",
        "http://evil.example/token",
    );
    let e = parse(Source::SmartConfiguration, doc.as_bytes(), &base)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no usable token endpoint"), "{e}");
    assert!(e.contains("http://evil.example/token"), "{e}");
    assert!(
        e.contains("plain http to a host that is not loopback"),
        "{e}"
    );
    // The same in a CapabilityStatement's oauth-uris.
    let doc = CAPABILITY.replace(
        "https://ehr.example/oauth/revoke",
        "http://evil.example/revoke",
    );
    let d = parse(Source::CapabilityStatement, doc.as_bytes(), &base).unwrap();
    assert!(d.revocation_endpoint.is_none());
    assert!(
        d.missing
            .iter()
            .any(|m| m.starts_with("oauth-uris revoke: ")
                && m.contains("plain http to a host that is not loopback"))
    );
}

#[test]
fn a_loopback_endpoint_in_plain_http_is_used() {
    for host in [
        "127.0.0.1:8080",
        "[::1]:8080",
        "localhost:8080",
        "LOCALHOST",
    ] {
        let base = at(&format!(
            "http://{host}/fhir/.well-known/smart-configuration"
        ));
        let doc = SMART.replace("https://ehr.example", &format!("http://{host}"));
        let d = parse(Source::SmartConfiguration, doc.as_bytes(), &base).unwrap();
        assert_eq!(
            d.token_endpoint.as_ref().map(Url::as_str),
            Some(format!("http://{}/auth/token", host.to_ascii_lowercase()).as_str())
        );
        assert!(d.revocation_endpoint.is_some() && d.registration_endpoint.is_some());
        assert_eq!(d.missing, ["userinfo_endpoint: not announced"], "{host}");
    }
}

#[test]
fn one_loopback_rule() {
    for u in [
        "http://127.0.0.1/",
        "http://127.8.9.1:9/",
        "http://[::1]/",
        "http://localhost/",
        "http://LocalHost:80/",
        "https://ehr.example/",
    ] {
        assert!(is_secure(&at(u)), "{u}");
    }
    for u in [
        "http://ehr.example/",
        "http://localhost.evil.example/",
        "http://10.0.0.1/",
        "ftp://127.0.0.1/",
        "file:///etc/passwd",
    ] {
        assert!(!is_secure(&at(u)), "{u}");
    }
}

#[test]
fn a_cached_answer_with_an_insecure_endpoint_is_not_secure() {
    let base = at("https://ehr.example/fhir/.well-known/smart-configuration");
    let mut d = parse(Source::SmartConfiguration, SMART.as_bytes(), &base).unwrap();
    assert!(d.endpoints_secure());
    d.token_endpoint = Some(at("http://evil.example/token"));
    assert!(!d.endpoints_secure());
}
