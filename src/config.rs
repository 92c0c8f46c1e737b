//! Configuration: raw file → resolved settings.
