//! OAuth and HTTP: talking to providers.
//!
//! `oauth1` signs and verifies RFC 5849 requests; `auth` attaches a
//! credential to one request; `http` sends GETs through our own redirect
//! loop; `oauth2` refreshes and revokes tokens; `fhir` knows FHIR searches
//! (US Core parameters, `_include` by CapabilityStatement, referenced
//! Medications, the collection Bundle); `limit` is a provider's request
//! budget; `backend` gets SMART Backend Services tokens (`private_key_jwt`);
//! `bulk` speaks the FHIR Bulk Data `$export` protocol; `jwks` caches a
//! provider's signing keys; `oauth2::introspect` asks RFC 7662. `pull` orchestrates
//! them: it turns a link into document bytes.

pub mod auth;
pub mod backend;
pub mod bulk;
pub mod fhir;
pub mod grant;
pub mod http;
pub mod jwks;
pub mod limit;
pub mod oauth1;
pub mod oauth2;
