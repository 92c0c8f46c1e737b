//! The import use case: bytes → parse → normalize → store, for a file
//! handed over by an operator and for documents pulled from providers.
//! `prepare` is the half without the store (size, hash, parse), so a caller
//! that writes through one connection can parse on its own threads;
//! `commit` is the rest.
//!
//! Bad input stops here with a typed error and nothing stored: a document
//! over `max_document_bytes`, an unknown patient, a document that cannot be
//! parsed. When the caller asks to keep unreadable documents, the bytes are
//! kept with a failed sync and an `unreadable` exception instead — the
//! regimen is untouched either way. This module holds no SQL and prints
//! nothing.

use crate::dict::MemoryDictionary;
use crate::domain::{PatientId, SourceName};
use crate::normalize::{self, Options, Skipped};
use crate::parse::{self, DocFormat, ParseError, ParsedDocument, Problem};
use crate::store::{ImportOutcome, ImportWrite, PullRecord, Store, StoreError, UnreadableWrite};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// What to import and how.
pub struct ImportRequest<'a> {
    pub patient: &'a PatientId,
    pub source: &'a SourceName,
    pub bytes: &'a [u8],
    /// None: sniff the format from the bytes.
    pub format: Option<DocFormat>,
    /// Where the bytes came from, for the record.
    pub origin: Option<&'a str>,
    /// `file`, `pull` or `schedule`.
    pub trigger: &'a str,
    /// Who asked (an operator name, `rxsync` for scheduled pulls).
    pub actor: &'a str,
    /// Keep a document that cannot be parsed, with an `unreadable` exception.
    pub keep_unreadable: bool,
    pub max_document_bytes: u64,
    /// How the document's records become a regimen.
    pub options: &'a Options,
    /// Set when the bytes were pulled from a provider: the link's part of
    /// the import's transaction.
    pub pull: Option<&'a PullRecord<'a>>,
    /// The FHIR Patient id the document must be about (the link's remote
    /// patient); a document about another patient raises `identity_mismatch`.
    pub expected_patient: Option<&'a str>,
    /// When the sync began (a pull: before its first request); None: now.
    pub started_at: Option<&'a str>,
}

/// Why an import stored nothing (or only the unreadable document).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The document is larger than `max_document_bytes`.
    #[error("the document is {size} bytes, over import.max_document_bytes = {limit}")]
    TooLarge { size: u64, limit: u64 },
    /// The patient is not registered.
    #[error("unknown patient {0} (add it first: rxsync patient add --id {0})")]
    UnknownPatient(String),
    /// The document cannot be parsed. `kept` says what was stored when the
    /// caller asked to keep unreadable documents.
    #[error("{error}")]
    Unreadable {
        error: Box<ParseError>,
        kept: Option<Box<ImportOutcome>>,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an import did, for people and scripts.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub patient: String,
    pub source: String,
    pub format: DocFormat,
    pub sha256: String,
    /// Medication records found in the document.
    pub records: usize,
    #[serde(flatten)]
    pub outcome: ImportOutcome,
    /// Records left out of the regimen, and why.
    pub skipped: Vec<Skipped>,
    /// Problems the parser reported for the document as a whole.
    pub problems: Vec<Problem>,
}

/// Imports one document.
pub fn import(store: &mut Store, req: &ImportRequest<'_>) -> Result<ImportReport, ImportError> {
    let prepared = prepare(
        req.bytes,
        req.format,
        req.max_document_bytes,
        req.started_at,
    )?;
    commit(store, req, prepared)
}

/// A document checked for size, hashed and parsed, ready for `commit`.
pub struct Prepared {
    /// When the import began (the request's `started_at`, else now).
    started_at: String,
    sha256: String,
    parsed: Result<ParsedDocument, ParseError>,
}

/// The part of an import that needs no database: the size check, the hash
/// and the parse. Callers that write from one connection (the daemon's
/// writer) run this on their own threads first.
/// The arguments are the request's fields of the same names.
pub fn prepare(
    bytes: &[u8],
    format: Option<DocFormat>,
    max_document_bytes: u64,
    started_at: Option<&str>,
) -> Result<Prepared, ImportError> {
    let size = bytes.len() as u64;
    if size > max_document_bytes {
        return Err(ImportError::TooLarge {
            size,
            limit: max_document_bytes,
        });
    }
    let started_at = started_at.map_or_else(
        || chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        str::to_string,
    );
    let sha256 = hex::encode(Sha256::digest(bytes));
    // No excerpts: the document is stored, and excerpts are re-derived from
    // it when a reviewer asks (see `excerpt`).
    let parsed = format
        .map_or_else(|| parse::sniff(bytes), Ok)
        .and_then(|f| parse::parse_with(bytes, f, parse::ParseOptions { excerpts: false }));
    Ok(Prepared {
        started_at,
        sha256,
        parsed,
    })
}

/// The rest of an import, on the store: the patient, an unreadable
/// document, the remembered mappings and the dictionary, normalization and
/// the write. `prepared` must come from `prepare` of the same request's bytes.
pub fn commit(
    store: &mut Store,
    req: &ImportRequest<'_>,
    prepared: Prepared,
) -> Result<ImportReport, ImportError> {
    if store.patient(req.patient)?.is_none() {
        return Err(ImportError::UnknownPatient(req.patient.to_string()));
    }
    let Prepared {
        started_at,
        sha256,
        parsed,
    } = prepared;
    let doc = match parsed {
        Ok(doc) => doc,
        Err(error) => {
            let kept = if req.keep_unreadable {
                Some(Box::new(store.write_unreadable(&UnreadableWrite {
                    patient: req.patient,
                    source: req.source,
                    trigger: req.trigger,
                    bytes: req.bytes,
                    sha256: &sha256,
                    origin: req.origin,
                    error: &error.to_string(),
                    started_at: &started_at,
                    actor: req.actor,
                    pull: req.pull,
                })?))
            } else {
                None
            };
            return Err(ImportError::Unreadable {
                error: Box::new(error),
                kept,
            });
        }
    };

    let mappings = store.code_mappings(req.source)?;
    let dict = dictionary_for(store, &doc, &mappings)?;
    // Claims are judged against the day the sync started (normalization
    // reads no clock); a caller that set a day keeps it.
    let options = normalize::Options {
        today: req.options.today.or_else(|| {
            chrono::DateTime::parse_from_rfc3339(&started_at)
                .ok()
                .map(|t| t.with_timezone(&chrono::Utc).date_naive())
        }),
        ..req.options.clone()
    };
    let regimen = normalize::normalize(&doc, &dict, &mappings, &options);
    let mut regimen = regimen;
    if let Some(flag) = identity_check(&doc, req.expected_patient) {
        regimen.flags.push(flag);
    }
    let outcome = store.write_import(&ImportWrite {
        patient: req.patient,
        source: req.source,
        trigger: req.trigger,
        format: doc.format,
        bytes: req.bytes,
        sha256: &sha256,
        origin: req.origin,
        regimen: &regimen,
        started_at: &started_at,
        actor: req.actor,
        pull: req.pull,
    })?;
    Ok(ImportReport {
        patient: req.patient.to_string(),
        source: req.source.to_string(),
        format: doc.format,
        sha256,
        records: doc.records.len(),
        outcome,
        skipped: regimen.skipped,
        problems: doc.problems,
    })
}

/// The dictionary entries this document can need: every reading of every
/// NDC code it carries, and every NDC a remembered mapping points to. Read
/// up front so that normalization stays pure and a database error surfaces
/// here instead of being mistaken for an unknown code.
fn dictionary_for(
    store: &Store,
    doc: &ParsedDocument,
    mappings: &normalize::CodeMappings,
) -> Result<MemoryDictionary, StoreError> {
    let mut dict = MemoryDictionary::default();
    for n in normalize::ndcs_to_look_up(doc, mappings) {
        if let Some(entry) = store.dict_entry(&n)? {
            dict.insert(entry);
        }
    }
    Ok(dict)
}

/// The id of the Patient a FHIR reference points at (`Patient/123`,
/// `https://h/fhir/Patient/123/_history/2`); None for `urn:uuid:` and
/// contained references, which name no server id.
fn fhir_patient_id(reference: &str) -> Option<&str> {
    let at = reference.rfind("Patient/")?;
    let before = &reference[..at];
    if !(before.is_empty() || before.ends_with('/')) {
        return None;
    }
    reference[at + "Patient/".len()..]
        .split('/')
        .next()
        .filter(|id| !id.is_empty())
}

/// A document about another patient than the link's: a clinician must look.
fn identity_check(doc: &ParsedDocument, expected: Option<&str>) -> Option<normalize::Flag> {
    let expected = expected?;
    if !matches!(doc.format, DocFormat::FhirJson | DocFormat::FhirXml) {
        return None;
    }
    let reference = doc.patient_ref.as_deref()?;
    let found = fhir_patient_id(reference)?;
    (found != expected).then(|| normalize::Flag {
        kind: crate::domain::ExceptionKind::IdentityMismatch,
        item: None,
        related: None,
        detail: format!(
            "the document is about patient {found:?} ({reference}), but the link is to remote patient {expected:?}: check that the provider sent this patient's list"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::fhir_patient_id;

    #[test]
    fn patient_ids_are_read_from_every_reference_form() {
        for (reference, id) in [
            ("Patient/123", Some("123")),
            ("https://h.example/fhir/Patient/p-7", Some("p-7")),
            ("Patient/123/_history/2", Some("123")),
            ("urn:uuid:5e2c0b1e-0000-4000-8000-000000000000", None),
            ("#pat", None),
            ("SomePatient/1", None),
            ("Patient/", None),
        ] {
            assert_eq!(fhir_patient_id(reference), id, "{reference}");
        }
    }
}
