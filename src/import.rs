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
use crate::normalize::{self, Options, Skipped};
use crate::parse::{self, DocFormat, ParseError, ParsedDocument, Problem};
use crate::store::{ImportOutcome, ImportWrite, Store, StoreError, SyncContext, UnreadableWrite};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// What to import and how.
pub struct ImportRequest<'a> {
    /// The sync: patient, source, trigger, actor, start, origin and — when
    /// the bytes were pulled from a provider — the link's part of the
    /// import's transaction.
    pub sync: &'a SyncContext,
    pub bytes: &'a [u8],
    /// None: sniff the format from the bytes.
    pub format: Option<DocFormat>,
    /// Keep a document that cannot be parsed, with an `unreadable` exception.
    pub keep_unreadable: bool,
    pub max_document_bytes: u64,
    /// How the document's records become a regimen.
    pub options: &'a Options,
    /// The FHIR Patient id the document must be about (the link's remote
    /// patient); a document about another patient raises `identity_mismatch`.
    pub expected_patient: Option<&'a str>,
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

impl ImportReport {
    /// One line for logs: records read, items, left out, unreadable, and
    /// exceptions by kind (`unreadable_record:1,duplicate:2`).
    pub fn summary(&self) -> String {
        match &self.outcome {
            ImportOutcome::Imported {
                items,
                exceptions,
                skipped_count,
                unreadable_records,
                ..
            } => {
                let kinds: Vec<String> =
                    exceptions.iter().map(|(k, n)| format!("{k}:{n}")).collect();
                format!(
                    "records={} items={items} skipped={skipped_count} unreadable={unreadable_records} exceptions={}",
                    self.records,
                    if kinds.is_empty() {
                        "none".to_string()
                    } else {
                        kinds.join(",")
                    }
                )
            }
            ImportOutcome::Unchanged { .. } => format!("records={} unchanged", self.records),
            ImportOutcome::Unreadable { .. } => "unreadable document".to_string(),
        }
    }

    /// How many records of the document could not be read.
    pub fn unreadable_records(&self) -> usize {
        match &self.outcome {
            ImportOutcome::Imported {
                unreadable_records, ..
            } => *unreadable_records,
            _ => 0,
        }
    }
}

/// Imports one document.
pub fn import(store: &mut Store, req: &ImportRequest<'_>) -> Result<ImportReport, ImportError> {
    let prepared = prepare(req.bytes, req.format, req.max_document_bytes)?;
    commit(store, req, prepared)
}

/// A document checked for size, hashed and parsed, ready for `commit`.
pub struct Prepared {
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
) -> Result<Prepared, ImportError> {
    let size = bytes.len() as u64;
    if size > max_document_bytes {
        return Err(ImportError::TooLarge {
            size,
            limit: max_document_bytes,
        });
    }
    let sha256 = hex::encode(Sha256::digest(bytes));
    // No excerpts: the document is stored, and excerpts are re-derived from
    // it when a reviewer asks (see `excerpt`).
    let parsed = format
        .map_or_else(|| parse::sniff(bytes), Ok)
        .and_then(|f| parse::parse_with(bytes, f, parse::ParseOptions { excerpts: false }));
    Ok(Prepared { sha256, parsed })
}

/// The rest of an import, on the store: the patient, an unreadable
/// document, the remembered mappings and the dictionary, normalization and
/// the write. `prepared` must come from `prepare` of the same request's bytes.
pub fn commit(
    store: &mut Store,
    req: &ImportRequest<'_>,
    prepared: Prepared,
) -> Result<ImportReport, ImportError> {
    let sync = req.sync;
    if store.patient(&sync.patient)?.is_none() {
        return Err(ImportError::UnknownPatient(sync.patient.to_string()));
    }
    let Prepared { sha256, parsed } = prepared;
    let doc = match parsed {
        Ok(doc) => doc,
        Err(error) => {
            let kept = if req.keep_unreadable {
                Some(Box::new(store.write_unreadable(&UnreadableWrite {
                    sync,
                    bytes: req.bytes,
                    sha256: &sha256,
                    error: &error.to_string(),
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

    let mappings = store.code_mappings(&sync.source)?;
    let dict = dictionary_for(store, &doc, &mappings)?;
    // Claims are judged against the day the sync started (normalization
    // reads no clock); a caller that set a day keeps it.
    let options = normalize::Options {
        today: req
            .options
            .today
            .or_else(|| Some(sync.started_at.date_naive())),
        ..req.options.clone()
    };
    let regimen = normalize::normalize(&doc, &dict, &mappings, &options);
    let mut regimen = regimen;
    if let Some(flag) = identity_check(&doc, req.expected_patient) {
        regimen.flags.push(flag);
    }
    let outcome = store.write_import(&ImportWrite {
        sync,
        format: doc.format,
        bytes: req.bytes,
        sha256: &sha256,
        regimen: &regimen,
    })?;
    Ok(ImportReport {
        patient: sync.patient.to_string(),
        source: sync.source.to_string(),
        format: doc.format,
        sha256,
        records: doc.records.len(),
        outcome,
        skipped: regimen.skipped,
        problems: doc.problems,
    })
}

/// The dictionary entries this document can need: every reading of every
/// NDC code it carries, every NDC a remembered mapping points to, and the
/// brands its drug texts may name (`normalize::brand_words`: a few words
/// per text, one index range each), with the label of the snapshot they
/// come from (flags name it): one statement for the codes, one for the
/// brands. Read
/// up front so that normalization stays pure and a database error surfaces
/// here instead of being mistaken for an unknown code.
fn dictionary_for(
    store: &Store,
    doc: &ParsedDocument,
    mappings: &normalize::CodeMappings,
) -> Result<MemoryDictionary, StoreError> {
    let mut dict = MemoryDictionary::default().with_snapshot(store.dictionary_snapshot()?);
    let ndcs: Vec<_> = normalize::ndcs_to_look_up(doc, mappings)
        .into_iter()
        .collect();
    for entry in store.dict_entries(&ndcs)? {
        dict.insert(entry);
    }
    let words: Vec<String> = normalize::brand_words(doc).into_iter().collect();
    for (brand, substances) in store.dict_brands_of(&words)? {
        dict.insert_brand(&brand, substances);
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
        record: None,
        detail: format!(
            "the document is about patient {found:?} ({reference}), but the link is to remote patient {expected:?}: check that the provider sent this patient's list"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dict::{Ingredient, Package, Product};
    use crate::domain::{Ndc12, PatientId, SourceName, Trigger};
    use crate::store::NewPatient;

    fn product(id: &str, ndc: &str, labeler: &str, substance: &str) -> Product {
        Product {
            product_id: id.to_string(),
            product_ndc: ndc.to_string(),
            product_type: "HUMAN PRESCRIPTION DRUG".to_string(),
            proprietary_name: substance.to_string(),
            nonproprietary_name: substance.to_lowercase(),
            dosage_form: "TABLET".to_string(),
            route: "ORAL".to_string(),
            labeler: labeler.to_string(),
            ingredients: vec![Ingredient {
                name: substance.to_string(),
                strength: "10".to_string(),
                unit: "mg/1".to_string(),
            }],
            excluded: false,
            epc: Vec::new(),
        }
    }

    fn package(id: &str, code: &str) -> Package {
        Package {
            ndc: Ndc12::parse(code).expect("a 12-digit form"),
            package_ndc: code.to_string(),
            product_id: id.to_string(),
            description: "30 TABLET in 1 BOTTLE".to_string(),
        }
    }

    /// A CCR listing (drug text, NDC as written) pairs, each active.
    fn ccr(meds: &[(&str, &str)]) -> String {
        let meds: String = meds
            .iter()
            .enumerate()
            .map(|(i, (text, code))| {
                format!(
                    "<Medication><CCRDataObjectID>M{i}</CCRDataObjectID><Status><Text>Active</Text></Status>\
                     <Product><ProductName><Text>{text}</Text><Code><Value>{code}</Value>\
                     <CodingSystem>NDC</CodingSystem></Code></ProductName></Product></Medication>"
                )
            })
            .collect();
        format!(
            "<?xml version=\"1.0\"?><ContinuityOfCareRecord xmlns=\"urn:astm-org:CCR\">\
             <Body><Medications>{meds}</Medications></Body></ContinuityOfCareRecord>"
        )
    }

    /// A store holding `products` and `packages` and the patient P1.
    fn store_with(dir: &tempfile::TempDir, products: &[Product], packages: &[Package]) -> Store {
        let mut store = Store::open(&dir.path().join("t.db")).expect("opens");
        store
            .replace_dictionary(products, packages, "test", "tester")
            .expect("loads");
        store
            .add_patient(
                &NewPatient::with_id(PatientId::parse("P1").expect("id")),
                "tester",
            )
            .expect("adds");
        store
    }

    /// Imports `bytes` for P1 from source `file` and reads the regimen back.
    fn import_and_read(store: &mut Store, bytes: &str) -> crate::store::RegimenView {
        let patient = PatientId::parse("P1").expect("id");
        let source = SourceName::parse("file").expect("source");
        let options = Options::default();
        let sync = SyncContext {
            patient: patient.clone(),
            source: source.clone(),
            trigger: Trigger::File,
            actor: "tester".to_string(),
            started_at: chrono::Utc::now(),
            origin: None,
            pull: None,
        };
        let req = ImportRequest {
            sync: &sync,
            bytes: bytes.as_bytes(),
            format: None,
            keep_unreadable: false,
            max_document_bytes: 1 << 20,
            options: &options,
            expected_patient: None,
        };
        import(store, &req).expect("imports");
        store
            .regimen(&patient, source.as_str(), None)
            .expect("reads")
            .expect("a regimen")
    }

    #[test]
    fn a_long_list_is_stored_in_document_order_across_the_multi_row_inserts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = store_with(&dir, &[], &[]);
        // 23 items: inserts of 16, 4, 2 and 1 rows.
        let names: Vec<String> = (0..23).map(|i| format!("Drug {i:02}")).collect();
        let codes: Vec<String> = (0..23).map(|i| format!("500000000{i:02}")).collect();
        let meds: Vec<(&str, &str)> = names
            .iter()
            .zip(&codes)
            .map(|(n, c)| (n.as_str(), c.as_str()))
            .collect();
        let regimen = import_and_read(&mut store, &ccr(&meds));
        let read: Vec<(i64, Option<&str>)> = regimen
            .items
            .iter()
            .map(|i| (i.position, i.name.as_deref()))
            .collect();
        let want: Vec<(i64, Option<&str>)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (i as i64 + 1, Some(n.as_str())))
            .collect();
        assert_eq!(read, want);
        let mut ids: Vec<i64> = regimen.items.iter().map(|i| i.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), 23, "every item has its own id");
    }

    #[test]
    fn twelve_digit_ndcs_are_stored_as_written_and_read_back_with_their_product() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = store_with(
            &dir,
            &[
                product("OLD", "000006-0106", "Merck", "LISINOPRIL"),
                product("NEW", "712345-0101", "Newco", "ZOLPIDEM TARTRATE"),
            ],
            &[
                package("OLD", "000006-0106-54"),
                package("NEW", "712345-0101-01"),
            ],
        );
        // (code as written, NDC-11 stored, labeler read back, open exceptions)
        type Row<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a [&'a str]);
        let rows: &[Row<'_>] = &[
            ("000006010654", Some("00006010654"), Some("Merck"), &[]),
            ("712345-0101-01", None, Some("Newco"), &[]),
            ("812345-0101-01", None, None, &["unmapped_ndc"]),
        ];
        let texts: Vec<String> = (0..rows.len()).map(|i| format!("Drug {i}")).collect();
        let meds: Vec<(&str, &str)> = texts
            .iter()
            .zip(rows)
            .map(|(t, r)| (t.as_str(), r.0))
            .collect();
        let regimen = import_and_read(&mut store, &ccr(&meds));
        assert_eq!(regimen.items.len(), rows.len());
        for (item, (code, ndc11, labeler, want_flags)) in regimen.items.iter().zip(rows) {
            assert_eq!(item.ndc_original.as_deref(), Some(*code), "row {code}");
            assert_eq!(item.ndc11.as_deref(), *ndc11, "row {code}");
            let got = item.product.as_ref().and_then(|p| p["labeler"].as_str());
            assert_eq!(got, *labeler, "row {code}");
            let flags: Vec<&str> = item.flags.iter().map(String::as_str).collect();
            assert_eq!(flags, *want_flags, "row {code}");
        }
    }

    #[test]
    fn a_brand_the_store_knows_names_another_labelers_generic_and_no_other_drug() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut zebeta = product("ZEB", "0000-0001", "Teva", "BISOPROLOL FUMARATE");
        zebeta.proprietary_name = "Zebeta".to_string();
        let mut store = store_with(
            &dir,
            &[
                zebeta,
                product("BIS", "068180-0101", "Lupin", "BISOPROLOL FUMARATE"),
                product("LIS", "068180-0513", "Lupin", "LISINOPRIL"),
            ],
            &[
                package("BIS", "068180-0101-01"),
                package("LIS", "068180-0513-01"),
            ],
        );
        // (text, NDC, flagged): no built-in brand table knows Zebeta.
        let rows = [
            ("Zebeta 10 mg tablet", "68180-0101-01", false),
            ("Zebeta 10 mg tablet", "68180-0513-01", true),
        ];
        let meds: Vec<(&str, &str)> = rows.iter().map(|(t, c, _)| (*t, *c)).collect();
        let regimen = import_and_read(&mut store, &ccr(&meds));
        assert_eq!(regimen.items.len(), rows.len());
        for (item, (text, code, flagged)) in regimen.items.iter().zip(rows) {
            let mismatch = item.flags.iter().any(|f| f == "ndc_name_mismatch");
            assert_eq!(mismatch, flagged, "{text} over {code}: {:?}", item.flags);
        }
    }

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
