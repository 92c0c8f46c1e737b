//! Building one `MedRecord` from the elements of one CCR `<Medication>`.
//!
//! The scanner hands this builder every element end inside the Medication,
//! with the path below `<Medication>` and the element's text. The builder
//! keeps what the path says is a drug fact and ignores the rest; it never
//! interprets a code, a date or a status (normalization does that).

use super::tag::Tag;
use crate::domain::{Code, CodeSystem};
use crate::parse::{MedRecord, Problem, ProblemKind, SourceRef, Strength};

/// Reads one Medication at a time; the scanner keeps one builder for the
/// whole document so the scratch buffers below are allocated once, not per
/// element (this is the hot path for medication-heavy documents).
#[derive(Default)]
pub(super) struct MedBuilder {
    record: MedRecord,
    /// Where the codes of the ProductName/BrandName being read start in
    /// `record.codes`, so they get that element's text as their display.
    codes_from: usize,
    /// Parts of composite children that are complete only at their end.
    code_value: String,
    code_system: String,
    strength_value: String,
    strength_unit: String,
    date_type: String,
    date_exact: String,
    date_approx: String,
    dose_value: String,
    dose_unit: String,
    frequency_value: String,
    frequency_text: String,
    actor_role: String,
    actor_id: String,
    /// CodingSystem labels already folded, and what they fold to. A
    /// document spells its few systems the same way on every code, and
    /// folding a label (`CodeSystem::from_label`) allocates and lowercases
    /// char by char: it was the largest single cost of a Medication.
    systems: Memo<CodeSystem>,
    /// DateTime/Type texts already classified, for the same reason: the same
    /// "Start Date" on every Medication, matched word by word each time.
    date_kinds: Memo<Option<DateKind>>,
}

use Tag::*;

impl MedBuilder {
    /// Starts a new Medication. Every CCR record names its element kind even
    /// when the document gives no CCRDataObjectID.
    pub(super) fn begin(&mut self) {
        // `finish` took the previous record and left a default one (as
        // does `Default` for the first): only the source needs setting.
        // Building and moving a whole new record here cost more than the
        // rest of a Medication's start.
        debug_assert!(self.record == MedRecord::default());
        self.record.source = Some(SourceRef {
            kind: "Medication".to_string(),
            id: None,
        });
        self.codes_from = 0;
        for scratch in [
            &mut self.code_value,
            &mut self.code_system,
            &mut self.strength_value,
            &mut self.strength_unit,
            &mut self.date_type,
            &mut self.date_exact,
            &mut self.date_approx,
            &mut self.dose_value,
            &mut self.dose_unit,
            &mut self.frequency_value,
            &mut self.frequency_text,
            &mut self.actor_role,
            &mut self.actor_id,
        ] {
            scratch.clear();
        }
    }

    /// An element inside the Medication starts; `path` ends with it.
    pub(super) fn start(&mut self, path: &[Tag]) {
        if let [Product, ProductName | BrandName] = path {
            self.codes_from = self.record.codes.len();
        }
    }

    /// An element inside the Medication ends; `path` ends with it and `text`
    /// is the text it directly held.
    pub(super) fn end(&mut self, path: &[Tag], text: &str) {
        match path {
            [ObjectId] => {
                if let Some(source) = self.record.source.as_mut()
                    && source.id.is_none()
                {
                    source.id = clean(text);
                }
            }
            [Status, Text] => set(&mut self.record.status, text),
            [DateTime, Type, Text] => fill(&mut self.date_type, text),
            [DateTime, ExactDateTime] => fill(&mut self.date_exact, text),
            [DateTime, ApproximateDateTime, Text] => fill(&mut self.date_approx, text),
            [DateTime] => self.end_date(),
            [Product, ProductName, Text] => set(&mut self.record.name, text),
            [Product, BrandName, Text] => set(&mut self.record.brand, text),
            [Product, ProductName] => self.name_codes(false),
            [Product, BrandName] => self.name_codes(true),
            [Product, ProductName | BrandName, Code, Value] | [Product, Code, Value] => {
                fill(&mut self.code_value, text)
            }
            [Product, ProductName | BrandName, Code, CodingSystem]
            | [Product, Code, CodingSystem] => fill(&mut self.code_system, text),
            [Product, ProductName | BrandName, Code] | [Product, Code] => self.end_code(),
            [Product, Strength, Value] => fill(&mut self.strength_value, text),
            [Product, Strength, Units, Unit] => fill(&mut self.strength_unit, text),
            [Product, Strength] => self.end_strength(),
            [Product, Form, Text] => set(&mut self.record.form, text),
            [Directions, Direction, Route, Text] => keep_first(&mut self.record.route, text),
            [Directions, Direction, Dose, Value] => fill(&mut self.dose_value, text),
            [Directions, Direction, Dose, Units, Unit] => fill(&mut self.dose_unit, text),
            [Directions, Direction, Dose] => self.end_dose(),
            [Directions, Direction, Frequency, Value] => fill(&mut self.frequency_value, text),
            [Directions, Direction, Frequency, Text | Description] => {
                fill(&mut self.frequency_text, text)
            }
            [Directions, Direction, Frequency] => self.end_frequency(),
            [Directions, Direction, Description, Text]
            | [PatientInstructions, Instruction, Text] => push(&mut self.record.directions, text),
            [Source, Actor, ActorRole, Text] => fill(&mut self.actor_role, text),
            [Source, Actor, ActorId] => fill(&mut self.actor_id, text),
            [Source, Actor] => self.end_actor(),
            _ => {}
        }
    }

    /// The Medication ended: the record, with its source text.
    pub(super) fn finish(&mut self, excerpt: &str) -> MedRecord {
        let mut record = std::mem::take(&mut self.record);
        record.excerpt = excerpt.to_string();
        if record.codes.is_empty() && record.name.is_none() && record.brand.is_none() {
            let id = record
                .source
                .as_ref()
                .and_then(|s| s.id.as_deref())
                .unwrap_or("without CCRDataObjectID");
            record.problems.push(Problem {
                kind: ProblemKind::NoDrug,
                detail: format!("CCR Medication {id} names no drug: it has no product code and no product or brand name"),
            });
        }
        record
    }

    fn end_code(&mut self) {
        // A Code without a Value carries nothing to map; a Code without a
        // CodingSystem is kept (with an empty system) so a reviewer sees it.
        if !self.code_value.is_empty() {
            let system = self
                .systems
                .get_or_insert(&self.code_system, CodeSystem::from_label)
                .clone();
            // What `Code::new(&self.code_system, &self.code_value, None)`
            // builds, with the folded system from the cache: both scratch
            // buffers are already trimmed (see `fill`).
            self.record.codes.push(Code {
                system,
                system_original: self.code_system.clone(),
                value: self.code_value.clone(),
                display: None,
            });
        }
        self.code_value.clear();
        self.code_system.clear();
    }

    /// Codes on a ProductName or BrandName get that element's text as their display.
    fn name_codes(&mut self, brand: bool) {
        let display = if brand {
            &self.record.brand
        } else {
            &self.record.name
        };
        let Some(display) = display else { return };
        for code in self.record.codes.iter_mut().skip(self.codes_from) {
            if code.display.is_none() {
                code.display = Some(display.clone());
            }
        }
    }

    fn end_strength(&mut self) {
        if !self.strength_value.is_empty() {
            let unit = (!self.strength_unit.is_empty()).then(|| self.strength_unit.clone());
            self.record.strengths.push(Strength {
                value: self.strength_value.clone(),
                unit,
            });
        }
        self.strength_value.clear();
        self.strength_unit.clear();
    }

    fn end_date(&mut self) {
        let when = if self.date_exact.is_empty() {
            &self.date_approx
        } else {
            &self.date_exact
        };
        let kind = *self.date_kinds.get_or_insert(&self.date_type, DateKind::of);
        let slot = match kind {
            Some(DateKind::Start) => Some(&mut self.record.start),
            Some(DateKind::Stop) => Some(&mut self.record.stop),
            Some(DateKind::Prescribed) => Some(&mut self.record.prescribed),
            None => None,
        };
        if let Some(slot) = slot
            && slot.is_none()
            && !when.is_empty()
        {
            *slot = Some(when.clone());
        }
        self.date_type.clear();
        self.date_exact.clear();
        self.date_approx.clear();
    }

    fn end_dose(&mut self) {
        if self.record.dose.is_none() && !self.dose_value.is_empty() {
            // Built by hand: `format!` costs more than the two copies.
            self.record.dose = Some(if self.dose_unit.is_empty() {
                self.dose_value.clone()
            } else {
                let mut dose =
                    String::with_capacity(self.dose_value.len() + 1 + self.dose_unit.len());
                dose.push_str(&self.dose_value);
                dose.push(' ');
                dose.push_str(&self.dose_unit);
                dose
            });
        }
        self.dose_value.clear();
        self.dose_unit.clear();
    }

    fn end_frequency(&mut self) {
        if self.record.frequency.is_none() {
            let value = if self.frequency_value.is_empty() {
                &self.frequency_text
            } else {
                &self.frequency_value
            };
            self.record.frequency = (!value.is_empty()).then(|| value.clone());
        }
        self.frequency_value.clear();
        self.frequency_text.clear();
    }

    /// A Source/Actor names the prescriber only when its role says so: the
    /// source of a CCR entry is often the exporting system, not a clinician.
    fn end_actor(&mut self) {
        let prescribing = self.actor_role.to_ascii_lowercase().contains("prescrib");
        if prescribing && self.record.prescriber.is_none() && !self.actor_id.is_empty() {
            self.record.prescriber = Some(self.actor_id.clone());
        }
        self.actor_role.clear();
        self.actor_id.clear();
    }
}

/// A few texts already looked at, with what was made of them. Documents
/// repeat a handful of labels, so a short list searched in order beats a
/// map; past `MEMO_SIZE` distinct labels new ones are computed every time
/// (bounded memory whatever the input).
pub(super) struct Memo<T> {
    entries: Vec<(String, T)>,
}

const MEMO_SIZE: usize = 8;

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Memo {
            entries: Vec::new(),
        }
    }
}

impl<T> Memo<T> {
    /// What `compute(key)` returns, computed once per key while there is room.
    fn get_or_insert(&mut self, key: &str, compute: impl FnOnce(&str) -> T) -> &T {
        match self.entries.iter().position(|(k, _)| k == key) {
            Some(i) => &self.entries[i].1,
            None if self.entries.len() < MEMO_SIZE => {
                self.entries.push((key.to_string(), compute(key)));
                &self.entries[self.entries.len() - 1].1
            }
            // Full: replace the newest entry, keeping the first ones (the
            // labels a document uses everywhere are usually met first).
            None => {
                let last = self.entries.len() - 1;
                self.entries[last] = (key.to_string(), compute(key));
                &self.entries[last].1
            }
        }
    }
}

/// What a CCR `DateTime/Type/Text` says a date is. Providers word these
/// freely ("Start Date", "Started", "Date Prescribed", "Ordered"), so the
/// text is read word by word, case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DateKind {
    Start,
    Stop,
    Prescribed,
}

impl DateKind {
    pub(super) fn of(type_text: &str) -> Option<DateKind> {
        let any = |set: &[&str]| {
            type_text
                .split(|c: char| !c.is_ascii_alphabetic())
                .any(|word| set.iter().any(|w| w.eq_ignore_ascii_case(word)))
        };
        if any(&[
            "stop",
            "stopped",
            "end",
            "ended",
            "ending",
            "discontinued",
            "discontinue",
            "expiration",
            "expired",
            "expires",
            "inactivated",
        ]) {
            Some(DateKind::Stop)
        } else if any(&[
            "start",
            "started",
            "starting",
            "begin",
            "began",
            "onset",
            "initiated",
            "effective",
        ]) {
            Some(DateKind::Start)
        } else if any(&[
            "prescription",
            "prescribed",
            "prescribe",
            "ordered",
            "order",
            "written",
            "authored",
        ]) {
            Some(DateKind::Prescribed)
        } else {
            None
        }
    }
}

/// `text.trim()`, without its cost in the usual case. Most values have
/// nothing to trim, and `str::trim` decodes chars from both ends to test
/// them for Unicode whitespace; an ASCII letter, digit or sign at both ends
/// settles it in two byte tests.
fn trim(text: &str) -> &str {
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

/// Trims `text`; whitespace-only text is no value.
fn clean(text: &str) -> Option<String> {
    let trimmed = trim(text);
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

fn set(slot: &mut Option<String>, text: &str) {
    if let Some(value) = clean(text) {
        *slot = Some(value);
    }
}

fn keep_first(slot: &mut Option<String>, text: &str) {
    if slot.is_none() {
        set(slot, text);
    }
}

fn push(list: &mut Vec<String>, text: &str) {
    if let Some(value) = clean(text) {
        list.push(value);
    }
}

/// Replaces a scratch buffer's content with `text`, trimmed, reusing its allocation.
fn fill(scratch: &mut String, text: &str) {
    scratch.clear();
    scratch.push_str(trim(text));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_agrees_with_str_trim() {
        for text in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\ta\n",
            "a b",
            "\u{a0}a",
            "a\u{a0}",
            "é",
            " é ",
            "\u{3000}x",
        ] {
            assert_eq!(trim(text), text.trim(), "{text:?}");
        }
    }

    #[test]
    fn date_types_are_read_liberally() {
        let cases = [
            ("Start Date", Some(DateKind::Start)),
            ("Started", Some(DateKind::Start)),
            ("start date", Some(DateKind::Start)),
            ("Stop Date", Some(DateKind::Stop)),
            ("End Date", Some(DateKind::Stop)),
            ("STOPPED", Some(DateKind::Stop)),
            ("Prescription Date", Some(DateKind::Prescribed)),
            ("Date Prescribed", Some(DateKind::Prescribed)),
            ("Ordered", Some(DateKind::Prescribed)),
            ("Dispense Date", None),
            ("Recommended", None),
        ];
        for (text, want) in cases {
            assert_eq!(DateKind::of(text), want, "{text:?}");
        }
    }
}
