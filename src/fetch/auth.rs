//! Credentials attached to one request: an OAuth 1.0a signature (made anew,
//! with a fresh nonce and timestamp, for every request and every redirect
//! hop) or an OAuth 2.0 bearer token, in the header or in the query as the
//! provider is configured — never both.

use super::oauth1::{self, Credentials, Oauth1Request, Placement, SignParams, SignatureMethod};
use super::redact::Secrets;
use rand::Rng;
use rand::distributions::Alphanumeric;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// A credential for a request.
pub trait Credential: Send + Sync {
    /// The URL to request and the `Authorization` header value (if any) for
    /// a GET of `url`. Called once per request sent: a signature is never reused.
    fn apply(&self, url: &Url) -> Result<(Url, Option<HeaderValue>), String>;
    /// `url` without this credential's parameters (a `Location` may echo them).
    fn strip(&self, url: &Url) -> Url;
    /// Adds the secret values this credential holds to `into`, so that
    /// they can be scrubbed by value from anything recorded.
    fn secrets(&self, into: &mut Secrets);
}

/// No credential: for hops to origins that may not receive one.
pub struct Anonymous;

impl Credential for Anonymous {
    fn apply(&self, url: &Url) -> Result<(Url, Option<HeaderValue>), String> {
        Ok((url.clone(), None))
    }
    fn strip(&self, url: &Url) -> Url {
        url.clone()
    }
    fn secrets(&self, _: &mut Secrets) {}
}

/// OAuth 1.0a signing with a provider's settings.
pub struct Oauth1Signer {
    pub credentials: Credentials,
    pub method: SignatureMethod,
    pub placement: Placement,
    pub realm: Option<String>,
    pub body_hash: bool,
    /// Seconds added to our clock (from a provider's `oauth_acceptable_timestamps`).
    pub clock_skew: i64,
}

impl Credential for Oauth1Signer {
    fn apply(&self, url: &Url) -> Result<(Url, Option<HeaderValue>), String> {
        let nonce: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(32)
            .map(char::from)
            .collect();
        let now = chrono::Utc::now().timestamp() + self.clock_skew;
        let signed = oauth1::sign(
            &Oauth1Request {
                method: "GET",
                url,
                body: None,
            },
            &self.credentials,
            &SignParams {
                method: self.method,
                placement: self.placement,
                realm: self.realm.as_deref(),
                nonce: &nonce,
                timestamp: u64::try_from(now).unwrap_or(0),
                include_version: true,
                body_hash: self.body_hash,
                callback: None,
                verifier: None,
            },
        )
        .map_err(|e| e.to_string())?;
        let header = signed
            .authorization()
            .map(|a| {
                HeaderValue::from_str(a)
                    .map(|mut v| {
                        v.set_sensitive(true);
                        v
                    })
                    .map_err(|_| "the Authorization header is not valid".to_string())
            })
            .transpose()?;
        Ok((signed.url().clone(), header))
    }

    fn strip(&self, url: &Url) -> Url {
        oauth1::strip_oauth_params(url)
    }

    /// The consumer secret, the token and its secret (the token travels in
    /// the clear as `oauth_token`, but echoed elsewhere it still names the grant).
    fn secrets(&self, into: &mut Secrets) {
        let c = &self.credentials;
        into.add(c.consumer_secret.expose_secret());
        if let Some(t) = &c.token {
            into.add(&t.token);
            into.add(t.secret.expose_secret());
        }
    }
}

/// An OAuth 2.0 bearer token (RFC 6750 §2.1 header or §2.3 query).
pub struct Bearer {
    pub token: SecretString,
    pub placement: Placement,
}

impl Credential for Bearer {
    fn apply(&self, url: &Url) -> Result<(Url, Option<HeaderValue>), String> {
        let clean = self.strip(url);
        match self.placement {
            Placement::Header => {
                let mut v =
                    HeaderValue::from_str(&format!("Bearer {}", self.token.expose_secret()))
                        .map_err(|_| "the access token is not a valid header value".to_string())?;
                v.set_sensitive(true);
                Ok((clean, Some(v)))
            }
            Placement::Query => {
                let mut u = clean;
                u.query_pairs_mut()
                    .append_pair("access_token", self.token.expose_secret());
                Ok((u, None))
            }
        }
    }

    fn strip(&self, url: &Url) -> Url {
        strip_params(url, |name| name == "access_token")
    }

    fn secrets(&self, into: &mut Secrets) {
        into.add(self.token.expose_secret());
    }
}

/// `url` without the query parameters whose decoded name matches.
pub fn strip_params(url: &Url, drop: impl Fn(&str) -> bool) -> Url {
    let mut out = url.clone();
    if url.query().is_none() {
        return out;
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(n, _)| !drop(n))
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    if kept.len() == url.query_pairs().count() {
        return out;
    }
    if kept.is_empty() {
        out.set_query(None);
    } else {
        out.query_pairs_mut().clear().extend_pairs(kept);
    }
    out
}

/// A URL as it may be shown or stored: no user info, no credential
/// parameters (`oauth_*`, `access_token`), no fragment.
pub fn redact(url: &Url) -> String {
    let mut u = strip_params(url, |n| n.starts_with("oauth_") || n == "access_token");
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_fragment(None);
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_goes_in_one_place_and_is_stripped_from_echoes() {
        let url = Url::parse("https://p.example/fhir/MedicationRequest?patient=1&access_token=old")
            .expect("url");
        let header = Bearer {
            token: SecretString::from("tok"),
            placement: Placement::Header,
        };
        let (u, h) = header.apply(&url).expect("applies");
        assert_eq!(
            u.as_str(),
            "https://p.example/fhir/MedicationRequest?patient=1"
        );
        assert!(h.expect("header").is_sensitive());
        let query = Bearer {
            token: SecretString::from("tok en"),
            placement: Placement::Query,
        };
        let (u, h) = query.apply(&url).expect("applies");
        assert!(h.is_none());
        assert_eq!(
            u.as_str(),
            "https://p.example/fhir/MedicationRequest?patient=1&access_token=tok+en"
        );
    }

    #[test]
    fn every_oauth1_application_is_a_fresh_signature() {
        let signer = Oauth1Signer {
            credentials: Credentials::new("ck", SecretString::from("cs"))
                .with_token("t", SecretString::from("ts")),
            method: SignatureMethod::HmacSha1,
            placement: Placement::Query,
            realm: None,
            body_hash: false,
            clock_skew: 0,
        };
        let url = Url::parse("http://p.example/ccr/1?x=1").expect("url");
        let (a, _) = signer.apply(&url).expect("signs");
        let (b, _) = signer.apply(&url).expect("signs");
        assert_ne!(a, b, "a fresh nonce each time");
        assert_eq!(signer.strip(&a).as_str(), "http://p.example/ccr/1?x=1");
        assert_eq!(redact(&a), "http://p.example/ccr/1?x=1");
    }

    #[test]
    fn redaction_drops_user_info_credentials_and_fragments() {
        let u = Url::parse("https://u:p@h.example/a?oauth_token=x&access_token=y&q=%20#frag")
            .expect("url");
        assert_eq!(redact(&u), "https://h.example/a?q=+");
    }
}
