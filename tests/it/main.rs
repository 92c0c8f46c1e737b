//! The one integration-test crate: drives the real `rxsync` binary (and the
//! library where a test reads better that way) over real SQLite files in
//! temporary folders, the public corpus under tests/corpus/, and
//! independent oracles (Python oauthlib) over a pipe.

mod bad_input;
mod bulk;
mod ccda;
mod classes;
mod cli;
mod config;
mod corpus;
mod daemon;
mod demo;
mod discovery;
mod e2e;
mod export;
mod oauth1_oracle;
mod oidc;
mod openapi;
mod pull;
mod reversal;
mod review_server;
mod sandbox;
mod store_safety;
mod support;
mod uscore;
mod web;
