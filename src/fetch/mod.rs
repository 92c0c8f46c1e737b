//! OAuth and HTTP: talking to providers.
//!
//! `oauth1` signs and verifies RFC 5849 requests; `auth` attaches a
//! credential to one request; `http` sends GETs through our own redirect
//! loop; `oauth1_flow` makes the two token requests of the OAuth 1.0a
//! three-legged flow; `oauth2` refreshes and revokes tokens; `fhir` knows FHIR searches
//! (US Core parameters, `_include` by CapabilityStatement, referenced
//! Medications, the collection Bundle); `limit` is a provider's request
//! budget; `backend` gets SMART Backend Services tokens (`private_key_jwt`);
//! `bulk` speaks the FHIR Bulk Data `$export` protocol; `discover` reads a
//! provider's discovery documents; `register` is RFC 7591 dynamic client
//! registration; `jwks` caches a provider's signing keys;
//! `oauth2::introspect` asks RFC 7662; `redact` scrubs a pull's secret
//! values (and their encodings) out of any text recorded; `paging` is the
//! FHIR search cursor (next links, page limits, media types); `policy`
//! says what an answer means (401 → refresh or re-link, `oauth_problem`,
//! the OAuth 1.0a clock correction) and `refusal` why a pull ends;
//! `settings` holds the provider settings fetch owns, which `config`
//! resolves into. `pull` orchestrates them: it turns a link into document
//! bytes.
//!
//! Nothing here imports `config`, `store` or `pull`: `fetch` is the layer
//! below them, and decides without writing (a refresh's commit is the
//! pull's).

pub mod auth;
pub mod backend;
pub mod bulk;
pub mod discover;
pub mod fhir;
pub mod grant;
pub mod http;
pub mod jwks;
pub mod limit;
pub mod oauth1;
pub mod oauth1_flow;
pub mod oauth2;
pub mod paging;
pub mod policy;
pub mod redact;
pub mod refusal;
pub mod register;
pub mod settings;
