//! The cost of read-your-writes on the real replica pairs
//! (`scripts/replicas.sh start`): the latency of a one-key read that needs
//! no position, against one that needs a position the replica has already
//! replayed (one extra check statement) and one made right after its write
//! (the check also waits out the replication delay).
//!
//! `cargo bench -p coalesce-sql --features postgres,mysql --bench replicas`

use coalesce_sql::replicas::{ReplicaSettings, Replicated};
use pair::Pair;
use std::time::{Duration, Instant};

#[path = "../tests/replicas/pair.rs"]
mod pair;

const ITERATIONS: usize = 300;

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

/// The four kinds of read on the pair of `DB`, reported as table rows.
async fn scenarios<DB: Pair>() -> Result<(), Box<dyn std::error::Error>> {
    let backend = DB::LABEL;
    let (primary, replica) = DB::urls();
    let settings = ReplicaSettings {
        pool_size: 2,
        ..ReplicaSettings::default()
    };
    let db = Replicated::<DB>::connect(&primary, &[&replica], settings).await?;
    DB::run_sql(db.primary().pool(), DB::CREATE_TABLE.into()).await?;
    tokio::time::sleep(Duration::from_millis(200)).await; // the table reaches the replica
    let run = std::process::id();
    let fetch = |key: String| {
        let db = &db;
        async move {
            let start = Instant::now();
            DB::load(db, &[key], None).await;
            start.elapsed().as_micros()
        }
    };
    // Warm the pools.
    for i in 0..50 {
        fetch(format!("warm-{run}-{i}")).await;
    }
    let mut unchecked = Sample(Vec::new());
    let (mut replayed, mut known, mut fresh) =
        (Sample(Vec::new()), Sample(Vec::new()), Sample(Vec::new()));
    for i in 0..ITERATIONS {
        let key = format!("written-{run}-{i}");
        DB::save(&db, &key, 1).await;
        // Time for the replica to replay the write; then one untimed
        // read, and the read needing no position moved through the
        // three places in turn, so that no kind always goes first.
        tokio::time::sleep(Duration::from_millis(20)).await;
        fetch(format!("warm-{run}-{i}")).await;
        let unwritten = format!("unwritten-{run}-{i}");
        if i % 3 == 0 {
            unchecked.0.push(fetch(unwritten.clone()).await);
        }
        replayed.0.push(fetch(key.clone()).await);
        if i % 3 == 1 {
            unchecked.0.push(fetch(unwritten.clone()).await);
        }
        known.0.push(fetch(key).await);
        if i % 3 == 2 {
            unchecked.0.push(fetch(unwritten).await);
        }
    }
    for i in 0..ITERATIONS {
        let key = format!("fresh-{run}-{i}");
        DB::save(&db, &key, 1).await;
        fresh.0.push(fetch(key).await);
    }
    unchecked.report(backend, "no position needed");
    known.report(backend, "position known to be replayed (no check)");
    replayed.report(backend, "position replayed 20 ms ago (one check)");
    fresh.report(backend, "right after the write (check + wait)");
    println!("<!-- {backend} stats: {:?} -->", db.stats());
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("| backend | read | mean µs | p50 µs | p99 µs |");
    println!("|---|---|---|---|---|");
    scenarios::<sqlx::Postgres>().await?;
    scenarios::<sqlx::MySql>().await?;
    Ok(())
}
