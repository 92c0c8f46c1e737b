//! The one integration-test crate: drives the real `rxsync` binary (and the
//! library where a test reads better that way) over real SQLite files in
//! temporary folders, and the public corpus under tests/corpus/.

mod bad_input;
mod cli;
mod config;
mod corpus;
mod support;
