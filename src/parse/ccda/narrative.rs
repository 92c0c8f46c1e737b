//! The narrative block of a C-CDA section (`section/text`): structured
//! entries point into it with `reference/@value="#ID"`, and that is where a
//! drug's original text, a free-text sig and the row a reviewer wants to
//! see live. IDs are unique in a CDA document, so one index serves all.

use std::collections::HashMap;

use roxmltree::{Document, Node};

use super::xml::{attr, child, is, text_of};

/// Every element with an `ID` attribute, by ID.
pub(super) struct Narrative<'a, 'i> {
    ids: HashMap<&'a str, Node<'a, 'i>>,
}

/// What an `originalText` or `text` element says.
pub(super) enum Said<'a, 'i> {
    /// Nothing.
    Nothing,
    /// Text written in the element itself.
    Inline(String),
    /// A reference that resolves: the narrative element and its text.
    Referenced(Node<'a, 'i>, Option<String>),
    /// A reference to an ID the document does not have.
    Dangling(String),
}

impl<'a, 'i> Narrative<'a, 'i> {
    pub(super) fn index(doc: &'a Document<'i>) -> Narrative<'a, 'i> {
        let ids = doc
            .descendants()
            .filter(|n| n.is_element())
            .filter_map(|n| n.attribute("ID").map(|id| (id.trim(), n)))
            .collect();
        Narrative { ids }
    }

    /// What `element` (an `originalText`, or an entry's `text`) says: its
    /// `reference` resolved against the narrative, else its own text.
    pub(super) fn said(&self, element: Node<'a, 'i>) -> Said<'a, 'i> {
        if let Some(reference) = child(element, "reference")
            && let Some(value) = attr(reference, "value")
        {
            let id = value.strip_prefix('#').unwrap_or(value);
            return match self.ids.get(id) {
                Some(&target) => Said::Referenced(target, text_of(target)),
                None => Said::Dangling(value.to_string()),
            };
        }
        let own: Option<String> = {
            let mut text = String::new();
            for piece in element
                .children()
                .filter(|n| n.is_text())
                .filter_map(|n| n.text())
            {
                text.push_str(piece);
                text.push(' ');
            }
            let words: Vec<&str> = text.split_whitespace().collect();
            (!words.is_empty()).then(|| words.join(" "))
        };
        match own {
            Some(text) => Said::Inline(text),
            None => Said::Nothing,
        }
    }
}

/// The narrative row a referenced element belongs to: its table row or list
/// item, else the element itself. This is what a reviewer is shown.
pub(super) fn row_of<'a, 'i>(target: Node<'a, 'i>) -> Node<'a, 'i> {
    target
        .ancestors()
        .take_while(|n| !is(*n, "text"))
        .find(|n| is(*n, "tr") || is(*n, "item"))
        .unwrap_or(target)
}

/// Whether a referenced element is a whole row (so its text is the row's
/// cells run together, not a sig).
pub(super) fn is_row(target: Node) -> bool {
    is(target, "tr") || is(target, "item") || is(target, "table") || is(target, "list")
}

/// Whether a text says the patient takes no medications ("No known
/// medications", "None", "Patient is not taking any medications").
pub(super) fn says_none(text: &str) -> bool {
    let t: String = text
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect();
    let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
    let medication = t.contains("medication") || t.contains("meds") || t.contains("drugs");
    if t.contains("allerg") {
        return false;
    }
    matches!(t.as_str(), "none" | "none known" | "no known")
        || (t.len() < 100
            && medication
            && (t.starts_with("no ")
                || t.contains("not taking any")
                || t.contains("takes no")
                || t.contains("taking no")
                || t.contains("no known")))
}
