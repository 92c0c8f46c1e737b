//! The identifier newtypes as SQL values: the one place a `LinkId` becomes
//! the integer it is stored as, a `ProviderId` its text, and back. Both
//! engines bind and read through rusqlite's `ToSql`/`FromSql` (`db`'s
//! module comment), so these impls serve PostgreSQL too: a link id is sent
//! as an integer (`int8`) and a `bigint` column read back as one; a
//! provider id is text both ways.

use crate::domain::{LinkId, ProviderId};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

impl ToSql for LinkId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.get()))
    }
}

impl FromSql for LinkId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<LinkId> {
        i64::column_result(value).map(LinkId::new)
    }
}

impl ToSql for ProviderId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

/// A stored provider id was checked when it was configured; one that no
/// longer passes is a damaged row, reported with the rule it breaks.
impl FromSql for ProviderId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<ProviderId> {
        ProviderId::parse(value.as_str()?).map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}
