//! One FHIR resource into one `MedRecord`: the drug (a CodeableConcept,
//! a contained or bundled Medication, an identifier, R5's CodeableReference),
//! dosage, dates, people and links, whatever the FHIR version.
//!
//! It reads what the resource says and interprets nothing: codes stay as
//! given, dates stay text, links stay as written until `Builder::finish`
//! normalizes them. It never fails: what it cannot resolve becomes a
//! `Problem` on the record.

use super::extract::Index;
use super::model::{
    CodeableConcept, Contained, Dosage, Drug, Ingredient, ItemReference, Num, Reference, Resource,
    non_empty,
};
use crate::domain::{Code, CodeSystem};
use crate::parse::{MedRecord, Problem, ProblemKind, SourceRef, Strength};

/// Reads one resource into a record.
pub(super) struct Reader<'r, 'a> {
    pub(super) index: &'r Index<'a>,
    /// The resource whose `contained` list `#id` references resolve against.
    pub(super) owner: &'r Resource<'a>,
    /// Which entries a record has used as its drug.
    pub(super) referenced: &'r mut Vec<bool>,
    pub(super) systems: &'r mut Systems,
}

/// The coding systems met in this document, each folded once:
/// `CodeSystem::from_label` lowercases its label character by character,
/// which was a tenth of the time spent on a big searchset, and a document
/// uses a handful of systems.
#[derive(Default)]
pub(super) struct Systems(Vec<(String, CodeSystem)>);

impl Systems {
    /// The same `Code` as `Code::new(label, value, display)`.
    pub(super) fn code(&mut self, label: &str, value: &str, display: Option<&str>) -> Code {
        let Some((_, system)) = self.0.iter().find(|(known, _)| known == label) else {
            let code = Code::new(label, value, display);
            // Bounded, so that a hostile document cannot make lookups slow.
            if self.0.len() < 16 {
                self.0.push((label.to_string(), code.system.clone()));
            }
            return code;
        };
        Code {
            system: system.clone(),
            system_original: label.trim().to_string(),
            value: value.trim().to_string(),
            display: display
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_string),
        }
    }
}

impl<'r, 'a> Reader<'r, 'a> {
    pub(super) fn using_record(mut self, r: &Resource) -> MedRecord {
        let mut rec = base_record(r);
        self.read_medication(r, &mut rec);
        read_dosages(r, &mut rec);
        rec.status = text(r.status.as_deref());
        rec.prescribed = text(r.authored_on.as_deref()).or_else(|| text(r.date_written.as_deref()));
        let period = r
            .effective_period
            .as_ref()
            .or(r.effective_time_period.as_deref());
        rec.start = text(r.effective_date_time.as_deref())
            .or_else(|| text(r.effective_time_date_time.as_deref()))
            .or_else(|| period.and_then(|p| text(p.start.as_deref())))
            .or_else(|| text(r.when_handed_over.as_deref()));
        rec.stop = period.and_then(|p| text(p.end.as_deref()));
        if let Some(validity) = r
            .dispense_request
            .as_ref()
            .and_then(|d| d.validity_period.as_ref())
        {
            rec.start = rec.start.or_else(|| text(validity.start.as_deref()));
            rec.stop = rec.stop.or_else(|| text(validity.end.as_deref()));
        }
        rec.prescriber = r
            .requester
            .as_ref()
            .and_then(|q| {
                text(q.display.as_deref())
                    .or_else(|| q.agent.as_ref().and_then(|a| text(a.display.as_deref())))
            })
            .or_else(|| {
                r.prescriber
                    .as_ref()
                    .and_then(|p| text(p.display.as_deref()))
            });
        let links = r
            .authorizing_prescription
            .0
            .iter()
            .chain(&r.based_on.0)
            .chain(&r.derived_from.0)
            .chain(&r.part_of.0)
            .chain(r.prior_prescription.as_deref())
            .chain(r.request.as_deref());
        // Kept as written here and normalized in `Builder::finish`.
        for link in links {
            if let Some(target) = non_empty(link.reference.as_deref()) {
                rec.related.push(target.trim().to_string());
            }
        }
        finish(rec)
    }

    /// A record for a Medication (or MedicationKnowledge) standing alone.
    pub(super) fn drug_record(&mut self, resource: &Resource) -> MedRecord {
        let mut rec = base_record(resource);
        // Medication.status is the product's status, not the patient's.
        self.apply_drug(resource.drug(), &mut rec);
        finish(rec)
    }

    /// The drug: a CodeableConcept, a reference (contained, bundle entry, or
    /// only an identifier), or R5's CodeableReference holding either.
    fn read_medication(&mut self, r: &Resource, rec: &mut MedRecord) {
        let r5 = r.medication.as_deref();
        let concept = r
            .medication_codeable_concept
            .as_ref()
            .or_else(|| r5.and_then(|m| m.concept.as_ref()));
        if let Some(concept) = concept {
            self.push_codes(concept, &mut rec.codes);
            rec.name = text(concept.name());
        }
        if let Some(reference) = r
            .medication_reference
            .as_ref()
            .or_else(|| r5.and_then(|m| m.reference.as_ref()))
        {
            self.read_reference(reference, rec);
        }
    }

    fn read_reference(&mut self, reference: &Reference, rec: &mut MedRecord) {
        let display = text(reference.display.as_deref());
        match reference
            .reference
            .as_deref()
            .map(str::trim)
            .filter(|x| !x.is_empty())
        {
            Some(target) => {
                if self.apply_target(target, rec) {
                    rec.name = rec.name.take().or(display);
                } else {
                    let note = self
                        .index
                        .find(target)
                        .and_then(|i| self.index.notes.get(&i));
                    let detail = match note {
                        Some(why) => format!(
                            "medicationReference {target:?} points at nothing in the document ({why})"
                        ),
                        None => format!(
                            "medicationReference {target:?} points at nothing in the document"
                        ),
                    };
                    rec.problems.push(Problem {
                        kind: ProblemKind::UnresolvedReference,
                        detail,
                    });
                    rec.name = rec.name.take().or(display);
                }
            }
            None => {
                // Real EHRs put an NDC on a reference with no resource behind it.
                if let Some(id) = &reference.identifier
                    && let Some(value) = non_empty(id.value.as_deref())
                {
                    let system = id.system.as_deref().unwrap_or("");
                    rec.codes.push(Code::new(system, value, display.as_deref()));
                }
                rec.name = rec.name.take().or(display);
            }
        }
    }

    /// Applies the drug a reference resolves to; false when it resolves to nothing.
    fn apply_target(&mut self, target: &str, rec: &mut MedRecord) -> bool {
        if let Some(id) = target.strip_prefix('#') {
            return match self.contained(id) {
                Some(contained) => {
                    self.apply_drug(contained.drug(), rec);
                    true
                }
                None => false,
            };
        }
        match self
            .index
            .find(target)
            .and_then(|i| Some((i, self.index.drugs.get(&i)?)))
        {
            Some((i, owner)) => {
                self.referenced[i] = true;
                let mut inner = Reader {
                    index: self.index,
                    owner,
                    referenced: &mut *self.referenced,
                    systems: &mut *self.systems,
                };
                inner.apply_drug(owner.drug(), rec);
                true
            }
            None => false,
        }
    }

    /// Every coding with a code, in order.
    fn push_codes(&mut self, concept: &CodeableConcept, out: &mut Vec<Code>) {
        for coding in &concept.coding.0 {
            if let Some(value) = non_empty(coding.code.as_deref()) {
                let system = coding.system.as_deref().unwrap_or("");
                out.push(self.systems.code(system, value, coding.display.as_deref()));
            }
        }
    }

    fn contained(&self, id: &str) -> Option<&'r Contained<'a>> {
        self.owner
            .contained
            .0
            .iter()
            .find(|c| c.id.as_deref().map(str::trim) == Some(id.trim()))
    }

    /// Codes, name, form, ingredients and strengths of a Medication-like resource.
    fn apply_drug(&mut self, drug: Drug, rec: &mut MedRecord) {
        if let Some(code) = drug.code {
            self.push_codes(code, &mut rec.codes);
            rec.name = rec.name.take().or_else(|| text(code.name()));
        }
        let form = drug
            .form
            .or_else(|| drug.product.and_then(|p| p.form.as_ref()));
        rec.form = rec
            .form
            .take()
            .or_else(|| form.and_then(|f| text(f.words())));
        let product = drug.product.map_or(&[][..], |p| &p.ingredient.0[..]);
        let package = drug.package.map_or(&[][..], |p| &p.content.0[..]);
        // An ingredient's code names a part of the drug, not the drug: it
        // goes to `ingredient_codes`. Package content is the packaged product
        // itself, so its codes are the drug's.
        for ingredient in drug.ingredient.iter().chain(product) {
            self.apply_ingredient(ingredient, rec, true);
        }
        for content in package {
            self.apply_ingredient(content, rec, false);
        }
    }

    /// An ingredient (or package content): its codes and its strength.
    fn apply_ingredient(
        &mut self,
        ingredient: &Ingredient,
        rec: &mut MedRecord,
        is_ingredient: bool,
    ) {
        let item = ingredient.item.as_ref();
        if let Some(concept) = ingredient
            .item_codeable_concept
            .as_ref()
            .or_else(|| item.and_then(|i| i.concept.as_ref()))
        {
            self.push_codes(concept, codes_of(rec, is_ingredient));
        }
        let reference = ingredient
            .item_reference
            .as_ref()
            .and_then(|r| r.reference.as_deref())
            .or_else(|| {
                item.and_then(|i| i.reference.as_ref())
                    .and_then(|r| match r {
                        ItemReference::Text(t) => Some(t.as_ref()),
                        ItemReference::Reference(r) => r.reference.as_deref(),
                    })
            });
        if let Some(target) = reference {
            // An ingredient's Substance or Medication lends its codes only:
            // following its own ingredients could loop.
            let code = match target.trim().strip_prefix('#') {
                Some(id) => self.contained(id).and_then(|c| c.code.as_ref()),
                None => self
                    .index
                    .find(target)
                    .and_then(|i| self.index.drugs.get(&i))
                    .and_then(|r| r.code.as_ref()),
            };
            if let Some(code) = code {
                self.push_codes(code, codes_of(rec, is_ingredient));
            }
        }
        let ratio = ingredient
            .strength
            .as_ref()
            .or(ingredient.strength_ratio.as_ref())
            .or(ingredient.amount.as_ref());
        if let Some(quantity) = ratio.and_then(|r| r.numerator.as_ref())
            && let Some(value) = quantity.value.as_ref().and_then(Num::text)
        {
            let unit = text(quantity.unit_text());
            rec.strengths.push(Strength { value, unit });
        }
    }
}

/// Where an ingredient's or a package content's codes go.
fn codes_of(rec: &mut MedRecord, is_ingredient: bool) -> &mut Vec<Code> {
    if is_ingredient {
        &mut rec.ingredient_codes
    } else {
        &mut rec.codes
    }
}

fn base_record(r: &Resource) -> MedRecord {
    MedRecord {
        source: Some(SourceRef {
            kind: r.resource_type.as_deref().unwrap_or("").to_string(),
            id: text(r.id.as_deref()),
        }),
        ..MedRecord::default()
    }
}

/// Directions, route, dose and frequency from every dosage, first found wins.
fn read_dosages(r: &Resource, rec: &mut MedRecord) {
    for dosage in r.dosage_instruction.0.iter().chain(&r.dosage.0) {
        if let Some(sig) = text(dosage.text.as_deref()) {
            rec.directions.push(sig);
        }
        rec.route = rec
            .route
            .take()
            .or_else(|| dosage.route.as_ref().and_then(|x| text(x.words())));
        rec.dose = rec.dose.take().or_else(|| dose_text(dosage));
        rec.frequency = rec.frequency.take().or_else(|| frequency_text(dosage));
    }
}

fn dose_text(dosage: &Dosage) -> Option<String> {
    dosage
        .dose_and_rate
        .0
        .iter()
        .find_map(|d| d.dose_quantity.as_ref())
        .or(dosage.dose_quantity.as_ref())
        .or(dosage.dose.as_ref())
        .or(dosage.quantity.as_ref())
        .and_then(|q| q.render())
}

/// `timing.code` words, else `repeat` as "2 per 1 d"; "as needed" added when
/// the dosage says so.
fn frequency_text(dosage: &Dosage) -> Option<String> {
    let timing = dosage.timing.as_ref();
    let coded = timing
        .and_then(|t| t.code.as_ref())
        .and_then(|c| text(c.words()));
    let repeated = || {
        let repeat = timing?.repeat.as_ref()?;
        let period = repeat.period.as_ref().and_then(Num::shown)?;
        let frequency = repeat.frequency.as_ref().and_then(Num::shown);
        let unit = repeat
            .period_unit
            .as_deref()
            .or(repeat.period_units.as_deref())
            .map(str::trim)
            .unwrap_or("");
        // Formatted in one go (no text per number); `period` is trimmed and
        // not blank, so only a missing unit would leave trailing space.
        let frequency: &dyn std::fmt::Display = match &frequency {
            Some(f) => f,
            None => &"1",
        };
        Some(if unit.is_empty() {
            format!("{frequency} per {period}")
        } else {
            format!("{frequency} per {period} {unit}")
        })
    };
    let base = coded.or_else(repeated);
    let as_needed = dosage.as_needed_boolean.is_some_and(|b| b.0);
    match (base, as_needed) {
        (Some(base), true) => Some(format!("{base}, as needed")),
        (None, true) => Some("as needed".to_string()),
        (base, false) => base,
    }
}

/// Owned trimmed text, when there is any.
pub(super) fn text(s: Option<&str>) -> Option<String> {
    non_empty(s).map(|s| s.trim().to_string())
}

/// A record with neither codes nor a name says so.
fn finish(mut rec: MedRecord) -> MedRecord {
    if rec.codes.is_empty() && rec.name.is_none() && rec.problems.is_empty() {
        rec.problems.push(Problem {
            kind: ProblemKind::NoDrug,
            detail: "the resource names no drug (no code, no text)".to_string(),
        });
    }
    rec
}
