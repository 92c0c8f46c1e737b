//! Clinicians' remembered decisions for providers' codes ("map local code X
//! to NDC Y"), written by `queue` when a clinician maps an item and read
//! before each import so normalization can apply them.

use super::{Store, StoreError};
use crate::domain::{Ndc11, SourceName};
use crate::normalize::{CodeMapping, CodeMappings};

impl Store {
    /// The clinicians' remembered mappings for one source.
    pub fn code_mappings(&self, source: &SourceName) -> Result<CodeMappings, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT system, code, ndc11, decided_by, decided_at, exception_id FROM code_mappings WHERE source = ?1",
        )?;
        let rows = stmt.query_map([source.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<i64>>(5)?,
            ))
        })?;
        let mut out = CodeMappings::new();
        for row in rows {
            let (system, code, ndc, decided_by, decided_at, exception_id) = row?;
            let ndc11 = Ndc11::from_digits(&ndc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            out.insert(
                (system, code),
                CodeMapping {
                    ndc11,
                    decided_by,
                    decided_at,
                    exception_id,
                },
            );
        }
        Ok(out)
    }
}
