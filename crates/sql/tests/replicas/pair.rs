//! The replica pairs of `scripts/replicas.sh start` (PostgreSQL streaming
//! replication, MariaDB GTID replication) as the replicas tests and
//! `benches/replicas.rs` use them: their URLs, a key-value table, and
//! replay stopped and restarted.
//!
//! Servers come from `COALESCE_{PG,MYSQL}_{PRIMARY,REPLICA}_URL` (defaults:
//! the script's ports).

#![allow(dead_code)] // the bench uses a subset

use coalesce_sql::{
    Dialect, KeyPart, Record, Table, Value,
    replicas::{Position, Replicated, Replication},
};
use futures_core::future::BoxFuture;
use sqlx::{MySql, Postgres};
use std::collections::HashMap;
use tokio::sync::Mutex;

pub const TABLE: &str = "coalesce_replica_kv";

/// One row of the test table.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Kv {
    pub k: String,
    pub v: i64,
}

impl<DB: Dialect> Record<DB> for Kv
where
    String: KeyPart<DB>,
    i64: Value<DB>,
{
    type Key = String;
    type Values<'a> = (&'a i64,);
    fn key(&self) -> String {
        self.k.clone()
    }
    fn values(&self) -> Self::Values<'_> {
        (&self.v,)
    }
}

pub fn table() -> Table {
    Table::new(TABLE).key(["k"]).values(["v"])
}

/// What a test needs of a backend beyond the crate itself: its servers,
/// a key-value table and a way to stop and restart replay.
pub trait Pair: Replication {
    const LABEL: &str;
    const PRIMARY_ENV: &str;
    const REPLICA_ENV: &str;
    const DEFAULT_PRIMARY: &str;
    const DEFAULT_REPLICA: &str;
    const CREATE_TABLE: &str;
    const PAUSE_REPLAY: &str;
    const RESUME_REPLAY: &str;
    /// One test of this backend at a time.
    fn turn() -> &'static Mutex<()>;
    /// End, on the server, every client connection but `admin`'s own (as
    /// a server restart or a network timeout would), and return once the
    /// server has closed them all.
    fn kill_other_clients(admin: &sqlx::Pool<Self>) -> BoxFuture<'_, Result<(), sqlx::Error>>;
    /// Run a statement without results on a pool.
    fn run_sql<'p>(
        pool: &'p sqlx::Pool<Self>,
        sql: String,
    ) -> BoxFuture<'p, Result<(), sqlx::Error>>;
    /// Save one row through the handle; the commit's position.
    fn save(
        db: &Replicated<Self>,
        key: &str,
        value: i64,
    ) -> impl Future<Output = Option<Position>> + Send;
    /// Read rows through the handle: key → value.
    fn load(
        db: &Replicated<Self>,
        keys: &[String],
        token: Option<&Position>,
    ) -> impl Future<Output = HashMap<String, i64>> + Send;

    /// The URLs of the primary and the replica.
    fn urls() -> (String, String) {
        let url =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        (
            url(Self::PRIMARY_ENV, Self::DEFAULT_PRIMARY),
            url(Self::REPLICA_ENV, Self::DEFAULT_REPLICA),
        )
    }
}

/// `run_sql`, `save` and `load`, the same code for each backend's concrete
/// types.
macro_rules! driver_methods {
    () => {
        fn run_sql<'p>(
            pool: &'p sqlx::Pool<Self>,
            sql: String,
        ) -> BoxFuture<'p, Result<(), sqlx::Error>> {
            Box::pin(async move {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(pool)
                    .await
                    .map(drop)
            })
        }

        async fn save(db: &Replicated<Self>, key: &str, value: i64) -> Option<Position> {
            let row = Kv {
                k: key.to_owned(),
                v: value,
            };
            db.upsert(&table(), &[row]).await.unwrap().position
        }

        async fn load(
            db: &Replicated<Self>,
            keys: &[String],
            token: Option<&Position>,
        ) -> HashMap<String, i64> {
            let rows: HashMap<String, Kv> = db.fetch(&table(), keys, token).await.unwrap();
            rows.into_iter().map(|(key, row)| (key, row.v)).collect()
        }
    };
}

static POSTGRES_TURN: Mutex<()> = Mutex::const_new(());
static MARIADB_TURN: Mutex<()> = Mutex::const_new(());

impl Pair for Postgres {
    const LABEL: &str = "PostgreSQL";
    const PRIMARY_ENV: &str = "COALESCE_PG_PRIMARY_URL";
    const REPLICA_ENV: &str = "COALESCE_PG_REPLICA_URL";
    const DEFAULT_PRIMARY: &str = "postgres://postgres@127.0.0.1:55432/test";
    const DEFAULT_REPLICA: &str = "postgres://postgres@127.0.0.1:55433/test";
    const CREATE_TABLE: &str =
        "CREATE TABLE IF NOT EXISTS coalesce_replica_kv (k TEXT PRIMARY KEY, v BIGINT NOT NULL)";
    // `pg_wal_replay_pause` only asks: wait, on the server, until replay
    // has stopped, or a write made next may still be replayed.
    const PAUSE_REPLAY: &str = "DO $$ BEGIN PERFORM pg_wal_replay_pause(); \
        WHILE pg_get_wal_replay_pause_state() <> 'paused' LOOP PERFORM pg_sleep(0.001); END LOOP; END $$";
    const RESUME_REPLAY: &str = "SELECT pg_wal_replay_resume()";

    fn turn() -> &'static Mutex<()> {
        &POSTGRES_TURN
    }

    fn kill_other_clients(admin: &sqlx::Pool<Self>) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            // With a timeout, `pg_terminate_backend` returns once the
            // backend has exited (false if it had not within the timeout).
            let ended: Vec<bool> = sqlx::query_scalar(
                "SELECT pg_terminate_backend(pid, 60000) FROM pg_stat_activity \
                 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
            )
            .fetch_all(admin)
            .await?;
            assert!(ended.iter().all(|&ended| ended), "a backend outlived 60 s");
            Ok(())
        })
    }

    driver_methods!();
}

impl Pair for MySql {
    const LABEL: &str = "MariaDB";
    const PRIMARY_ENV: &str = "COALESCE_MYSQL_PRIMARY_URL";
    const REPLICA_ENV: &str = "COALESCE_MYSQL_REPLICA_URL";
    const DEFAULT_PRIMARY: &str = "mysql://root@127.0.0.1:33306/test";
    const DEFAULT_REPLICA: &str = "mysql://root@127.0.0.1:33307/test";
    const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS coalesce_replica_kv \
        (k VARCHAR(100) PRIMARY KEY, v BIGINT NOT NULL)";
    const PAUSE_REPLAY: &str = "STOP SLAVE SQL_THREAD";
    const RESUME_REPLAY: &str = "START SLAVE SQL_THREAD";

    fn turn() -> &'static Mutex<()> {
        &MARIADB_TURN
    }

    fn kill_other_clients(admin: &sqlx::Pool<Self>) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            let mut conn = admin.acquire().await?;
            let ids: Vec<i64> = sqlx::query_scalar(
                "SELECT ID FROM information_schema.PROCESSLIST \
                 WHERE ID <> CONNECTION_ID() AND USER <> 'system user' \
                 AND COMMAND NOT IN ('Binlog Dump', 'Daemon', 'Slave_IO', 'Slave_SQL')",
            )
            .fetch_all(&mut *conn)
            .await?;
            for id in &ids {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("KILL {id}")))
                    .execute(&mut *conn)
                    .await?;
            }
            // KILL marks a connection; its thread closes it a moment later.
            if ids.is_empty() {
                return Ok(());
            }
            let listed: Vec<String> = ids.iter().map(i64::to_string).collect();
            let alive = format!(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN ({})",
                listed.join(", ")
            );
            for _ in 0..6000 {
                let left: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(alive.clone()))
                    .fetch_one(&mut *conn)
                    .await?;
                if left == 0 {
                    return Ok(());
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            panic!("killed connections still open after 60 s");
        })
    }

    driver_methods!();
}
