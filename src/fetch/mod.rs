//! OAuth and HTTP: talking to providers.
//!
//! `oauth1` signs and verifies RFC 5849 requests; `auth` attaches a
//! credential to one request; `http` sends GETs through our own redirect
//! loop; `oauth2` refreshes and revokes tokens; `pull` turns a link into
//! document bytes (CCR, or every FHIR search page as one bundle);
//! `backend` gets SMART Backend Services tokens (`private_key_jwt`);
//! `bulk` speaks the FHIR Bulk Data `$export` protocol.

pub mod auth;
pub mod backend;
pub mod bulk;
pub mod http;
pub mod oauth1;
pub mod oauth2;
