//! How the stores are opened, and what a request that cannot get a connection is told.
//!
//! A pool that cannot open a connection because the server refuses it keeps trying until its
//! acquire timeout and then says only that it timed out (sqlx retries refused connections:
//! "the system starting up"). So the acquire timeout is how long a request waits while the
//! database is gone, and a timed-out acquire is explained by one direct connection attempt, in
//! words ("connection refused"). A pool whose every connection is in use, or a server that
//! answers that attempt, is a busy database, not a gone one: the request waits for a
//! connection again, up to [`BUSY_WAIT`] in all ([`Waiting`]), so that a short acquire
//! timeout does not turn a busy server's requests into 503s.

use std::time::Duration;

use emdp_app::ports::StoreError;
use sqlx::ConnectOptions;

/// How long a request waits for a PostgreSQL connection by default (see
/// [`OpenOptions::acquire_timeout`]).
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(1500);

/// How long the readiness probe ([`emdp_app::ports::RecordStore::ping`]) waits for a pooled
/// connection before it asks the server directly: `/ready` stays fast when the pool waits.
pub(crate) const PING_WAIT: Duration = Duration::from_millis(500);

/// How long a direct connection attempt that explains a failure may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a request waits in all for a connection while every connection of the pool is
/// in use (the server's request timeout, 30 s by default, cuts it shorter).
pub(crate) const BUSY_WAIT: Duration = Duration::from_secs(30);

/// How a database is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// Whether a missing SQLite file is created (a command that writes) or is an error (one
    /// that only reads: an empty new file would show no data rather than the wrong path).
    pub create: bool,
    /// How long a request waits for a PostgreSQL connection before it fails as unavailable
    /// (HTTP 503), saying why: how long requests wait while the database is down. While every
    /// connection is in use (a busy database) a request waits again, up to 30 s in all.
    pub acquire_timeout: Duration,
}

impl Default for OpenOptions {
    /// Creating a missing SQLite file, [`DEFAULT_ACQUIRE_TIMEOUT`].
    fn default() -> Self {
        OpenOptions { create: true, acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT }
    }
}

/// Why a connection could not be made, in words an operator acts on (from the error's kind
/// or SQLSTATE, never an OS error number), or `None` when the error is not about reaching
/// the database.
pub(crate) fn unreachable_reason(err: &sqlx::Error) -> Option<String> {
    use std::io::ErrorKind;
    match err {
        sqlx::Error::Io(io) => Some(match io.kind() {
            ErrorKind::NotFound => "no such file or socket".to_owned(),
            // Name resolution failures carry no kind of their own.
            _ if io.to_string().contains("lookup address") => "no such host".to_owned(),
            _ => io_reason(io),
        }),
        sqlx::Error::Tls(tls) => Some(format!("TLS failed: {tls}")),
        sqlx::Error::PoolTimedOut => Some("timed out".to_owned()),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("3D000") => Some(format!("the database does not exist ({})", db.message())),
            Some("28000" | "28P01") => Some(format!("authentication failed ({})", db.message())),
            Some("57P03") => Some("the server is starting up or shutting down".to_owned()),
            Some("53300") => Some("the server has no connection slot left (too many connections)".to_owned()),
            // SQLite's SQLITE_CANTOPEN.
            Some("14") => Some("unable to open the database file (a missing directory, or no permission)".to_owned()),
            _ => None,
        },
        _ => None,
    }
}

/// Why a network operation failed, in words from the error's kind, never an OS error number
/// (a read that times out is "os error 11" on Linux): what the stores and `emdp health` say.
pub fn io_reason(err: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::ConnectionRefused => "connection refused",
        ErrorKind::TimedOut | ErrorKind::WouldBlock => "timed out",
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::UnexpectedEof => {
            "the connection was closed by the other side"
        }
        ErrorKind::HostUnreachable => "no route to the host",
        ErrorKind::NetworkUnreachable => "the network is unreachable",
        ErrorKind::AddrNotAvailable => "the address is not available",
        ErrorKind::PermissionDenied => "permission denied",
        _ => return err.to_string(),
    }
    .to_owned()
}

/// Where a pool connects, for messages: `HOST:PORT` of a PostgreSQL server, the file of a
/// SQLite database.
pub trait Target: sqlx::Database {
    /// What [`cannot_connect`] names.
    fn target(pool: &sqlx::Pool<Self>) -> String;
}

impl Target for sqlx::Postgres {
    fn target(pool: &sqlx::Pool<Self>) -> String {
        let options = pool.connect_options();
        format!("{}:{}", options.get_host(), options.get_port())
    }
}

impl Target for sqlx::Sqlite {
    fn target(pool: &sqlx::Pool<Self>) -> String {
        format!("the SQLite database {}", pool.connect_options().get_filename().display())
    }
}

/// A connection failure to `target` as the operator reads it: "cannot connect to HOST:PORT:
/// connection refused".
pub(crate) fn cannot_connect(target: &str, err: &sqlx::Error) -> String {
    let reason = unreachable_reason(err).unwrap_or_else(|| err.to_string());
    format!("cannot connect to {target}: {reason}")
}

/// One connection attempt with the pool's settings, closed at once: `Ok` when the database
/// answers, else why not, in words.
pub(crate) async fn probe<DB: Target>(pool: &sqlx::Pool<DB>) -> Result<(), String> {
    let options = pool.connect_options();
    match tokio::time::timeout(PROBE_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => {
            let _ = sqlx::Connection::close(conn).await;
            Ok(())
        }
        Ok(Err(err)) => Err(cannot_connect(&DB::target(pool), &err)),
        Err(_) => Err(format!("cannot connect to {}: timed out after {} s", DB::target(pool), PROBE_TIMEOUT.as_secs())),
    }
}

/// Whether every connection of `pool` is open and in use: an acquire that timed out then
/// waited behind other requests (a busy database), not for a server that went away.
fn saturated<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> bool {
    pool.size() >= pool.options().get_max_connections() && pool.num_idle() == 0
}

/// A request's wait for a connection of `pool` (or of none: a statement on a connection it
/// holds), which decides what a failure to get one means.
pub(crate) struct Waiting<'a, DB: sqlx::Database> {
    pool: Option<&'a sqlx::Pool<DB>>,
    since: tokio::time::Instant,
}

impl<'a, DB: Target> Waiting<'a, DB> {
    /// The wait begins.
    pub(crate) fn on(pool: Option<&'a sqlx::Pool<DB>>) -> Self {
        Waiting { pool, since: tokio::time::Instant::now() }
    }

    /// After `err`: the pool to try again on, when it is an acquire that timed out while the
    /// database is there (every connection busy, or a direct connection attempt succeeds)
    /// and [`BUSY_WAIT`] is not over; else the error to fail with: an unreachable database
    /// and why, in words, or any other error classified as usual.
    pub(crate) async fn retry(&self, err: sqlx::Error) -> Result<&'a sqlx::Pool<DB>, StoreError> {
        let (Some(pool), sqlx::Error::PoolTimedOut) = (self.pool, &err) else {
            return Err(crate::error::store_error(err));
        };
        let waited = self.since.elapsed();
        let patient = waited < BUSY_WAIT;
        if saturated(pool) {
            tracing::debug!(waited_ms = waited.as_millis(), "every database connection is busy: waiting");
            return if patient {
                Ok(pool)
            } else {
                Err(StoreError::Unavailable(format!(
                    "all {} database connections stayed busy for {} s: the database is overloaded, retry later",
                    pool.options().get_max_connections(),
                    waited.as_secs()
                )))
            };
        }
        match probe(pool).await {
            Err(reason) => Err(StoreError::Unavailable(reason)),
            // The server answers, only slowly: wait again.
            Ok(()) if patient => Ok(pool),
            Ok(()) => Err(StoreError::Unavailable(format!(
                "no database connection within {} s although the database answers: retry later",
                waited.as_secs()
            ))),
        }
    }
}

/// A transaction on `pool`, begun with `begin`, waiting out a busy pool ([`Waiting`]).
pub(crate) async fn begin<'p, DB, Begun>(
    pool: &'p sqlx::Pool<DB>,
    begin: impl Fn(&'p sqlx::Pool<DB>) -> Begun,
) -> Result<sqlx::Transaction<'static, DB>, StoreError>
where
    DB: Target,
    Begun: std::future::Future<Output = Result<sqlx::Transaction<'static, DB>, sqlx::Error>>,
{
    let waiting = Waiting::on(Some(pool));
    loop {
        match begin(pool).await {
            Ok(tx) => return Ok(tx),
            Err(err) => {
                waiting.retry(err).await?;
            }
        }
    }
}
