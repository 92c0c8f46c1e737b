//! `[providers.identity]` as resolved: where the remote identifier is read,
//! which local field it must equal, the secondary checks and the
//! enrollment allow-list. Parsed once, at config load; the guard never
//! sees a string it has to interpret.

use std::fmt;
use std::str::FromStr;
use url::Url;

/// Where the remote identifier is read (`remote = "KIND:NAME"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteSource {
    /// A claim of the OpenID Connect userinfo answer.
    Userinfo(String),
    /// A claim of the validated ID token.
    IdToken(String),
    /// A field of the RFC 7662 introspection answer.
    Introspection(String),
    /// A JSON pointer (RFC 6901) into the `profile_url` answer.
    Profile(String),
    /// The value of the FHIR `Patient`'s identifier with this system.
    Patient(String),
}

impl RemoteSource {
    /// The kind, as written before the colon.
    pub fn kind(&self) -> &'static str {
        match self {
            RemoteSource::Userinfo(_) => "userinfo",
            RemoteSource::IdToken(_) => "id_token",
            RemoteSource::Introspection(_) => "introspection",
            RemoteSource::Profile(_) => "profile",
            RemoteSource::Patient(_) => "patient",
        }
    }

    /// The claim, field, pointer or identifier system.
    pub fn name(&self) -> &str {
        match self {
            RemoteSource::Userinfo(n)
            | RemoteSource::IdToken(n)
            | RemoteSource::Introspection(n)
            | RemoteSource::Profile(n)
            | RemoteSource::Patient(n) => n,
        }
    }
}

impl fmt::Display for RemoteSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.name())
    }
}

impl FromStr for RemoteSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str = "expected userinfo:CLAIM, id_token:CLAIM, introspection:FIELD, profile:JSON-POINTER or patient:IDENTIFIER-SYSTEM";
        let Some((kind, name)) = s.split_once(':') else {
            return Err(format!("{s:?} has no KIND: prefix; {EXPECTED}"));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(format!(
                "{s:?} names no claim, field, pointer or system; {EXPECTED}"
            ));
        }
        let name = name.to_string();
        match kind.trim() {
            "userinfo" => Ok(RemoteSource::Userinfo(name)),
            "id_token" => Ok(RemoteSource::IdToken(name)),
            "introspection" => Ok(RemoteSource::Introspection(name)),
            "profile" if name.starts_with('/') => Ok(RemoteSource::Profile(name)),
            "profile" => Err(format!(
                "{s:?}: a profile JSON pointer starts with / (RFC 6901), e.g. profile:/patient/mrn"
            )),
            "patient" => Ok(RemoteSource::Patient(name)),
            other => Err(format!("{s:?}: unknown kind {other:?}; {EXPECTED}")),
        }
    }
}

/// The local patient's field the remote identifier must equal (`local`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalField {
    /// The patient's MRN.
    Mrn,
    /// The patient's id in rxsync.
    Id,
}

impl LocalField {
    pub fn as_str(self) -> &'static str {
        match self {
            LocalField::Mrn => "mrn",
            LocalField::Id => "id",
        }
    }
}

impl FromStr for LocalField {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mrn" => Ok(LocalField::Mrn),
            "id" => Ok(LocalField::Id),
            _ => Err(format!(
                "{s:?} is not a local identifier; expected \"mrn\" or \"id\""
            )),
        }
    }
}

/// A secondary check (`also`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secondary {
    /// Family names, case and spacing folded.
    FamilyName,
    /// Birth dates, as dates.
    BirthDate,
}

impl Secondary {
    pub fn as_str(self) -> &'static str {
        match self {
            Secondary::FamilyName => "family_name",
            Secondary::BirthDate => "birth_date",
        }
    }
}

impl FromStr for Secondary {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "family_name" => Ok(Secondary::FamilyName),
            "birth_date" => Ok(Secondary::BirthDate),
            _ => Err(format!(
                "{s:?} is not a secondary check; expected \"family_name\" or \"birth_date\""
            )),
        }
    }
}

/// A provider's `[providers.identity]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySettings {
    pub remote: RemoteSource,
    pub local: LocalField,
    pub also: Vec<Secondary>,
    /// Remote identifiers allowed to link (none: everyone).
    pub allow: Option<Vec<String>>,
    /// OpenID Connect userinfo endpoint (needed by `userinfo:`).
    pub userinfo_url: Option<Url>,
    /// A profile endpoint answering JSON (needed by `profile:`).
    pub profile_url: Option<Url>,
    /// The provider's JWKS (needed by `id_token:` and `jwt_access_token`).
    pub jwks_url: Option<Url>,
    /// The issuer ID tokens must name (`iss`).
    pub issuer: Option<String>,
    /// The access token is an RFC 9068 JWT, validated like an ID token.
    pub jwt_access_token: bool,
    /// The signature algorithms tokens may be signed with: the configured
    /// `algorithms`, else the provider's announced ones (`with_discovered`),
    /// else RS256 and ES256.
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    /// `algorithms` was configured: discovery does not replace it.
    pub algorithms_configured: bool,
    /// RFC 7662 endpoint (`auth.introspection_url`, else discovered);
    /// needed by `introspection:`.
    pub introspection_url: Option<Url>,
    /// The provider has `discover = true`: an endpoint not configured here
    /// is taken from its discovery document (`with_discovered`).
    pub discover: bool,
}

/// The algorithms rxsync verifies ID tokens and JWT access tokens with
/// (asymmetric JWS only: a shared-secret HMAC would let anyone holding the
/// client secret mint identities).
pub const SUPPORTED_ALGORITHMS: [jsonwebtoken::Algorithm; 9] = [
    jsonwebtoken::Algorithm::RS256,
    jsonwebtoken::Algorithm::RS384,
    jsonwebtoken::Algorithm::RS512,
    jsonwebtoken::Algorithm::PS256,
    jsonwebtoken::Algorithm::PS384,
    jsonwebtoken::Algorithm::PS512,
    jsonwebtoken::Algorithm::ES256,
    jsonwebtoken::Algorithm::ES384,
    jsonwebtoken::Algorithm::EdDSA,
];

/// What `algorithms` is when neither configured nor announced.
pub const DEFAULT_ALGORITHMS: [jsonwebtoken::Algorithm; 2] = [
    jsonwebtoken::Algorithm::RS256,
    jsonwebtoken::Algorithm::ES256,
];

impl IdentitySettings {
    /// Settings that compare `remote` with `local` and nothing else: no
    /// endpoint, key or issuer configured, the default algorithms,
    /// discovery off.
    pub fn comparing(remote: RemoteSource, local: LocalField) -> IdentitySettings {
        IdentitySettings {
            remote,
            local,
            also: Vec::new(),
            allow: None,
            userinfo_url: None,
            profile_url: None,
            jwks_url: None,
            issuer: None,
            jwt_access_token: false,
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            algorithms_configured: false,
            introspection_url: None,
            discover: false,
        }
    }

    /// Whether a check of these settings reads anything discovery gives
    /// (with `discover = true`): an endpoint, the issuer or the algorithms
    /// not configured. Callers read discovery only then.
    pub fn wants_discovery(&self) -> bool {
        self.discover
            && (self.jwks_url.is_none()
                || self.issuer.is_none()
                || self.userinfo_url.is_none()
                || self.introspection_url.is_none()
                || !self.algorithms_configured)
    }

    /// These settings with what they lack taken from the provider's
    /// discovery (`discover = true`): `jwks_uri`, `issuer`,
    /// `userinfo_endpoint`, `introspection_endpoint`, and the announced
    /// `id_token_signing_alg_values_supported` that rxsync verifies
    /// (unless `algorithms` is configured). Configured values always win;
    /// `None`, or a provider without `discover = true`, changes nothing.
    /// Pure.
    pub fn with_discovered(&self, d: Option<&crate::discovery::Discovered>) -> IdentitySettings {
        let mut s = self.clone();
        let Some(d) = d.filter(|_| self.discover) else {
            return s;
        };
        let fill = |mine: &mut Option<Url>, found: &Option<Url>| {
            if mine.is_none() {
                mine.clone_from(found);
            }
        };
        fill(&mut s.jwks_url, &d.jwks_uri);
        fill(&mut s.userinfo_url, &d.userinfo_endpoint);
        fill(&mut s.introspection_url, &d.introspection_endpoint);
        if s.issuer.is_none() {
            // `iss` is compared as a string: the issuer as announced. A
            // cache row without it gives the URL, whose empty path the
            // parser wrote as `/` (`https://idp` → `https://idp/`).
            s.issuer = d.issuer_text.clone().or_else(|| {
                d.issuer.as_ref().map(|u| match u.path() {
                    "/" if u.query().is_none() => u.as_str().trim_end_matches('/').to_string(),
                    _ => u.to_string(),
                })
            });
        }
        if !self.algorithms_configured && !d.id_token_signing_algs.is_empty() {
            s.algorithms = d
                .id_token_signing_algs
                .iter()
                .filter_map(|a| a.parse::<jsonwebtoken::Algorithm>().ok())
                .filter(|a| SUPPORTED_ALGORITHMS.contains(a))
                .collect();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::Algorithm;

    fn settings(discover: bool) -> IdentitySettings {
        IdentitySettings {
            discover,
            ..IdentitySettings::comparing(RemoteSource::IdToken("mrn".into()), LocalField::Mrn)
        }
    }

    /// An OpenID configuration as oidc-provider serves it at its issuer.
    fn discovered(algs: &str) -> crate::discovery::Discovered {
        let doc = format!(
            r#"{{"issuer": "https://idp.example", "token_endpoint": "https://idp.example/token",
                "jwks_uri": "https://idp.example/jwks", "userinfo_endpoint": "https://idp.example/me",
                "introspection_endpoint": "https://idp.example/token/introspection"{algs}}}"#
        );
        let at = Url::parse("https://idp.example/.well-known/openid-configuration").expect("url");
        crate::discovery::parse_metadata(
            crate::discovery::Source::OpenidConfiguration,
            doc.as_bytes(),
            &at,
        )
        .expect("an OpenID configuration")
    }

    fn url(u: &str) -> Option<Url> {
        Some(Url::parse(u).expect("url"))
    }

    #[test]
    fn discovery_fills_what_is_not_configured_with_the_issuer_as_announced() {
        let d = discovered("");
        let s = settings(true).with_discovered(Some(&d));
        assert_eq!(s.jwks_url, url("https://idp.example/jwks"));
        assert_eq!(s.userinfo_url, url("https://idp.example/me"));
        assert_eq!(
            s.introspection_url,
            url("https://idp.example/token/introspection")
        );
        // As written, not as the URL parser prints it (`https://idp.example/`).
        assert_eq!(s.issuer.as_deref(), Some("https://idp.example"));
        // Nothing announced: the defaults stay.
        assert_eq!(s.algorithms, DEFAULT_ALGORITHMS.to_vec());
        assert!(settings(true).wants_discovery());
    }

    #[test]
    fn configured_values_win_and_without_discover_nothing_changes() {
        let d = discovered(r#", "id_token_signing_alg_values_supported": ["PS256"]"#);
        let mut mine = settings(true);
        mine.jwks_url = url("https://keys.example/jwks");
        mine.issuer = Some("https://issuer.example".into());
        mine.algorithms = vec![Algorithm::ES384];
        mine.algorithms_configured = true;
        let s = mine.with_discovered(Some(&d));
        assert_eq!(s.jwks_url, url("https://keys.example/jwks"));
        assert_eq!(s.issuer.as_deref(), Some("https://issuer.example"));
        assert_eq!(s.algorithms, vec![Algorithm::ES384]);
        assert_eq!(
            s.userinfo_url,
            url("https://idp.example/me"),
            "not configured"
        );
        assert_eq!(settings(false).with_discovered(Some(&d)), settings(false));
        assert!(!settings(false).wants_discovery());
        assert_eq!(settings(true).with_discovered(None), settings(true));
    }

    #[test]
    fn announced_algorithms_are_intersected_with_the_ones_rxsync_verifies() {
        let rows: [(&str, Vec<Algorithm>); 4] = [
            (
                r#"["RS256", "ES256"]"#,
                vec![Algorithm::RS256, Algorithm::ES256],
            ),
            // oidc-provider's default list: every one of them is verified.
            (
                r#"["RS256", "PS256", "ES256", "EdDSA"]"#,
                vec![
                    Algorithm::RS256,
                    Algorithm::PS256,
                    Algorithm::ES256,
                    Algorithm::EdDSA,
                ],
            ),
            // A shared-secret HMAC and `none` are never accepted.
            (r#"["HS256", "none", "ES384"]"#, vec![Algorithm::ES384]),
            // Nothing rxsync verifies: every token is refused.
            (r#"["HS256"]"#, vec![]),
        ];
        for (announced, want) in rows {
            let d = discovered(&format!(
                r#", "id_token_signing_alg_values_supported": {announced}"#
            ));
            let s = settings(true).with_discovered(Some(&d));
            assert_eq!(s.algorithms, want, "{announced}");
        }
    }

    #[test]
    fn a_cached_issuer_without_its_text_is_the_url_without_the_parsers_slash() {
        let mut d = discovered("");
        d.issuer_text = None;
        let s = settings(true).with_discovered(Some(&d));
        assert_eq!(s.issuer.as_deref(), Some("https://idp.example"));
        d.issuer = url("https://idp.example/realms/rx/");
        let s = settings(true).with_discovered(Some(&d));
        assert_eq!(s.issuer.as_deref(), Some("https://idp.example/realms/rx/"));
    }
}
