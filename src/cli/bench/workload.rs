//! The workloads, and the driver that runs one of them through one path
//! with a number of concurrent tasks, timing every operation.

use super::{
    paths::{OpError, Target},
    progress::Meter,
    seed::Rng,
};
use hdrhistogram::Histogram;
use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};
use tokio::time::Sleep;

/// What each operation of a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Drop-in: one `get_profile` through the per-item repository trait.
    Profile,
    /// Drop-in: one `get_memory` through the per-item repository trait.
    Memory,
    /// Drop-in: one `get_onboarding` through the per-item repository trait.
    Onboarding,
    /// Drop-in: 40% profiles, 35% memories, 10% onboarding, 10% saves, 5% deletes.
    Mixed,
    /// Get 10 memories of a user by key.
    GetMemories,
    /// Save 20 memories of a user.
    Save,
    /// Delete 15 keys of a user.
    Delete,
    /// Get 5 profiles.
    Profiles,
    /// Search 4 categories of a user (10 newest each).
    Search,
    /// Prefetch a user's data (profile, recent memories, onboarding, count).
    Prefetch,
    /// Save `--bulk-size` memories at once (not in the default set).
    BulkSave,
}

impl Workload {
    /// The workloads run when `--workload` is not given.
    pub const DEFAULT: [Self; 10] = [
        Self::Profile,
        Self::Memory,
        Self::Onboarding,
        Self::Mixed,
        Self::GetMemories,
        Self::Save,
        Self::Delete,
        Self::Profiles,
        Self::Search,
        Self::Prefetch,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Profile => "profile",
            Self::Memory => "memory",
            Self::Onboarding => "onboarding",
            Self::Mixed => "mixed",
            Self::GetMemories => "get-memories",
            Self::Save => "save",
            Self::Delete => "delete",
            Self::Profiles => "profiles",
            Self::Search => "search",
            Self::Prefetch => "prefetch",
            Self::BulkSave => "bulk-save",
        }
    }

    /// One line saying what an operation is.
    pub fn describe(self, bulk_size: usize) -> String {
        match self {
            Self::Profile => "get_profile(user) through MemoryRepository (drop-in)".into(),
            Self::Memory => "get_memory(user, category, key) through MemoryRepository (drop-in)".into(),
            Self::Onboarding => "get_onboarding(user) through MemoryRepository (drop-in)".into(),
            Self::Mixed => {
                "MemoryRepository: 40% get_profile, 35% get_memory, 10% get_onboarding, 10% save_memory, 5% delete_memory".into()
            }
            Self::GetMemories => "get 10 memories of a user by key".into(),
            Self::Save => "save 20 memories of a user".into(),
            Self::Delete => "delete 15 keys of a user".into(),
            Self::Profiles => "get 5 profiles".into(),
            Self::Search => "search 4 categories of a user, 10 newest each".into(),
            Self::Prefetch => "prefetch a user's profile, recent memories, onboarding, count".into(),
            Self::BulkSave => format!("save {bulk_size} memories"),
        }
    }

    /// Concurrent tasks when `--concurrency` is not given: 1,000, and 100
    /// for `save` and `delete`. Their naive path sends 20 (15) single-row
    /// writes an operation, and on SQLite every write takes the one write
    /// lock in turn: at 1,000 tasks the 20,000 writes in flight are served
    /// round robin, so no operation completes for seconds, and then all at
    /// once.
    pub fn default_concurrency(self) -> usize {
        match self {
            Self::Save | Self::Delete => 100,
            _ => 1_000,
        }
    }

    /// The operation's row name in the specification's tables, if it has one.
    pub fn spec_operation(self) -> Option<&'static str> {
        match self {
            Self::GetMemories => Some("Get 10 memories"),
            Self::Save => Some("Save 20 memories"),
            Self::Delete => Some("Delete 15 keys"),
            Self::Profiles => Some("Get 5 profiles"),
            Self::Search => Some("Search 4 categories"),
            Self::Prefetch => Some("Prefetch user data"),
            _ => None,
        }
    }
}

/// When a run stops: at its time, whatever the path's latency, or earlier
/// once `ops` operations are done; or, for a run that must complete
/// `at_least` operations, past its time once it has, at `longest` at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Operations in all, if the run is counted in operations.
    pub ops: Option<u64>,
    /// The run's time: no operation starts after it, and operations still
    /// in flight then are dropped, unless fewer than `at_least` have
    /// completed.
    pub time: Duration,
    /// Operations the run completes before it ends, if it can within
    /// `longest` (0: the run ends at its time).
    pub at_least: u64,
    /// The most the run takes, however few operations it completed.
    pub longest: Duration,
}

impl Limit {
    /// A run of `time`.
    pub fn time(time: Duration) -> Self {
        Self {
            ops: None,
            time,
            at_least: 0,
            longest: time,
        }
    }

    /// A run of `time`, longer if need be (up to `longest`) until `at_least`
    /// operations have completed, so that a slow path has figures too.
    pub fn at_least(time: Duration, at_least: u64, longest: Duration) -> Self {
        Self {
            ops: None,
            time,
            at_least,
            longest: longest.max(time),
        }
    }
}

/// The raw outcome of one run.
#[derive(Debug)]
pub struct Outcome {
    /// Operations completed (successfully or not).
    pub ops: u64,
    /// Operations still in flight at the deadline, dropped unfinished.
    pub dropped: u64,
    /// Operations that failed.
    pub errors: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// Wall time from the first start to the last finish (or the deadline).
    pub elapsed: Duration,
    /// Whether the run went on past its time because fewer than
    /// [`Limit::at_least`] operations had completed.
    pub extended: bool,
    /// Latency of each completed operation, in nanoseconds.
    pub latency: Histogram<u64>,
}

impl Outcome {
    /// Whether a run counted in operations ran out of time first.
    pub fn cut_short(&self, limit: Limit) -> bool {
        limit.ops.is_some_and(|ops| self.ops < ops)
    }
}

/// How often a task whose run has gone past its time looks again whether
/// the run has completed its operations.
const RECHECK: Duration = Duration::from_millis(10);

/// The shared clock and counters of one run's tasks.
pub struct Run {
    ops: Option<u64>,
    at_least: u64,
    started: AtomicU64,
    done: AtomicU64,
    dropped: AtomicU64,
    extended: AtomicBool,
    start: Instant,
    deadline: Instant,
    longest: Instant,
}

impl Run {
    /// A run starting now, until `limit`.
    pub fn start(limit: Limit) -> Arc<Self> {
        let start = Instant::now();
        Arc::new(Self {
            ops: limit.ops,
            at_least: limit.at_least,
            started: AtomicU64::new(0),
            done: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            extended: AtomicBool::new(false),
            start,
            deadline: start + limit.time,
            longest: start + limit.longest.max(limit.time),
        })
    }

    /// Whether the run is over: its time is up and it has completed its
    /// operations, or it has taken the longest it may. Past its time and
    /// short of its operations, it notes that it went on.
    fn over(&self) -> bool {
        let now = Instant::now();
        if now < self.deadline {
            return false;
        }
        if now >= self.longest || self.done.load(Relaxed) >= self.at_least {
            return true;
        }
        self.extended.store(true, Relaxed);
        false
    }

    /// Claim up to `n` operations (fewer near the end of a counted run);
    /// 0 once the run is over.
    pub fn claim(&self, n: u64) -> u64 {
        if self.over() {
            return 0;
        }
        // Past its time, a run short of its operations starts only those it
        // still lacks: the ones in flight complete sooner without company.
        if Instant::now() >= self.deadline && self.started.load(Relaxed) >= self.at_least {
            return 0;
        }
        let first = self.started.fetch_add(n, Relaxed);
        match self.ops {
            Some(ops) => ops.saturating_sub(first).min(n),
            None => n,
        }
    }

    /// The run's deadline as a timer: each task keeps one for all its
    /// operations, so the timer is registered once per task rather than
    /// once per operation (a timer per operation was ~4 % of the bench's
    /// CPU at 1,000 tasks).
    pub fn deadline(&self) -> Sleep {
        tokio::time::sleep_until(self.deadline.into())
    }

    /// Run `work`, the `n` operations just claimed, unless the run is over
    /// first (the task's `deadline`, its [`Run::deadline`], says when to
    /// look): then they are dropped unfinished (so a slow path cannot
    /// stretch the run) and `None` is returned.
    pub async fn before_deadline<T>(
        &self,
        n: u64,
        mut deadline: Pin<&mut Sleep>,
        work: impl Future<Output = T>,
    ) -> Option<T> {
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                biased;
                done = &mut work => {
                    self.done.fetch_add(n, Relaxed);
                    return Some(done);
                }
                () = deadline.as_mut() => {
                    if self.over() {
                        self.dropped.fetch_add(n, Relaxed);
                        return None;
                    }
                    let next = (Instant::now() + RECHECK).min(self.longest);
                    deadline.as_mut().reset(next.into());
                }
            }
        }
    }
}

/// What one task of a run measured.
pub struct Tally {
    /// Each record's latency in nanoseconds and its count of operations,
    /// put in the histogram once the clock has stopped: a task's own 36 KB
    /// histogram, a thousand of them, cost a cache miss per operation
    /// inside the timed loop (10 % of the harness's CPU at 200,000 ops/s).
    samples: Vec<(u64, u64)>,
    errors: u64,
    first_error: Option<OpError>,
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Self {
        Self {
            samples: Vec::with_capacity(256),
            errors: 0,
            first_error: None,
        }
    }

    /// Record `n` operations that took `took` each and ended with `result`.
    pub fn record(&mut self, took: Duration, n: u64, result: Result<(), OpError>) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.samples.push((nanos, n));
        if let Err(error) = result {
            self.errors += n;
            self.first_error.get_or_insert(error);
        }
    }
}

/// Wait for a run's tasks, moving `meter` as they go, and merge what they
/// measured.
pub async fn gather(
    run: &Run,
    tasks: Vec<tokio::task::JoinHandle<Tally>>,
    meter: &mut Meter,
) -> Outcome {
    let mut all = futures::future::join_all(tasks);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let finished = loop {
        tokio::select! {
            finished = &mut all => break finished,
            _ = tick.tick() => meter.set(match run.ops {
                Some(_) => run.done.load(Relaxed),
                None => u64::try_from(run.start.elapsed().as_millis()).unwrap_or(u64::MAX),
            }),
        }
    };
    // The clock stops when the last task is done, before the merging.
    let elapsed = run.start.elapsed();
    let mut latency = histogram();
    let mut errors = 0;
    let mut first_error = None;
    for task in finished {
        match task {
            Ok(tally) => {
                // Out-of-range values are clamped, so recording cannot fail.
                for (nanos, n) in tally.samples {
                    latency.saturating_record_n(nanos, n);
                }
                errors += tally.errors;
                if first_error.is_none() {
                    first_error = tally.first_error.map(|e| e.to_string());
                }
            }
            Err(join_error) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("a load task failed: {join_error}"));
            }
        }
    }
    Outcome {
        ops: run.done.load(Relaxed),
        dropped: run.dropped.load(Relaxed),
        errors,
        first_error,
        elapsed,
        extended: run.extended.load(Relaxed),
        latency,
    }
}

/// An empty latency histogram: nanoseconds up to one hour at two
/// significant digits (±1 %), about 36 KB.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 2).unwrap_or_else(|_| {
        Histogram::new(2).unwrap_or_else(|_| unreachable!("2 significant digits are valid"))
    })
}

/// Run `workload` through `target` with `concurrency` tasks until `limit`.
/// Task `t` draws its operations from a generator seeded with `(seed, t)`.
pub async fn drive(
    target: Arc<Target>,
    workload: Workload,
    concurrency: usize,
    limit: Limit,
    seed: u64,
    meter: &mut Meter,
) -> Outcome {
    // Allocated before the clock starts, so the harness's own set-up is not timed.
    let tallies: Vec<Tally> = (0..concurrency).map(|_| Tally::new()).collect();
    let run = Run::start(limit);
    let tasks = tallies
        .into_iter()
        .enumerate()
        .map(|(task, mut tally)| {
            let (run, target) = (Arc::clone(&run), Arc::clone(&target));
            tokio::spawn(async move {
                let mut rng = Rng::for_item(&[seed, 0xbe0c, task as u64]);
                let deadline = run.deadline();
                tokio::pin!(deadline);
                // An operation ends where the next begins (the claim and the
                // record between them take nanoseconds): one clock read per
                // operation fewer, which took 2 % of the process's time at
                // 1,000 tasks.
                let mut began = Instant::now();
                while run.claim(1) == 1 {
                    let op = target.op(workload, &mut rng);
                    let Some(result) = run.before_deadline(1, deadline.as_mut(), op).await else {
                        break;
                    };
                    let ended = Instant::now();
                    tally.record(ended - began, 1, result);
                    began = ended;
                }
                tally
            })
        })
        .collect();
    gather(&run, tasks, meter).await
}
