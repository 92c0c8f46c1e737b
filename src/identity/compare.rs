//! The wrong-patient guard's rules: a local patient against a remote
//! identity, per `[providers.identity]`. Pure: no clock, no store, no
//! network.
//!
//! Identifiers compare with surrounding whitespace removed, inner runs of
//! whitespace folded to one space and case ignored ("mrn-1001 " is
//! "MRN-1001"); family names the same way with Unicode case folding; birth
//! dates as calendar dates (a FHIR `1980-04-02T00:00:00Z` is 1980-04-02; a
//! partial date such as `1980-04` proves nothing and holds the link).

use super::RemoteIdentity;
use super::settings::{IdentitySettings, LocalField, Secondary};
use chrono::NaiveDate;
use serde::Serialize;

/// What the guard knows of the local patient.
#[derive(Debug, Clone, Default)]
pub struct LocalIdentity<'a> {
    pub id: &'a str,
    pub mrn: Option<&'a str>,
    /// As registered: "Given Family" or "Family, Given".
    pub name: Option<&'a str>,
    /// YYYY-MM-DD.
    pub birth_date: Option<&'a str>,
}

/// One comparison made, for the audit and the exception.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Compared {
    /// `mrn`, `id`, `family_name`, `birth_date` or `allow`.
    pub what: String,
    pub local: Option<String>,
    pub remote: Option<String>,
    pub equal: bool,
}

/// Why a link is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// The remote identity carries no value where the config reads it.
    MissingRemote { what: String },
    /// The local patient has no value to compare with.
    MissingLocal { what: String },
    /// Both have a value and they differ.
    Differ { what: String },
    /// The remote identifier is not on the enrollment allow-list.
    NotAllowed { value: String },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::MissingRemote { what } => write!(f, "the provider gave no {what}"),
            Problem::MissingLocal { what } => write!(f, "the local patient has no {what}"),
            Problem::Differ { what } => write!(f, "the {what} differs"),
            Problem::NotAllowed { value } => {
                write!(f, "remote identifier {value:?} is not on the allow-list")
            }
        }
    }
}

/// The guard's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub compared: Vec<Compared>,
    /// Empty: the identities match.
    pub problems: Vec<Problem>,
}

impl Verdict {
    pub fn matches(&self) -> bool {
        self.problems.is_empty()
    }
}

/// An identifier as compared: trimmed, inner whitespace folded, upper case.
pub fn normalize_identifier(s: &str) -> String {
    fold_spaces(s).to_uppercase()
}

fn fold_spaces(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A family name as compared: spacing folded, lower case.
pub fn normalize_family(s: &str) -> String {
    fold_spaces(s).to_lowercase()
}

/// The family name of a local patient's name: the part before a comma
/// ("Doe, Jane"), else the last word ("Jane Doe").
pub fn local_family(name: &str) -> Option<String> {
    let family = match name.split_once(',') {
        Some((family, _)) => family.trim(),
        None => name.split_whitespace().last()?,
    };
    (!family.is_empty()).then(|| family.to_string())
}

/// A full calendar date from `YYYY-MM-DD` or an RFC 3339 date-time; a
/// partial date (`1980`, `1980-04`) is none.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    let day = s.get(..10)?;
    if s.len() > 10 && !s[10..].starts_with('T') {
        return None;
    }
    NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
}

/// Compares `local` with `remote` as `settings` say.
pub fn compare(
    settings: &IdentitySettings,
    local: &LocalIdentity<'_>,
    remote: &RemoteIdentity,
) -> Verdict {
    let mut v = Verdict {
        compared: Vec::new(),
        problems: Vec::new(),
    };
    let key = settings.remote.to_string();
    let remote_id = remote.identifiers.get(&key).cloned();
    let local_id = match settings.local {
        LocalField::Mrn => local.mrn.map(str::to_string),
        LocalField::Id => Some(local.id.to_string()),
    };
    let what = settings.local.as_str();
    let equal = matches!((&local_id, &remote_id), (Some(l), Some(r))
        if normalize_identifier(l) == normalize_identifier(r));
    push(&mut v, what, &key, local_id, remote_id.clone(), equal);
    if let (Some(allow), Some(r)) = (&settings.allow, &remote_id) {
        let allowed = allow
            .iter()
            .any(|a| normalize_identifier(a) == normalize_identifier(r));
        v.compared.push(Compared {
            what: "allow".into(),
            local: None,
            remote: Some(r.clone()),
            equal: allowed,
        });
        if !allowed {
            v.problems.push(Problem::NotAllowed { value: r.clone() });
        }
    }
    for check in &settings.also {
        match check {
            Secondary::FamilyName => {
                let l = local.name.and_then(local_family);
                let r = remote.family_name.clone();
                let equal = matches!((&l, &r), (Some(l), Some(r))
                    if normalize_family(l) == normalize_family(r));
                push(&mut v, "family_name", "family_name", l, r, equal);
            }
            Secondary::BirthDate => {
                let l = local.birth_date.map(str::to_string);
                let r = remote.birth_date.clone();
                let equal = matches!(
                    (l.as_deref().and_then(parse_date), r.as_deref().and_then(parse_date)),
                    (Some(a), Some(b)) if a == b
                );
                push(&mut v, "birth_date", "birth_date", l, r, equal);
            }
        }
    }
    v
}

/// Records one comparison and its problem, if any.
fn push(
    v: &mut Verdict,
    what: &str,
    remote_what: &str,
    local: Option<String>,
    remote: Option<String>,
    equal: bool,
) {
    let problem = match (&local, &remote) {
        (_, None) => Some(Problem::MissingRemote {
            what: remote_what.to_string(),
        }),
        (None, _) => Some(Problem::MissingLocal {
            what: what.to_string(),
        }),
        _ if !equal => Some(Problem::Differ {
            what: what.to_string(),
        }),
        _ => None,
    };
    v.problems.extend(problem);
    v.compared.push(Compared {
        what: what.to_string(),
        local,
        remote,
        equal,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::settings::RemoteSource;
    use std::collections::BTreeMap;

    fn settings(also: Vec<Secondary>, allow: Option<Vec<&str>>) -> IdentitySettings {
        IdentitySettings {
            also,
            allow: allow.map(|a| a.into_iter().map(str::to_string).collect()),
            ..IdentitySettings::comparing(RemoteSource::Userinfo("mrn".into()), LocalField::Mrn)
        }
    }

    fn remote(mrn: Option<&str>, family: Option<&str>, birth: Option<&str>) -> RemoteIdentity {
        RemoteIdentity {
            subject: Some("sub-1".into()),
            identifiers: mrn
                .map(|m| BTreeMap::from([("userinfo:mrn".to_string(), m.to_string())]))
                .unwrap_or_default(),
            name: None,
            family_name: family.map(str::to_string),
            birth_date: birth.map(str::to_string),
        }
    }

    const LOCAL: LocalIdentity<'static> = LocalIdentity {
        id: "p1",
        mrn: Some("MRN-1001"),
        name: Some("Jane Van Doe"),
        birth_date: Some("1980-04-02"),
    };

    #[test]
    fn rules() {
        let both = vec![Secondary::FamilyName, Secondary::BirthDate];
        // (name, settings, remote, problems)
        let rows: Vec<(&str, IdentitySettings, RemoteIdentity, Vec<Problem>)> = vec![
            (
                "identifiers fold case and spacing",
                settings(vec![], None),
                remote(Some("  mrn-1001 "), None, None),
                vec![],
            ),
            (
                "another identifier differs",
                settings(vec![], None),
                remote(Some("MRN-1002"), None, None),
                vec![Problem::Differ { what: "mrn".into() }],
            ),
            (
                "a missing identifier holds",
                settings(vec![], None),
                remote(None, None, None),
                vec![Problem::MissingRemote {
                    what: "userinfo:mrn".into(),
                }],
            ),
            (
                "family names ignore case",
                settings(both.clone(), None),
                remote(Some("MRN-1001"), Some("DOE"), Some("1980-04-02T00:00:00Z")),
                vec![],
            ),
            (
                "another family name differs",
                settings(vec![Secondary::FamilyName], None),
                remote(Some("MRN-1001"), Some("Roe"), None),
                vec![Problem::Differ {
                    what: "family_name".into(),
                }],
            ),
            (
                "birth dates compare as dates",
                settings(vec![Secondary::BirthDate], None),
                remote(Some("MRN-1001"), None, Some("1980-04-03")),
                vec![Problem::Differ {
                    what: "birth_date".into(),
                }],
            ),
            (
                "a partial birth date proves nothing",
                settings(vec![Secondary::BirthDate], None),
                remote(Some("MRN-1001"), None, Some("1980-04")),
                vec![Problem::Differ {
                    what: "birth_date".into(),
                }],
            ),
            (
                "a missing secondary value holds",
                settings(vec![Secondary::BirthDate], None),
                remote(Some("MRN-1001"), None, None),
                vec![Problem::MissingRemote {
                    what: "birth_date".into(),
                }],
            ),
            (
                "the allow-list admits folded values",
                settings(vec![], Some(vec!["mrn-1001"])),
                remote(Some("MRN-1001"), None, None),
                vec![],
            ),
            (
                "outside the allow-list holds",
                settings(vec![], Some(vec!["MRN-9"])),
                remote(Some("MRN-1001"), None, None),
                vec![Problem::NotAllowed {
                    value: "MRN-1001".into(),
                }],
            ),
        ];
        for (name, s, r, problems) in rows {
            assert_eq!(compare(&s, &LOCAL, &r).problems, problems, "{name}");
        }
    }

    #[test]
    fn a_local_patient_without_mrn_cannot_match() {
        let local = LocalIdentity { mrn: None, ..LOCAL };
        let v = compare(
            &settings(vec![], None),
            &local,
            &remote(Some("MRN-1001"), None, None),
        );
        assert_eq!(
            v.problems,
            vec![Problem::MissingLocal { what: "mrn".into() }]
        );
    }

    #[test]
    fn local_family_names() {
        assert_eq!(local_family("Jane Doe").as_deref(), Some("Doe"));
        assert_eq!(local_family("Doe, Jane").as_deref(), Some("Doe"));
        assert_eq!(local_family("  ").as_deref(), None);
    }
}
