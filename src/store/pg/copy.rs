//! `db copy`: an installation's SQLite file into an empty PostgreSQL
//! database, table by table in one PostgreSQL transaction (`COPY … FROM
//! STDIN BINARY`), reading the source in one read transaction. Values are
//! converted to the target column's type (RFC 3339 text to timestamptz,
//! 0/1 to boolean, JSON text to jsonb); blobs — the vault's sealed
//! secrets and the documents — go over byte for byte: the vault key stays
//! with the operator and is neither needed nor read. Ids are kept, and
//! each identity continues after the largest copied id. Nothing is
//! committed unless every table's count matches.

use super::super::check::{Report, open_read_only, sqlite_known_version};
use super::{DbError, PgTarget, check_postgres, migrate_postgres};
use chrono::{DateTime, Utc};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use rusqlite::types::ValueRef;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;

/// Every table, parents before the tables that refer to them.
const TABLES: &[&str] = &[
    "patients",
    "links",
    "link_moves",
    "documents",
    "syncs",
    "regimens",
    "items",
    "exceptions",
    "code_mappings",
    "decisions",
    "audit",
    "dict_products",
    "dict_packages",
    "dict_meta",
    "users",
    "sessions",
    "api_tokens",
    "login_attempts",
    "bulk_staging",
    "exports",
    "export_files",
    "consent_flows",
    "provider_discovery",
    "client_registrations",
    "invitations",
    "provider_slots",
    "provider_breakers",
];

/// Rows of one table on both sides after the copy.
#[derive(Debug, Clone, Serialize)]
pub struct TableCount {
    pub table: &'static str,
    pub rows: i64,
}

/// What `db copy` did.
#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    pub from: String,
    pub to: String,
    pub tables: Vec<TableCount>,
    /// `db check` on the target after the commit.
    pub check: Report,
}

/// Copies the SQLite file at `source` into the empty database `target`
/// (migrated first when it has no schema yet).
pub fn copy_sqlite_to_postgres(source: &Path, target: &PgTarget) -> Result<CopyReport, DbError> {
    let sqlite = open_read_only(source)?;
    let version: usize = sqlite.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version != sqlite_known_version() {
        return Err(DbError::Version(format!(
            "{} has schema version {version}, this rxsync writes {}: run `rxsync --db {} db migrate` first",
            source.display(),
            sqlite_known_version(),
            source.display()
        )));
    }
    // One snapshot of the source for every table.
    sqlite.execute_batch("BEGIN")?;
    same_tables(
        &sqlite_tables(&sqlite)?,
        "the SQLite source",
        &source.display().to_string(),
    )?;

    let mut client = target.connect()?;
    migrate_postgres(&mut client)?;
    let mut tx = client.transaction()?;
    let pg_tables: BTreeSet<String> = tx
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
               AND table_name <> 'rxsync_schema'",
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    same_tables(&pg_tables, "the PostgreSQL target", &target.to_string())?;
    for table in TABLES {
        let rows: i64 = tx
            .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])?
            .get(0);
        if rows > 0 {
            return Err(DbError::NotEmpty {
                table: table.to_string(),
                rows,
            });
        }
    }

    let mut tables = Vec::new();
    for table in TABLES {
        let columns = columns(&mut tx, &sqlite, table)?;
        copy_table(&sqlite, &mut tx, table, &columns)?;
        let source_rows: i64 =
            sqlite.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
        let target_rows: i64 = tx
            .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])?
            .get(0);
        if source_rows != target_rows {
            return Err(DbError::Mismatch(format!(
                "table {table}: {source_rows} row(s) in the source, {target_rows} copied; nothing was committed"
            )));
        }
        if columns.iter().any(|c| c.name == "id" && c.identity) {
            tx.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST(COALESCE(MAX(id), 0), 1), MAX(id) IS NOT NULL) FROM {table}"
                ),
                &[],
            )?;
        }
        tables.push(TableCount {
            table,
            rows: target_rows,
        });
    }
    tx.commit()?;
    sqlite.execute_batch("COMMIT")?;
    let check = check_postgres(&mut client, &target.to_string())?;
    Ok(CopyReport {
        from: source.display().to_string(),
        to: target.to_string(),
        tables,
        check,
    })
}

fn sqlite_tables(conn: &rusqlite::Connection) -> Result<BTreeSet<String>, DbError> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )?;
    let names = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<BTreeSet<String>, _>>()?;
    Ok(names)
}

/// Refuses a database whose tables are not exactly the ones `db copy` knows.
fn same_tables(found: &BTreeSet<String>, side: &str, name: &str) -> Result<(), DbError> {
    let known: BTreeSet<String> = TABLES.iter().map(|t| t.to_string()).collect();
    let extra: Vec<_> = found.difference(&known).cloned().collect();
    let missing: Vec<_> = known.difference(found).cloned().collect();
    if extra.is_empty() && missing.is_empty() {
        return Ok(());
    }
    Err(DbError::Mismatch(format!(
        "{side} ({name}) does not have the tables db copy knows: unknown {extra:?}, missing {missing:?}"
    )))
}

/// A target column and how to convert into it.
struct Column {
    name: String,
    kind: Kind,
    identity: bool,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    Int8,
    Int4,
    Bool,
    Bytes,
    Time,
    Json,
}

impl Kind {
    fn of(data_type: &str) -> Option<Kind> {
        Some(match data_type {
            "text" => Kind::Text,
            "bigint" => Kind::Int8,
            "integer" => Kind::Int4,
            "boolean" => Kind::Bool,
            "bytea" => Kind::Bytes,
            "timestamp with time zone" => Kind::Time,
            "jsonb" => Kind::Json,
            _ => return None,
        })
    }

    fn pg_type(self) -> Type {
        match self {
            Kind::Text => Type::TEXT,
            Kind::Int8 => Type::INT8,
            Kind::Int4 => Type::INT4,
            Kind::Bool => Type::BOOL,
            Kind::Bytes => Type::BYTEA,
            Kind::Time => Type::TIMESTAMPTZ,
            Kind::Json => Type::JSONB,
        }
    }
}

/// The target table's columns, which must be the source table's.
fn columns(
    tx: &mut postgres::Transaction<'_>,
    sqlite: &rusqlite::Connection,
    table: &str,
) -> Result<Vec<Column>, DbError> {
    let mut out = Vec::new();
    for r in tx.query(
        "SELECT column_name::text, data_type::text, is_identity::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        &[&table],
    )? {
        let name: String = r.get(0);
        let data_type: String = r.get(1);
        let kind = Kind::of(&data_type).ok_or_else(|| {
            DbError::Mismatch(format!(
                "table {table}, column {name}: db copy cannot fill a PostgreSQL {data_type}"
            ))
        })?;
        let identity: String = r.get(2);
        out.push(Column {
            name,
            kind,
            identity: identity == "YES",
        });
    }
    let mut stmt = sqlite.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
    let source: BTreeSet<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let target: BTreeSet<String> = out.iter().map(|c| c.name.clone()).collect();
    if source != target {
        return Err(DbError::Mismatch(format!(
            "table {table}: the source's columns {:?} and the target's {:?} differ",
            source.difference(&target).collect::<Vec<_>>(),
            target.difference(&source).collect::<Vec<_>>()
        )));
    }
    Ok(out)
}

fn copy_table(
    sqlite: &rusqlite::Connection,
    tx: &mut postgres::Transaction<'_>,
    table: &str,
    columns: &[Column],
) -> Result<(), DbError> {
    let names = columns
        .iter()
        .map(|c| format!("\"{}\"", c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let types: Vec<Type> = columns.iter().map(|c| c.kind.pg_type()).collect();
    let sink = tx.copy_in(&format!("COPY {table} ({names}) FROM STDIN BINARY"))?;
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    let mut stmt = sqlite.prepare(&format!(
        "SELECT rowid, {names} FROM {table} ORDER BY rowid"
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let rowid: i64 = row.get(0)?;
        let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(columns.len());
        for (i, c) in columns.iter().enumerate() {
            let raw = row.get_ref(i + 1)?;
            values.push(convert(raw, c.kind).map_err(|problem| DbError::Value {
                table: table.to_string(),
                row: rowid,
                column: c.name.clone(),
                problem,
            })?);
        }
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        writer.write(&refs)?;
    }
    writer.finish()?;
    Ok(())
}

/// One SQLite value as the target column's type; the error says why not
/// (it quotes a time, never a blob or a JSON text).
fn convert(raw: ValueRef<'_>, kind: Kind) -> Result<Box<dyn ToSql + Sync>, String> {
    let text = |raw: ValueRef<'_>| -> Result<Option<String>, String> {
        match raw {
            ValueRef::Null => Ok(None),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .map(|s| Some(s.to_string()))
                .map_err(|_| "text that is not UTF-8".to_string()),
            ValueRef::Integer(n) => Ok(Some(n.to_string())),
            ValueRef::Real(f) => Ok(Some(f.to_string())),
            ValueRef::Blob(_) => Err("a blob where text belongs".into()),
        }
    };
    let integer = |raw: ValueRef<'_>| -> Result<Option<i64>, String> {
        match raw {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(n) => Ok(Some(n)),
            other => Err(format!("{:?} where an integer belongs", other.data_type())),
        }
    };
    Ok(match kind {
        Kind::Text => Box::new(text(raw)?),
        Kind::Int8 => Box::new(integer(raw)?),
        Kind::Int4 => Box::new(
            integer(raw)?
                .map(i32::try_from)
                .transpose()
                .map_err(|_| "an integer too large for a PostgreSQL integer".to_string())?,
        ),
        Kind::Bool => Box::new(match integer(raw)? {
            None => None,
            Some(0) => Some(false),
            Some(1) => Some(true),
            Some(n) => return Err(format!("{n} where a 0/1 flag belongs")),
        }),
        Kind::Bytes => Box::new(match raw {
            ValueRef::Null => None,
            ValueRef::Blob(b) => Some(b.to_vec()),
            other => return Err(format!("{:?} where a blob belongs", other.data_type())),
        }),
        Kind::Time => Box::new(
            text(raw)?
                .map(|t| {
                    DateTime::parse_from_rfc3339(&t)
                        .map(|d| d.with_timezone(&Utc))
                        .map_err(|e| format!("{t:?} is not an RFC 3339 time ({e})"))
                })
                .transpose()?,
        ),
        Kind::Json => Box::new(
            text(raw)?
                .map(|t| {
                    serde_json::from_str::<serde_json::Value>(&t)
                        .map_err(|e| format!("text that is not JSON ({e})"))
                })
                .transpose()?,
        ),
    })
}
