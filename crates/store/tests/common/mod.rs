//! Helpers shared by the integration tests: a store on each backend, unique
//! user ids, and the macro that runs one test body on all three backends.
//!
//! Servers come from `COALESCE_TEST_POSTGRES_URL` / `COALESCE_TEST_MYSQL_URL`
//! (defaults: the local test servers), and PostgreSQL through PgBouncer in
//! transaction mode from `COALESCE_PGBOUNCER_URL` (`scripts/pgbouncer.sh
//! start` prints it, with `?pooler=transaction`); SQLite uses a fresh file
//! per test under Cargo's `CARGO_TARGET_TMPDIR`. An unreachable server, or
//! an unset pooler URL, fails the test when `CI` is set, and otherwise skips
//! it with a loud `SKIPPED:` line.

#![allow(dead_code)] // each test binary uses its own subset

use coalesce_store::MemoryStore;
use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

/// The database a test body runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Postgres,
    MySql,
    Sqlite,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other test, process or earlier run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{nanos:x}-{n}", std::process::id())
}

/// The URL a target is reached at.
pub fn url(target: Target) -> String {
    match target {
        Target::Postgres => std::env::var("COALESCE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
        Target::MySql => std::env::var("COALESCE_TEST_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned()),
        Target::Sqlite => {
            // Cargo's scratch directory for integration tests, under target/.
            let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
            let file = dir.join(format!("{}.db", unique("store")));
            format!("sqlite://{}", file.display())
        }
    }
}

/// The `host:port` part of a URL like `scheme://user@host:port/db`.
pub fn host_port(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let after_user = after_scheme
        .rsplit_once('@')
        .map_or(after_scheme, |(_, rest)| rest);
    after_user.split('/').next().unwrap_or(after_user)
}

/// Whether a server's port accepts connections (so an absent server skips
/// in a moment rather than after the pool's 30 s acquire timeout).
async fn reachable(target: Target, url: &str) -> Result<(), String> {
    if target == Target::Sqlite {
        return Ok(());
    }
    let probe = tokio::net::TcpStream::connect(host_port(url));
    match tokio::time::timeout(std::time::Duration::from_secs(3), probe).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(format!("{}: {error}", host_port(url))),
        Err(_) => Err(format!("{}: no answer within 3 s", host_port(url))),
    }
}

/// A migrated store with a pool of 4 on `target`, or `None` (after a loud
/// `SKIPPED:` line) when its server is unreachable outside CI.
pub async fn store(target: Target) -> Option<MemoryStore> {
    store_at(target, &url(target)).await
}

/// Like [`store`], at a given URL.
pub async fn store_at(target: Target, url: &str) -> Option<MemoryStore> {
    store_with_pool(target, url, 4).await
}

/// Like [`store_at`], with a pool of `pool_size` connections (a pool of one
/// lets a test inspect the session the store's statements ran in).
pub async fn store_with_pool(target: Target, url: &str, pool_size: u32) -> Option<MemoryStore> {
    let connected = match reachable(target, url).await {
        Ok(()) => MemoryStore::connect(url, pool_size)
            .await
            .map_err(|e| e.to_string()),
        Err(error) => Err(error),
    };
    match connected {
        Ok(store) => Some(store),
        Err(error) if std::env::var_os("CI").is_some() => {
            panic!("{target:?} test database unreachable in CI: {error}")
        }
        Err(error) => {
            eprintln!(
                "SKIPPED: {target:?} tests: database unreachable ({error}); set CI=1 to fail instead"
            );
            None
        }
    }
}

/// The URL of the PgBouncer in transaction mode in front of the PostgreSQL
/// test server, or `None` (after a loud `SKIPPED:` line) when
/// `COALESCE_PGBOUNCER_URL` is unset outside CI; a panic in CI.
pub fn pgbouncer_url() -> Option<String> {
    match std::env::var("COALESCE_PGBOUNCER_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("COALESCE_PGBOUNCER_URL is not set in CI (run scripts/pgbouncer.sh start)")
        }
        Err(_) => {
            eprintln!(
                "SKIPPED: PgBouncer tests: COALESCE_PGBOUNCER_URL is not set (run scripts/pgbouncer.sh start); set CI=1 to fail instead"
            );
            None
        }
    }
}

/// Delete a SQLite test database and its WAL files.
pub fn remove_sqlite(url: &str) {
    if let Some(path) = url.strip_prefix("sqlite://") {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }
}

/// Run each named `async fn(MemoryStore, Target)` on PostgreSQL, MariaDB
/// and SQLite, and on PostgreSQL through PgBouncer (the body sees
/// `Target::Postgres`: the dialect is the same): `mod <name> { postgres,
/// pgbouncer, mysql, sqlite }`.
#[macro_export]
macro_rules! on_all_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::common::{store, Target};

            #[tokio::test]
            async fn postgres() {
                if let Some(s) = store(Target::Postgres).await {
                    super::$name(s, Target::Postgres).await;
                }
            }

            #[tokio::test]
            async fn pgbouncer() {
                let Some(url) = super::common::pgbouncer_url() else { return };
                if let Some(s) = super::common::store_at(Target::Postgres, &url).await {
                    super::$name(s, Target::Postgres).await;
                }
            }

            #[tokio::test]
            async fn mysql() {
                if let Some(s) = store(Target::MySql).await {
                    super::$name(s, Target::MySql).await;
                }
            }

            #[tokio::test]
            async fn sqlite() {
                let url = super::common::url(Target::Sqlite);
                if let Some(s) = super::common::store_at(Target::Sqlite, &url).await {
                    super::$name(s, Target::Sqlite).await;
                }
                super::common::remove_sqlite(&url);
            }
        }
    )*};
}
