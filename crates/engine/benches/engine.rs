//! Engine overhead: the same in-memory workload (value = f(key), no I/O)
//! through `coalesce` and, with `--features peers`, through the `dataloader`
//! crate 0.18 (`non_cached::Loader`, its defaults) and async-graphql 7's
//! `DataLoader` (its default 1 ms delay, and a zero delay), side by side.
//!
//! ```text
//! cargo bench -p coalesce --bench engine                    # coalesce only
//! cargo bench -p coalesce --features peers --bench engine   # with the peers
//! ```
//!
//! Each measured iteration spawns `tasks` tasks on a two-worker Tokio
//! runtime (`COALESCE_BENCH_WORKERS=N` sets another count, to see what
//! the second worker costs); each task loads its share of the iteration's
//! keys one after the other (keys from a space of 1,000,000, drawn by a
//! seeded xorshift). The
//! source counts its calls, so the summary table printed at the end shows
//! loads/s (median iteration), batches per iteration and mean batch size
//! per path, the ratio of coalesce to each peer, and, at one task, the
//! median latency a load adds over calling the source directly.
//!
//! A second scenario gives the source a round trip of about 50 µs (a
//! cache server on the same host; a timer thread answers each call after
//! the delay, and the table states the delay it measured) and runs 1,000
//! tasks making 100,000 loads over 1,000 keys: do batches stay full when
//! the source is fast?
//!
//! A third, the storm, counts source calls rather than time: 100,000 tasks
//! on a fresh two-worker runtime each load one key (from 1,000) of a
//! source that answers at once, with the cache on and off, five runs each.
//! As a burst, every task is ready before any runs (one worker is held
//! while the other spawns them all); as a trickle, they are spawned one by
//! one while the other worker already serves them. The table shows the
//! fewest and most source calls and the mean batch (the floor with the
//! cache is 10 calls).

use coalesce::{BatchSource, Loader};
use criterion::{Criterion, SamplingMode, Throughput};
use std::{
    collections::HashMap,
    convert::Infallible,
    fmt::Write as _,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};
use tokio::runtime::Runtime;

const KEY_SPACE: u64 = 1_000_000;
/// The fast-source scenario: its round trip, tasks, loads and keys.
const FAST_ROUND_TRIP: Duration = Duration::from_micros(50);
const FAST_TASKS: usize = 1_000;
const FAST_LOADS: usize = 100_000;
const FAST_KEY_SPACE: u64 = 1_000;
/// Loads per measured iteration (fewer where a fixed per-round delay would
/// make an iteration take seconds; throughput is reported per load).
const LOADS: usize = 200_000;
const LOADS_ONE_TASK: usize = 20_000;
const LOADS_SLOW: usize = 1_000;
const CONCURRENCY: [usize; 3] = [1, 100, 10_000];
/// Sequential loads timed one by one for the latency figure at one task.
const LATENCY_SAMPLES: usize = 20_000;
const LATENCY_SAMPLES_SLOW: usize = 500;

/// The value stored under `key`: cheap, deterministic, checkable.
fn value_of(key: u64) -> u64 {
    key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (key >> 7)
}

/// A small xorshift64 generator: deterministic keys below `space`.
struct XorShift {
    state: u64,
    space: u64,
}

impl XorShift {
    fn new(seed: u64, space: u64) -> Self {
        Self {
            state: seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1,
            space,
        }
    }

    fn next_key(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x % self.space
    }
}

/// Answers each call after a fixed delay, from a timer thread of its own,
/// so that many calls can be in flight at once (Tokio's timer counts in
/// milliseconds). Keeps the delays it actually gave.
struct RoundTrip {
    requests: std::sync::mpsc::Sender<(Instant, futures::channel::oneshot::Sender<()>)>,
    delay: Duration,
    waited: AtomicU64,
    waits: AtomicU64,
}

impl RoundTrip {
    fn new(delay: Duration) -> Self {
        let (requests, incoming) =
            std::sync::mpsc::channel::<(Instant, futures::channel::oneshot::Sender<()>)>();
        std::thread::spawn(move || {
            // Every call waits the same delay, so deadlines come in the
            // order the calls do (give or take two callers racing to send).
            let mut due = std::collections::VecDeque::new();
            loop {
                let now = Instant::now();
                while let Some((at, _)) = due.front()
                    && *at <= now
                {
                    if let Some((_, reply)) = due.pop_front() {
                        // A caller that gave up needs no answer.
                        let _ = futures::channel::oneshot::Sender::send(reply, ());
                    }
                }
                let next = match due.front() {
                    Some((at, _)) => incoming.recv_timeout(*at - now),
                    None => incoming
                        .recv()
                        .map_err(|_| std::sync::mpsc::RecvTimeoutError::Disconnected),
                };
                match next {
                    Ok(request) => due.push_back(request),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
        });
        Self {
            requests,
            delay,
            waited: AtomicU64::new(0),
            waits: AtomicU64::new(0),
        }
    }

    async fn wait(&self) {
        let start = Instant::now();
        let (reply, answered) = futures::channel::oneshot::channel();
        if self.requests.send((start + self.delay, reply)).is_ok() {
            let _ = answered.await;
        }
        self.waited
            .fetch_add(start.elapsed().as_nanos() as u64, Relaxed);
        self.waits.fetch_add(1, Relaxed);
    }

    /// The mean delay actually given so far.
    fn measured(&self) -> Duration {
        let waits = self.waits.load(Relaxed).max(1);
        Duration::from_nanos(self.waited.load(Relaxed) / waits)
    }
}

/// Calls of the in-memory source, per path, and its round trip if any.
#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    keys: AtomicU64,
    round_trip: Option<RoundTrip>,
}

impl Counters {
    async fn lookup(&self, keys: &[u64]) -> HashMap<u64, u64> {
        if let Some(round_trip) = &self.round_trip {
            round_trip.wait().await;
        }
        self.batches.fetch_add(1, Relaxed);
        self.keys.fetch_add(keys.len() as u64, Relaxed);
        keys.iter().map(|&k| (k, value_of(k))).collect()
    }
}

/// One way of loading a key: a loader under test, or the source itself.
trait Path: Clone + Send + Sync + 'static {
    fn load(&self, key: u64) -> impl Future<Output = u64> + Send;
}

/// The in-memory source as a coalesce [`BatchSource`].
struct MemSource(Arc<Counters>);

impl BatchSource for MemSource {
    type Key = u64;
    type Value = u64;
    type Error = Infallible;

    async fn load(&self, keys: &[u64]) -> Result<HashMap<u64, u64>, Infallible> {
        Ok(self.0.lookup(keys).await)
    }
}

#[derive(Clone)]
struct Coalesce(Loader<MemSource>);

impl Path for Coalesce {
    async fn load(&self, key: u64) -> u64 {
        self.0
            .load(key)
            .await
            .expect("infallible")
            .expect("present")
    }
}

/// Calling the source directly with one key: the latency baseline.
#[derive(Clone)]
struct Direct(Arc<MemSource>);

impl Path for Direct {
    async fn load(&self, key: u64) -> u64 {
        let values = self.0.load(&[key]).await.expect("infallible");
        values[&key]
    }
}

#[cfg(feature = "peers")]
mod peers {
    use super::{Counters, Path};
    use std::{collections::HashMap, convert::Infallible, sync::Arc, time::Duration};

    pub struct DlBatch(pub Arc<Counters>);

    impl dataloader::BatchFn<u64, u64> for DlBatch {
        async fn load(&mut self, keys: &[u64]) -> HashMap<u64, u64> {
            self.0.lookup(keys).await
        }
    }

    /// The `dataloader` crate's `non_cached::Loader` with its defaults
    /// (batches of up to 200, 10 yields).
    #[derive(Clone)]
    pub struct Dataloader(pub dataloader::non_cached::Loader<u64, u64, DlBatch>);

    impl Dataloader {
        pub fn new(counters: Arc<Counters>) -> Self {
            Self(dataloader::non_cached::Loader::new(DlBatch(counters)))
        }
    }

    impl Path for Dataloader {
        async fn load(&self, key: u64) -> u64 {
            self.0.load(key).await
        }
    }

    pub struct AgSource(pub Arc<Counters>);

    impl async_graphql::dataloader::Loader<u64> for AgSource {
        type Value = u64;
        type Error = Infallible;

        async fn load(&self, keys: &[u64]) -> Result<HashMap<u64, u64>, Infallible> {
            Ok(self.0.lookup(keys).await)
        }
    }

    /// async-graphql's `DataLoader` (no cache, batches of up to 1000) with
    /// the given delay.
    #[derive(Clone)]
    pub struct AsyncGraphql(pub Arc<async_graphql::dataloader::DataLoader<AgSource>>);

    impl AsyncGraphql {
        pub fn new(counters: Arc<Counters>, delay: Option<Duration>) -> Self {
            let loader =
                async_graphql::dataloader::DataLoader::new(AgSource(counters), tokio::spawn);
            let loader = match delay {
                Some(delay) => loader.delay(delay),
                None => loader,
            };
            Self(Arc::new(loader))
        }
    }

    impl Path for AsyncGraphql {
        async fn load(&self, key: u64) -> u64 {
            self.0
                .load_one(key)
                .await
                .expect("infallible")
                .expect("present")
        }
    }
}

/// Spawn `tasks` tasks that share `loads` loads of keys below `space`;
/// the wall time of them all.
fn run_workload<P: Path>(
    rt: &Runtime,
    path: &P,
    tasks: usize,
    loads: usize,
    space: u64,
) -> Duration {
    let per_task = loads / tasks;
    rt.block_on(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|task| {
                let path = path.clone();
                tokio::spawn(async move {
                    let mut keys = XorShift::new(task as u64 + 1, space);
                    for _ in 0..per_task {
                        let key = keys.next_key();
                        let value = path.load(key).await;
                        assert_eq!(value, value_of(key));
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.await.expect("load task panicked");
        }
        start.elapsed()
    })
}

/// Median time of one load, each timed alone, by a single task.
fn median_latency<P: Path>(rt: &Runtime, path: &P, samples: usize) -> Duration {
    let path = path.clone();
    let mut times = rt
        .block_on(rt.spawn(async move {
            let mut keys = XorShift::new(0xC0A1, KEY_SPACE);
            let mut times = Vec::with_capacity(samples);
            for _ in 0..samples {
                let key = keys.next_key();
                let start = Instant::now();
                let value = path.load(key).await;
                times.push(start.elapsed());
                assert_eq!(value, value_of(key));
            }
            times
        }))
        .expect("latency task panicked");
    times.sort_unstable();
    times[times.len() / 2]
}

/// The source a measurement runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Answers at once, keys from a space of [`KEY_SPACE`].
    Instant,
    /// Answers after [`FAST_ROUND_TRIP`], keys from [`FAST_KEY_SPACE`].
    Fast,
}

/// Every measurement of a path: the source and the number of tasks.
const SCENARIOS: [(Source, usize); 4] = [
    (Source::Instant, CONCURRENCY[0]),
    (Source::Instant, CONCURRENCY[1]),
    (Source::Instant, CONCURRENCY[2]),
    (Source::Fast, FAST_TASKS),
];

/// What one path did at one concurrency.
struct Row {
    source: Source,
    /// The fast source's measured mean delay.
    round_trip: Option<Duration>,
    path: &'static str,
    tasks: usize,
    loads_per_sec: f64,
    loads_per_iter: usize,
    batches_per_iter: f64,
    mean_batch: f64,
}

struct Bench {
    rt: Runtime,
    rows: Vec<Row>,
    latencies: Vec<(&'static str, Duration)>,
}

impl Bench {
    fn measure<P: Path>(
        &mut self,
        c: &mut Criterion,
        name: &'static str,
        make: impl Fn(Arc<Counters>) -> P,
        slow: bool,
    ) {
        for (source, tasks) in SCENARIOS {
            let loads = match (source, tasks, slow) {
                (Source::Fast, _, _) => FAST_LOADS,
                (_, 1, true) => LOADS_SLOW,
                (_, 1, false) => LOADS_ONE_TASK,
                (_, 100, true) => LOADS_ONE_TASK,
                _ => LOADS,
            };
            let (space, round_trip, group) = match source {
                Source::Instant => (KEY_SPACE, None, format!("engine/{tasks}_tasks")),
                Source::Fast => (
                    FAST_KEY_SPACE,
                    Some(RoundTrip::new(FAST_ROUND_TRIP)),
                    format!("fast_source/{tasks}_tasks"),
                ),
            };
            let counters = Arc::new(Counters {
                round_trip,
                ..Counters::default()
            });
            let path = make(Arc::clone(&counters));
            let mut rates = Vec::new();
            let mut iterations = 0u64;
            let mut group = c.benchmark_group(group);
            group
                .sample_size(10)
                .sampling_mode(SamplingMode::Flat)
                .warm_up_time(Duration::from_millis(300))
                .measurement_time(Duration::from_secs(2))
                .throughput(Throughput::Elements(loads as u64));
            group.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let elapsed = run_workload(&self.rt, &path, tasks, loads, space);
                        rates.push(loads as f64 / elapsed.as_secs_f64());
                        total += elapsed;
                    }
                    iterations += iters;
                    total
                });
            });
            group.finish();
            if iterations == 0 {
                continue; // filtered out on the command line
            }
            rates.sort_by(f64::total_cmp);
            let batches = counters.batches.load(Relaxed) as f64;
            self.rows.push(Row {
                source,
                round_trip: counters.round_trip.as_ref().map(RoundTrip::measured),
                path: name,
                tasks,
                loads_per_sec: rates[rates.len() / 2],
                loads_per_iter: loads,
                batches_per_iter: batches / iterations as f64,
                mean_batch: counters.keys.load(Relaxed) as f64 / batches.max(1.0),
            });
        }
        let samples = if slow {
            LATENCY_SAMPLES_SLOW
        } else {
            LATENCY_SAMPLES
        };
        let path = make(Arc::new(Counters::default()));
        self.latencies
            .push((name, median_latency(&self.rt, &path, samples)));
    }

    fn report(&self) -> String {
        let mut out = self.table(
            Source::Instant,
            format!("Engine overhead (2 tokio workers, keys from {KEY_SPACE}):"),
        );
        let measured = self.rows.iter().find_map(|r| r.round_trip);
        if let Some(measured) = measured {
            out.push_str(&self.table(
                Source::Fast,
                format!(
                    "Fast source: a {FAST_ROUND_TRIP:?} round trip (measured mean {:.1} us), \
                     {FAST_TASKS} tasks, {FAST_LOADS} loads over {FAST_KEY_SPACE} keys:",
                    measured.as_secs_f64() * 1e6
                ),
            ));
        }
        self.latency_report(&mut out);
        out
    }

    /// The rows of one source, with coalesce's ratio to each peer.
    fn table(&self, source: Source, title: String) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n{title}\n{:<22} {:>6} {:>12} {:>8} {:>12} {:>8}  ratios of coalesce",
            "path", "tasks", "loads/s", "loads", "batches/iter", "mean"
        );
        let rows = self.rows.iter().filter(|r| r.source == source);
        for row in rows.clone() {
            let ours = rows
                .clone()
                .find(|r| r.tasks == row.tasks && r.path == "coalesce");
            let ratio = match ours {
                Some(ours) if row.path != "coalesce" => {
                    format!("{:.2}x", ours.loads_per_sec / row.loads_per_sec)
                }
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "{:<22} {:>6} {:>12.0} {:>8} {:>12.1} {:>8.1}  {ratio}",
                row.path,
                row.tasks,
                row.loads_per_sec,
                row.loads_per_iter,
                row.batches_per_iter,
                row.mean_batch
            );
        }
        out
    }

    /// The median latency of one load at one task, beside the direct call.
    fn latency_report(&self, out: &mut String) {
        let direct = self
            .latencies
            .iter()
            .find(|(name, _)| *name == "direct source")
            .map(|(_, d)| *d);
        let _ = writeln!(out, "\nOne task, median latency of one load:");
        for (name, median) in &self.latencies {
            let added = match direct {
                Some(direct) if *name != "direct source" => format!(
                    "  (+{:.2} us over the direct call)",
                    median.saturating_sub(direct).as_secs_f64() * 1e6
                ),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "{:<22} {:>10.2} us{added}",
                name,
                median.as_secs_f64() * 1e6
            );
        }
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let workers = match std::env::var("COALESCE_BENCH_WORKERS") {
        Ok(value) => value
            .parse()
            .expect("COALESCE_BENCH_WORKERS must be a positive number"),
        Err(_) => 2,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut bench = Bench {
        rt,
        rows: Vec::new(),
        latencies: Vec::new(),
    };

    let direct = Direct(Arc::new(MemSource(Arc::new(Counters::default()))));
    let direct_latency = median_latency(&bench.rt, &direct, LATENCY_SAMPLES);
    bench.latencies.push(("direct source", direct_latency));

    bench.measure(
        &mut c,
        "coalesce",
        |counters| Coalesce(Loader::new(MemSource(counters))),
        false,
    );
    #[cfg(feature = "peers")]
    {
        bench.measure(&mut c, "dataloader", peers::Dataloader::new, false);
        bench.measure(
            &mut c,
            "async-graphql 1ms",
            |counters| peers::AsyncGraphql::new(counters, None),
            true,
        );
        bench.measure(
            &mut c,
            "async-graphql 0ms",
            |counters| peers::AsyncGraphql::new(counters, Some(Duration::ZERO)),
            false,
        );
    }

    c.final_summary();
    print!("{}", bench.report());
    print!("{}", storm_report());
}

/// How the tasks of a storm become ready.
#[derive(Clone, Copy, Debug)]
enum Arrival {
    Burst,
    Trickle,
}

/// One storm on a fresh two-worker runtime: source calls and keys asked.
fn storm(arrival: Arrival, cache: coalesce::CachePolicy) -> (u64, u64) {
    const TASKS: u64 = 100_000;
    const KEYS: u64 = 1_000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("tokio runtime");
    let counters = Arc::new(Counters::default());
    let loader = Loader::builder(MemSource(Arc::clone(&counters)))
        .cache(cache)
        .build()
        .expect("valid configuration");
    rt.block_on(async {
        let (release, released) = std::sync::mpsc::channel::<()>();
        // Holds one worker until every task is spawned (a burst only).
        let held = matches!(arrival, Arrival::Burst)
            .then(|| tokio::spawn(async move { released.recv().expect("released") }));
        let tasks = tokio::spawn(async move {
            let tasks: Vec<_> = (0..TASKS)
                .map(|i| {
                    let loader = loader.clone();
                    let key = i * 7919 % KEYS;
                    tokio::spawn(async move { (key, loader.load(key).await) })
                })
                .collect();
            let _ = release.send(());
            tasks
        })
        .await
        .expect("spawner");
        if let Some(held) = held {
            held.await.expect("held worker");
        }
        for task in tasks {
            let (key, value) = task.await.expect("task");
            assert_eq!(value.expect("infallible"), Some(value_of(key)));
        }
    });
    (counters.batches.load(Relaxed), counters.keys.load(Relaxed))
}

fn storm_report() -> String {
    use coalesce::CachePolicy;
    let mut out = String::from(
        "\nStorm: 100000 tasks, one load each, keys from 1000, a source that answers at once, 5 runs:\n",
    );
    let _ = writeln!(
        out,
        "{:<8} {:<6} {:>16} {:>16}",
        "arrival", "cache", "source calls", "mean batch"
    );
    for arrival in [Arrival::Burst, Arrival::Trickle] {
        for (name, cache) in [
            ("on", CachePolicy::Unbounded),
            ("off", CachePolicy::Disabled),
        ] {
            let runs: Vec<(u64, u64)> = (0..5).map(|_| storm(arrival, cache)).collect();
            let calls = runs.iter().map(|r| r.0);
            let means = runs.iter().map(|&(calls, keys)| keys as f64 / calls as f64);
            let _ = writeln!(
                out,
                "{:<8} {:<6} {:>16} {:>16}",
                format!("{arrival:?}").to_lowercase(),
                name,
                format!(
                    "{}-{}",
                    calls.clone().min().unwrap_or(0),
                    calls.max().unwrap_or(0)
                ),
                format!(
                    "{:.1}-{:.1}",
                    means.clone().fold(f64::INFINITY, f64::min),
                    means.fold(0.0, f64::max)
                ),
            );
        }
    }
    out
}
