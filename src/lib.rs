//! rxsync: a medication import worker.
//!
//! Modules are listed in the order data flows through them: configuration,
//! the domain vocabulary, parsing of provider documents (CCR XML, C-CDA, FHIR JSON/XML),
//! the drug dictionary, normalization (NDC mapping and exception flags),
//! reconciliation (a patient's sources lined up), the SQLite store, and the
//! way out (`present`: stored regimens as FHIR R4). Parsing, normalizing,
//! reconciling and presenting are pure functions over bytes and
//! values; they never touch the clock, the network or the database. Only
//! `store` writes SQL; only `cli` formats output for people.

pub mod bulk;
pub mod config;
pub mod consent;
pub mod daemon;
pub mod dict;
pub mod discovery;
pub mod domain;
pub mod excerpt;
pub mod export;
pub mod fetch;
pub mod identity;
pub mod import;
pub mod normalize;
pub mod parse;
pub mod present;
pub mod pull;
pub mod reconcile;
pub mod sandbox;
pub mod schedule;
pub mod store;
pub mod vault;
pub mod web;
pub mod worker;
