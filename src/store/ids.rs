//! The identifier newtypes as SQL values: the one place a `LinkId` becomes
//! the integer it is stored as, and back. Both engines bind and read
//! through rusqlite's `ToSql`/`FromSql` (`db`'s module comment), so these
//! impls serve PostgreSQL too: an id is sent as an integer (`int8`) and a
//! `bigint` column is read back as one.

use crate::domain::LinkId;
use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

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
