//! Who the patient is at the provider, and the wrong-patient guard
//! (design invariant 7: right patient before any write).
//!
//! `settings` is `[providers.identity]` parsed; `read` turns what a
//! provider answered (userinfo, ID token claims, introspection, a profile,
//! a FHIR `Patient`) into one `RemoteIdentity`; `token` validates ID tokens
//! and JWT access tokens against the provider's JWKS; `compare` decides
//! whether the remote identity is the local patient's. All four are pure.
//! `remote` reads at the provider (through `fetch`); `check` decides what
//! to record and holds `judge_new_link`, which the consent engine calls
//! before it stores a link (the link and the verdict go to the store in
//! one transaction); a pull runs the same rules in
//! `pull::identity`.
//!
//! This module never writes SQL (the store records the verdict) and never
//! builds an HTTP client (requests go through `fetch`).

pub mod check;
pub mod compare;
pub mod read;
pub mod remote;
pub mod settings;
pub mod token;

pub use check::{Judged, NewLinkCheck, NewLinkOutcome, NewOauth2, judge_new_link};
pub use compare::{Compared, LocalIdentity, Problem, Verdict, compare};
pub use settings::{IdentitySettings, LocalField, RemoteSource, Secondary};
pub use token::{Claims, Expected, validate_access_token, validate_id_token};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The patient as the provider knows them. Never holds a token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteIdentity {
    /// The provider's subject (`sub`), or the Patient/profile id.
    pub subject: Option<String>,
    /// Identifier values by where they were read (`userinfo:mrn`,
    /// `patient:urn:oid:…`): the one the guard compares and any other the
    /// answer carried under the same source.
    #[serde(default)]
    pub identifiers: BTreeMap<String, String>,
    pub name: Option<String>,
    pub family_name: Option<String>,
    /// As the provider wrote it (YYYY-MM-DD, or a partial date).
    pub birth_date: Option<String>,
}

/// What went wrong while establishing who the patient is. A token that
/// fails validation makes no link.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The signature does not verify with the key the header names.
    #[error("the token's signature does not verify with the provider's key")]
    BadSignature,
    /// `aud` (or `azp`, `client_id`) does not name this client.
    #[error("the token is not for this client: {0}")]
    WrongAudience(String),
    /// `iss` is not the configured issuer.
    #[error("the token's issuer is not the provider's configured issuer")]
    WrongIssuer,
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// `iat` lies further in the future than the allowed clock skew.
    #[error("the token was issued in the future (beyond the allowed clock skew)")]
    IssuedInFuture,
    /// `nonce` is not the one sent with the authorization request.
    #[error("the token's nonce is not the one this authorization sent")]
    NonceMismatch,
    /// No key of the provider's JWKS has this `kid` (even after a refetch).
    #[error("no key {0:?} in the provider's JWKS")]
    UnknownKid(String),
    /// An algorithm the provider does not announce, or a key for another one.
    #[error("algorithm {0} is not one the provider announces")]
    Algorithm(String),
    /// Not a JWT, or a required claim is missing.
    #[error("the token cannot be read: {0}")]
    Malformed(String),
    /// Introspection says the token is not active (or no longer, or not ours).
    #[error("introspection refuses the token: {0}")]
    Inactive(String),
    /// The identity could not be read at the provider.
    #[error("the remote identity could not be read: {0}")]
    Read(String),
    /// The configuration lacks what this check needs.
    #[error("provider {provider}: {problem}")]
    Config { provider: String, problem: String },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}
