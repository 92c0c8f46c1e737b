//! The one integration-test crate: drives the real `rxsync` binary (and the
//! library where a test reads better that way) over real SQLite files in
//! temporary folders, the public corpus under tests/corpus/, and
//! independent oracles (Python oauthlib, the fhir.resources FHIR R4 model)
//! over a pipe.

mod bad_input;
mod bulk;
mod ccda;
mod ci_script;
mod classes;
mod cli;
mod config;
mod consent;
pub(crate) mod consent_browser;
mod consent_browser_oauth1;
mod consent_identity;
pub(crate) mod consent_oauth1;
mod corpus;
mod daemon;
mod db;
mod db_postgres;
mod demo;
mod discovery;
mod e2e;
mod echo;
mod export;
mod fhir_out;
mod identity;
mod notify;
mod oauth1_oracle;
mod oidc;
mod openapi;
mod pull;
mod reconcile;
mod refresh_lock;
mod reversal;
mod review_pages;
mod review_server;
mod sample_dictionary;
mod sandbox;
mod store_safety;
mod support;
mod tables;
mod uscore;
mod web;
mod workers;
