//! The cost of read-your-writes on the real replica pairs
//! (`scripts/replicas.sh start`): the latency of a one-key read that needs
//! no position, against one that needs a position the replica has already
//! replayed (one extra check statement) and one made right after its write
//! (the check also waits out the replication delay).
//!
//! `cargo bench -p coalesce-sql --features postgres,mysql --bench replicas`

use coalesce_sql::{
    Dialect, KeyPart, Record, Table, Value,
    replicas::{ReplicaSettings, Replicated},
};
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

const ITERATIONS: usize = 300;

#[derive(sqlx::FromRow)]
struct Kv {
    k: String,
    v: i64,
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

/// Latencies of one scenario, in microseconds.
struct Sample(Vec<u128>);

impl Sample {
    fn report(mut self, backend: &str, scenario: &str) {
        self.0.sort_unstable();
        let at = |q: f64| self.0[((self.0.len() - 1) as f64 * q) as usize];
        let mean = self.0.iter().sum::<u128>() / self.0.len() as u128;
        println!(
            "| {backend} | {scenario} | {mean} | {} | {} |",
            at(0.5),
            at(0.99)
        );
    }
}

macro_rules! scenarios {
    ($db:ty, $backend:expr, $primary:expr, $replica:expr, $ddl:expr) => {{
        let settings = ReplicaSettings {
            pool_size: 2,
            ..ReplicaSettings::default()
        };
        let db = Replicated::<$db>::connect($primary, &[$replica], settings).await?;
        sqlx::raw_sql($ddl).execute(db.primary().pool()).await?;
        tokio::time::sleep(Duration::from_millis(200)).await; // the table reaches the replica
        let table = Table::new("coalesce_replica_bench")
            .key(["k"])
            .columns(["v"]);
        let run = std::process::id();
        let fetch = |key: String| {
            let (db, table) = (&db, &table);
            async move {
                let start = Instant::now();
                let _: HashMap<String, Kv> = db.fetch(table, &[key], None).await?;
                Ok::<u128, Box<dyn std::error::Error>>(start.elapsed().as_micros())
            }
        };
        // Warm the pools.
        for i in 0..50 {
            fetch(format!("warm-{run}-{i}")).await?;
        }
        let mut unchecked = Sample(Vec::new());
        let (mut replayed, mut known, mut fresh) =
            (Sample(Vec::new()), Sample(Vec::new()), Sample(Vec::new()));
        for i in 0..ITERATIONS {
            let key = format!("written-{run}-{i}");
            db.upsert(
                &table,
                &[Kv {
                    k: key.clone(),
                    v: 1,
                }],
            )
            .await?;
            // Time for the replica to replay the write; then one untimed
            // read, and the read needing no position moved through the
            // three places in turn, so that no kind always goes first.
            tokio::time::sleep(Duration::from_millis(20)).await;
            fetch(format!("warm-{run}-{i}")).await?;
            let unwritten = format!("unwritten-{run}-{i}");
            if i % 3 == 0 {
                unchecked.0.push(fetch(unwritten.clone()).await?);
            }
            replayed.0.push(fetch(key.clone()).await?);
            if i % 3 == 1 {
                unchecked.0.push(fetch(unwritten.clone()).await?);
            }
            known.0.push(fetch(key).await?);
            if i % 3 == 2 {
                unchecked.0.push(fetch(unwritten).await?);
            }
        }
        for i in 0..ITERATIONS {
            let key = format!("fresh-{run}-{i}");
            db.upsert(
                &table,
                &[Kv {
                    k: key.clone(),
                    v: 1,
                }],
            )
            .await?;
            fresh.0.push(fetch(key).await?);
        }
        unchecked.report($backend, "no position needed");
        known.report($backend, "position known to be replayed (no check)");
        replayed.report($backend, "position replayed 20 ms ago (one check)");
        fresh.report($backend, "right after the write (check + wait)");
        println!("<!-- {} stats: {:?} -->", $backend, db.stats());
    }};
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    println!("| backend | read | mean µs | p50 µs | p99 µs |");
    println!("|---|---|---|---|---|");
    scenarios!(
        sqlx::Postgres,
        "PostgreSQL",
        &url(
            "COALESCE_PG_PRIMARY_URL",
            "postgres://postgres@127.0.0.1:55432/test"
        ),
        &url(
            "COALESCE_PG_REPLICA_URL",
            "postgres://postgres@127.0.0.1:55433/test"
        ),
        "CREATE TABLE IF NOT EXISTS coalesce_replica_bench (k TEXT PRIMARY KEY, v BIGINT NOT NULL)"
    );
    scenarios!(
        sqlx::MySql,
        "MariaDB",
        &url(
            "COALESCE_MYSQL_PRIMARY_URL",
            "mysql://root@127.0.0.1:33306/test"
        ),
        &url(
            "COALESCE_MYSQL_REPLICA_URL",
            "mysql://root@127.0.0.1:33307/test"
        ),
        "CREATE TABLE IF NOT EXISTS coalesce_replica_bench (k VARCHAR(100) PRIMARY KEY, v BIGINT NOT NULL)"
    );
    Ok(())
}
