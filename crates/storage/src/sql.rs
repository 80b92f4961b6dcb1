//! What the read side needs of a database, written once: statements with their parameters
//! ([`Sql`], [`Param`]) in a [`Dialect`], rows read through [`Cols`], and the [`Backend`] that
//! runs them. The SQLite and PostgreSQL modules implement [`Cols`] and [`Backend`]; the ports'
//! implementations over them live in [`crate::store`], [`crate::alerts_sql`] and
//! [`crate::dead_letters_sql`].

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use emdp_app::ports::{Granularity, IngestTx, RecordKey, StoreError, StoredKey};
use futures::TryStreamExt;

use crate::error::DbResult;

/// The database a statement is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: `?` placeholders, dates as 'YYYY-MM-DD' text, times and booleans as integers.
    Sqlite,
    /// PostgreSQL: `$N` placeholders, `DATE`, `BOOLEAN` (and `TIMESTAMPTZ` outside the alerts).
    Postgres,
}

impl Dialect {
    /// A date column as days since 1970-01-01 (BIGINT).
    pub(crate) fn day(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => format!("CAST(unixepoch({column}) / 86400 AS BIGINT)"),
            Dialect::Postgres => format!("CAST({column} - DATE '1970-01-01' AS BIGINT)"),
        }
    }

    /// A time column as Unix epoch milliseconds (BIGINT).
    pub(crate) fn millis(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => column.to_owned(),
            Dialect::Postgres => format!("CAST(round(EXTRACT(EPOCH FROM {column}) * 1000) AS BIGINT)"),
        }
    }

    /// A boolean column as 0/1 (BIGINT).
    pub(crate) fn flag(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => format!("CAST({column} AS BIGINT)"),
            Dialect::Postgres => format!("CAST(CASE WHEN {column} THEN 1 ELSE 0 END AS BIGINT)"),
        }
    }

    /// The conflict-group predicate, written exactly as the partial index `records_conflicts`.
    pub(crate) fn conflict(self) -> &'static str {
        match self {
            Dialect::Sqlite => "(r.versions > 1 OR r.pending <> 0)",
            Dialect::Postgres => "(r.versions > 1 OR r.pending)",
        }
    }

    /// Whether the record `r` waits for a manual decision.
    pub(crate) fn pending(self) -> &'static str {
        match self {
            Dialect::Sqlite => "r.pending <> 0",
            Dialect::Postgres => "r.pending",
        }
    }

    /// Byte-order text comparison (SQLite's default; PostgreSQL's depends on the locale).
    pub(crate) fn collate(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " COLLATE \"C\"",
        }
    }

    /// The larger of two numbers.
    pub(crate) fn greatest(self, a: &str, b: &str) -> String {
        match self {
            Dialect::Sqlite => format!("MAX({a}, {b})"),
            Dialect::Postgres => format!("GREATEST({a}, {b})"),
        }
    }

    /// A JSON text parameter as the `batches.summary` column keeps it (`JSONB` on PostgreSQL).
    pub(crate) fn json(self, param: &str) -> String {
        match self {
            Dialect::Sqlite => param.to_owned(),
            Dialect::Postgres => format!("CAST({param} AS JSONB)"),
        }
    }

    /// The first day of the period of `granularity` that the date column `date` falls in, as a
    /// date column.
    pub(crate) fn period_start(self, granularity: Granularity, date: &str) -> String {
        match (self, granularity) {
            (_, Granularity::Day) => date.to_owned(),
            // strftime('%w') is 0 on Sunday: step back to the ISO week's Monday.
            (Dialect::Sqlite, Granularity::Week) => {
                format!("date({date}, '-' || ((CAST(strftime('%w', {date}) AS INTEGER) + 6) % 7) || ' days')")
            }
            (Dialect::Sqlite, Granularity::Month) => format!("strftime('%Y-%m-01', {date})"),
            // date_trunc('week') starts weeks on Monday, as ISO 8601 does.
            (Dialect::Postgres, Granularity::Week) => format!("CAST(date_trunc('week', {date}) AS DATE)"),
            (Dialect::Postgres, Granularity::Month) => format!("CAST(date_trunc('month', {date}) AS DATE)"),
        }
    }
}

/// A value bound to a statement, as the backend stores its kind (see [`Backend::DIALECT`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// A text (NUL-escaped on PostgreSQL).
    Text(Option<String>),
    /// An integer.
    Int(Option<i64>),
    /// A floating-point number.
    Real(Option<f64>),
    /// A boolean (0/1 on SQLite).
    Bool(bool),
    /// A day (text on SQLite).
    Date(Option<NaiveDate>),
    /// A time (epoch milliseconds on SQLite, `TIMESTAMPTZ` on PostgreSQL).
    Time(Option<DateTime<Utc>>),
}

/// `From` conversions of the values statements bind, so that `bind(value)` reads as it binds.
macro_rules! params {
    ($($value:ty => |$v:ident| $param:expr;)*) => {$(
        impl From<$value> for Param {
            fn from($v: $value) -> Self {
                $param
            }
        }
    )*};
}

params! {
    &str => |v| Param::Text(Some(v.to_owned()));
    String => |v| Param::Text(Some(v));
    Option<&str> => |v| Param::Text(v.map(str::to_owned));
    i64 => |v| Param::Int(Some(v));
    Option<i64> => |v| Param::Int(v);
    Option<f64> => |v| Param::Real(v);
    f64 => |v| Param::Real(Some(v));
    bool => |v| Param::Bool(v);
    NaiveDate => |v| Param::Date(Some(v));
    Option<NaiveDate> => |v| Param::Date(v);
    DateTime<Utc> => |v| Param::Time(Some(v));
}

/// A statement and its parameters, with placeholders in its dialect.
#[derive(Debug, Clone)]
pub struct Sql {
    /// The dialect of the placeholders.
    pub dialect: Dialect,
    /// The statement.
    pub text: String,
    /// Its parameters, in placeholder order.
    pub params: Vec<Param>,
}

impl Sql {
    /// An empty statement, for [`Sql::push`] and [`Sql::bind`].
    pub(crate) fn new(dialect: Dialect) -> Self {
        Sql { dialect, text: String::with_capacity(1024), params: Vec::new() }
    }

    /// A statement written with numbered `$N` placeholders (SQLite's `?N`) and its parameters.
    pub(crate) fn numbered(dialect: Dialect, text: &str, params: Vec<Param>) -> Self {
        let text = match dialect {
            Dialect::Sqlite => text.replace('$', "?"),
            Dialect::Postgres => text.to_owned(),
        };
        Sql { dialect, text, params }
    }

    /// Appends SQL text.
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `param`.
    pub(crate) fn bind(&mut self, param: impl Into<Param>) -> &mut Self {
        self.params.push(param.into());
        match self.dialect {
            Dialect::Sqlite => self.text.push('?'),
            Dialect::Postgres => {
                let n = self.params.len();
                self.text.push_str(&format!("${n}"));
            }
        }
        self
    }
}

/// Reading the columns of a result row, whatever the database (see [`Stored`] for what
/// differs).
pub trait Cols {
    /// An integer column (`BIGINT` on PostgreSQL).
    fn opt_int(&self, index: usize) -> Result<Option<i64>, StoreError>;
    /// A floating-point column.
    fn opt_real(&self, index: usize) -> Result<Option<f64>, StoreError>;
    /// A text column, as it was given (PostgreSQL's NUL escape undone).
    fn opt_text(&self, index: usize) -> Result<Option<String>, StoreError>;
    /// A date column as the backend stores dates.
    fn opt_date(&self, index: usize) -> Result<Option<NaiveDate>, StoreError>;
    /// A time column as the backend stores times (the alerts' epoch milliseconds are integers).
    fn opt_time(&self, index: usize) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// A non-null integer column.
    fn int(&self, index: usize) -> Result<i64, StoreError> {
        self.opt_int(index)?.ok_or_else(|| null(index))
    }
    /// A non-null floating-point column.
    fn real(&self, index: usize) -> Result<f64, StoreError> {
        self.opt_real(index)?.ok_or_else(|| null(index))
    }
    /// A non-null text column.
    fn text(&self, index: usize) -> Result<String, StoreError> {
        self.opt_text(index)?.ok_or_else(|| null(index))
    }
    /// A non-null date column.
    fn date(&self, index: usize) -> Result<NaiveDate, StoreError> {
        self.opt_date(index)?.ok_or_else(|| null(index))
    }
    /// A non-null time column.
    fn time(&self, index: usize) -> Result<DateTime<Utc>, StoreError> {
        self.opt_time(index)?.ok_or_else(|| null(index))
    }
}

fn null(index: usize) -> StoreError {
    StoreError::Other(format!("column {index} is unexpectedly NULL"))
}

/// How a database keeps the kinds of values that differ between databases: dates, times
/// (outside the alerts' epoch milliseconds), booleans and texts.
pub trait Stored: sqlx::Database {
    /// What a date column holds.
    type Date: Kept<NaiveDate> + Send;
    /// What a time column holds.
    type Time: Kept<DateTime<Utc>> + Send;
    /// What a boolean column holds.
    type Bool: Send;
    /// A date as stored.
    fn date(date: NaiveDate) -> Self::Date;
    /// A time as stored.
    fn time(time: DateTime<Utc>) -> Self::Time;
    /// A boolean as stored.
    fn flag(flag: bool) -> Self::Bool;
    /// A text as stored, from a text as given.
    fn put(text: &str) -> String;
    /// A text as it was given, from a text as stored.
    fn text(stored: String) -> String;
}

/// A stored value as the ports' type `T`.
pub trait Kept<T> {
    /// The value.
    fn kept(self) -> Result<T, StoreError>;
}

/// A date kept as a date.
impl Kept<NaiveDate> for NaiveDate {
    fn kept(self) -> Result<NaiveDate, StoreError> {
        Ok(self)
    }
}

/// A date kept as 'YYYY-MM-DD' text.
impl Kept<NaiveDate> for String {
    fn kept(self) -> Result<NaiveDate, StoreError> {
        emdp_domain::parse_iso_date(&self)
            .map_err(|_| StoreError::Other(format!("stored date '{self}' is not YYYY-MM-DD")))
    }
}

/// A time kept as a time.
impl Kept<DateTime<Utc>> for DateTime<Utc> {
    fn kept(self) -> Result<DateTime<Utc>, StoreError> {
        Ok(self)
    }
}

/// A time kept as milliseconds since the Unix epoch.
impl Kept<DateTime<Utc>> for i64 {
    fn kept(self) -> Result<DateTime<Utc>, StoreError> {
        Ok(crate::rows::from_millis(self))
    }
}

impl<R> Cols for R
where
    R: sqlx::Row,
    R::Database: Stored,
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> f64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> <R::Database as Stored>::Date: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> <R::Database as Stored>::Time: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn opt_int(&self, index: usize) -> Result<Option<i64>, StoreError> {
        self.try_get(index).db()
    }

    fn opt_real(&self, index: usize) -> Result<Option<f64>, StoreError> {
        self.try_get(index).db()
    }

    fn opt_text(&self, index: usize) -> Result<Option<String>, StoreError> {
        Ok(self.try_get::<Option<String>, _>(index).db()?.map(R::Database::text))
    }

    fn opt_date(&self, index: usize) -> Result<Option<NaiveDate>, StoreError> {
        self.try_get::<Option<<R::Database as Stored>::Date>, _>(index).db()?.map(Kept::kept).transpose()
    }

    fn opt_time(&self, index: usize) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.try_get::<Option<<R::Database as Stored>::Time>, _>(index).db()?.map(Kept::kept).transpose()
    }
}

/// Where a statement runs: on a pooled connection, or on a connection held (in a transaction,
/// or the ingest's).
pub enum On<'a, DB: sqlx::Database> {
    /// Any connection of the pool.
    Pool(&'a sqlx::Pool<DB>),
    /// This connection.
    Conn(&'a mut DB::Connection),
}

/// A transaction of backend `B`.
pub type Tx<B> = sqlx::Transaction<'static, <B as Backend>::Db>;

/// What differs between SQLite and PostgreSQL on the read side: the dialect, how statements
/// are bound and run and rows read, and the quality report's hooks. Everything over it (the
/// quality, duplicate, analytics, key and alert stores) is written once, in [`crate::store`].
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The sqlx database, whose rows the read side reads through [`Cols`].
    type Db: Driver<Row: Cols + Send>;

    /// The SQL dialect.
    const DIALECT: Dialect;
    /// The statement that begins a transaction that will write (SQLite takes its write lock
    /// at once, rather than failing when a reader upgrades).
    const BEGIN_WRITE: &'static str = "BEGIN";
    /// Whether the quality report may read the running counts `record_tally` and `raw_tally`
    /// (SQLite's migrations 0005 and 0006) when they serve a filter, instead of scanning.
    const TALLIES: bool = false;
    /// Settings for the quality report's statements (`SET LOCAL`, in a transaction of their
    /// own); none by default.
    const REPORT_SETTINGS: &'static [&'static str] = &[];

    /// The connection pool.
    fn pool(&self) -> &sqlx::Pool<Self::Db>;

    // The write side, where the backends differ most: see `RecordStore`'s methods of the same
    // names.

    /// [`RecordStore::ingest_writers`](emdp_app::ports::RecordStore::ingest_writers).
    fn ingest_writers(&self) -> usize {
        1
    }

    /// After [`RecordStore::finish_batch`](emdp_app::ports::RecordStore::finish_batch) of a
    /// batch of `rows_stored` rows: whatever the database needs after a bulk load.
    async fn batch_finished(&self, _rows_stored: i64) -> Result<(), StoreError> {
        Ok(())
    }

    /// [`RecordStore::begin_ingest`](emdp_app::ports::RecordStore::begin_ingest).
    async fn begin_ingest(&self) -> Result<Box<dyn IngestTx + '_>, StoreError>;

    /// [`RecordStore::close`](emdp_app::ports::RecordStore::close).
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// [`RecordStore::find_keys`](emdp_app::ports::RecordStore::find_keys): by default in an
    /// ingest transaction that is never committed.
    async fn find_keys(&self, keys: &[RecordKey]) -> Result<Vec<StoredKey>, StoreError> {
        self.begin_ingest().await?.load_keys(keys).await
    }
}

/// A sqlx database that statements run on: binding a statement's parameters as the database
/// stores them ([`Stored`]) and running it as [`On`] says, written once for any database (the
/// bounds cannot be named on [`Backend`] itself).
pub trait Driver: Stored + crate::pool::Target {
    /// The rows of `sql`, as they arrive.
    fn rows<'e>(on: On<'e, Self>, sql: &'e Sql) -> futures::stream::BoxStream<'e, Result<Self::Row, sqlx::Error>>;
}

impl<DB> Driver for DB
where
    DB: Stored + crate::pool::Target,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<f64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> DB::Bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<DB::Date>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<DB::Time>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    fn rows<'e>(on: On<'e, DB>, sql: &'e Sql) -> futures::stream::BoxStream<'e, Result<DB::Row, sqlx::Error>> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.text.as_str()));
        for param in &sql.params {
            query = match param {
                Param::Text(text) => query.bind(text.as_deref().map(DB::put)),
                Param::Int(int) => query.bind(*int),
                Param::Real(real) => query.bind(*real),
                Param::Bool(flag) => query.bind(DB::flag(*flag)),
                Param::Date(date) => query.bind(date.map(DB::date)),
                Param::Time(time) => query.bind(time.map(DB::time)),
            };
        }
        match on {
            On::Pool(pool) => sqlx::Executor::fetch(pool, query),
            On::Conn(conn) => sqlx::Executor::fetch(conn, query),
        }
    }
}

/// A result row of backend `B`.
pub type Row<B> = <<B as Backend>::Db as sqlx::Database>::Row;

/// Runs `sql` and hands each row to `each`, as they arrive.
pub(crate) async fn fetch<B: Backend>(
    on: On<'_, B::Db>,
    sql: &Sql,
    each: &mut (dyn FnMut(Row<B>) -> Result<(), StoreError> + Send),
) -> Result<(), StoreError> {
    let pool = match &on {
        On::Pool(pool) => Some(*pool),
        On::Conn(_) => None,
    };
    let waiting = crate::pool::Waiting::on(pool);
    let mut rows = B::Db::rows(on, sql);
    let mut any = false;
    loop {
        match rows.try_next().await {
            Ok(Some(row)) => {
                any = true;
                each(row)?;
            }
            Ok(None) => return Ok(()),
            // Rows were handed on: the statement cannot be run again.
            Err(err) if any => return Err(crate::error::store_error(err)),
            Err(err) => {
                drop(rows);
                // No connection came but the database is there (nothing ran): wait for one again.
                let pool = waiting.retry(err).await?;
                rows = B::Db::rows(On::Pool(pool), sql);
            }
        }
    }
}

/// Runs `sql`, whatever rows it returns.
pub(crate) async fn execute<B: Backend>(on: On<'_, B::Db>, sql: &Sql) -> Result<(), StoreError> {
    fetch::<B>(on, sql, &mut |_| Ok(())).await
}
