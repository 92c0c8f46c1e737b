//! Building one `MedRecord` from the elements of one CCR `<Medication>`.
//!
//! The scanner hands this builder every element end inside the Medication,
//! with the path below `<Medication>` and the element's text. The builder
//! keeps what the path says is a drug fact and ignores the rest; it never
//! interprets a code, a date or a status (normalization does that).

use super::tag::Tag;
use crate::domain::Code;
use crate::parse::{MedRecord, Problem, ProblemKind, SourceRef, Strength};

/// The parts of a repeated or composite child that are only complete at its end.
#[derive(Default)]
pub(super) struct MedBuilder {
    record: MedRecord,
    /// Where the codes of the ProductName/BrandName being read start in
    /// `record.codes`, so they get that element's text as their display.
    codes_from: usize,
    code_value: Option<String>,
    code_system: Option<String>,
    strength_value: Option<String>,
    strength_unit: Option<String>,
    date_type: Option<String>,
    date_exact: Option<String>,
    date_approx: Option<String>,
    dose_value: Option<String>,
    dose_unit: Option<String>,
    frequency_value: Option<String>,
    frequency_text: Option<String>,
    actor_role: Option<String>,
    actor_id: Option<String>,
}

use Tag::*;

impl MedBuilder {
    /// A builder for a Medication just opened. Every CCR record names its
    /// element kind even when the document gives no CCRDataObjectID.
    pub(super) fn new() -> MedBuilder {
        let record = MedRecord {
            source: Some(SourceRef {
                kind: "Medication".to_string(),
                id: None,
            }),
            ..MedRecord::default()
        };
        MedBuilder {
            record,
            ..MedBuilder::default()
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
            [DateTime, Type, Text] => set(&mut self.date_type, text),
            [DateTime, ExactDateTime] => set(&mut self.date_exact, text),
            [DateTime, ApproximateDateTime, Text] => set(&mut self.date_approx, text),
            [DateTime] => self.end_date(),
            [Product, ProductName, Text] => set(&mut self.record.name, text),
            [Product, BrandName, Text] => set(&mut self.record.brand, text),
            [Product, ProductName] => self.name_codes(self.record.name.clone()),
            [Product, BrandName] => self.name_codes(self.record.brand.clone()),
            [Product, ProductName | BrandName, Code, Value] | [Product, Code, Value] => {
                set(&mut self.code_value, text)
            }
            [Product, ProductName | BrandName, Code, CodingSystem]
            | [Product, Code, CodingSystem] => set(&mut self.code_system, text),
            [Product, ProductName | BrandName, Code] | [Product, Code] => self.end_code(),
            [Product, Strength, Value] => set(&mut self.strength_value, text),
            [Product, Strength, Units, Unit] => set(&mut self.strength_unit, text),
            [Product, Strength] => self.end_strength(),
            [Product, Form, Text] => set(&mut self.record.form, text),
            [Directions, Direction, Route, Text] => keep_first(&mut self.record.route, text),
            [Directions, Direction, Dose, Value] => set(&mut self.dose_value, text),
            [Directions, Direction, Dose, Units, Unit] => set(&mut self.dose_unit, text),
            [Directions, Direction, Dose] => self.end_dose(),
            [Directions, Direction, Frequency, Value] => set(&mut self.frequency_value, text),
            [Directions, Direction, Frequency, Text | Description] => {
                set(&mut self.frequency_text, text)
            }
            [Directions, Direction, Frequency] => self.end_frequency(),
            [Directions, Direction, Description, Text]
            | [PatientInstructions, Instruction, Text] => push(&mut self.record.directions, text),
            [Source, Actor, ActorRole, Text] => set(&mut self.actor_role, text),
            [Source, Actor, ActorId] => set(&mut self.actor_id, text),
            [Source, Actor] => self.end_actor(),
            _ => {}
        }
    }

    /// The Medication ended: the record, with its source text.
    pub(super) fn finish(mut self, excerpt: &str) -> MedRecord {
        let record = &mut self.record;
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
        self.record
    }

    fn end_code(&mut self) {
        let system = self.code_system.take();
        // A Code without a Value carries nothing to map; a Code without a
        // CodingSystem is kept (with an empty system) so a reviewer sees it.
        if let Some(value) = self.code_value.take() {
            self.record
                .codes
                .push(Code::new(system.as_deref().unwrap_or(""), &value, None));
        }
    }

    fn name_codes(&mut self, display: Option<String>) {
        let Some(display) = display else { return };
        for code in self.record.codes.iter_mut().skip(self.codes_from) {
            if code.display.is_none() {
                code.display = Some(display.clone());
            }
        }
    }

    fn end_strength(&mut self) {
        let unit = self.strength_unit.take();
        if let Some(value) = self.strength_value.take() {
            self.record.strengths.push(Strength { value, unit });
        }
    }

    fn end_date(&mut self) {
        let when = self.date_exact.take().or(self.date_approx.take());
        let kind = self.date_type.take();
        let (Some(when), Some(kind)) = (when, kind) else {
            return;
        };
        let slot = match DateKind::of(&kind) {
            Some(DateKind::Start) => &mut self.record.start,
            Some(DateKind::Stop) => &mut self.record.stop,
            Some(DateKind::Prescribed) => &mut self.record.prescribed,
            None => return,
        };
        if slot.is_none() {
            *slot = Some(when);
        }
    }

    fn end_dose(&mut self) {
        let unit = self.dose_unit.take();
        if let Some(value) = self.dose_value.take()
            && self.record.dose.is_none()
        {
            self.record.dose = Some(join(value, unit));
        }
    }

    fn end_frequency(&mut self) {
        let value = self.frequency_value.take();
        let text = self.frequency_text.take();
        if self.record.frequency.is_none() {
            self.record.frequency = value.or(text);
        }
    }

    /// A Source/Actor names the prescriber only when its role says so: the
    /// source of a CCR entry is often the exporting system, not a clinician.
    fn end_actor(&mut self) {
        let role = self.actor_role.take();
        let id = self.actor_id.take();
        if role.is_some_and(|r| r.to_ascii_lowercase().contains("prescrib"))
            && self.record.prescriber.is_none()
        {
            self.record.prescriber = id;
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
        let lower = type_text.to_ascii_lowercase();
        let words = || {
            lower
                .split(|c: char| !c.is_ascii_alphabetic())
                .filter(|w| !w.is_empty())
        };
        let any = |set: &[&str]| words().any(|w| set.contains(&w));
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

/// Trims `text`; whitespace-only text is no value.
fn clean(text: &str) -> Option<String> {
    let trimmed = text.trim();
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

fn join(value: String, unit: Option<String>) -> String {
    match unit {
        Some(unit) => format!("{value} {unit}"),
        None => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
