//! The OAuth response policy: what a pull does with a provider's answer.
//!
//! A 2xx is taken (and the statuses a caller tolerates, when credentials
//! were sent). A 401 is answered once: OAuth 2.0 refreshes (unless it just
//! did, or holds no refresh token: then the link needs re-linking), OAuth
//! 1.0a corrects its clock when the provider says which timestamps it
//! accepts (`oauth_problem=timestamp_refused` with
//! `oauth_acceptable_timestamps`), once per request. Any other refusal
//! ends the pull, in the provider's own words (`explain`), scrubbed of the
//! pull's secret values. The policy decides; the pull acts (a refresh is
//! committed through the store, which `fetch` never touches).

use super::auth::{Bearer, Credential, Oauth1Signer, redact};
use super::http::Fetched;
use super::oauth2::RefreshError;
use super::redact::Secrets;
use super::refusal::Refusal;
use secrecy::SecretString;

/// The credentials of a pull in progress.
pub enum Session {
    Oauth1(Box<Oauth1Signer>),
    Oauth2 {
        bearer: Bearer,
        refresh_token: Option<SecretString>,
        /// A refresh was made in this pull: a 401 now means the grant is gone.
        refreshed: bool,
    },
}

impl Session {
    /// The credential each request carries.
    pub fn credential(&self) -> &dyn Credential {
        match self {
            Session::Oauth1(s) => s.as_ref(),
            Session::Oauth2 { bearer, .. } => bearer,
        }
    }
}

/// What one request has tried so far, so that each remedy is tried once.
#[derive(Debug, Default)]
pub struct Tries {
    clock_corrected: bool,
}

/// What to do with an answer that does not end the pull.
#[derive(Debug)]
pub enum Verdict {
    /// The answer stands: hand it to the caller.
    Take,
    /// Refresh the access token (and commit the new pair), then send again.
    Refresh,
    /// Send the request again: the session was corrected (OAuth 1.0a clock).
    Resend,
}

/// Judges `f`, the answer to one request of a pull under `session`.
/// `tolerated` statuses are answers too (a read whose 404 is data), but
/// only when credentials were sent. A clock correction is made on
/// `session` itself.
pub fn judge(
    f: &Fetched,
    session: &mut Session,
    tolerated: &[u16],
    tries: &mut Tries,
    secrets: &Secrets,
) -> Result<Verdict, Refusal> {
    if (200..300).contains(&f.status) || (f.credentials && tolerated.contains(&f.status)) {
        return Ok(Verdict::Take);
    }
    let explanation = explain(f, secrets);
    if matches!(f.status, 401 | 403) && !f.credentials {
        return Err(Refusal::Failed(format!(
            "{} answered {} after a redirect to an origin that does not receive credentials (list it in trusted_origins if it should): {explanation}",
            redact(&f.url),
            f.status
        )));
    }
    if f.status == 401 {
        match session {
            Session::Oauth2 {
                refreshed: true, ..
            } => {
                return Err(Refusal::Relink(format!(
                    "{} answered 401 to a freshly refreshed token: {explanation}",
                    redact(&f.url)
                )));
            }
            Session::Oauth2 {
                refresh_token: None,
                ..
            } => {
                return Err(Refusal::Relink(format!(
                    "{} answered 401 and the link holds no refresh token: {explanation}",
                    redact(&f.url)
                )));
            }
            Session::Oauth2 { .. } => return Ok(Verdict::Refresh),
            Session::Oauth1(signer) => {
                let problem = oauth_problem(f);
                // One clock correction per request, then the answer stands.
                if let (false, Some("timestamp_refused"), Some(skew)) = (
                    tries.clock_corrected,
                    problem.as_deref(),
                    acceptable_skew(f, chrono::Utc::now().timestamp()),
                ) {
                    signer.clock_skew = skew;
                    tries.clock_corrected = true;
                    return Ok(Verdict::Resend);
                }
                return Err(match problem.as_deref() {
                    Some(
                        "token_expired" | "token_revoked" | "token_rejected" | "permission_denied"
                        | "permission_unknown",
                    )
                    | None => Refusal::Relink(format!(
                        "{} refused the token (401): {explanation}",
                        redact(&f.url)
                    )),
                    Some(_) => Refusal::Failed(format!(
                        "{} refused the request (401): {explanation}",
                        redact(&f.url)
                    )),
                });
            }
        }
    }
    Err(Refusal::Failed(format!(
        "{} answered {}: {explanation}",
        redact(&f.url),
        f.status
    )))
}

/// What a failed refresh means for the link: `invalid_grant` ends the
/// grant (re-link); anything else may pass.
pub fn refresh_refused(e: &RefreshError) -> Refusal {
    match e {
        RefreshError::InvalidGrant(_) => Refusal::Relink(e.to_string()),
        _ => Refusal::Failed(e.to_string()),
    }
}

/// The provider's own words for a refusal, short and printable. Scrubbed
/// before it is shortened: a secret cut in half would no longer be found.
pub fn explain(f: &Fetched, secrets: &Secrets) -> String {
    if let Some(p) = oauth_problem(f) {
        return secrets.scrub(&format!("oauth_problem={p}"));
    }
    if let Some(w) = f
        .headers
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
    {
        return secrets.scrub(w).chars().take(200).collect();
    }
    // Control characters go first, so that none can split a secret that
    // would then be joined again after scrubbing.
    let printable: String = String::from_utf8_lossy(&f.body)
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let text: String = secrets.scrub(&printable).chars().take(200).collect();
    if text.is_empty() {
        "no explanation".into()
    } else {
        text
    }
}

/// `oauth_problem` from the body (form-encoded) or the WWW-Authenticate header.
pub fn oauth_problem(f: &Fetched) -> Option<String> {
    let from_body = url::form_urlencoded::parse(&f.body)
        .find(|(k, _)| k == "oauth_problem")
        .map(|(_, v)| v.into_owned());
    from_body.or_else(|| {
        let h = f
            .headers
            .get(reqwest::header::WWW_AUTHENTICATE)?
            .to_str()
            .ok()?;
        let at = h.find("oauth_problem=")? + "oauth_problem=".len();
        Some(
            h[at..]
                .trim_start_matches('"')
                .split(['"', ',', '&'])
                .next()?
                .to_string(),
        )
    })
}

/// From `oauth_acceptable_timestamps=MIN-MAX`: the seconds to add to our
/// clock (`now`, Unix seconds) to land in the middle of the range.
pub fn acceptable_skew(f: &Fetched, now: i64) -> Option<i64> {
    let range = url::form_urlencoded::parse(&f.body)
        .find(|(k, _)| k == "oauth_acceptable_timestamps")
        .map(|(_, v)| v.into_owned())?;
    let (lo, hi) = range.split_once('-')?;
    let (lo, hi): (i64, i64) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
    if hi < lo {
        return None;
    }
    let mid = lo + (hi - lo) / 2;
    Some(mid - now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::oauth1::{Credentials, Placement, SignatureMethod};
    use reqwest::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};
    use url::Url;

    fn answer(status: u16, body: &str, www_authenticate: Option<&str>) -> Fetched {
        let mut headers = HeaderMap::new();
        if let Some(w) = www_authenticate {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_str(w).expect("header"));
        }
        Fetched {
            status,
            url: Url::parse("https://p.example/fhir/x").expect("url"),
            media_type: None,
            headers,
            body: body.as_bytes().to_vec(),
            moves: Vec::new(),
            hops: 0,
            credentials: true,
        }
    }

    fn oauth2(refresh_token: bool, refreshed: bool) -> Session {
        Session::Oauth2 {
            bearer: Bearer {
                token: SecretString::from("at-secret".to_string()),
                placement: Placement::Header,
            },
            refresh_token: refresh_token.then(|| SecretString::from("rt".to_string())),
            refreshed,
        }
    }

    fn oauth1() -> Session {
        Session::Oauth1(Box::new(Oauth1Signer {
            credentials: Credentials::new("ck", SecretString::from("cs".to_string())),
            method: SignatureMethod::HmacSha1,
            placement: Placement::Header,
            realm: None,
            body_hash: false,
            clock_skew: 0,
        }))
    }

    /// What the verdict was, as a word and the refusal's text.
    fn judged(f: Fetched, session: &mut Session, tries: &mut Tries) -> (&'static str, String) {
        let mut secrets = Secrets::new();
        secrets.add("at-secret");
        match judge(&f, session, &[404], tries, &secrets) {
            Ok(Verdict::Take) => ("take", String::new()),
            Ok(Verdict::Refresh) => ("refresh", String::new()),
            Ok(Verdict::Resend) => ("resend", String::new()),
            Err(Refusal::Failed(e)) => ("failed", e),
            Err(Refusal::Relink(e)) => ("relink", e),
            Err(Refusal::RetryLater { error, .. }) => ("retry_later", error),
        }
    }

    #[test]
    fn oauth2_answers_are_judged() {
        // (rule, status, refresh token held, refreshed already, verdict, words)
        let rows: &[(&str, u16, bool, bool, &str, &str)] = &[
            ("a 2xx is taken", 200, true, false, "take", ""),
            ("a tolerated status is taken", 404, true, false, "take", ""),
            ("a 401 refreshes", 401, true, false, "refresh", ""),
            (
                "a 401 after a refresh needs re-linking",
                401,
                true,
                true,
                "relink",
                "answered 401 to a freshly refreshed token",
            ),
            (
                "a 401 without a refresh token needs re-linking",
                401,
                false,
                false,
                "relink",
                "the link holds no refresh token",
            ),
            ("a 403 fails", 403, true, false, "failed", "answered 403"),
            ("a 500 fails", 500, true, false, "failed", "answered 500"),
        ];
        for (rule, status, held, refreshed, verdict, words) in rows {
            let mut session = oauth2(*held, *refreshed);
            let (v, said) = judged(
                answer(*status, "nope", None),
                &mut session,
                &mut Tries::default(),
            );
            assert_eq!(v, *verdict, "{rule}");
            assert!(said.contains(words), "{rule}: {said}");
        }
    }

    #[test]
    fn a_refusal_after_a_hop_without_credentials_says_so() {
        let mut f = answer(401, "", None);
        f.credentials = false;
        let (v, said) = judged(f, &mut oauth2(true, false), &mut Tries::default());
        assert_eq!(v, "failed");
        assert!(said.contains("does not receive credentials"), "{said}");
        // A tolerated status is no answer when no credential was sent.
        let mut f = answer(404, "", None);
        f.credentials = false;
        assert_eq!(
            judged(f, &mut oauth2(true, false), &mut Tries::default()).0,
            "failed"
        );
    }

    #[test]
    fn oauth1_corrects_its_clock_once_per_request() {
        let now = chrono::Utc::now().timestamp();
        let body = format!(
            "oauth_problem=timestamp_refused&oauth_acceptable_timestamps={}-{}",
            now + 1000,
            now + 1200
        );
        let mut session = oauth1();
        let mut tries = Tries::default();
        let (v, _) = judged(answer(401, &body, None), &mut session, &mut tries);
        assert_eq!(v, "resend");
        let Session::Oauth1(signer) = &session else {
            panic!("oauth1")
        };
        assert!(
            (1090..=1110).contains(&signer.clock_skew),
            "{}",
            signer.clock_skew
        );
        let (v, said) = judged(answer(401, &body, None), &mut session, &mut tries);
        assert_eq!(v, "failed", "the second refusal stands");
        assert!(said.contains("oauth_problem=timestamp_refused"), "{said}");
    }

    #[test]
    fn oauth1_problems_sort_into_relink_and_failed() {
        let rows: &[(&str, &str)] = &[
            ("oauth_problem=token_expired", "relink"),
            ("oauth_problem=token_revoked", "relink"),
            ("oauth_problem=token_rejected", "relink"),
            ("oauth_problem=permission_denied", "relink"),
            ("oauth_problem=permission_unknown", "relink"),
            ("", "relink"),
            ("oauth_problem=signature_invalid", "failed"),
            ("oauth_problem=timestamp_refused", "failed"),
        ];
        for (body, verdict) in rows {
            let (v, _) = judged(
                answer(401, body, None),
                &mut oauth1(),
                &mut Tries::default(),
            );
            assert_eq!(v, *verdict, "{body:?}");
        }
    }

    #[test]
    fn oauth_problem_is_read_from_the_body_or_the_header() {
        let rows: &[(&str, Option<&str>, Option<&str>)] = &[
            ("oauth_problem=nonce_used", None, Some("nonce_used")),
            (
                "",
                Some(r#"OAuth realm="x", oauth_problem="token_expired""#),
                Some("token_expired"),
            ),
            (
                "",
                Some("OAuth oauth_problem=token_rejected&x=1"),
                Some("token_rejected"),
            ),
            (
                "oauth_problem=a",
                Some(r#"OAuth oauth_problem="b""#),
                Some("a"),
            ),
            (
                "error=invalid_token",
                Some("Bearer error=invalid_token"),
                None,
            ),
        ];
        for (body, header, problem) in rows {
            let f = answer(401, body, *header);
            assert_eq!(
                oauth_problem(&f).as_deref(),
                *problem,
                "{body:?} {header:?}"
            );
        }
    }

    #[test]
    fn acceptable_timestamps_give_the_skew_to_their_middle() {
        let rows: &[(&str, Option<i64>)] = &[
            ("oauth_acceptable_timestamps=1100-1300", Some(200)),
            ("oauth_acceptable_timestamps=900-900", Some(-100)),
            ("oauth_acceptable_timestamps=1300-1100", None),
            ("oauth_acceptable_timestamps=soon", None),
            ("oauth_problem=timestamp_refused", None),
        ];
        for (body, skew) in rows {
            assert_eq!(
                acceptable_skew(&answer(401, body, None), 1000),
                *skew,
                "{body}"
            );
        }
    }

    #[test]
    fn explanations_are_short_printable_and_scrubbed() {
        let mut secrets = Secrets::new();
        secrets.add("at-secret");
        let rows: &[(&str, Option<&str>, &str)] = &[
            (
                "oauth_problem=token_expired",
                None,
                "oauth_problem=token_expired",
            ),
            (
                "ignored",
                Some(r#"Bearer error="invalid_token", token="at-secret""#),
                "Bearer error=\"invalid_token\", token=\"[redacted]\"",
            ),
            ("bad token at-sec\nret", None, "bad token [redacted]"),
            ("", None, "no explanation"),
        ];
        for (body, header, says) in rows {
            let said = explain(&answer(401, body, *header), &secrets);
            assert!(!said.contains("at-secret"), "{said}");
            assert_eq!(said, *says, "{body:?}");
        }
        let long = "x".repeat(500);
        assert_eq!(explain(&answer(500, &long, None), &secrets).len(), 200);
    }
}
