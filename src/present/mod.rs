//! Stored regimens in standard forms, for the next system: today a FHIR R4
//! `Bundle` (`fhir`). Pure functions from the store's read models to JSON
//! values: nothing here reads the database, the clock or the environment
//! (the caller passes the time the bundle is assembled), and nothing here
//! prints — `cli` and `web` decide where the value goes.

pub mod fhir;
