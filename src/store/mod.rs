//! The SQLite store: the only module that writes SQL.
