//! A ready `[[providers]]` block from what discovery found.
//!
//! Only keys the configuration accepts are written as keys: the endpoints,
//! the consent's `authorize_url` (with SMART's `aud` in
//! `authorize_params`), the one `redirect_uri` (the RFC 8252 loopback
//! default, used by `provider register` and `link start`), `scopes` and
//! `client_auth`. The wrong-patient guard is an example `[providers.identity]`
//! table, commented out (which identifier to compare is the deployment's
//! choice), with the discovered `userinfo_url`, `jwks_url` and `issuer`
//! filled in: removing one leading `# ` from each of its lines gives a
//! table that loads; notes in it are `# # ` so they stay comments. What
//! was not found, and what the user must add (the client id), are
//! comments too.
//! `[providers.auth]` is the last table, so lines appended to the block
//! land in it.

use super::Discovered;
use url::Url;

/// SMART v2 read-and-search medication scopes, then their v1 spelling.
const MED_TYPES: [&str; 4] = [
    "MedicationRequest",
    "MedicationStatement",
    "MedicationDispense",
    "Medication",
];

/// Quotes a string as a TOML basic string.
fn q(s: &str) -> String {
    ::toml::Value::String(s.to_string()).to_string()
}

/// The scopes to ask for: the medication read scopes in the version the
/// provider speaks, `offline_access`, and `launch/patient`, `openid`,
/// `fhirUser` when announced. When `scopes_supported` is announced, only
/// scopes it lists are asked for.
pub fn choose_scopes(d: &Discovered) -> Vec<String> {
    let announced = |s: &str| d.scopes.iter().any(|x| x == s);
    let v2 = d.capabilities.iter().any(|c| c == "permission-v2")
        || d.scopes.iter().any(|s| s.ends_with(".rs"));
    let suffix = if v2 { "rs" } else { "read" };
    let mut wanted: Vec<String> = MED_TYPES
        .iter()
        .map(|t| format!("patient/{t}.{suffix}"))
        .collect();
    wanted.push("offline_access".to_string());
    let mut out: Vec<String> = if d.scopes.is_empty() {
        wanted
    } else {
        let mut listed: Vec<String> = wanted.into_iter().filter(|s| announced(s)).collect();
        // A server that lists only wildcards (`patient/*.rs`) grants the types through them.
        if !listed.iter().any(|s| s.starts_with("patient/")) {
            for w in [format!("patient/*.{suffix}"), "patient/*.read".to_string()] {
                if announced(&w) && !listed.contains(&w) {
                    listed.push(w);
                }
            }
        }
        listed
    };
    for extra in ["launch/patient", "openid", "fhirUser"] {
        if announced(extra)
            || (extra == "launch/patient"
                && d.scopes.is_empty()
                && d.capabilities.iter().any(|c| c == "launch-standalone"))
        {
            out.push(extra.to_string());
        }
    }
    out
}

/// The `client_auth` value for the announced methods, with why; `None`
/// when the provider announced none rxsync speaks without a key file.
fn choose_client_auth(d: &Discovered) -> (Option<&'static str>, String) {
    let has = |m: &str| d.client_auth_methods.iter().any(|x| x == m);
    if has("client_secret_basic") {
        (Some("basic"), "client_secret_basic".into())
    } else if has("client_secret_post") {
        (Some("post"), "client_secret_post".into())
    } else if has("none") {
        (Some("none"), "none (a public client)".into())
    } else if d.client_auth_methods.is_empty() {
        (
            None,
            "not announced: the default is basic (client_secret_basic)".into(),
        )
    } else {
        (None, format!("only {}", d.client_auth_methods.join(", ")))
    }
}

/// Renders the block. `base_url` is the FHIR base discovery read from;
/// `document` is the URL the document came from.
pub fn render(id: &str, base_url: &Url, document: &Url, d: &Discovered) -> String {
    let mut o = String::new();
    let mut line = |s: String| {
        o.push_str(&s);
        o.push('\n');
    };
    let source = d.source.map_or("nothing", |s| s.path());
    line(format!(
        "# Discovered by rxsync provider discover from {document} ({source})."
    ));
    line("[[providers]]".into());
    line(format!("id = {}", q(id)));
    line("kind = \"fhir\"".into());
    line(format!("base_url = {}", q(base_url.as_str())));
    match &d.fhir_version {
        Some(v) => line(format!(
            "# FHIR version (CapabilityStatement fhirVersion): {v}. rxsync has no FHIR version key: it reads DSTU2, STU3, R4 and R5 shapes as they come."
        )),
        None => line("# FHIR version: not found (no readable /metadata fhirVersion).".into()),
    }
    if !d.missing.is_empty() {
        line("# Not found in the discovery documents:".into());
        for m in &d.missing {
            line(format!("#   - {}", m.replace('\n', " ")));
        }
    }
    line(String::new());
    line("[providers.auth]".into());
    line("scheme = \"oauth2\"".into());
    if let Some(t) = &d.token_endpoint {
        line(format!("token_url = {}", q(t.as_str())));
    }
    if let Some(u) = &d.revocation_endpoint {
        line(format!("revocation_url = {}", q(u.as_str())));
    }
    if let Some(u) = &d.introspection_endpoint {
        line(format!("introspection_url = {}", q(u.as_str())));
    }
    if let Some(u) = &d.registration_endpoint {
        line(format!("registration_url = {}", q(u.as_str())));
    }
    match &d.authorization_endpoint {
        Some(u) => {
            line(format!("authorize_url = {}", q(u.as_str())));
            // SMART App Launch: the authorization request names the FHIR
            // server it wants a token for.
            if matches!(
                d.source,
                Some(super::Source::SmartConfiguration | super::Source::CapabilityStatement)
            ) {
                line(format!(
                    "authorize_params = {{ aud = {} }}",
                    q(base_url.as_str())
                ));
            }
        }
        None => line(
            "# authorize_url: no authorization_endpoint announced (rxsync link start needs one)"
                .into(),
        ),
    }
    line(
        "redirect_uri = \"http://127.0.0.1:8765/callback\"  # RFC 8252 loopback (rxsync link start); the review app: [review] public_url + /oauth/callback"
            .into(),
    );
    let scopes: Vec<String> = choose_scopes(d).iter().map(|s| q(s)).collect();
    line(format!("scopes = [{}]", scopes.join(", ")));
    let (auth, why) = choose_client_auth(d);
    match auth {
        Some(a) => line(format!("client_auth = {}  # announced: {why}", q(a))),
        None if d.client_auth_methods.iter().any(|m| m == "private_key_jwt") => {
            line(format!(
                "# client authentication: {why}; for private_key_jwt set:"
            ));
            line("# client_auth = \"private_key_jwt\"".into());
            line("# private_key_file = \"keys/client.pem\"".into());
            line("# key_id = \"...\"".into());
            let alg = ["RS384", "ES384"]
                .into_iter()
                .find(|a| d.client_auth_signing_algs.iter().any(|x| x == a))
                .unwrap_or("RS384");
            line(format!("# algorithm = \"{alg}\""));
        }
        None => line(format!("# client authentication: {why}")),
    }
    if !d.client_auth_methods.is_empty() {
        line(format!(
            "# token_endpoint_auth_methods_supported: {}",
            d.client_auth_methods.join(", ")
        ));
    }
    match d.code_challenge_methods.is_empty() {
        true => line("# PKCE: code_challenge_methods_supported not announced".into()),
        false => line(format!(
            "# PKCE (code_challenge_methods_supported): {}{}",
            d.code_challenge_methods.join(", "),
            if d.code_challenge_methods.iter().any(|m| m == "S256") {
                ""
            } else {
                " (no S256: rxsync's consent needs S256)"
            }
        )),
    }
    if !d.capabilities.is_empty() {
        line(format!(
            "# SMART capabilities: {}",
            d.capabilities.join(", ")
        ));
    }
    if let Some(m) = &d.manage_endpoint {
        line(format!("# grants are managed by patients at {m}"));
    }
    line("# --- What you must add: the client rxsync is at this provider.".into());
    match &d.registration_endpoint {
        Some(_) => line(format!(
            "# Either set client_id (and client_secret_env or client_secret_file) from the provider's administrator, or run: rxsync provider register --provider {id}"
        )),
        None => line(
            "# client_id = \"...\" and client_secret_env = \"...\" (or client_secret_file): the provider offers no dynamic registration"
                .into(),
        ),
    }
    // Last, so that uncommenting it leaves nothing after it to uncomment.
    for l in identity_example(d) {
        line(l);
    }
    o
}

/// Marks the start of the commented `[providers.identity]` example.
pub(super) const IDENTITY_HEADING: &str = "# [providers.identity]";

/// The commented `[providers.identity]` example: `remote` reads from the
/// first source the provider announces (userinfo, then ID tokens, then
/// introspection, else the FHIR `Patient` the token names), and the
/// discovered endpoints the guard can use.
fn identity_example(d: &Discovered) -> Vec<String> {
    let mut out = vec![
        "# --- The wrong-patient guard (optional): remove one leading \"# \" from each line".into(),
        "# --- from here to the end to compare the patient at the provider with the local one before".into(),
        "# --- any import (README: [providers.identity]). After uncommenting, keys you".into(),
        "# --- append land in this table: put client_id above it, in [providers.auth].".into(),
        IDENTITY_HEADING.into(),
    ];
    let (remote, why) = if d.userinfo_endpoint.is_some() {
        ("userinfo:mrn", "a claim of userinfo")
    } else if d.jwks_uri.is_some() && d.issuer.is_some() {
        (
            "id_token:mrn",
            "a claim of the validated ID token (ask for openid)",
        )
    } else if d.introspection_endpoint.is_some() {
        ("introspection:sub", "a field of the token's introspection")
    } else {
        (
            "patient:http://hospital.example.org/mrn",
            "an identifier system of the FHIR Patient the token names",
        )
    };
    out.push(format!(
        "# remote = {}  # {why}; or userinfo:CLAIM, id_token:CLAIM, introspection:FIELD, profile:JSON-POINTER, patient:IDENTIFIER-SYSTEM",
        q(remote)
    ));
    out.push("# local = \"mrn\"  # what it must equal: the local patient's mrn (or id)".into());
    out.push("# also = [\"family_name\", \"birth_date\"]  # secondary checks (optional)".into());
    out.push("# # allow = [\"MRN-1001\", \"MRN-1002\"]  # enrollment allow-list of remote identifiers (optional)".into());
    let known = [
        ("userinfo_url", &d.userinfo_endpoint),
        ("jwks_url", &d.jwks_uri),
        ("issuer", &d.issuer),
    ];
    for (key, v) in known {
        match v {
            Some(u) => out.push(format!("# {key} = {}", q(u.as_str()))),
            None => out.push(format!("# # {key}: not announced")),
        }
    }
    // A URL without a path is read with one added; the issuer must be the
    // ID tokens' `iss` exactly.
    if d.issuer.as_ref().is_some_and(|i| i.path() == "/") {
        out.push("# # issuer must equal the ID tokens' iss exactly: drop the trailing / if the provider announced none".into());
    }
    out
}
