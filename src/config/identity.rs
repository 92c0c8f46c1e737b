//! `[providers.identity]`: the wrong-patient guard of a provider. Checked
//! here into `identity::IdentitySettings`: `remote` is parsed into its kind
//! once, and each kind must have the endpoint it reads — configured, or,
//! with `discover = true`, one the provider's discovery document can give
//! (`jwks_url`, `issuer`, `userinfo_url`, the introspection endpoint), read
//! at use time (`IdentitySettings::with_discovered`).

use super::ConfigError;
use super::providers::ProviderAuth;
use crate::identity::settings::{DEFAULT_ALGORITHMS, SUPPORTED_ALGORITHMS};
use crate::identity::{IdentitySettings, LocalField, RemoteSource, Secondary};
use serde::Deserialize;
use url::Url;

/// `[providers.identity]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    /// Where the remote identifier is read: `userinfo:CLAIM`,
    /// `id_token:CLAIM`, `introspection:FIELD`, `profile:JSON-POINTER`,
    /// `patient:IDENTIFIER-SYSTEM`.
    pub remote: Option<String>,
    /// The local field it must equal: `mrn` (default) or `id`.
    pub local: Option<String>,
    /// Secondary checks: `family_name`, `birth_date`.
    #[serde(default)]
    pub also: Vec<String>,
    /// Enrollment allow-list of remote identifiers.
    pub allow: Option<Vec<String>>,
    pub userinfo_url: Option<String>,
    pub profile_url: Option<String>,
    pub jwks_url: Option<String>,
    /// The `iss` of the provider's ID tokens.
    pub issuer: Option<String>,
    /// The access token is an RFC 9068 JWT to validate with the JWKS.
    #[serde(default)]
    pub jwt_access_token: bool,
    /// Signature algorithms the provider announces (default: the
    /// discovered `id_token_signing_alg_values_supported` with `discover =
    /// true`, else RS256, ES256).
    pub algorithms: Option<Vec<String>>,
}

/// What `resolve_identity` needs of the rest of the provider.
pub(super) struct ProviderFacts<'a> {
    pub auth: &'a ProviderAuth,
    /// `kind = "fhir"`.
    pub fhir: bool,
    /// `discover = true`: endpoints may come from discovery.
    pub discover: bool,
    pub base_url: &'a Url,
}

/// Checks `[providers.identity]`; `e` names the provider and the file.
pub(super) fn resolve_identity(
    raw: RawIdentity,
    facts: ProviderFacts<'_>,
    e: &dyn Fn(&str, String) -> ConfigError,
) -> Result<IdentitySettings, ConfigError> {
    let ProviderFacts {
        auth,
        fhir,
        discover,
        base_url,
    } = facts;
    let remote: RemoteSource = raw
        .remote
        .as_deref()
        .ok_or_else(|| {
            e(
                "identity.remote",
                "is missing (e.g. \"userinfo:mrn\")".into(),
            )
        })?
        .parse()
        .map_err(|m| e("identity.remote", m))?;
    let local = raw
        .local
        .as_deref()
        .map_or(Ok(LocalField::Mrn), str::parse)
        .map_err(|m| e("identity.local", m))?;
    let also = raw
        .also
        .iter()
        .map(|a| a.parse::<Secondary>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| e("identity.also", m))?;
    if raw
        .allow
        .as_ref()
        .is_some_and(|a| a.iter().any(|v| v.trim().is_empty()))
    {
        return Err(e("identity.allow", "holds an empty identifier".into()));
    }
    let url = |key: &str, v: &Option<String>| -> Result<Option<Url>, ConfigError> {
        v.as_deref()
            .map(|u| {
                base_url
                    .join(u)
                    .map_err(|x| e(key, format!("{u:?} is not a URL: {x}")))
                    .and_then(|u| match u.scheme() {
                        "https" | "http" => Ok(u),
                        s => Err(e(key, format!("must be http(s), not {s}"))),
                    })
            })
            .transpose()
    };
    let userinfo_url = url("identity.userinfo_url", &raw.userinfo_url)?;
    let profile_url = url("identity.profile_url", &raw.profile_url)?;
    let jwks_url = url("identity.jwks_url", &raw.jwks_url)?;
    let algorithms = match &raw.algorithms {
        None => DEFAULT_ALGORITHMS.to_vec(),
        Some(list) => list
            .iter()
            .map(|a| match a.parse::<jsonwebtoken::Algorithm>() {
                Ok(alg) if SUPPORTED_ALGORITHMS.contains(&alg) => Ok(alg),
                _ => Err(format!(
                    "{a:?} is not an asymmetric JWS algorithm (RS256, ES256, …)"
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| e("identity.algorithms", m))?,
    };
    let oauth2 = match auth {
        ProviderAuth::Oauth2(o) => Some(o),
        ProviderAuth::Oauth1(_) => None,
    };
    let introspection_url = oauth2.and_then(|o| o.introspection_url.clone());
    let needs = |ok: bool, key: &str, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(e(key, format!("remote = \"{remote}\" {what}")))
        }
    };
    // What discovery can give is not required with `discover = true`: a
    // document without it fails the check at use time, saying so.
    let or_discovered = |configured: bool| configured || discover;
    match &remote {
        RemoteSource::Userinfo(_) => needs(
            or_discovered(userinfo_url.is_some()),
            "identity.userinfo_url",
            "needs identity.userinfo_url (or discover = true)",
        )?,
        RemoteSource::Profile(_) => needs(
            profile_url.is_some(),
            "identity.profile_url",
            "needs identity.profile_url",
        )?,
        RemoteSource::IdToken(_) => {
            needs(oauth2.is_some(), "auth.scheme", "needs an oauth2 provider")?;
            needs(
                or_discovered(jwks_url.is_some()),
                "identity.jwks_url",
                "needs identity.jwks_url (or discover = true)",
            )?;
            needs(
                or_discovered(raw.issuer.is_some()),
                "identity.issuer",
                "needs identity.issuer (or discover = true)",
            )?;
        }
        RemoteSource::Introspection(_) => needs(
            oauth2.is_some() && or_discovered(introspection_url.is_some()),
            "auth.introspection_url",
            "needs an oauth2 provider with auth.introspection_url (or discover = true)",
        )?,
        RemoteSource::Patient(_) => needs(
            fhir,
            "kind",
            "reads a FHIR Patient: the provider must be kind = \"fhir\"",
        )?,
    }
    if raw.jwt_access_token {
        if !discover && (jwks_url.is_none() || raw.issuer.is_none()) {
            return Err(e(
                "identity.jwt_access_token",
                "needs identity.jwks_url and identity.issuer".into(),
            ));
        }
        if oauth2.is_none() {
            return Err(e(
                "identity.jwt_access_token",
                "is for oauth2 providers".into(),
            ));
        }
    }
    Ok(IdentitySettings {
        remote,
        local,
        also,
        allow: raw.allow,
        userinfo_url,
        profile_url,
        jwks_url,
        issuer: raw.issuer,
        jwt_access_token: raw.jwt_access_token,
        algorithms,
        algorithms_configured: raw.algorithms.is_some(),
        introspection_url,
        discover,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::ConfigError;
    use crate::identity::{LocalField, RemoteSource, Secondary};
    use std::path::Path;
    use std::time::Duration;

    fn provider(identity: &str) -> Result<crate::config::Provider, ConfigError> {
        let text = format!(
            r#"
[[providers]]
id = "idp"
kind = "fhir"
base_url = "https://fhir.example.org/r4/"
[providers.auth]
scheme = "oauth2"
token_url = "/oauth/token"
client_id = "rx"
introspection_url = "https://idp.example.org/introspect"
[providers.identity]
{identity}
"#
        );
        let raw = crate::config::parse(&text, Path::new("/etc/rx/config.toml"))?;
        let mut p = crate::config::providers::resolve_providers(
            raw.providers,
            "/etc/rx/config.toml",
            Path::new("/etc/rx"),
            1000,
            Duration::from_secs(3600),
        )?;
        Ok(p.remove(0))
    }

    #[test]
    fn every_remote_kind_parses_into_its_variant() {
        let rows = [
            (
                "remote = \"userinfo:mrn\"\nuserinfo_url = \"https://idp.example.org/userinfo\"",
                RemoteSource::Userinfo("mrn".into()),
            ),
            (
                "remote = \"id_token:mrn\"\njwks_url = \"https://idp.example.org/jwks\"\nissuer = \"https://idp.example.org\"",
                RemoteSource::IdToken("mrn".into()),
            ),
            (
                "remote = \"introspection:mrn\"",
                RemoteSource::Introspection("mrn".into()),
            ),
            (
                "remote = \"profile:/patient/mrn\"\nprofile_url = \"/me\"",
                RemoteSource::Profile("/patient/mrn".into()),
            ),
            (
                "remote = \"patient:urn:oid:1.2.3\"",
                RemoteSource::Patient("urn:oid:1.2.3".into()),
            ),
        ];
        for (table, want) in rows {
            let p = provider(table).unwrap_or_else(|e| panic!("{table}: {e}"));
            let id = p.identity.expect("identity");
            assert_eq!(id.remote, want, "{table}");
            assert_eq!(id.local, LocalField::Mrn);
        }
    }

    #[test]
    fn also_allow_and_trusted_origins() {
        let p = provider(
            "remote = \"userinfo:mrn\"\nuserinfo_url = \"https://idp.example.org/userinfo\"\nlocal = \"id\"\nalso = [\"family_name\", \"birth_date\"]\nallow = [\"MRN-1\"]",
        )
        .expect("valid");
        let id = p.identity.as_ref().expect("identity");
        assert_eq!(id.also, vec![Secondary::FamilyName, Secondary::BirthDate]);
        assert_eq!(id.local, LocalField::Id);
        assert_eq!(id.allow, Some(vec!["MRN-1".to_string()]));
        let userinfo = url::Url::parse("https://idp.example.org/").expect("url");
        assert!(p.trusted_origins.contains(&userinfo.origin()));
    }

    #[test]
    fn with_discover_true_the_endpoints_may_come_from_discovery() {
        let discovering = |identity: &str| {
            let text = format!(
                r#"
[[providers]]
id = "idp"
kind = "fhir"
base_url = "https://fhir.example.org/r4/"
discover = true
[providers.auth]
scheme = "oauth2"
client_id = "rx"
[providers.identity]
{identity}
"#
            );
            let raw = crate::config::parse(&text, Path::new("/etc/rx/config.toml"))?;
            crate::config::providers::resolve_providers(
                raw.providers,
                "/etc/rx/config.toml",
                Path::new("/etc/rx"),
                1000,
                Duration::from_secs(3600),
            )
            .map(|mut p| p.remove(0))
        };
        for remote in ["id_token:mrn", "userinfo:mrn", "introspection:sub"] {
            let p = discovering(&format!("remote = \"{remote}\""))
                .unwrap_or_else(|e| panic!("{remote}: {e}"));
            let id = p.identity.expect("identity");
            assert!(id.discover && id.wants_discovery(), "{remote}");
            assert!(id.jwks_url.is_none() && id.issuer.is_none(), "{remote}");
            assert!(!id.algorithms_configured, "{remote}");
        }
        let p = discovering("remote = \"id_token:mrn\"\nalgorithms = [\"ES256\"]").expect("valid");
        let id = p.identity.expect("identity");
        assert!(id.algorithms_configured);
        assert_eq!(id.algorithms, vec![jsonwebtoken::Algorithm::ES256]);
        // A discovering provider still refuses what discovery cannot give.
        let e = discovering("remote = \"profile:/mrn\"").expect_err("no profile_url");
        assert!(e.to_string().contains("identity.profile_url"), "{e}");
    }

    #[test]
    fn errors_name_the_provider_the_key_and_the_file() {
        let rows = [
            ("local = \"mrn\"", "identity.remote", "is missing"),
            ("remote = \"mrn\"", "identity.remote", "no KIND: prefix"),
            (
                "remote = \"email:x\"",
                "identity.remote",
                "unknown kind \"email\"",
            ),
            (
                "remote = \"userinfo:\"",
                "identity.remote",
                "names no claim",
            ),
            (
                "remote = \"profile:mrn\"",
                "identity.remote",
                "starts with /",
            ),
            (
                "remote = \"userinfo:mrn\"",
                "identity.userinfo_url",
                "needs identity.userinfo_url",
            ),
            (
                "remote = \"id_token:mrn\"",
                "identity.jwks_url",
                "needs identity.jwks_url",
            ),
            (
                "remote = \"patient:s\"\nlocal = \"ssn\"",
                "identity.local",
                "\"ssn\" is not a local identifier",
            ),
            (
                "remote = \"patient:s\"\nalso = [\"eye_colour\"]",
                "identity.also",
                "not a secondary check",
            ),
            (
                "remote = \"patient:s\"\nalgorithms = [\"HS256\"]",
                "identity.algorithms",
                "not an asymmetric",
            ),
            (
                "remote = \"patient:s\"\njwt_access_token = true",
                "identity.jwt_access_token",
                "needs identity.jwks_url",
            ),
            (
                "remote = \"patient:s\"\nallow = [\" \"]",
                "identity.allow",
                "empty identifier",
            ),
            (
                "remote = \"patient:s\"\ncolour = 1",
                "colour",
                "unknown field",
            ),
        ];
        for (table, key, problem) in rows {
            let e = provider(table).expect_err(table).to_string();
            assert!(e.contains("/etc/rx/config.toml"), "{table}: {e}");
            assert!(e.contains(key), "{table}: {e}");
            assert!(e.contains(problem), "{table}: {e}");
            if key != "colour" {
                assert!(e.contains("provider idp"), "{table}: {e}");
            }
        }
    }
}
