//! From typed FHIR resources to `MedRecord`s: resolving medication
//! references, reading dosage, dates and links, whatever the version.
//!
//! Shared by the JSON and XML readers, which hand over the resources of a
//! document in order. This module interprets nothing clinically (codes stay
//! as given, dates stay text) and never fails: what it cannot resolve becomes
//! a `Problem` on the record.

use super::model::{
    CodeableConcept, Contained, Dosage, Drug, Ingredient, ItemReference, Num, Reference, Resource,
    Str, non_empty,
};
use crate::domain::{Code, CodeSystem};
use crate::parse::{
    DocFormat, MedRecord, ParseError, ParsedDocument, Problem, ProblemKind, SourceRef, Strength,
};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;

/// One resource of the document, with what locates it.
pub struct Entry<'a> {
    /// The bundle entry's `fullUrl`, when it had one.
    pub full_url: Option<Str<'a>>,
    /// The resource's text in the document, for reviewers.
    pub excerpt: &'a str,
    pub resource: Resource<'a>,
}

/// What the whole document was.
pub struct Source<'k> {
    pub format: DocFormat,
    /// The top-level resource type (`Bundle` or the single resource's type).
    pub top_kind: &'k str,
}

/// Resource types that use a drug and become records.
const USING: [&str; 5] = [
    "MedicationRequest",
    "MedicationStatement",
    "MedicationDispense",
    "MedicationOrder",
    "MedicationAdministration",
];

/// An OperationOutcome as the whole body means the provider refused.
pub fn refuse_outcome(resource: &Resource) -> Result<(), ParseError> {
    if resource.resource_type.as_deref() == Some("OperationOutcome") {
        return Err(ParseError::OperationOutcome {
            issues: outcome_text(resource),
        });
    }
    Ok(())
}

/// `severity code: text` for each issue, joined with `; `.
fn outcome_text(resource: &Resource) -> String {
    let issues: Vec<String> = resource
        .issue
        .0
        .iter()
        .map(|issue| {
            let text = non_empty(issue.diagnostics.as_deref())
                .or_else(|| issue.details.as_ref().and_then(CodeableConcept::name))
                .unwrap_or("(no text)");
            format!(
                "{} {}: {}",
                issue.severity.as_deref().unwrap_or("?"),
                issue.code.as_deref().unwrap_or("?"),
                text.trim()
            )
        })
        .collect();
    if issues.is_empty() {
        "(no issues given)".to_string()
    } else {
        issues.join("; ")
    }
}

/// Resource types kept after reading because a record may resolve to them.
const DRUGS: [&str; 3] = ["Medication", "Substance", "MedicationKnowledge"];

/// Builds the parsed document from the resources of a document, fed in
/// document order.
///
/// A resource is turned into its record as soon as it is read and then
/// dropped, so that a big searchset never holds thousands of typed
/// resources at once (freeing them en masse cost more than reading them).
/// Only drug resources are kept, for resolution; a record whose
/// `medicationReference` names an entry not read yet waits for the end.
pub struct Builder<'a, 'k> {
    source: Source<'k>,
    index: Index<'a>,
    /// One slot per entry: the record it yielded, if any.
    slots: Vec<Option<MedRecord>>,
    excerpts: Vec<&'a str>,
    /// Records waiting for an entry further down the document.
    deferred: Vec<(usize, Resource<'a>)>,
    /// Which entries a record has used as its drug.
    referenced: Vec<bool>,
    patient_ref: Option<Str<'a>>,
    problems: Vec<Problem>,
    systems: Systems,
}

impl<'a, 'k> Builder<'a, 'k> {
    pub fn new(source: Source<'k>, capacity: usize) -> Self {
        Builder {
            source,
            index: Index::default(),
            slots: Vec::with_capacity(capacity),
            excerpts: Vec::with_capacity(capacity),
            deferred: Vec::new(),
            referenced: Vec::with_capacity(capacity),
            patient_ref: None,
            problems: Vec::new(),
            systems: Systems::default(),
        }
    }

    /// A problem with the document rather than with one record.
    pub fn problem(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    /// The next resource of the document.
    pub fn push(&mut self, entry: Entry<'a>) {
        let Entry {
            full_url,
            excerpt,
            resource,
        } = entry;
        let i = self.slots.len();
        self.slots.push(None);
        self.excerpts.push(excerpt);
        self.referenced.push(false);
        self.index.register(full_url, &resource);
        if self.patient_ref.is_none() {
            let who = resource.subject.as_ref().or(resource.patient.as_ref());
            self.patient_ref = who.and_then(|r| r.reference.clone());
        }
        let kind = resource.resource_type.as_deref().unwrap_or("");
        if USING.contains(&kind) {
            if self.index.can_resolve(&resource) {
                self.slots[i] = Some(self.using_record(&resource));
            } else {
                self.deferred.push((i, resource));
            }
        } else if DRUGS.contains(&kind) {
            self.index.drugs.insert(i, resource);
        } else if kind == "OperationOutcome" {
            // A searchset may carry warnings as an outcome entry.
            let detail = format!(
                "the provider attached an OperationOutcome: {}",
                outcome_text(&resource)
            );
            self.problems.push(Problem {
                kind: ProblemKind::Skipped,
                detail,
            });
        }
    }

    fn using_record(&mut self, resource: &Resource<'a>) -> MedRecord {
        let reader = Reader {
            index: &self.index,
            owner: resource,
            referenced: &mut self.referenced,
            systems: &mut self.systems,
        };
        reader.using_record(resource)
    }

    /// The records, in document order.
    pub fn finish(mut self) -> ParsedDocument {
        for (i, resource) in std::mem::take(&mut self.deferred) {
            self.slots[i] = Some(self.using_record(&resource));
        }
        // A Medication that no record uses still yields a record, so that
        // its codes are not lost; a standalone MedicationKnowledge likewise
        // (in a bundle it is reference data, not the patient's medication).
        let mut drugs: Vec<_> = self.index.drugs.keys().copied().collect();
        drugs.sort_unstable();
        for i in drugs {
            let Some(resource) = self.index.drugs.get(&i) else {
                continue;
            };
            let kind = resource.resource_type.as_deref().unwrap_or("");
            let alone = kind == "MedicationKnowledge" && self.source.top_kind == kind;
            if (kind == "Medication" && !self.referenced[i]) || alone {
                let mut reader = Reader {
                    index: &self.index,
                    owner: resource,
                    referenced: &mut self.referenced,
                    systems: &mut self.systems,
                };
                self.slots[i] = Some(reader.drug_record(resource));
            }
        }
        // Excerpts are copied last, in one sweep: each is a large
        // allocation, and glibc consolidates its free lists before a large
        // allocation that follows small frees, which building records makes.
        let mut records = Vec::with_capacity(self.slots.len());
        for (slot, excerpt) in self.slots.into_iter().zip(&self.excerpts) {
            if let Some(mut rec) = slot {
                // Links are normalized now that every entry is known: a
                // `urn:uuid:` may name an entry further down.
                if !rec.related.is_empty() {
                    let mut related: Vec<String> = Vec::with_capacity(rec.related.len());
                    for link in &rec.related {
                        if let Some(key) = self.index.normalize(link)
                            && !related.contains(&key)
                        {
                            related.push(key);
                        }
                    }
                    rec.related = related;
                }
                rec.excerpt = excerpt.to_string();
                records.push(rec);
            }
        }
        let patient_ref = self
            .patient_ref
            .as_deref()
            .and_then(|r| self.index.normalize(r));
        ParsedDocument {
            format: self.source.format,
            records,
            problems: self.problems,
            patient_ref,
        }
    }
}

/// Where a reference can land.
///
/// Each entry's fullUrl, type and id are noted as it is read (borrowed,
/// so noting costs nothing); the lookup maps are built only when a
/// reference first needs them, because most records name their drug by a
/// code or a contained resource and never look anything up.
#[derive(Default)]
struct Index<'a> {
    idents: Vec<Ident<'a>>,
    maps: RefCell<Maps<'a>>,
    /// The drug resources (Medication, Substance, MedicationKnowledge).
    drugs: HashMap<usize, Resource<'a>>,
}

/// What locates one entry.
struct Ident<'a> {
    full_url: Option<Str<'a>>,
    kind: Option<Str<'a>>,
    id: Option<Str<'a>>,
}

impl Ident<'_> {
    fn type_id(&self) -> Option<String> {
        Some(format!(
            "{}/{}",
            self.kind.as_deref()?,
            self.id.as_deref()?.trim()
        ))
    }
}

#[derive(Default)]
struct Maps<'a> {
    /// Each entry's `fullUrl` (trimmed).
    by_url: HashMap<Str<'a>, usize>,
    /// `Type/id` of each entry, and as derived from a fullUrl's tail
    /// (`…/Medication/123`).
    by_type_id: HashMap<String, usize>,
    /// How many entries the maps cover.
    covered: usize,
}

impl<'a> Index<'a> {
    fn register(&mut self, full_url: Option<Str<'a>>, resource: &Resource<'a>) {
        let full_url = full_url.map(|url| match url {
            Cow::Borrowed(u) => Cow::Borrowed(u.trim()),
            Cow::Owned(u) => Cow::Owned(u.trim().to_string()),
        });
        self.idents.push(Ident {
            full_url,
            kind: resource.resource_type.clone(),
            id: resource.id.clone(),
        });
    }

    /// The maps, brought up to date with every entry noted so far.
    fn maps(&self) -> std::cell::RefMut<'_, Maps<'a>> {
        let mut maps = self.maps.borrow_mut();
        for i in maps.covered..self.idents.len() {
            let ident = &self.idents[i];
            if let Some(url) = &ident.full_url {
                if let Some((kind, id)) = type_and_id(url) {
                    maps.by_type_id.entry(format!("{kind}/{id}")).or_insert(i);
                }
                maps.by_url.entry(url.clone()).or_insert(i);
            }
            if let Some(key) = ident.type_id() {
                maps.by_type_id.entry(key).or_insert(i);
            }
        }
        maps.covered = self.idents.len();
        maps
    }

    /// The entry a (non-contained) reference points at.
    fn find(&self, reference: &str) -> Option<usize> {
        let reference = reference.trim();
        let maps = self.maps();
        maps.by_url.get(reference).copied().or_else(|| {
            let (kind, id) = type_and_id(reference)?;
            maps.by_type_id.get(&format!("{kind}/{id}")).copied()
        })
    }

    /// Whether a using resource's drug can be read with what is known now.
    fn can_resolve(&self, resource: &Resource) -> bool {
        let reference = resource.medication_reference.as_ref().or_else(|| {
            resource
                .medication
                .as_ref()
                .and_then(|m| m.reference.as_ref())
        });
        match reference
            .and_then(|r| r.reference.as_deref())
            .map(str::trim)
        {
            None => true,
            Some(target) if target.is_empty() || target.starts_with('#') => true,
            Some(target) => self.find(target).is_some(),
        }
    }

    /// A reference as `Type/id` where it can be placed: base URLs and
    /// versions stripped, `urn:uuid:`s mapped to their entry's type and id.
    /// Contained (`#id`) references name nothing outside their resource.
    fn normalize(&self, reference: &str) -> Option<String> {
        let reference = reference.trim();
        if reference.is_empty() || reference.starts_with('#') {
            return None;
        }
        if reference.starts_with("urn:") {
            let entry = self.maps().by_url.get(reference).copied();
            if let Some(type_id) = entry.and_then(|i| self.idents.get(i)?.type_id()) {
                return Some(type_id);
            }
        }
        Some(match type_and_id(reference) {
            Some((kind, id)) => format!("{kind}/{id}"),
            None => reference.to_string(),
        })
    }
}

/// `Type/id` from `Type/id`, `http://base/Type/id` or `…/Type/id/_history/2`.
fn type_and_id(reference: &str) -> Option<(&str, &str)> {
    let path = reference.split("/_history/").next().unwrap_or(reference);
    let mut parts = path.trim_end_matches('/').rsplit('/');
    let id = parts.next()?;
    let kind = parts.next()?;
    let is_type = kind.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && kind.chars().all(|c| c.is_ascii_alphanumeric());
    (is_type && !id.is_empty() && !reference.starts_with("urn:")).then_some((kind, id))
}

/// Reads one resource into a record.
struct Reader<'r, 'a> {
    index: &'r Index<'a>,
    /// The resource whose `contained` list `#id` references resolve against.
    owner: &'r Resource<'a>,
    /// Which entries a record has used as its drug.
    referenced: &'r mut Vec<bool>,
    systems: &'r mut Systems,
}

/// The coding systems met in this document, each folded once:
/// `CodeSystem::from_label` lowercases its label character by character,
/// which was a tenth of the time spent on a big searchset, and a document
/// uses a handful of systems.
#[derive(Default)]
struct Systems(Vec<(String, CodeSystem)>);

impl Systems {
    /// The same `Code` as `Code::new(label, value, display)`.
    fn code(&mut self, label: &str, value: &str, display: Option<&str>) -> Code {
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
    fn using_record(mut self, r: &Resource) -> MedRecord {
        let mut rec = base_record(r);
        self.read_medication(r, &mut rec);
        read_dosages(r, &mut rec);
        rec.status = text(r.status.as_deref());
        rec.prescribed = text(r.authored_on.as_deref()).or_else(|| text(r.date_written.as_deref()));
        let period = r
            .effective_period
            .as_ref()
            .or(r.effective_time_period.as_ref());
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
            .chain(&r.prior_prescription)
            .chain(&r.request);
        // Kept as written here and normalized in `Builder::finish`.
        for link in links {
            if let Some(target) = non_empty(link.reference.as_deref()) {
                rec.related.push(target.trim().to_string());
            }
        }
        finish(rec)
    }

    /// A record for a Medication (or MedicationKnowledge) standing alone.
    fn drug_record(&mut self, resource: &Resource) -> MedRecord {
        let mut rec = base_record(resource);
        // Medication.status is the product's status, not the patient's.
        self.apply_drug(resource.drug(), &mut rec);
        finish(rec)
    }

    /// The drug: a CodeableConcept, a reference (contained, bundle entry, or
    /// only an identifier), or R5's CodeableReference holding either.
    fn read_medication(&mut self, r: &Resource, rec: &mut MedRecord) {
        let r5 = r.medication.as_ref();
        let concept = r
            .medication_codeable_concept
            .as_ref()
            .or_else(|| r5.and_then(|m| m.concept.as_ref()));
        if let Some(concept) = concept {
            self.push_codes(concept, rec);
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
                    rec.problems.push(Problem {
                        kind: ProblemKind::UnresolvedReference,
                        detail: format!(
                            "medicationReference {target:?} points at nothing in the document"
                        ),
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
    fn push_codes(&mut self, concept: &CodeableConcept, rec: &mut MedRecord) {
        for coding in &concept.coding.0 {
            if let Some(value) = non_empty(coding.code.as_deref()) {
                let system = coding.system.as_deref().unwrap_or("");
                rec.codes
                    .push(self.systems.code(system, value, coding.display.as_deref()));
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
            self.push_codes(code, rec);
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
        for ingredient in drug.ingredient.iter().chain(product).chain(package) {
            self.apply_ingredient(ingredient, rec);
        }
    }

    /// An ingredient (or package content): its codes and its strength.
    fn apply_ingredient(&mut self, ingredient: &Ingredient, rec: &mut MedRecord) {
        let item = ingredient.item.as_ref();
        if let Some(concept) = ingredient
            .item_codeable_concept
            .as_ref()
            .or_else(|| item.and_then(|i| i.concept.as_ref()))
        {
            self.push_codes(concept, rec);
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
                self.push_codes(code, rec);
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
        let period = repeat.period.as_ref().and_then(Num::text)?;
        let frequency = repeat
            .frequency
            .as_ref()
            .and_then(Num::text)
            .unwrap_or_else(|| "1".to_string());
        let unit = repeat
            .period_unit
            .as_deref()
            .or(repeat.period_units.as_deref())
            .map(str::trim)
            .unwrap_or("");
        Some(
            format!("{frequency} per {period} {unit}")
                .trim_end()
                .to_string(),
        )
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
fn text(s: Option<&str>) -> Option<String> {
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
