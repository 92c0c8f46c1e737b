//! Identifier newtypes. Each has a `parse` constructor that refuses what
//! cannot be an identifier, so an unvalidated string never travels inward.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The identifier was empty or only whitespace.
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    /// The identifier was longer than we accept.
    #[error("{what} is longer than {max} characters")]
    TooLong { what: &'static str, max: usize },
    /// The identifier held a character outside the allowed set.
    #[error("{what} may hold only letters, digits and . _ - : @ (found {found:?})")]
    BadChar { what: &'static str, found: char },
}

fn check(what: &'static str, raw: &str, max: usize) -> Result<String, IdError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(IdError::Empty { what });
    }
    if s.chars().count() > max {
        return Err(IdError::TooLong { what, max });
    }
    if let Some(found) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '@')))
    {
        return Err(IdError::BadChar { what, found });
    }
    Ok(s.to_string())
}

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates outside text as an identifier.
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                check($what, raw, $max).map($name)
            }
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_newtype!(
    /// A local patient id (the key the integrator uses for the patient).
    PatientId, "patient id", 64
);
id_newtype!(
    /// The name of a document source: a provider id, or a name given to a
    /// file import (`--source`). Regimens are versioned per patient and source.
    SourceName, "source name", 64
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_what_cannot_be_an_id() {
        assert!(PatientId::parse("p-001").is_ok());
        assert!(PatientId::parse("  p1 ").is_ok_and(|p| p.as_str() == "p1"));
        assert!(matches!(PatientId::parse(""), Err(IdError::Empty { .. })));
        assert!(matches!(
            PatientId::parse("a b"),
            Err(IdError::BadChar { found: ' ', .. })
        ));
        assert!(matches!(
            PatientId::parse(&"x".repeat(65)),
            Err(IdError::TooLong { .. })
        ));
        assert!(matches!(
            SourceName::parse("x'; drop"),
            Err(IdError::BadChar { .. })
        ));
    }
}
