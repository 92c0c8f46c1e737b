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
//! values (and their encodings) out of any text recorded. `pull`
//! orchestrates them: it turns a link into document bytes.

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
