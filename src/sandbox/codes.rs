//! Authorization codes the sandbox's consent issued, waiting for their
//! exchange: each bound to its client, redirect URI, PKCE S256 challenge,
//! patient and scope; single use (taken out at the first exchange attempt,
//! good or bad, RFC 6749 §4.1.2) and short-lived. Pure: the caller passes
//! the time and the code.

use std::collections::HashMap;

/// How long a code may wait for its exchange, in seconds.
pub const CODE_TTL: u64 = 60;
/// Codes kept at most (the oldest expired ones go first).
const CAPACITY: usize = 10_000;

/// What a code was issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingCode {
    pub client_id: String,
    pub redirect_uri: String,
    /// The S256 `code_challenge` of the authorization request.
    pub challenge: String,
    pub patient: String,
    pub scope: String,
    /// The OpenID Connect `nonce` the authorization request sent, for the
    /// ID token the exchange issues.
    pub nonce: Option<String>,
    pub expires_at: u64,
}

/// Why an exchange was refused (the `error_description`; `invalid_grant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeError {
    Unknown,
    Expired,
    OtherClient,
    OtherRedirect,
    BadVerifier,
}

impl CodeError {
    pub fn describe(self) -> &'static str {
        match self {
            CodeError::Unknown => "the code is unknown or was used before",
            CodeError::Expired => "the code expired",
            CodeError::OtherClient => "the code was issued to another client",
            CodeError::OtherRedirect => "redirect_uri differs from the authorization request's",
            CodeError::BadVerifier => "code_verifier does not match the code_challenge (PKCE S256)",
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct CodeStore {
    codes: HashMap<String, PendingCode>,
}

impl CodeStore {
    /// Keeps a code for its exchange.
    pub fn issue(&mut self, code: String, pending: PendingCode, now: u64) {
        if self.codes.len() >= CAPACITY {
            self.codes.retain(|_, c| c.expires_at > now);
        }
        if self.codes.len() < CAPACITY {
            self.codes.insert(code, pending);
        }
    }

    /// Takes a code out, whatever comes of it, and checks it against the
    /// exchange request (RFC 6749 §4.1.3, RFC 7636 §4.6).
    pub fn redeem(
        &mut self,
        code: &str,
        client_id: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
        now: u64,
    ) -> Result<PendingCode, CodeError> {
        let pending = self.codes.remove(code).ok_or(CodeError::Unknown)?;
        if pending.expires_at <= now {
            return Err(CodeError::Expired);
        }
        if pending.client_id != client_id {
            return Err(CodeError::OtherClient);
        }
        if redirect_uri != Some(pending.redirect_uri.as_str()) {
            return Err(CodeError::OtherRedirect);
        }
        let verifier = verifier.ok_or(CodeError::BadVerifier)?;
        let shaped = (43..=128).contains(&verifier.len())
            && verifier
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'));
        if !shaped || s256(verifier) != pending.challenge {
            return Err(CodeError::BadVerifier);
        }
        Ok(pending)
    }
}

/// RFC 7636 §4.2 S256, computed here rather than borrowed from rxsync's
/// client side, so that the sandbox checks the client independently.
fn s256(verifier: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    fn store() -> CodeStore {
        let mut s = CodeStore::default();
        s.issue(
            "c1".into(),
            PendingCode {
                client_id: "app".into(),
                redirect_uri: "http://127.0.0.1:1/cb".into(),
                challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
                patient: "p".into(),
                scope: "s".into(),
                nonce: None,
                expires_at: 100,
            },
            0,
        );
        s
    }

    #[test]
    fn a_code_is_redeemed_once_with_its_client_redirect_and_verifier() {
        let cb = Some("http://127.0.0.1:1/cb");
        type Row<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            u64,
            Option<CodeError>,
        );
        let rows: &[Row<'_>] = &[
            ("app", cb, Some(VERIFIER), 50, None),
            (
                "other",
                cb,
                Some(VERIFIER),
                50,
                Some(CodeError::OtherClient),
            ),
            (
                "app",
                Some("http://x/cb"),
                Some(VERIFIER),
                50,
                Some(CodeError::OtherRedirect),
            ),
            (
                "app",
                None,
                Some(VERIFIER),
                50,
                Some(CodeError::OtherRedirect),
            ),
            (
                "app",
                cb,
                Some(&VERIFIER[1..]),
                50,
                Some(CodeError::BadVerifier),
            ),
            ("app", cb, None, 50, Some(CodeError::BadVerifier)),
            ("app", cb, Some(VERIFIER), 100, Some(CodeError::Expired)),
        ];
        for (client, redirect, verifier, now, want) in rows {
            let mut s = store();
            let got = s.redeem("c1", client, *redirect, *verifier, *now);
            assert_eq!(
                got.as_ref().err().copied(),
                *want,
                "{client} {redirect:?} {now}"
            );
            assert_eq!(
                s.redeem("c1", "app", cb, Some(VERIFIER), 50).err(),
                Some(CodeError::Unknown),
                "used once, whatever came of it"
            );
        }
    }
}
