//! Reading regimens back: the current version, a given version, history.

use super::db::Row;
use super::{Store, StoreError};
use crate::domain::{Code, ExceptionState, PatientId};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

/// A code as rxsync shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodeView {
    /// The normalized system label (`NDC`, `RxNorm`, …).
    pub system: String,
    pub code: String,
    /// The system as the document spelled it.
    pub system_original: String,
    pub display: Option<String>,
}

/// One exception attached to an item, in brief.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagRef {
    pub id: i64,
    pub kind: String,
    pub state: ExceptionState,
}

/// One item of a stored regimen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemView {
    pub id: i64,
    pub position: i64,
    pub ndc11: Option<String>,
    pub ndc_original: Option<String>,
    pub ndc_inferred: bool,
    pub name: Option<String>,
    pub brand: Option<String>,
    pub codes: Vec<CodeView>,
    /// Codes of a compound's ingredients (not the product's own).
    pub ingredient_codes: Vec<CodeView>,
    pub strength: Option<String>,
    pub form: Option<String>,
    pub route: Option<String>,
    pub dose: Option<String>,
    pub frequency: Option<String>,
    pub sig: Option<String>,
    pub status: String,
    pub status_original: Option<String>,
    pub start: Option<String>,
    pub stop: Option<String>,
    pub prescribed: Option<String>,
    pub prescriber: Option<String>,
    /// `claim` when the item is known only from pharmacy claims (dispense
    /// evidence: its status is `dispensed` or `completed`), else `record`.
    pub evidence: String,
    /// Days supply, quantity and pharmacy of the latest fill, when known.
    pub days_supply: Option<String>,
    pub quantity: Option<String>,
    pub dispenser: Option<String>,
    /// The document sections its records were listed in (C-CDA), when any.
    pub section: Option<String>,
    /// Kinds of this item's open exceptions.
    pub flags: Vec<String>,
    /// Every exception of this item, whatever its state.
    pub exceptions: Vec<FlagRef>,
    /// The clinician mapping that supplied the NDC, with its provenance.
    pub mapping: Option<serde_json::Value>,
    /// What the dictionary knows of the NDC.
    pub product: Option<serde_json::Value>,
    /// The source records folded into this item.
    pub sources: serde_json::Value,
    pub removed: Option<Removed>,
}

/// Who removed an item, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removed {
    pub by: String,
    pub at: String,
}

/// A stored regimen version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegimenView {
    pub patient: String,
    pub version: i64,
    pub status: String,
    pub source: String,
    pub id: i64,
    pub created_at: String,
    pub reviewed_at: Option<String>,
    pub document_id: i64,
    /// The items in force (removed ones are in `removed_items`).
    pub items: Vec<ItemView>,
    pub removed_items: Vec<ItemView>,
    /// Kinds of open exceptions that concern the whole regimen.
    pub flags: Vec<String>,
    pub open_exceptions: usize,
}

/// The stored document a regimen was read from, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentMeta {
    pub id: i64,
    /// The source it is filed under (a provider id, or a file import's name).
    pub source: String,
    /// The format it was parsed as (`ccr`, `fhir-json`, …).
    pub format: String,
    pub media_type: String,
    /// SHA-256 of the bytes, lower-case hex.
    pub sha256: String,
    pub size: i64,
    /// The file path or URL it came from (never with secrets).
    pub origin: Option<String>,
    pub received_at: String,
    /// How it arrived: the trigger of the first sync that stored it
    /// (`file`, `pull`, `schedule`, `bulk`…), when a sync row names it.
    pub arrived_by: Option<String>,
}

impl DocumentMeta {
    /// Whether the document was imported from a file rather than pulled
    /// from a provider.
    pub fn from_file(&self) -> bool {
        self.arrived_by.as_deref() == Some("file")
    }
}

/// One source's regimen version with what stands beside it: the document
/// it was read from and every exception raised on it. What a FHIR export
/// (`present::fhir`) takes, one per source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceRegimen {
    pub regimen: RegimenView,
    pub document: DocumentMeta,
    /// Every exception of this version, whatever its state, oldest first.
    pub exceptions: Vec<super::ExceptionView>,
}

/// One line of a regimen's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegimenSummary {
    pub patient: String,
    pub source: String,
    pub version: i64,
    pub status: String,
    pub created_at: String,
    pub reviewed_at: Option<String>,
    pub items: usize,
    pub open_exceptions: usize,
    pub sha256: String,
}

impl Store {
    /// The sources a patient has regimens from.
    pub fn regimen_sources(&self, patient: &PatientId) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT DISTINCT source FROM regimens WHERE patient_id = ?1 ORDER BY source",
        )?;
        let rows = stmt
            .query_map([patient.as_str()], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(rows)
    }

    /// A regimen version (the newest when `version` is None).
    pub fn regimen(
        &self,
        patient: &PatientId,
        source: &str,
        version: Option<i64>,
    ) -> Result<Option<RegimenView>, StoreError> {
        let head = self
            .conn
            .query_row(
                "SELECT id, version, status, created_at, reviewed_at, document_id FROM regimens
                 WHERE patient_id = ?1 AND source = ?2 AND (CAST(?3 AS BIGINT) IS NULL OR version = ?3)
                 ORDER BY version DESC LIMIT 1",
                params![patient.as_str(), source, version],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, i64>(5)?,
                    ))
                },
            )
            .optional()?;
        let Some((id, version, status, created_at, reviewed_at, document_id)) = head else {
            return Ok(None);
        };
        let all = self.items_of(id)?;
        let (removed_items, items): (Vec<ItemView>, Vec<ItemView>) =
            all.into_iter().partition(|i| i.removed.is_some());
        let mut stmt = self.conn.prepare_cached(
            "SELECT kind FROM exceptions WHERE regimen_id = ?1 AND item_id IS NULL AND state = 'open' ORDER BY id",
        )?;
        let flags = stmt
            .query_map([id], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        let open_exceptions: usize = self.conn.query_row(
            "SELECT COUNT(*) FROM exceptions WHERE regimen_id = ?1 AND state = 'open'",
            [id],
            |r| r.get(0),
        )?;
        Ok(Some(RegimenView {
            patient: patient.to_string(),
            version,
            status,
            source: source.to_string(),
            id,
            created_at,
            reviewed_at,
            document_id,
            items,
            removed_items,
            flags,
            open_exceptions,
        }))
    }

    /// A regimen version (the newest when `version` is None) with its
    /// document and its exceptions.
    pub fn source_regimen(
        &self,
        patient: &PatientId,
        source: &str,
        version: Option<i64>,
    ) -> Result<Option<SourceRegimen>, StoreError> {
        let Some(regimen) = self.regimen(patient, source, version)? else {
            return Ok(None);
        };
        let document = self.document_meta(regimen.document_id)?.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "regimen {} names document {}, which is not stored",
                regimen.id, regimen.document_id
            ))
        })?;
        let exceptions = self.regimen_exceptions(regimen.id)?;
        Ok(Some(SourceRegimen {
            regimen,
            document,
            exceptions,
        }))
    }

    /// The current regimen of each of a patient's sources (by source name,
    /// the reconciled list's order), for the reconciled list as FHIR; the
    /// findings across sources ride with the first, and the FHIR builder
    /// implicates the statements of every source they name.
    pub fn reconciled_sources(
        &self,
        patient: &PatientId,
    ) -> Result<Vec<SourceRegimen>, StoreError> {
        let sources = self.regimen_sources(patient)?;
        let mut out = Vec::with_capacity(sources.len());
        for source in &sources {
            if let Some(r) = self.source_regimen(patient, source, None)? {
                out.push(r);
            }
        }
        if let Some(first) = out.first_mut() {
            first
                .exceptions
                .extend(self.patient_exceptions(patient.as_str())?);
        }
        Ok(out)
    }

    /// A stored document's description (not its bytes).
    pub fn document_meta(&self, document_id: i64) -> Result<Option<DocumentMeta>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT d.id, d.source, d.format, d.media_type, d.sha256, d.size, d.origin, d.received_at,
                        (SELECT s.trigger FROM syncs s WHERE s.document_id = d.id ORDER BY s.id LIMIT 1)
                 FROM documents d WHERE d.id = ?1",
                [document_id],
                |r| {
                    Ok(DocumentMeta {
                        id: r.get(0)?,
                        source: r.get(1)?,
                        format: r.get(2)?,
                        media_type: r.get(3)?,
                        sha256: r.get(4)?,
                        size: r.get(5)?,
                        origin: r.get(6)?,
                        received_at: r.get(7)?,
                        arrived_by: r.get(8)?,
                    })
                },
            )
            .optional()?)
    }

    /// Every version of a patient's regimens, newest first.
    pub fn regimen_history(
        &self,
        patient: &PatientId,
        source: Option<&str>,
    ) -> Result<Vec<RegimenSummary>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT r.source, r.version, r.status, r.created_at, r.reviewed_at,
                    (SELECT COUNT(*) FROM items i WHERE i.regimen_id = r.id AND i.removed_at IS NULL),
                    (SELECT COUNT(*) FROM exceptions e WHERE e.regimen_id = r.id AND e.state = 'open'),
                    d.sha256
             FROM regimens r JOIN documents d ON d.id = r.document_id
             WHERE r.patient_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR r.source = ?2)
             ORDER BY r.source, r.version DESC",
        )?;
        let rows = stmt
            .query_map(params![patient.as_str(), source], |r| {
                Ok(RegimenSummary {
                    patient: patient.to_string(),
                    source: r.get(0)?,
                    version: r.get(1)?,
                    status: r.get(2)?,
                    created_at: r.get(3)?,
                    reviewed_at: r.get(4)?,
                    items: r.get(5)?,
                    open_exceptions: r.get(6)?,
                    sha256: r.get(7)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub(super) fn items_of(&self, regimen_id: i64) -> Result<Vec<ItemView>, StoreError> {
        let mut flags_stmt = self.conn.prepare_cached(
            "SELECT id, kind, state FROM exceptions WHERE item_id = ?1 ORDER BY id",
        )?;
        let mut stmt = self.conn.prepare_cached(&format!(
            "{} WHERE regimen_id = ?1 ORDER BY position",
            self.conn.dialect(SELECT_ITEM, SELECT_ITEM_PG)
        ))?;
        let mut items = stmt
            .query_map([regimen_id], row_to_item)?
            .collect::<Result<Vec<_>, _>>()?;
        for item in &mut items {
            item.exceptions = flags_stmt
                .query_map([item.id], |r| {
                    Ok(FlagRef {
                        id: r.get(0)?,
                        kind: r.get(1)?,
                        state: super::queue::exception_state(r, 2)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            item.flags = item
                .exceptions
                .iter()
                .filter(|f| f.state == ExceptionState::Open)
                .map(|f| f.kind.clone())
                .collect();
        }
        Ok(items)
    }

    /// The source of the regimen an item belongs to (None: no such item).
    pub fn item_source(&self, item_id: i64) -> Result<Option<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.source FROM items i JOIN regimens r ON r.id = i.regimen_id WHERE i.id = ?1",
        )?;
        Ok(stmt.query_row([item_id], |r| r.get(0)).optional()?)
    }

    pub fn item(&self, item_id: i64) -> Result<Option<ItemView>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{} WHERE i.id = ?1",
            self.conn.dialect(SELECT_ITEM, SELECT_ITEM_PG)
        ))?;
        Ok(stmt.query_row([item_id], row_to_item).optional()?)
    }
}

/// Items with what the dictionary knows of their NDC today (joined at read
/// time rather than copied into every row: the raw document is what keeps a
/// regimen re-derivable).
/// The statement per engine: only the product's JSON is built differently
/// (SQLite's `json_object`, PostgreSQL's `json_build_object`).
macro_rules! select_item {
    ($product:literal) => {
        concat!(
            "SELECT i.id, i.position, i.ndc11, i.ndc_original, i.ndc_inferred, i.name, i.brand,
    i.codes, i.strength, i.form, i.route, i.dose, i.frequency, i.sig, i.status, i.status_original, i.start_date,
    i.stop_date, i.prescribed_date, i.prescriber, i.mapping,
    CASE WHEN p.product_id IS NULL THEN NULL ELSE ",
            $product,
            " END,
    i.sources, i.removed_at, i.removed_by, i.ingredient_codes, i.evidence, i.days_supply, i.quantity, i.dispenser, i.section
    FROM items i LEFT JOIN dict_packages k ON k.ndc11 = COALESCE(i.ndc11, i.ndc12)
    LEFT JOIN dict_products p ON p.product_id = k.product_id"
        )
    };
}
const SELECT_ITEM: &str = select_item!(
    "json_object(
        'package_ndc', k.package_ndc, 'package', k.description, 'product_ndc', p.product_ndc,
        'proprietary_name', p.proprietary_name, 'nonproprietary_name', p.nonproprietary_name,
        'dosage_form', p.dosage_form, 'route', p.route, 'labeler', p.labeler,
        'ingredients', json(p.ingredients), 'excluded', json(CASE WHEN p.excluded THEN 'true' ELSE 'false' END))"
);
const SELECT_ITEM_PG: &str = select_item!(
    "json_build_object(
        'package_ndc', k.package_ndc, 'package', k.description, 'product_ndc', p.product_ndc,
        'proprietary_name', p.proprietary_name, 'nonproprietary_name', p.nonproprietary_name,
        'dosage_form', p.dosage_form, 'route', p.route, 'labeler', p.labeler,
        'ingredients', p.ingredients, 'excluded', p.excluded)"
);

fn json_col(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<serde_json::Value>> {
    let text: Option<String> = r.get(i)?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        })
    })
    .transpose()
}

/// A JSON column of codes, as rxsync shows them.
fn code_views(r: &Row<'_>, i: usize) -> rusqlite::Result<Vec<CodeView>> {
    let text: String = r.get(i)?;
    let codes: Vec<Code> = serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(codes
        .into_iter()
        .map(|c| CodeView {
            system: c.system.label().to_string(),
            code: c.value,
            system_original: c.system_original,
            display: c.display,
        })
        .collect())
}

fn row_to_item(r: &Row<'_>) -> rusqlite::Result<ItemView> {
    let codes = code_views(r, 7)?;
    let ingredient_codes = code_views(r, 25)?;
    let removed_at: Option<String> = r.get(23)?;
    let removed_by: Option<String> = r.get(24)?;
    Ok(ItemView {
        id: r.get(0)?,
        position: r.get(1)?,
        ndc11: r.get(2)?,
        ndc_original: r.get(3)?,
        ndc_inferred: r.get(4)?,
        name: r.get(5)?,
        brand: r.get(6)?,
        codes,
        ingredient_codes,
        strength: r.get(8)?,
        form: r.get(9)?,
        route: r.get(10)?,
        dose: r.get(11)?,
        frequency: r.get(12)?,
        sig: r.get(13)?,
        status: r.get(14)?,
        status_original: r.get(15)?,
        start: r.get(16)?,
        stop: r.get(17)?,
        prescribed: r.get(18)?,
        prescriber: r.get(19)?,
        evidence: r.get(26)?,
        days_supply: r.get(27)?,
        quantity: r.get(28)?,
        dispenser: r.get(29)?,
        section: r.get(30)?,
        flags: Vec::new(),
        exceptions: Vec::new(),
        mapping: json_col(r, 20)?,
        product: json_col(r, 21)?,
        sources: json_col(r, 22)?.unwrap_or(serde_json::Value::Array(Vec::new())),
        removed: match (removed_at, removed_by) {
            (Some(at), by) => Some(Removed {
                at,
                by: by.unwrap_or_default(),
            }),
            _ => None,
        },
    })
}
