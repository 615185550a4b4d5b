//! Pools on the three test servers, unique table names, and the rule for
//! an unreachable server: the test FAILS when `CI` is set, and otherwise
//! skips with a loud `SKIPPED:` line.
//!
//! Servers come from `COALESCE_TEST_POSTGRES_URL` / `COALESCE_TEST_MYSQL_URL`
//! (defaults: the local test servers), and the PostgreSQL server through a
//! transaction pooler from `COALESCE_PGBOUNCER_URL` (`scripts/pgbouncer.sh
//! start` prints it; unset counts as unreachable); SQLite uses a fresh file per test
//! under Cargo's `CARGO_TARGET_TMPDIR`. Each backend's part is there with
//! its feature only, for the test binaries that need fewer than three.
//!
//! Also the row types more than one test binary writes.

#![allow(dead_code)] // each test binary uses its own subset

use coalesce_sql::{Dialect, KeyPart, Record};
use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other test, process or earlier run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{prefix}_{}_{:x}_{n}",
        std::process::id(),
        nanos % (1 << 40)
    )
}

/// `Some(pool)`, or `None` after a `SKIPPED:` line when the server is
/// unreachable outside CI; a panic in CI.
fn reachable<P>(name: &str, connected: Result<P, String>) -> Option<P> {
    match connected {
        Ok(pool) => Some(pool),
        Err(error) if std::env::var_os("CI").is_some() => {
            panic!("{name} test database unreachable in CI: {error}")
        }
        Err(error) => {
            eprintln!(
                "SKIPPED: {name} tests: database unreachable ({error}); set CI=1 to fail instead"
            );
            None
        }
    }
}

/// The URL of the PostgreSQL test server.
#[cfg(feature = "postgres")]
pub fn postgres_url() -> String {
    std::env::var("COALESCE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The URL of the MariaDB/MySQL test server.
#[cfg(feature = "mysql")]
pub fn mysql_url() -> String {
    std::env::var("COALESCE_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned())
}

/// The `host:port` of a URL like `scheme://user@host:port/db`.
pub fn host_port(url: &str) -> &str {
    url.rsplit('@')
        .next()
        .and_then(|rest| rest.split('/').next())
        .unwrap_or(url)
}

/// The PostgreSQL test server.
#[cfg(feature = "postgres")]
pub async fn postgres() -> Option<sqlx::PgPool> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&postgres_url())
        .await;
    reachable("PostgreSQL", pool.map_err(|e| e.to_string()))
}

/// The URL of the PgBouncer in transaction mode in front of the PostgreSQL
/// test server (with `?pooler=transaction`): `None` after a `SKIPPED:` line
/// when `COALESCE_PGBOUNCER_URL` is unset outside CI; a panic in CI.
#[cfg(feature = "postgres")]
pub fn pgbouncer_url() -> Option<String> {
    let url = std::env::var("COALESCE_PGBOUNCER_URL").map_err(|_| {
        "COALESCE_PGBOUNCER_URL is not set (run scripts/pgbouncer.sh start)".to_owned()
    });
    reachable("PgBouncer", url)
}

/// The session settings of [`pgbouncer_url`]: its pooler, and a statement
/// timeout of 30 s (set per transaction).
#[cfg(feature = "postgres")]
pub fn pgbouncer_settings(url: &str) -> (coalesce_sql::SessionSettings, String) {
    let (pooler, url) = coalesce_sql::Pooler::from_url(url).expect("the pooler URL parses");
    let settings = coalesce_sql::SessionSettings {
        pooler,
        statement_timeout: Some(Duration::from_secs(30)),
    };
    (settings, url)
}

/// The PostgreSQL test server through PgBouncer in transaction mode, its
/// connections opened as the URL's pooler says.
#[cfg(feature = "postgres")]
pub async fn pgbouncer() -> Option<sqlx::PgPool> {
    let (settings, url) = pgbouncer_settings(&pgbouncer_url()?);
    let options = settings
        .connect_options::<sqlx::Postgres>(&url)
        .expect("the pooler URL parses");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await;
    reachable("PgBouncer", pool.map_err(|e| e.to_string()))
}

/// A toolkit handle on a [`pgbouncer`] pool, running statements as the
/// pooler needs.
#[cfg(feature = "postgres")]
pub fn pgbouncer_batch(pool: sqlx::PgPool) -> coalesce_sql::Db<sqlx::Postgres> {
    let url = pgbouncer_url().expect("a pgbouncer pool was opened");
    coalesce_sql::Db::new(pool).with_session_settings(pgbouncer_settings(&url).0)
}

/// The MariaDB/MySQL test server.
#[cfg(feature = "mysql")]
pub async fn mysql() -> Option<sqlx::MySqlPool> {
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&mysql_url())
        .await;
    reachable("MariaDB", pool.map_err(|e| e.to_string()))
}

/// A fresh SQLite file (removed with the test's scratch directory),
/// written without waiting for the disk: a scratch file need not survive
/// a crash, and a sync per autocommitted statement made tests that write
/// row by row take seconds.
#[cfg(feature = "sqlite")]
pub async fn sqlite() -> Option<sqlx::SqlitePool> {
    let file =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{}.db", unique("sql")));
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&file)
        .create_if_missing(true)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Off);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await;
    reachable("SQLite", pool.map_err(|e| e.to_string()))
}

/// A row whose table refuses a negative quantity.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Stock {
    pub id: i64,
    pub qty: i64,
}

impl<DB: Dialect> Record<DB> for Stock
where
    i64: KeyPart<DB>,
{
    type Key = i64;
    type Values<'a> = (&'a i64,);
    fn key(&self) -> i64 {
        self.id
    }
    fn values(&self) -> Self::Values<'_> {
        (&self.qty,)
    }
}
