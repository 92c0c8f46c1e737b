//! From the resources of a document, in order, to a `ParsedDocument`:
//! which resources become records, where references land, which records
//! wait for an entry further down, and what the document as a whole says.
//!
//! Shared by the JSON and XML readers, which hand over the resources of a
//! document in order. This module interprets nothing clinically (codes stay
//! as given, dates stay text) and never fails: what it cannot resolve becomes
//! a `Problem` on the record.

use super::claim;
use super::model::{CodeableConcept, Resource, Str, non_empty};
use super::record::{Reader, Systems};
use crate::parse::{
    DocFormat, LeftOut, MAX_UNREADABLE_RECORDS, MedRecord, ParseError, ParsedDocument, Problem,
    ProblemKind, SourceRef, UnreadableRecord,
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
    /// The bundle entry's `search.mode` is `include`: the server added the
    /// resource to support the matches, it is not one of them.
    pub included: bool,
    pub resource: Resource<'a>,
}

/// What the whole document was.
pub struct Source {
    pub format: DocFormat,
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
pub struct Builder<'a> {
    source: Source,
    index: Index<'a>,
    /// One slot per entry: the record it yielded, if any.
    slots: Vec<Option<MedRecord>>,
    excerpts: Vec<&'a str>,
    /// Records waiting for an entry further down the document.
    deferred: Vec<(usize, Resource<'a>)>,
    /// Which entries a record has used as its drug.
    referenced: Vec<bool>,
    /// Which entries a search returned as `search.mode: include`.
    included: Vec<bool>,
    /// How many resources that use a drug (requests, statements, …) were read.
    using: usize,
    left_out: Vec<LeftOut>,
    unreadable: Vec<UnreadableRecord>,
    /// The first unreadable entry past `MAX_UNREADABLE_RECORDS`, and how
    /// many there were from it on: they are summed up in one record.
    unreadable_more: Option<(UnreadableRecord, usize)>,
    patient_ref: Option<Str<'a>>,
    /// Whether a Patient resource is among the entries.
    names_patient: bool,
    /// Other patients the document's resources name (a few suffice to say so).
    other_patients: Vec<Str<'a>>,
    problems: Vec<Problem>,
    systems: Systems,
    /// The records of each claim (ExplanationOfBenefit) entry, which yields
    /// one per line, by entry: its slot stays empty.
    claims: Vec<(usize, Vec<MedRecord>)>,
}

impl<'a> Builder<'a> {
    pub fn new(source: Source, capacity: usize) -> Self {
        Builder {
            source,
            index: Index::default(),
            slots: Vec::with_capacity(capacity),
            excerpts: Vec::with_capacity(capacity),
            deferred: Vec::new(),
            referenced: Vec::with_capacity(capacity),
            included: Vec::with_capacity(capacity),
            using: 0,
            left_out: Vec::new(),
            unreadable: Vec::new(),
            unreadable_more: None,
            patient_ref: None,
            names_patient: false,
            other_patients: Vec::new(),
            problems: Vec::new(),
            systems: Systems::default(),
            claims: Vec::new(),
        }
    }

    /// An entry that could not be read typed, whose loosely read type is
    /// not one rxsync reads as evidence (a Questionnaire whose `code` is a
    /// list, an R5 Composition): it is left out as what it is, like any
    /// other such resource read typed, instead of blocking review as
    /// unreadable. False (nothing done) for a type rxsync reads, or none.
    pub fn not_evidence(&mut self, kind: Option<&str>, id: Option<&str>) -> bool {
        let Some(kind) = kind.map(str::trim).filter(|k| !k.is_empty()) else {
            return false;
        };
        let read = USING.contains(&kind)
            || DRUGS.contains(&kind)
            || [claim::KIND, "OperationOutcome", "Bundle"].contains(&kind);
        if read {
            return false;
        }
        self.names_patient |= kind == "Patient";
        self.left_out.push(LeftOut {
            source: Some(SourceRef {
                kind: kind.to_string(),
                id: id.map(str::to_string),
            }),
            reason: not_evidence(kind),
        });
        true
    }

    /// An entry that could not be read: it is named, never dropped.
    /// Past `MAX_UNREADABLE_RECORDS` they are counted, and summed up in
    /// one more record by `finish`.
    pub fn unreadable(&mut self, record: UnreadableRecord) {
        if self.unreadable.len() < MAX_UNREADABLE_RECORDS {
            self.unreadable.push(record);
            return;
        }
        match &mut self.unreadable_more {
            Some((_, n)) => *n += 1,
            None => self.unreadable_more = Some((record, 1)),
        }
    }

    /// The next resource of the document.
    pub fn push(&mut self, entry: Entry<'a>) {
        let Entry {
            full_url,
            excerpt,
            included,
            resource,
        } = entry;
        let i = self.slots.len();
        self.slots.push(None);
        self.excerpts.push(excerpt);
        self.referenced.push(false);
        self.included.push(included);
        self.index.register(full_url, &resource);
        let who = resource.subject.as_ref().or(resource.patient.as_deref());
        if let Some(reference) = who.and_then(|r| r.reference.clone()) {
            match &self.patient_ref {
                None => self.patient_ref = Some(reference),
                Some(first) if *first != reference && self.other_patients.len() < 8 => {
                    if !self.other_patients.contains(&reference) {
                        self.other_patients.push(reference);
                    }
                }
                Some(_) => {}
            }
        }
        let kind = resource.resource_type.as_deref().unwrap_or("");
        self.names_patient |= kind == "Patient";
        if USING.contains(&kind) {
            self.using += 1;
            if self.index.can_resolve(&resource) {
                self.slots[i] = Some(self.using_record(&resource));
            } else {
                self.deferred.push((i, resource));
            }
        } else if DRUGS.contains(&kind) {
            self.index.drugs.insert(i, resource);
        } else if kind == claim::KIND {
            // A claim is patient evidence (dispenses), never drug data.
            self.using += 1;
            let read = claim::read(&resource, &mut self.systems);
            self.left_out.extend(read.left_out);
            if !read.records.is_empty() {
                self.claims.push((i, read.records));
            }
        } else if kind == "OperationOutcome"
            && let Some(url) = self.index.idents.last().and_then(|d| d.full_url.clone())
        {
            // An outcome entry with a fullUrl stands where that resource
            // would be: a pull that could not fetch a referenced Medication
            // writes down why (`fetch::fhir::note_entry`).
            let why = outcome_text(&resource);
            self.left_out.push(LeftOut {
                source: Some(source_of(&resource)),
                reason: format!("{url} is not in the document: {why}"),
            });
            self.index.notes.insert(i, why);
        } else if kind == "OperationOutcome" {
            // A searchset may carry warnings as an outcome entry.
            let detail = format!(
                "the provider attached an OperationOutcome: {}",
                outcome_text(&resource)
            );
            self.left_out.push(LeftOut {
                source: Some(source_of(&resource)),
                reason: detail.clone(),
            });
            self.problems.push(Problem {
                kind: ProblemKind::Skipped,
                detail,
            });
        } else {
            let reason = if kind.is_empty() {
                "a resource without a resourceType".to_string()
            } else {
                not_evidence(kind)
            };
            self.left_out.push(LeftOut {
                source: Some(source_of(&resource)),
                reason,
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

    /// The records, in document order; a document made only of drug
    /// resources that names no patient is refused as drug data.
    pub fn finish(mut self) -> Result<ParsedDocument, ParseError> {
        for (i, resource) in std::mem::take(&mut self.deferred) {
            self.slots[i] = Some(self.using_record(&resource));
        }
        // A Medication that no record uses, and that the search did not
        // merely include, still yields a record, so that its codes are not
        // lost. Everything else no record uses is reference data (an
        // included Medication, a MedicationKnowledge, a Substance): left out,
        // with the reason.
        let mut drugs: Vec<_> = self.index.drugs.keys().copied().collect();
        drugs.sort_unstable();
        let mut drug_data: Vec<(usize, String)> = Vec::new();
        for i in drugs {
            let Some(resource) = self.index.drugs.get(&i) else {
                continue;
            };
            if self.referenced[i] {
                continue;
            }
            let kind = resource.resource_type.as_deref().unwrap_or("");
            match drug_data.iter_mut().find(|(_, k)| k == kind) {
                Some((n, _)) => *n += 1,
                None => drug_data.push((1, kind.to_string())),
            }
            let reason = if self.included[i] {
                format!("an included {kind} (search.mode include) that no record references")
            } else if kind == "Medication" {
                let mut reader = Reader {
                    index: &self.index,
                    owner: resource,
                    referenced: &mut self.referenced,
                    systems: &mut self.systems,
                };
                self.slots[i] = Some(reader.drug_record(resource));
                continue;
            } else {
                format!(
                    "a {kind} that no record references is drug reference data, not the patient's medication"
                )
            };
            self.left_out.push(LeftOut {
                source: Some(source_of(resource)),
                reason,
            });
        }
        // Excerpts are copied last, in one sweep: each is a large
        // allocation, and glibc consolidates its free lists before a large
        // allocation that follows small frees, which building records makes.
        // Records are finished where they lie and then collected in place
        // (`Option<MedRecord>` and `MedRecord` have the same layout), which
        // spares a second record-sized buffer per document: a fresh one is
        // page-faulted in, and that showed in profiles of big searchsets.
        let mut slots = std::mem::take(&mut self.slots);
        for (slot, excerpt) in slots.iter_mut().zip(&self.excerpts) {
            if let Some(rec) = slot {
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
            }
        }
        // `filter_map`, not `flatten`: only the former is collected in place
        // by std (checked: `flatten` allocates a new buffer).
        #[expect(
            clippy::filter_map_identity,
            reason = "flatten() does not collect in place"
        )]
        let mut records: Vec<MedRecord> = if self.claims.is_empty() {
            slots.into_iter().filter_map(|slot| slot).collect()
        } else {
            self.with_claims(slots)
        };
        // The slots were sized on a guess (and include entries that yield no
        // record); shrinking in place gives the excess back without a copy.
        records.shrink_to_fit();
        let patient_ref = self
            .patient_ref
            .as_deref()
            .and_then(|r| self.index.normalize(r));
        // Drug data is a document of drug resources alone: one with an
        // entry that could not be read (a request, maybe) or an entry that
        // names a patient is the patient's, and is read as such.
        let patients_document = patient_ref.is_some()
            || self.names_patient
            || !self.unreadable.is_empty()
            || self.unreadable_more.is_some();
        if self.using == 0 && !drug_data.is_empty() && !patients_document {
            let found: Vec<String> = drug_data
                .iter()
                .map(|(n, kind)| format!("{n} {kind}"))
                .collect();
            return Err(ParseError::DrugData {
                found: found.join(", "),
            });
        }
        // The same patient may be named relatively and absolutely: compare
        // the normalized references.
        let mut patients: Vec<String> = patient_ref.iter().cloned().collect();
        for other in &self.other_patients {
            if let Some(r) = self.index.normalize(other)
                && !patients.contains(&r)
            {
                patients.push(r);
            }
        }
        let mut problems = self.problems;
        if patients.len() > 1 {
            problems.push(Problem {
                kind: ProblemKind::SeveralPatients,
                detail: format!(
                    "the document's resources name {} patients ({}{})",
                    patients.len(),
                    patients.join(", "),
                    if self.other_patients.len() >= 8 {
                        ", …"
                    } else {
                        ""
                    }
                ),
            });
        }
        let mut unreadable = self.unreadable;
        if let Some((mut first, n)) = self.unreadable_more {
            first.reason = format!(
                "{n} more entries could not be read, from this one on (only the first \
                 {MAX_UNREADABLE_RECORDS} unreadable entries of a document are listed one by one); \
                 this one: {}",
                first.reason
            );
            unreadable.push(first);
        }
        Ok(ParsedDocument {
            format: self.source.format,
            records,
            problems,
            left_out: self.left_out,
            unreadable,
            patient_ref,
        })
    }
}

/// Why a resource of this type yields no record.
fn not_evidence(kind: &str) -> String {
    format!(
        "{} {kind} resource is not medication evidence",
        article(kind)
    )
}

/// "a" or "an", as the resource type's first letter asks.
pub(super) fn article(kind: &str) -> &'static str {
    if kind.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    }
}

/// A resource's type and id, for the lists of what was left out.
fn source_of(resource: &Resource) -> SourceRef {
    SourceRef {
        kind: resource
            .resource_type
            .as_deref()
            .unwrap_or("(no resourceType)")
            .to_string(),
        id: non_empty(resource.id.as_deref()).map(|id| id.trim().to_string()),
    }
}

impl Builder<'_> {
    /// The records in document order, each claim's lines where the claim
    /// stood, with their excerpts (the claim's text) and links normalized.
    fn with_claims(&mut self, slots: Vec<Option<MedRecord>>) -> Vec<MedRecord> {
        let mut claims = std::mem::take(&mut self.claims).into_iter().peekable();
        let mut records = Vec::with_capacity(slots.len());
        for (i, slot) in slots.into_iter().enumerate() {
            records.extend(slot);
            while let Some((_, lines)) = claims.next_if(|(at, _)| *at == i) {
                for mut rec in lines {
                    rec.related = rec
                        .related
                        .iter()
                        .filter_map(|link| self.index.normalize(link))
                        .collect();
                    rec.excerpt = self.excerpts.get(i).copied().unwrap_or("").to_string();
                    records.push(rec);
                }
            }
        }
        records
    }
}

/// Where a reference can land.
///
/// Each entry's fullUrl, type and id are noted as it is read (borrowed,
/// so noting costs nothing); the lookup maps are built only when a
/// reference first needs them, because most records name their drug by a
/// code or a contained resource and never look anything up.
#[derive(Default)]
pub(super) struct Index<'a> {
    idents: Vec<Ident<'a>>,
    maps: RefCell<Maps<'a>>,
    /// The drug resources (Medication, Substance, MedicationKnowledge).
    pub(super) drugs: HashMap<usize, Resource<'a>>,
    /// Why a resource is absent, where an outcome entry stands in its
    /// place (its fullUrl): the outcome's issues.
    pub(super) notes: HashMap<usize, String>,
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
    pub(super) fn find(&self, reference: &str) -> Option<usize> {
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
    pub(super) fn normalize(&self, reference: &str) -> Option<String> {
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
