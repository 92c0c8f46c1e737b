//! The store's seam over its two engines: `Conn` is a SQLite connection or
//! a PostgreSQL client, and every store function runs its SQL through it.
//!
//! The store speaks one vocabulary on both engines — rusqlite's: its
//! `ToSql` for parameters (`rusqlite::params!`), its `FromSql` for columns
//! (`Row::get`), its `Result` and `Error` (so `.optional()` and `?` read the
//! same on both). On PostgreSQL a parameter is converted to the type the
//! server inferred for its placeholder (RFC 3339 text to `timestamptz`,
//! 0/1 to `boolean`, JSON text to `jsonb`, an integer to `integer` or
//! `bigint`), and a column is read back as the SQLite value the same code
//! reads on SQLite (`timestamptz` as the RFC 3339 text the store writes,
//! `boolean` as 0/1, `jsonb` as its text, `bytea` as a blob). Placeholders
//! are written SQLite's way (`?1`, `?`) and numbered `$1` for PostgreSQL.
//! Where the two dialects differ, the statement says both, side by side
//! (`Conn::dialect`). A PostgreSQL error that a SQLite one stands for (a
//! constraint, a trigger's refusal, a serialization failure) arrives as
//! that SQLite error, with PostgreSQL's message; any other as SQLite's
//! generic error (`SQLITE_ERROR`) with PostgreSQL's message.

use rusqlite::types::{FromSql, ToSql, Value, ValueRef};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// Which engine a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// The engine's name, as `/readyz` and the logs give it.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// A store connection.
pub(crate) enum Conn {
    Sqlite(rusqlite::Connection),
    Pg(Box<PgConn>),
}

/// A PostgreSQL client with the store's statement cache and its
/// transaction depth (the client's own `Transaction` borrows it mutably;
/// the store's code holds shared references, as on SQLite).
pub(crate) struct PgConn {
    /// Always `Some` until dropped (`Drop for PgConn` takes it out).
    client: RefCell<Option<postgres::Client>>,
    /// Where to connect again when the server closed the connection
    /// (restarted, failed over): between transactions, never inside one.
    target: super::pg::PgTarget,
    statements: RefCell<HashMap<String, postgres::Statement>>,
    depth: Cell<u32>,
    /// The server closed the connection (seen by a failed call).
    broken: Cell<bool>,
}

/// At most this many prepared statements are kept per PostgreSQL
/// connection (the queue's filters build their SQL: it is not a fixed set).
const PG_STATEMENT_CACHE: usize = 512;

impl PgConn {
    pub(crate) fn new(client: postgres::Client, target: super::pg::PgTarget) -> PgConn {
        PgConn {
            client: RefCell::new(Some(client)),
            target,
            statements: RefCell::new(HashMap::new()),
            depth: Cell::new(0),
            broken: Cell::new(false),
        }
    }

    /// Outside a transaction, a connection the server closed is opened
    /// again (its prepared statements with it); inside one, the error
    /// stands: the transaction is lost and its caller says so.
    fn live(&self) -> rusqlite::Result<()> {
        if self.depth.get() > 0 || !(self.broken.get() || self.client().is_closed()) {
            return Ok(());
        }
        let target = &self.target;
        let client = off_runtime(|| target.connect()).map_err(|e| {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(e.to_string()),
            )
        })?;
        tracing::warn!(database = %self.target, "the PostgreSQL connection was closed; connected again");
        let old = self.client.borrow_mut().replace(client);
        if let Some(old) = old {
            close_off_runtime(old);
        }
        self.statements.borrow_mut().clear();
        self.broken.set(false);
        Ok(())
    }

    /// A failed call's error, noting a connection the server closed.
    fn failed(&self, e: postgres::Error) -> rusqlite::Error {
        use postgres::error::SqlState;
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        let shut = e.code().is_some_and(|c| {
            *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
        });
        if e.is_closed() || io || shut {
            self.broken.set(true);
        }
        pg_error(e)
    }

    fn client(&self) -> std::cell::RefMut<'_, postgres::Client> {
        std::cell::RefMut::map(self.client.borrow_mut(), |c| {
            c.as_mut()
                .expect("the client is taken only when the connection is dropped")
        })
    }

    fn prepare(&self, sql: &str, cached: bool) -> rusqlite::Result<postgres::Statement> {
        self.live()?;
        if cached && let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let translated = placeholders(sql);
        let mut client = self.client();
        let c: &mut postgres::Client = &mut client;
        let stmt = off_runtime(|| c.prepare(&translated)).map_err(|e| self.failed(e))?;
        if cached {
            let mut cache = self.statements.borrow_mut();
            if cache.len() >= PG_STATEMENT_CACHE {
                cache.clear();
            }
            cache.insert(sql.to_string(), stmt.clone());
        }
        Ok(stmt)
    }

    fn execute(&self, stmt: &postgres::Statement, params: &[Value]) -> rusqlite::Result<usize> {
        let args: Vec<PgParam<'_>> = params.iter().map(PgParam).collect();
        let refs = pg_refs(&args);
        let mut client = self.client();
        let c: &mut postgres::Client = &mut client;
        let n = off_runtime(|| c.execute(stmt, &refs)).map_err(|e| self.failed(e))?;
        Ok(n as usize)
    }

    fn query(&self, stmt: &postgres::Statement, params: &[Value]) -> rusqlite::Result<Vec<PgRow>> {
        let args: Vec<PgParam<'_>> = params.iter().map(PgParam).collect();
        let refs = pg_refs(&args);
        let mut client = self.client();
        let c: &mut postgres::Client = &mut client;
        let rows = off_runtime(|| c.query(stmt, &refs)).map_err(|e| self.failed(e))?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| row.try_get::<_, PgValue>(i).map(|v| v.0).map_err(pg_error))
                    .collect::<rusqlite::Result<Vec<Value>>>()
                    .map(PgRow)
            })
            .collect()
    }

    fn batch(&self, sql: &str) -> rusqlite::Result<()> {
        self.live()?;
        let mut client = self.client();
        let c: &mut postgres::Client = &mut client;
        off_runtime(|| c.batch_execute(sql)).map_err(|e| self.failed(e))
    }
}

/// Closing a PostgreSQL client blocks on a runtime of the client's own,
/// which tokio refuses on a thread that runs a runtime (a store dropped in
/// an async task: the review app's connections, the daemon's reader): such
/// a client is closed on a thread of its own.
impl Drop for PgConn {
    fn drop(&mut self) {
        if let Some(client) = self.client.get_mut().take() {
            close_off_runtime(client);
        }
    }
}

fn close_off_runtime(client: postgres::Client) {
    if tokio::runtime::Handle::try_current().is_ok() {
        let _ = std::thread::spawn(move || drop(client)).join();
    } else {
        drop(client);
    }
}

/// Runs a blocking PostgreSQL call. The `postgres` client drives its own
/// runtime, which tokio refuses to start on a thread that runs async
/// tasks: there the call runs under `block_in_place` (multi-threaded
/// runtime) or on a scoped thread of its own (current-thread runtime).
/// SQLite's calls need none of this.
pub(crate) fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match tokio::runtime::Handle::try_current() {
        Err(_) => f(),
        Ok(h) => match h.runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
            _ => std::thread::scope(|s| {
                s.spawn(f)
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            }),
        },
    }
}

impl Conn {
    /// The engine this connection speaks.
    pub(crate) fn engine(&self) -> Engine {
        match self {
            Conn::Sqlite(_) => Engine::Sqlite,
            Conn::Pg(_) => Engine::Postgres,
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas, hooks).
    pub(crate) fn lite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Conn::Sqlite(c) => Some(c),
            Conn::Pg(_) => None,
        }
    }

    /// The SQLite connection, mutably (its hooks).
    pub(crate) fn lite_mut(&mut self) -> Option<&mut rusqlite::Connection> {
        match self {
            Conn::Sqlite(c) => Some(c),
            Conn::Pg(_) => None,
        }
    }

    /// One statement written per engine: `sqlite` on SQLite, `postgres` on
    /// PostgreSQL (both with SQLite-style placeholders).
    pub(crate) fn dialect<'s>(&self, sqlite: &'s str, postgres: &'s str) -> &'s str {
        match self {
            Conn::Sqlite(_) => sqlite,
            Conn::Pg(_) => postgres,
        }
    }

    /// Whether no transaction is open.
    pub(crate) fn is_autocommit(&self) -> bool {
        match self {
            Conn::Sqlite(c) => c.is_autocommit(),
            Conn::Pg(c) => c.depth.get() == 0,
        }
    }

    pub(crate) fn execute<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        match self {
            Conn::Sqlite(c) => params.with_lite(|p| c.execute(sql, p)),
            Conn::Pg(c) => {
                let stmt = c.prepare(sql, false)?;
                c.execute(&stmt, &params.values()?)
            }
        }
    }

    /// `execute` through the statement cache.
    pub(crate) fn cached_execute<P: Params>(
        &self,
        sql: &str,
        params: P,
    ) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    pub(crate) fn query_row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare(sql)?.query_row(params, f)
    }

    /// `query_row` through the statement cache.
    pub(crate) fn cached_row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    pub(crate) fn prepare(&self, sql: &str) -> rusqlite::Result<Stmt<'_>> {
        match self {
            Conn::Sqlite(c) => c.prepare(sql).map(Stmt::Lite),
            Conn::Pg(c) => Ok(Stmt::Pg(c, c.prepare(sql, false)?)),
        }
    }

    pub(crate) fn prepare_cached(&self, sql: &str) -> rusqlite::Result<Stmt<'_>> {
        match self {
            Conn::Sqlite(c) => c.prepare_cached(sql).map(Stmt::LiteCached),
            Conn::Pg(c) => Ok(Stmt::Pg(c, c.prepare(sql, true)?)),
        }
    }

    /// Runs several statements without parameters.
    pub(crate) fn execute_batch(&self, sql: &str) -> rusqlite::Result<()> {
        match self {
            Conn::Sqlite(c) => c.execute_batch(sql),
            Conn::Pg(c) => c.batch(sql),
        }
    }

    /// Begins a transaction (SQLite: IMMEDIATE, taking the write lock now).
    pub(crate) fn transaction(&self) -> rusqlite::Result<Transaction<'_>> {
        self.begin()?;
        Ok(Transaction {
            conn: self,
            open: true,
        })
    }

    /// BEGIN (SQLite: IMMEDIATE) — for a transaction its caller ends with
    /// `commit` or `rollback` (the writer's batches).
    pub(crate) fn begin(&self) -> rusqlite::Result<()> {
        match self {
            Conn::Sqlite(c) => c.prepare_cached("BEGIN IMMEDIATE")?.execute([]).map(drop),
            Conn::Pg(c) => {
                c.batch("BEGIN")?;
                c.depth.set(1);
                Ok(())
            }
        }
    }

    /// COMMIT.
    pub(crate) fn commit(&self) -> rusqlite::Result<()> {
        self.end("COMMIT")
    }

    /// ROLLBACK.
    pub(crate) fn rollback(&self) -> rusqlite::Result<()> {
        self.end("ROLLBACK")
    }

    fn end(&self, sql: &str) -> rusqlite::Result<()> {
        match self {
            Conn::Sqlite(c) => c.prepare_cached(sql)?.execute([]).map(drop),
            Conn::Pg(c) => {
                let done = c.batch(sql);
                // A failed COMMIT ends the transaction too, on PostgreSQL.
                c.depth.set(0);
                done
            }
        }
    }

    /// Marks a savepoint begun or ended (PostgreSQL keeps the depth).
    pub(crate) fn nest(&self, by: i32) {
        if let Conn::Pg(c) = self {
            c.depth.set(c.depth.get().saturating_add_signed(by));
        }
    }
}

/// A transaction on a `Conn`: committed by `commit`, rolled back when
/// dropped without it.
pub(crate) struct Transaction<'c> {
    conn: &'c Conn,
    open: bool,
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
    }
}

impl Transaction<'_> {
    pub(crate) fn commit(mut self) -> rusqlite::Result<()> {
        self.open = false;
        self.conn.commit()
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.rollback();
        }
    }
}

/// A prepared statement.
pub(crate) enum Stmt<'c> {
    Lite(rusqlite::Statement<'c>),
    LiteCached(rusqlite::CachedStatement<'c>),
    Pg(&'c PgConn, postgres::Statement),
}

impl<'c> Stmt<'c> {
    fn lite(&mut self) -> Option<&mut rusqlite::Statement<'c>> {
        match self {
            Stmt::Lite(s) => Some(s),
            Stmt::LiteCached(s) => Some(s),
            Stmt::Pg(..) => None,
        }
    }

    pub(crate) fn execute<P: Params>(&mut self, params: P) -> rusqlite::Result<usize> {
        if let Stmt::Pg(c, s) = self {
            return c.execute(s, &params.values()?);
        }
        let s = self.lite().expect("a SQLite statement");
        params.with_lite(|p| s.execute(p))
    }

    pub(crate) fn query_row<T, P, F>(&mut self, params: P, f: F) -> rusqlite::Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        if let Stmt::Pg(c, s) = self {
            let rows = c.query(s, &params.values()?)?;
            let first = rows.first().ok_or(rusqlite::Error::QueryReturnedNoRows)?;
            return f(&Row::Pg(first));
        }
        let s = self.lite().expect("a SQLite statement");
        params.with_lite(|p| s.query_row(p, |r| f(&Row::Lite(r))))
    }

    /// Every row, mapped (read to the end before the first is returned).
    pub(crate) fn query_map<T, P, F>(&mut self, params: P, mut f: F) -> rusqlite::Result<Rows<T>>
    where
        P: Params,
        F: FnMut(&Row<'_>) -> rusqlite::Result<T>,
    {
        if let Stmt::Pg(c, s) = self {
            let rows = c.query(s, &params.values()?)?;
            let mapped: Vec<rusqlite::Result<T>> = rows.iter().map(|r| f(&Row::Pg(r))).collect();
            return Ok(Rows(mapped.into_iter()));
        }
        let s = self.lite().expect("a SQLite statement");
        let mapped: Vec<rusqlite::Result<T>> = params.with_lite(|p| {
            s.query_map(p, |r| f(&Row::Lite(r)))
                .map(|rows| rows.collect())
        })?;
        Ok(Rows(mapped.into_iter()))
    }
}

/// The rows of `Stmt::query_map`, each mapped.
pub(crate) struct Rows<T>(std::vec::IntoIter<rusqlite::Result<T>>);

impl<T> Iterator for Rows<T> {
    type Item = rusqlite::Result<T>;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

/// A PostgreSQL row, read into SQLite's values.
pub(crate) struct PgRow(Vec<Value>);

/// A result row.
pub(crate) enum Row<'a> {
    Lite(&'a rusqlite::Row<'a>),
    Pg(&'a PgRow),
}

impl Row<'_> {
    /// Column `idx`, converted as rusqlite converts a SQLite value.
    pub(crate) fn get<I: ColumnIndex, T: FromSql>(&self, idx: I) -> rusqlite::Result<T> {
        let idx = idx.index();
        match self {
            Row::Lite(r) => r.get(idx),
            Row::Pg(r) => {
                let v =
                    r.0.get(idx)
                        .ok_or(rusqlite::Error::InvalidColumnIndex(idx))?;
                let v = ValueRef::from(v);
                T::column_result(v).map_err(|e| match e {
                    rusqlite::types::FromSqlError::InvalidType => {
                        rusqlite::Error::InvalidColumnType(
                            idx,
                            format!("column {idx}"),
                            v.data_type(),
                        )
                    }
                    other => rusqlite::Error::FromSqlConversionFailure(
                        idx,
                        v.data_type(),
                        Box::new(other),
                    ),
                })
            }
        }
    }
}

/// A column's position in a row.
pub(crate) trait ColumnIndex {
    fn index(self) -> usize;
}

impl ColumnIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// A statement's parameters: what `rusqlite::params!` makes, an array of
/// one type, or `()` for none.
pub(crate) trait Params {
    /// Runs `f` with the parameters as rusqlite takes them.
    fn with_lite<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R;
    /// The parameters as values, for PostgreSQL.
    fn values(self) -> rusqlite::Result<Vec<Value>>;
}

fn owned(p: &dyn ToSql) -> rusqlite::Result<Value> {
    use rusqlite::types::ToSqlOutput;
    Ok(match p.to_sql()? {
        ToSqlOutput::Borrowed(v) => match v {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(f) => Value::Real(f),
            ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        },
        ToSqlOutput::Owned(v) => v,
        _ => {
            return Err(rusqlite::Error::ToSqlConversionFailure(
                "a parameter PostgreSQL cannot take (zero blob or array)".into(),
            ));
        }
    })
}

impl Params for () {
    fn with_lite<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        f(&[])
    }
    fn values(self) -> rusqlite::Result<Vec<Value>> {
        Ok(Vec::new())
    }
}

impl Params for &[&dyn ToSql] {
    fn with_lite<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        f(self)
    }
    fn values(self) -> rusqlite::Result<Vec<Value>> {
        self.iter().map(|p| owned(*p)).collect()
    }
}

impl<const N: usize> Params for &[&dyn ToSql; N] {
    fn with_lite<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        f(self)
    }
    fn values(self) -> rusqlite::Result<Vec<Value>> {
        self.iter().map(|p| owned(*p)).collect()
    }
}

impl<T: ToSql, const N: usize> Params for [T; N] {
    fn with_lite<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        let refs: [&dyn ToSql; N] = std::array::from_fn(|i| &self[i] as &dyn ToSql);
        f(&refs)
    }
    fn values(self) -> rusqlite::Result<Vec<Value>> {
        self.iter().map(|p| owned(p)).collect()
    }
}

impl Params for &Vec<Value> {
    fn with_lite<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        let refs: Vec<&dyn ToSql> = self.iter().map(|v| v as &dyn ToSql).collect();
        f(&refs)
    }
    fn values(self) -> rusqlite::Result<Vec<Value>> {
        Ok(self.clone())
    }
}

/// SQLite's placeholders (`?NNN`, `?`) as PostgreSQL's (`$NNN`), outside
/// string literals and quoted names.
pub(crate) fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut max = 0usize;
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                // A bare `?` is one more than the largest number so far, as in SQLite.
                let n = digits.parse::<usize>().unwrap_or(max + 1);
                max = max.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

/// The parameters as the client takes them.
fn pg_refs<'a>(args: &'a [PgParam<'a>]) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    args.iter()
        .map(|a| a as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

/// A parameter converted to the type PostgreSQL inferred for it.
#[derive(Debug)]
struct PgParam<'a>(&'a Value);

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl postgres::types::ToSql for PgParam<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, BoxError> {
        use postgres::types::{IsNull, Type};
        let wrong = |what: &str| -> BoxError {
            format!("cannot send {what} as PostgreSQL type {ty}").into()
        };
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(i) => match *ty {
                Type::INT8 => put(i, ty, out),
                Type::INT4 => i32::try_from(*i)
                    .map_err(|_| wrong("an integer out of range"))?
                    .pipe(|v| put(v, ty, out)),
                Type::INT2 => i16::try_from(*i)
                    .map_err(|_| wrong("an integer out of range"))?
                    .pipe(|v| put(v, ty, out)),
                Type::BOOL => put(*i != 0, ty, out),
                Type::FLOAT8 => put(*i as f64, ty, out),
                Type::FLOAT4 => put(*i as f32, ty, out),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    put(i.to_string(), &Type::TEXT, out)
                }
                _ => Err(wrong("an integer")),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT8 => put(f, ty, out),
                Type::FLOAT4 => put(*f as f32, ty, out),
                Type::TEXT | Type::VARCHAR | Type::UNKNOWN => put(f.to_string(), &Type::TEXT, out),
                _ => Err(wrong("a real number")),
            },
            Value::Text(s) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    put(s.as_str(), &Type::TEXT, out)
                }
                Type::TIMESTAMPTZ => time_text(s)
                    .ok_or_else(|| wrong("text that is not an RFC 3339 time"))?
                    .pipe(|v| put(v, ty, out)),
                Type::TIMESTAMP => time_text(s)
                    .ok_or_else(|| wrong("text that is not an RFC 3339 time"))?
                    .naive_utc()
                    .pipe(|v| put(v, ty, out)),
                Type::JSONB => {
                    out.extend_from_slice(&[1]);
                    out.extend_from_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
                Type::JSON => {
                    out.extend_from_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
                Type::BYTEA => put(s.as_bytes(), ty, out),
                Type::INT8 => s
                    .parse::<i64>()
                    .map_err(|_| wrong("text that is not an integer"))?
                    .pipe(|v| put(v, ty, out)),
                Type::INT4 => s
                    .parse::<i32>()
                    .map_err(|_| wrong("text that is not an integer"))?
                    .pipe(|v| put(v, ty, out)),
                _ => Err(wrong("text")),
            },
            Value::Blob(b) => match *ty {
                Type::BYTEA => put(b.as_slice(), ty, out),
                _ => Err(wrong("a blob")),
            },
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// Writes `v` as PostgreSQL type `ty`.
fn put<T: postgres::types::ToSql>(
    v: T,
    ty: &postgres::types::Type,
    out: &mut bytes::BytesMut,
) -> Result<postgres::types::IsNull, BoxError> {
    v.to_sql(ty, out)
}

/// `x.pipe(f)` is `f(x)`, for the end of a conversion chain.
trait Pipe: Sized {
    fn pipe<R>(self, f: impl FnOnce(Self) -> R) -> R {
        f(self)
    }
}

impl<T> Pipe for T {}

/// RFC 3339 text (or SQLite's `YYYY-MM-DD HH:MM:SS`, UTC) as a time.
fn time_text(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

/// A PostgreSQL column read as the SQLite value the store's code expects.
struct PgValue(Value);

impl<'a> postgres::types::FromSql<'a> for PgValue {
    fn from_sql(ty: &postgres::types::Type, raw: &'a [u8]) -> Result<PgValue, BoxError> {
        use postgres::types::Type;
        Ok(PgValue(match *ty {
            Type::BOOL => Value::Integer(i64::from(bool::from_sql(ty, raw)?)),
            Type::INT2 => Value::Integer(i64::from(i16::from_sql(ty, raw)?)),
            Type::INT4 => Value::Integer(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::OID => Value::Integer(i64::from(u32::from_sql(ty, raw)?)),
            Type::FLOAT4 => Value::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::TIMESTAMPTZ => Value::Text(super::rfc3339(
                chrono::DateTime::<chrono::Utc>::from_sql(ty, raw)?,
            )),
            Type::TIMESTAMP => Value::Text(super::rfc3339(
                chrono::NaiveDateTime::from_sql(ty, raw)?.and_utc(),
            )),
            Type::DATE => Value::Text(chrono::NaiveDate::from_sql(ty, raw)?.to_string()),
            Type::JSONB => match raw.split_first() {
                Some((1, text)) => Value::Text(std::str::from_utf8(text)?.to_string()),
                _ => return Err("jsonb in an unknown binary version".into()),
            },
            Type::BYTEA => Value::Blob(raw.to_vec()),
            Type::NUMERIC => {
                return Err("a numeric column: cast it to bigint or float8 in the SQL".into());
            }
            _ => Value::Text(String::from_sql(&Type::TEXT, raw)?),
        }))
    }

    fn from_sql_null(_: &postgres::types::Type) -> Result<PgValue, BoxError> {
        Ok(PgValue(Value::Null))
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }
}

/// A PostgreSQL error in the store's vocabulary (see the module's note).
pub(crate) fn pg_error(e: postgres::Error) -> rusqlite::Error {
    use postgres::error::SqlState;
    use rusqlite::ffi;
    let extended = e.code().and_then(|c| {
        Some(if *c == SqlState::UNIQUE_VIOLATION {
            ffi::SQLITE_CONSTRAINT_UNIQUE
        } else if *c == SqlState::FOREIGN_KEY_VIOLATION {
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY
        } else if *c == SqlState::CHECK_VIOLATION {
            ffi::SQLITE_CONSTRAINT_CHECK
        } else if *c == SqlState::NOT_NULL_VIOLATION {
            ffi::SQLITE_CONSTRAINT_NOTNULL
        } else if *c == SqlState::RAISE_EXCEPTION {
            ffi::SQLITE_CONSTRAINT_TRIGGER
        } else if *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::LOCK_NOT_AVAILABLE
        {
            ffi::SQLITE_BUSY
        } else {
            return None;
        })
    });
    let message = super::pg::PgCause(e).to_string();
    match extended {
        Some(code) => rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(message)),
        None => rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_ERROR), Some(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_are_numbered_outside_literals() {
        assert_eq!(
            placeholders("SELECT ?1, ?, '?' , \"a?\", ?12"),
            "SELECT $1, $2, '?' , \"a?\", $12"
        );
        assert_eq!(placeholders("a = ? AND b = ?"), "a = $1 AND b = $2");
    }
}
