//! OAuth and HTTP: talking to providers. (Issue 3.)

pub mod oauth1;
