//! Which sections of a C-CDA hold medications, and what each of their
//! entries is: a Medication Activity read into a record, a Discharge or
//! Admission Medication act wrapping activities, or something left out
//! with its reason. A medications section that lists nothing says why (a
//! nullFlavor, "No known medications"); one whose narrative lists drugs
//! without structured entries is an unreadable record, never "none shared".

use roxmltree::Node;

use super::activity::{self, Place, Read};
use super::narrative::{self, Narrative};
use super::xml::{V3, attr, child, children, is, text_of};
use crate::parse::{
    LeftOut, MedRecord, Position, SourceRef, UNREADABLE_EXCERPT_LIMIT, UnreadableRecord,
};

/// A kind of medications section: its label, LOINC codes and templates
/// (C-CDA R1.1 roots; R2.1 adds an `extension` to the same roots).
struct Kind {
    label: &'static str,
    codes: &'static [&'static str],
    templates: &'static [&'static str],
}

const KINDS: &[Kind] = &[
    Kind {
        label: "Medications",
        codes: &["10160-0"],
        // entries optional, entries required; HITSP C83 / CCD 1.0.
        templates: &[
            "2.16.840.1.113883.10.20.22.2.1",
            "2.16.840.1.113883.10.20.22.2.1.1",
            "2.16.840.1.113883.10.20.1.8",
        ],
    },
    Kind {
        label: "Medications Administered",
        codes: &["29549-3"],
        templates: &["2.16.840.1.113883.10.20.22.2.38"],
    },
    Kind {
        label: "Discharge Medications",
        // Hospital discharge medications (R1.1), Discharge medications (R2.1).
        codes: &["10183-2", "75311-1"],
        templates: &[
            "2.16.840.1.113883.10.20.22.2.11",
            "2.16.840.1.113883.10.20.22.2.11.1",
        ],
    },
    Kind {
        label: "Admission Medications",
        codes: &["42346-7"],
        templates: &["2.16.840.1.113883.10.20.22.2.44"],
    },
];

/// The medications section kind of `section`, by template first, else by code.
fn kind_of(section: Node) -> Option<&'static Kind> {
    let templates: Vec<&str> = children(section, "templateId")
        .filter_map(|t| attr(t, "root"))
        .collect();
    KINDS
        .iter()
        .find(|k| k.templates.iter().any(|t| templates.contains(t)))
        .or_else(|| {
            let code = child(section, "code").and_then(|c| attr(c, "code"))?;
            KINDS.iter().find(|k| k.codes.contains(&code))
        })
}

/// What the medications sections of a document yielded.
#[derive(Default)]
pub(super) struct Found {
    pub records: Vec<MedRecord>,
    pub left_out: Vec<LeftOut>,
    pub unreadable: Vec<UnreadableRecord>,
    /// How many medications sections there were.
    pub sections: usize,
}

/// Reads every medications section under `body` (a `structuredBody`).
pub(super) fn read<'a>(
    body: Node<'a, 'a>,
    narrative: &Narrative<'a, 'a>,
    text: &'a str,
    excerpts: bool,
    found: &mut Found,
    at: impl Fn(usize) -> Position,
) {
    let mut loose = Vec::new();
    for section in body.descendants().filter(|n| is(*n, "section")) {
        let Some(kind) = kind_of(section) else {
            let title = child(section, "title")
                .and_then(text_of)
                .unwrap_or_default();
            let lower = title.to_lowercase();
            if lower.contains("medication") && !lower.contains("allerg") {
                loose.push((title, section));
            }
            continue;
        };
        found.sections += 1;
        read_section(section, kind, narrative, text, excerpts, found, &at);
    }
    if found.sections == 0 {
        // A section titled "Medications" under another code: its drugs are
        // not read, so the document must not pass for one that lists none.
        for (title, section) in loose {
            found.unreadable.push(unreadable_section(
                section,
                text,
                &at,
                format!(
                    "the section {title:?} looks like a medications section but is not coded as one (LOINC 10160-0, 29549-3, 10183-2, 75311-1, 42346-7): rxsync does not read it"
                ),
            ));
        }
    }
}

fn read_section<'a>(
    section: Node<'a, 'a>,
    kind: &'static Kind,
    narrative: &Narrative<'a, 'a>,
    text: &'a str,
    excerpts: bool,
    found: &mut Found,
    at: &impl Fn(usize) -> Position,
) {
    let code = child(section, "code")
        .and_then(|c| attr(c, "code"))
        .unwrap_or(kind.codes[0]);
    if let Some(flavor) = attr(section, "nullFlavor") {
        found.left_out.push(LeftOut {
            source: None,
            reason: format!(
                "the {} section is nullFlavor {flavor} (no information): it lists no medications",
                kind.label
            ),
        });
        return;
    }
    let entries: Vec<Node> = children(section, "entry").collect();
    if entries.is_empty() {
        let said = child(section, "text").and_then(text_of);
        match said {
            Some(words) if !narrative::says_none(&words) => {
                found.unreadable.push(unreadable_section(
                    section,
                    text,
                    at,
                    format!(
                        "the {} section has narrative text but no structured entries: its medications cannot be read",
                        kind.label
                    ),
                ));
            }
            said => found.left_out.push(LeftOut {
                source: None,
                reason: match said {
                    Some(words) => format!(
                        "the {} section says {words:?} and has no entries: it lists no medications",
                        kind.label
                    ),
                    None => format!(
                        "the {} section is empty: it lists no medications",
                        kind.label
                    ),
                },
            }),
        }
        return;
    }
    for (n, entry) in entries.iter().enumerate() {
        let position = format!("{code} entry {}", n + 1);
        let Some(inner) = entry.children().find(|c| c.is_element()) else {
            continue;
        };
        let activities: Vec<(Node, String)> = if is(inner, "substanceAdministration") {
            vec![(inner, position.clone())]
        } else if is(inner, "act") {
            // Discharge / Admission Medication: an act wrapping activities.
            children(inner, "entryRelationship")
                .flat_map(|rel| children(rel, "substanceAdministration"))
                .enumerate()
                .map(|(k, sa)| (sa, format!("{position}.{}", k + 1)))
                .collect()
        } else {
            Vec::new()
        };
        if activities.is_empty() {
            let name = inner.tag_name().name();
            let shown = if inner.tag_name().namespace() == Some(V3) {
                name.to_string()
            } else {
                format!("{{{}}}{name}", inner.tag_name().namespace().unwrap_or(""))
            };
            found.left_out.push(LeftOut {
                source: Some(SourceRef {
                    kind: shown.clone(),
                    id: Some(position),
                }),
                reason: format!(
                    "a {shown} in the {} section, not a medication activity",
                    kind.label
                ),
            });
            continue;
        }
        for (sa, fallback_id) in activities {
            let place = Place {
                section: kind.label,
                fallback_id,
                excerpts,
                narrative,
            };
            match activity::read(sa, &place) {
                Read::Record(record) => found.records.push(*record),
                Read::LeftOut(out) => found.left_out.push(out),
            }
        }
    }
}

/// A section whose medications cannot be read, with its narrative as the
/// excerpt (cut to the limit).
fn unreadable_section(
    section: Node,
    text: &str,
    at: &impl Fn(usize) -> Position,
    reason: String,
) -> UnreadableRecord {
    let code = child(section, "code").and_then(|c| attr(c, "code"));
    let shown = child(section, "text").unwrap_or(section);
    let mut excerpt = text.get(shown.range()).unwrap_or("");
    if excerpt.len() > UNREADABLE_EXCERPT_LIMIT {
        let mut end = UNREADABLE_EXCERPT_LIMIT;
        while !excerpt.is_char_boundary(end) {
            end -= 1;
        }
        excerpt = &excerpt[..end];
    }
    UnreadableRecord {
        source: Some(SourceRef {
            kind: "section".to_string(),
            id: code.map(str::to_string),
        }),
        at: Some(at(section.range().start)),
        entry: None,
        reason,
        excerpt: excerpt.to_string(),
    }
}
