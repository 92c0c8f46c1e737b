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
    /// A row id that is not a positive whole number.
    #[error("{what} must be a positive whole number (found {found:?})")]
    NotARowId { what: &'static str, found: String },
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
id_newtype!(
    /// A configured provider's id (`[[providers]] id`). Its documents are
    /// stored under the source named like it (`as_source`).
    ProviderId, "provider id", 64
);

impl ProviderId {
    /// The source a provider's documents are stored under: its id, as a
    /// source name (both follow the same rule, so nothing is re-parsed).
    pub fn as_source(&self) -> SourceName {
        SourceName(self.0.clone())
    }
}

/// A provider id is compared with text where text names a provider (a
/// `--provider` filter, a form field): equal when the text is the id.
impl PartialEq<str> for ProviderId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ProviderId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<ProviderId> for &str {
    fn eq(&self, other: &ProviderId) -> bool {
        *self == other.0
    }
}

/// A link's id: the row id the store gave it. Shown and serialized as the
/// bare number (JSON keeps `"id": 12`); outside text (`--link 12`, a URL
/// path segment) becomes one only through `parse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LinkId(i64);

impl LinkId {
    /// A link id the store handed out (a row id it read or was given back
    /// by an insert). Outside text goes through `parse`.
    pub fn new(id: i64) -> LinkId {
        LinkId(id)
    }

    /// Validates outside text as a link id: a positive whole number.
    pub fn parse(raw: &str) -> Result<LinkId, IdError> {
        let s = raw.trim();
        let refused = || IdError::NotARowId {
            what: "link id",
            found: raw.to_string(),
        };
        if s.is_empty() {
            return Err(IdError::Empty { what: "link id" });
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(refused());
        }
        match s.parse::<i64>() {
            Ok(id) if id > 0 => Ok(LinkId(id)),
            _ => Err(refused()),
        }
    }

    /// The row id, for the store's parameters.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::str::FromStr for LinkId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<LinkId, IdError> {
        LinkId::parse(s)
    }
}

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

    #[test]
    fn provider_ids_refuse_what_cannot_be_an_id_and_name_their_source() {
        let p = ProviderId::parse(" ehr-1 ").expect("id");
        assert_eq!(p.as_str(), "ehr-1");
        assert_eq!(p.to_string(), "ehr-1");
        assert_eq!(p.as_source(), SourceName::parse("ehr-1").expect("source"));
        let refused = |raw: &str| ProviderId::parse(raw).map_err(|e| e.to_string());
        assert_eq!(refused(""), Err("provider id must not be empty".into()));
        assert_eq!(
            refused("ehr one"),
            Err("provider id may hold only letters, digits and . _ - : @ (found ' ')".into())
        );
        assert_eq!(
            refused(&"x".repeat(65)),
            Err("provider id is longer than 64 characters".into())
        );
    }

    #[test]
    fn provider_ids_serialize_as_their_text() {
        let p = ProviderId::parse("ehr").expect("id");
        assert_eq!(serde_json::to_string(&p).expect("json"), "\"ehr\"");
        let back: ProviderId = serde_json::from_str("\"ehr\"").expect("json");
        assert_eq!(back, p);
    }

    #[test]
    fn link_ids_are_positive_whole_numbers() {
        assert_eq!(LinkId::parse("12").map(LinkId::get), Ok(12));
        assert_eq!(LinkId::parse(" 7 ").map(LinkId::get), Ok(7));
        for bad in ["0", "-3", "+3", "1.5", "12a", "abc", "99999999999999999999"] {
            let e = LinkId::parse(bad).expect_err(bad);
            assert_eq!(
                e.to_string(),
                format!("link id must be a positive whole number (found {bad:?})"),
            );
        }
        assert_eq!(
            LinkId::parse("  ").map_err(|e| e.to_string()),
            Err("link id must not be empty".to_string())
        );
    }

    #[test]
    fn link_ids_show_and_serialize_as_the_number() {
        let id = LinkId::new(42);
        assert_eq!(id.to_string(), "42");
        assert_eq!(serde_json::to_string(&id).expect("json"), "42");
        let back: LinkId = serde_json::from_str("42").expect("json");
        assert_eq!(back, id);
        assert_eq!("42".parse::<LinkId>(), Ok(id));
    }
}
