//! Grants over time: a link's grant end (`links.grant_expires_at`) and the
//! `link_expiring` exception raised once per grant end, a configurable
//! number of days before it (`[sync] link_expiring_days`). A re-link closes
//! it (`add_link`). Never talks to a provider: what a grant's end is comes
//! from `fetch::grant`.

use super::db::Conn;
use super::{Store, StoreError, now, rfc3339};
use crate::domain::{ExceptionKind, LinkId};
use rusqlite::params;

impl Store {
    /// Records a grant end read later than the link (a refresh answer).
    pub fn set_grant_expiry(
        &mut self,
        link_id: LinkId,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE links SET grant_expires_at = ?2 WHERE id = ?1",
            params![link_id, rfc3339(at)],
        )?;
        Ok(())
    }

    /// Raises `link_expiring` for every live link whose grant ends within
    /// `days` and that has none raised for this grant end yet. Returns the
    /// links it raised one for.
    pub fn raise_link_expiring(&mut self, days: u32) -> Result<Vec<LinkId>, StoreError> {
        let at = now();
        let horizon = rfc3339(chrono::Utc::now() + chrono::Duration::days(i64::from(days)));
        // Every pull asks; nearly always nothing is due. The question is an
        // index probe (`links_grant_ends`) on the reading connection, and the
        // write transaction is taken only when there is something to raise
        // (asked again inside it, under the write lock).
        if due_warnings(&self.conn, &horizon)?.is_empty() {
            return Ok(Vec::new());
        }
        let tx = self.tx()?;
        let due = due_warnings(&tx, &horizon)?;
        for (id, patient, provider, ends) in &due {
            tx.execute(
                "INSERT INTO exceptions (patient_id, source, kind, severity, state, detail, created_at)
                 VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?6)",
                params![
                    patient,
                    provider,
                    ExceptionKind::LinkExpiring.as_str(),
                    ExceptionKind::LinkExpiring.severity().as_str(),
                    format!(
                        "The patient's consent for link {id} to {provider} ends at {ends}. Ask the patient to link again before then (rxsync link start --patient {patient} --provider {provider}, or rxsync link invite); the new consent closes this."
                    ),
                    at
                ],
            )?;
            tx.execute(
                "UPDATE links SET grant_warned_for = grant_expires_at WHERE id = ?1",
                [id],
            )?;
        }
        tx.commit()?;
        Ok(due.into_iter().map(|(id, ..)| id).collect())
    }
}

/// `due_warnings`' statement. Every pull asks it, so it must be a probe of
/// `links_grant_ends`; on SQLite `+state` keeps the planner off `links_due`
/// (state, next_due_at), which it chose without statistics and which made
/// every pull read every live link (a pass over N links cost O(N²)).
const DUE_WARNINGS_SQLITE: &str = "SELECT id, patient_id, provider, grant_expires_at FROM links
     WHERE grant_expires_at IS NOT NULL AND grant_expires_at <= ?1
     AND +state IN ('active', 'held', 'needs_relink')
     AND (grant_warned_for IS NULL OR grant_warned_for <> grant_expires_at)";
const DUE_WARNINGS_PG: &str = "SELECT id, patient_id, provider, grant_expires_at FROM links
     WHERE grant_expires_at IS NOT NULL AND grant_expires_at <= ?1
     AND state IN ('active', 'held', 'needs_relink')
     AND (grant_warned_for IS NULL OR grant_warned_for <> grant_expires_at)";

/// Live links whose grant ends by `horizon` and has no `link_expiring` yet:
/// (id, patient, provider, grant end).
fn due_warnings(
    conn: &Conn,
    horizon: &str,
) -> Result<Vec<(LinkId, String, String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(conn.dialect(DUE_WARNINGS_SQLITE, DUE_WARNINGS_PG))?;
    let rows = stmt
        .query_map([horizon], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_question_every_pull_asks_is_a_probe_of_the_grant_index() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("t.db")).expect("opens");
        let conn = store.conn.lite().expect("SQLite");
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {DUE_WARNINGS_SQLITE}"))
            .expect("plans")
            .query_map(["2027-01-01T00:00:00.000Z"], |r| r.get::<_, String>(3))
            .expect("plans")
            .collect::<Result<_, _>>()
            .expect("plans");
        assert!(
            plan.iter()
                .any(|p| p.contains("USING INDEX links_grant_ends")),
            "{plan:?}"
        );
    }
}
