//! The engine against PostgreSQL: the naive one-query-per-load path,
//! `coalesce` (its defaults, `max_concurrent_batches` = pool size), the
//! peers (with `--features peers`) and the **batched ceiling**, side by
//! side in one process, on the same keys and the same pool.
//!
//! ```text
//! cargo bench -p coalesce --features peers --bench postgres
//! cargo bench -p coalesce --features peers --bench postgres -- --reps 5 --tasks 1,100 --paths naive,coalesce
//! cargo bench -p coalesce --bench postgres -- --tasks 1 --paths naive,coalesce --runtime current
//! cargo bench -p coalesce --bench postgres -- --tasks 1,16 --paths naive,coalesce --fan-out 20
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test  # the default
//! ```
//!
//! Each task loads its share of the run's keys one after the other (keys
//! drawn by a seeded xorshift from the table's 100,000 ids). The ceiling
//! fetches the very same keys without any coalescing: pre-chunked into
//! batches of 100 and fetched back to back by as many workers as the pool
//! has connections. Repetitions are interleaved (every path at every
//! concurrency, then again), and the table shows medians: loads/s, the
//! median latency of one load (every 8th load of each task is timed; a
//! ceiling load's latency is its batch's), statements per 1,000 loads, the bench
//! process's CPU time per load (user + system, all threads; the server's
//! CPU is not in it) and its threads' context switches per load. Options: `--reps N` (3), `--tasks LIST` (1,100,1000),
//! `--paths LIST` (all), `--pool N` (10), `--runtime multi|current` (Tokio's
//! multi-thread runtime with 2 workers, or the current-thread one),
//! `--fan-out N` (1; from 2, each task loads in requests of one key alone
//! and then `N` keys with `join_all`, one poll of one task, as a handler
//! loads a detail and then a list; p50 is then one request's latency),
//! `--ping idle|always|never`: when
//! the pool pings a connection it hands out, on every path: `idle` (the
//! default, as `coalesce-store` does) only one idle for a second or more,
//! `always` on every checkout (sqlx's `test_before_acquire`, a round trip
//! before each statement), `never`.
//! The table it creates, `coalesce_bench_engine`, is dropped at the end.

use coalesce::{BatchSettings, BatchSource, Loader};
use sqlx::{PgPool, postgres::PgPoolOptions};
use std::{
    collections::HashMap,
    fmt::Write as _,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

/// Rows in the bench table (`prepare` creates ids 1 to 100,000).
const ROWS: u64 = 100_000;
/// Keys per batch of the ceiling path, and the engine's default cap.
const CEILING_BATCH: usize = 100;

/// The statement every batched path sends.
const BY_IDS: &str = "SELECT id, name FROM coalesce_bench_engine WHERE id = ANY($1)";
/// The statement of the naive path.
const BY_ID: &str = "SELECT id, name FROM coalesce_bench_engine WHERE id = $1";

/// A small xorshift64 generator: the same keys for every path.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1)
    }

    fn next_key(&mut self) -> i64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x % ROWS) as i64 + 1
    }
}

/// The keys task `task` of a run loads, in order.
fn task_keys(task: usize, per_task: usize) -> Vec<i64> {
    let mut keys = XorShift::new(task as u64 + 1);
    (0..per_task).map(|_| keys.next_key()).collect()
}

/// The value row `id` holds.
fn name_of(id: i64) -> String {
    format!("item {id}")
}

/// Statements a path sent.
#[derive(Default)]
struct Statements(AtomicU64);

/// The batched read every batched path shares, counting its statements.
#[derive(Clone)]
struct Table {
    pool: PgPool,
    statements: Arc<Statements>,
}

impl Table {
    async fn by_ids(&self, ids: &[i64]) -> Result<HashMap<i64, String>, sqlx::Error> {
        self.statements.0.fetch_add(1, Relaxed);
        let rows: Vec<(i64, String)> = sqlx::query_as(BY_IDS)
            .bind(ids)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().collect())
    }

    async fn by_id(&self, id: i64) -> Result<Option<String>, sqlx::Error> {
        self.statements.0.fetch_add(1, Relaxed);
        let row: Option<(i64, String)> = sqlx::query_as(BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(_, name)| name))
    }
}

impl BatchSource for Table {
    type Key = i64;
    type Value = String;
    type Error = sqlx::Error;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, String>, sqlx::Error> {
        // One key by plain equality, as the naive path and the SQL toolkit
        // send it: a lone load then costs what the naive query costs.
        if let [key] = keys {
            let found = self.by_id(*key).await?;
            return Ok(found.map(|name| (*key, name)).into_iter().collect());
        }
        self.by_ids(keys).await
    }
}

/// One way of loading a key.
trait Path: Clone + Send + Sync + 'static {
    fn load(&self, key: i64) -> impl Future<Output = Option<String>> + Send;
}

#[derive(Clone)]
struct Naive(Table);

impl Path for Naive {
    async fn load(&self, key: i64) -> Option<String> {
        self.0.by_id(key).await.expect("naive query")
    }
}

#[derive(Clone)]
struct Coalesce(Loader<Table>);

impl Path for Coalesce {
    async fn load(&self, key: i64) -> Option<String> {
        self.0.load(key).await.expect("coalesced query")
    }
}

#[cfg(feature = "peers")]
mod peers {
    use super::{Path, Table};
    use std::{collections::HashMap, sync::Arc};

    impl dataloader::BatchFn<i64, Option<String>> for Table {
        async fn load(&mut self, keys: &[i64]) -> HashMap<i64, Option<String>> {
            let found = self.by_ids(keys).await.expect("dataloader batch");
            keys.iter().map(|k| (*k, found.get(k).cloned())).collect()
        }
    }

    /// The `dataloader` crate 0.18, non-cached, its defaults.
    #[derive(Clone)]
    pub struct DataloaderPlain(pub dataloader::non_cached::Loader<i64, Option<String>, Table>);

    impl Path for DataloaderPlain {
        async fn load(&self, key: i64) -> Option<String> {
            self.0.try_load(key).await.expect("dataloader load")
        }
    }

    /// The `dataloader` crate 0.18, cached (a run's repeated keys are hits).
    #[derive(Clone)]
    pub struct DataloaderCached(pub dataloader::cached::Loader<i64, Option<String>, Table>);

    impl Path for DataloaderCached {
        async fn load(&self, key: i64) -> Option<String> {
            self.0.try_load(key).await.expect("dataloader load")
        }
    }

    pub struct AgTable(pub Table);

    impl async_graphql::dataloader::Loader<i64> for AgTable {
        type Value = String;
        type Error = Arc<sqlx::Error>;

        async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, String>, Self::Error> {
            self.0.by_ids(keys).await.map_err(Arc::new)
        }
    }

    /// async-graphql 7's `DataLoader`, its default 1 ms delay, no cache.
    #[derive(Clone)]
    pub struct AsyncGraphql(pub Arc<async_graphql::dataloader::DataLoader<AgTable>>);

    impl Path for AsyncGraphql {
        async fn load(&self, key: i64) -> Option<String> {
            self.0.load_one(key).await.expect("async-graphql load")
        }
    }

    pub fn async_graphql(table: Table) -> AsyncGraphql {
        AsyncGraphql(Arc::new(async_graphql::dataloader::DataLoader::new(
            AgTable(table),
            tokio::spawn,
        )))
    }
}

/// What one run of one path at one concurrency measured.
#[derive(Clone, Copy)]
struct Run {
    loads_per_sec: f64,
    p50: Duration,
    statements_per_1k: f64,
    cpu_per_load: Duration,
    switches_per_load: f64,
}

/// This process's resource use so far (all its threads, exited ones
/// included), from `getrusage`: CPU time to the microsecond (`/proc`'s
/// clock ticks of 10 ms are too coarse for a run of 0.1 s).
struct Usage {
    /// User + system CPU time.
    cpu: Duration,
    /// Context switches, voluntary and not: each is a thread going to
    /// sleep or being preempted, the cost of waking the runtime's other
    /// worker.
    switches: u64,
}

impl Usage {
    fn now() -> Self {
        // SAFETY: `getrusage` only writes the struct it is given.
        let usage = unsafe {
            let mut usage = std::mem::zeroed::<libc::rusage>();
            libc::getrusage(libc::RUSAGE_SELF, &mut usage);
            usage
        };
        let time = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        Self {
            cpu: time(usage.ru_utime) + time(usage.ru_stime),
            switches: (usage.ru_nvcsw + usage.ru_nivcsw) as u64,
        }
    }
}

/// One load in this many is timed: two clock reads per load were ~5 % of
/// the bench's CPU at 1,000 tasks, a cost the ceiling (timed per batch)
/// did not pay.
const TIMED_EVERY: usize = 8;

/// Run `tasks` tasks, each loading its keys through `path`, one by one or,
/// with a `fan_out` of 2 or more, in requests of one key alone and then
/// `fan_out` keys with `join_all` (a detail, then a list: one poll of one
/// task); the latencies of every `TIMED_EVERY`th load (or request) of
/// each task.
async fn run_loads<P: Path>(
    path: &P,
    tasks: usize,
    per_task: usize,
    fan_out: usize,
) -> (Duration, Vec<Duration>) {
    let keys: Vec<Vec<i64>> = (0..tasks).map(|t| task_keys(t, per_task)).collect();
    let start = Instant::now();
    let handles: Vec<_> = keys
        .into_iter()
        .map(|keys| {
            let path = path.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(keys.len() / TIMED_EVERY + 1);
                let request = if fan_out == 1 { 1 } else { 1 + fan_out };
                for (i, group) in keys.chunks(request).enumerate() {
                    let timed = (i % TIMED_EVERY == 0).then(Instant::now);
                    let (first, list) = group.split_first().expect("chunks are never empty");
                    let mut values = vec![path.load(*first).await];
                    if !list.is_empty() {
                        let loads = list.iter().map(|key| path.load(*key));
                        values.extend(futures::future::join_all(loads).await);
                    }
                    if let Some(began) = timed {
                        latencies.push(began.elapsed());
                    }
                    for (key, value) in group.iter().zip(values) {
                        assert_eq!(value, Some(name_of(*key)));
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(tasks * per_task);
    for handle in handles {
        latencies.extend(handle.await.expect("load task panicked"));
    }
    (start.elapsed(), latencies)
}

/// The ceiling: the same keys, chunked into batches of 100 and fetched back
/// to back by `workers` workers; a load's latency is its batch's.
async fn run_ceiling(
    table: &Table,
    workers: usize,
    tasks: usize,
    per_task: usize,
) -> (Duration, Vec<Duration>) {
    let keys: Vec<i64> = (0..tasks).flat_map(|t| task_keys(t, per_task)).collect();
    let chunks: Arc<Vec<Vec<i64>>> =
        Arc::new(keys.chunks(CEILING_BATCH).map(<[i64]>::to_vec).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..workers.min(chunks.len()))
        .map(|_| {
            let (table, chunks, next) = (table.clone(), Arc::clone(&chunks), Arc::clone(&next));
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while let Some(chunk) = chunks.get(next.fetch_add(1, Relaxed)) {
                    let began = Instant::now();
                    let found = table.by_ids(chunk).await.expect("ceiling batch");
                    let took = began.elapsed();
                    for key in chunk {
                        assert_eq!(found.get(key), Some(&name_of(*key)));
                        latencies.push(took);
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(keys.len());
    for handle in handles {
        latencies.extend(handle.await.expect("ceiling worker panicked"));
    }
    (start.elapsed(), latencies)
}

/// Loads per task, so that every run lasts long enough to measure.
fn loads_per_task(path: &str, tasks: usize) -> usize {
    let total = match (path, tasks) {
        ("async-graphql 1ms", 1) => 1_000,
        (_, 1) => 4_000,
        (_, t) if t <= 100 => 30_000,
        _ => 100_000,
    };
    (total / tasks).max(1)
}

struct Bench {
    pool: PgPool,
    pool_size: usize,
    fan_out: usize,
    results: Vec<((&'static str, usize), Vec<Run>)>,
}

impl Bench {
    fn table(&self) -> (Table, Arc<Statements>) {
        let statements = Arc::new(Statements::default());
        let table = Table {
            pool: self.pool.clone(),
            statements: Arc::clone(&statements),
        };
        (table, statements)
    }

    /// Measure one path once at one concurrency.
    async fn run(&mut self, name: &'static str, tasks: usize) {
        let per_task = loads_per_task(name, tasks);
        let fan_out = self.fan_out;
        let (table, statements) = self.table();
        let before = Usage::now();
        let (elapsed, mut latencies) = match name {
            "naive" => run_loads(&Naive(table), tasks, per_task, fan_out).await,
            "coalesce" => {
                let settings = BatchSettings {
                    max_concurrent_batches: Some(self.pool_size),
                    ..BatchSettings::default()
                };
                let loader = Loader::builder(table).settings(settings).build();
                run_loads(
                    &Coalesce(loader.expect("valid settings")),
                    tasks,
                    per_task,
                    fan_out,
                )
                .await
            }
            "ceiling" => run_ceiling(&table, self.pool_size, tasks, per_task).await,
            #[cfg(feature = "peers")]
            "dl-nc" => {
                let loader = dataloader::non_cached::Loader::new(table);
                run_loads(&peers::DataloaderPlain(loader), tasks, per_task, fan_out).await
            }
            #[cfg(feature = "peers")]
            "dl-c" => {
                let loader = dataloader::cached::Loader::new(table);
                run_loads(&peers::DataloaderCached(loader), tasks, per_task, fan_out).await
            }
            #[cfg(feature = "peers")]
            "async-graphql 1ms" => {
                run_loads(&peers::async_graphql(table), tasks, per_task, fan_out).await
            }
            other => panic!("unknown path {other}"),
        };
        let after = Usage::now();
        let cpu = after.cpu.saturating_sub(before.cpu);
        let switches = after.switches.saturating_sub(before.switches);
        // Every path loads each task's keys (the ceiling: all of them at once).
        let loads = tasks * per_task;
        latencies.sort_unstable();
        let run = Run {
            loads_per_sec: loads as f64 / elapsed.as_secs_f64(),
            p50: latencies[latencies.len() / 2],
            statements_per_1k: statements.0.load(Relaxed) as f64 * 1000.0 / loads as f64,
            cpu_per_load: cpu / loads as u32,
            switches_per_load: switches as f64 / loads as f64,
        };
        match self.results.iter_mut().find(|(k, _)| *k == (name, tasks)) {
            Some((_, runs)) => runs.push(run),
            None => self.results.push(((name, tasks), vec![run])),
        }
    }

    fn report(&self) -> String {
        let median = |runs: &[Run], field: fn(&Run) -> f64| {
            let mut values: Vec<f64> = runs.iter().map(field).collect();
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n{:<18} {:>6} {:>11} {:>10} {:>9} {:>9} {:>9} {:>8} {:>9}",
            "path",
            "tasks",
            "loads/s",
            "p50 us",
            "stmt/1k",
            "cpu us",
            "switches",
            "reps",
            "÷ceiling"
        );
        for ((name, tasks), runs) in &self.results {
            let rate = median(runs, |r| r.loads_per_sec);
            let ceiling = self
                .results
                .iter()
                .find(|((n, t), _)| *n == "ceiling" && t == tasks)
                .map(|(_, runs)| median(runs, |r| r.loads_per_sec));
            let share = ceiling.map_or(String::new(), |c| format!("{:.0} %", 100.0 * rate / c));
            let _ = writeln!(
                out,
                "{:<18} {:>6} {:>11.0} {:>10.1} {:>9.1} {:>9.2} {:>9.2} {:>8} {:>9}",
                name,
                tasks,
                rate,
                median(runs, |r| r.p50.as_secs_f64() * 1e6),
                median(runs, |r| r.statements_per_1k),
                median(runs, |r| r.cpu_per_load.as_secs_f64() * 1e6),
                median(runs, |r| r.switches_per_load),
                runs.len(),
                share,
            );
        }
        out
    }
}

/// `--name value` from the command line (cargo bench adds `--bench`).
fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn list(name: &str, default: &str) -> Vec<String> {
    arg(name)
        .unwrap_or_else(|| default.to_owned())
        .split(',')
        .map(str::to_owned)
        .collect()
}

async fn prepare(pool: &PgPool) -> Result<(), sqlx::Error> {
    for statement in [
        "DROP TABLE IF EXISTS coalesce_bench_engine",
        "CREATE TABLE coalesce_bench_engine (id BIGINT PRIMARY KEY, name TEXT NOT NULL)",
        "INSERT INTO coalesce_bench_engine SELECT i, 'item ' || i FROM generate_series(1, 100000) AS i",
        "ANALYZE coalesce_bench_engine",
    ] {
        sqlx::query(statement).execute(pool).await?;
    }
    Ok(())
}

fn main() {
    const ALL_PATHS: &str = if cfg!(feature = "peers") {
        "naive,coalesce,ceiling,dl-nc,dl-c,async-graphql 1ms"
    } else {
        "naive,coalesce,ceiling"
    };
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let reps: usize = arg("--reps").and_then(|r| r.parse().ok()).unwrap_or(3);
    let pool_size: usize = arg("--pool").and_then(|r| r.parse().ok()).unwrap_or(10);
    let ping = arg("--ping").unwrap_or_else(|| "idle".to_owned());
    assert!(
        ["idle", "always", "never"].contains(&ping.as_str()),
        "--ping: idle, always or never"
    );
    let tasks: Vec<usize> = list("--tasks", "1,100,1000")
        .iter()
        .map(|t| t.parse().expect("--tasks: numbers"))
        .collect();
    let paths: Vec<&'static str> = list("--paths", ALL_PATHS)
        .into_iter()
        .map(|p| &*p.leak())
        .collect();

    let fan_out: usize = arg("--fan-out").and_then(|r| r.parse().ok()).unwrap_or(1);
    assert!(fan_out >= 1, "--fan-out: at least 1");
    let runtime = arg("--runtime").unwrap_or_else(|| "multi".to_owned());
    let rt = match runtime.as_str() {
        "multi" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
        "current" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        _ => panic!("--runtime: multi or current"),
    }
    .expect("tokio runtime");
    rt.block_on(async {
        let mut options = PgPoolOptions::new()
            .max_connections(pool_size as u32)
            .min_connections(pool_size as u32)
            .test_before_acquire(ping == "always");
        if ping == "idle" {
            options = options.before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= Duration::from_secs(1) {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            });
        }
        let pool = options
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {url}: {e}"));
        prepare(&pool).await.expect("bench table");
        let mut bench = Bench {
            pool: pool.clone(),
            pool_size,
            fan_out,
            results: Vec::new(),
        };
        // Warm the pool's connections and their statement caches.
        for path in &paths {
            bench.run(path, 100).await;
        }
        bench.results.clear();
        for rep in 0..reps {
            for &t in &tasks {
                for path in &paths {
                    bench.run(path, t).await;
                }
            }
            eprintln!("repetition {} of {reps} done", rep + 1);
        }
        println!(
            "PostgreSQL at {url}, pool {pool_size} (ping: {ping}), {} runtime, \
             fan-out {fan_out}, medians of {reps} interleaved repetitions:{}",
            if runtime == "multi" {
                "2-worker"
            } else {
                "current-thread"
            },
            bench.report()
        );
        sqlx::query("DROP TABLE coalesce_bench_engine")
            .execute(&pool)
            .await
            .expect("drop the bench table");
    });
}
