//! Always-on batching statistics: atomic counters, no lock on the hot path.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters shared by one or more loaders (and by explicit batch calls that
/// record themselves with [`Stats::record_batch`]).
///
/// ```
/// use coalesce::Stats;
///
/// let stats = Stats::new(100);
/// stats.record_requests(10);
/// stats.record_batch(10);
/// let snap = stats.snapshot();
/// assert_eq!(snap.total_operations, 1);
/// assert_eq!(snap.queries_saved, 9);
/// assert_eq!(snap.efficiency_gain, "900.0%");
/// ```
#[derive(Debug, Default)]
pub struct Stats {
    batch_size: u64,
    loads_requested: AtomicU64,
    cache_hits: AtomicU64,
    deduplicated_keys: AtomicU64,
    batches_dispatched: AtomicU64,
    keys_dispatched: AtomicU64,
    largest_batch: AtomicU64,
    errors: AtomicU64,
}

impl Stats {
    /// Fresh counters; `batch_size` is the configured cap, reported as is.
    pub fn new(batch_size: usize) -> Self {
        Self {
            batch_size: batch_size as u64,
            ..Self::default()
        }
    }

    /// Count `n` items requested by callers (each becomes a served load).
    pub fn record_requests(&self, n: usize) {
        self.loads_requested.fetch_add(n as u64, Relaxed);
    }

    /// Count `n` requests served from the cache without a query.
    pub fn record_cache_hits(&self, n: usize) {
        self.cache_hits.fetch_add(n as u64, Relaxed);
    }

    /// Count `n` requests joined to a key already pending or in flight.
    pub fn record_deduplicated(&self, n: usize) {
        self.deduplicated_keys.fetch_add(n as u64, Relaxed);
    }

    /// Count one query issued for `keys` items.
    pub fn record_batch(&self, keys: usize) {
        self.batches_dispatched.fetch_add(1, Relaxed);
        self.keys_dispatched.fetch_add(keys as u64, Relaxed);
        self.largest_batch.fetch_max(keys as u64, Relaxed);
    }

    /// Count one failed query (an error or a panic).
    pub fn record_error(&self) {
        self.errors.fetch_add(1, Relaxed);
    }

    /// A consistent-enough copy of the counters with the derived figures.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot::from_counts(Counts {
            batch_size: self.batch_size,
            loads_requested: self.loads_requested.load(Relaxed),
            cache_hits: self.cache_hits.load(Relaxed),
            deduplicated_keys: self.deduplicated_keys.load(Relaxed),
            batches_dispatched: self.batches_dispatched.load(Relaxed),
            keys_dispatched: self.keys_dispatched.load(Relaxed),
            largest_batch: self.largest_batch.load(Relaxed),
            errors: self.errors.load(Relaxed),
        })
    }
}

/// The raw counters a snapshot derives its figures from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    batch_size: u64,
    loads_requested: u64,
    cache_hits: u64,
    deduplicated_keys: u64,
    batches_dispatched: u64,
    keys_dispatched: u64,
    largest_batch: u64,
    errors: u64,
}

/// Statistics in the specification's JSON shape, plus the raw counters.
///
/// `total_operations` is the number of queries issued (batches dispatched);
/// `queries_saved` is loads served minus queries issued; `efficiency_gain`
/// is `queries_saved / total_operations` as a percentage with one decimal.
///
/// ```
/// use coalesce::StatsSnapshot;
///
/// // The specification's example: 45 queries issued, 127 saved.
/// let snap = StatsSnapshot::from_totals(100, 45 + 127, 45);
/// assert_eq!(snap.efficiency_gain, "282.2%");
/// let json = serde_json::to_value(&snap).unwrap();
/// assert_eq!(json["total_operations"], 45);
/// assert_eq!(json["status"], "active");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Queries issued (batches dispatched to the source).
    pub total_operations: u64,
    /// Loads served minus queries issued.
    pub queries_saved: u64,
    /// `queries_saved / total_operations`, e.g. `"282.2%"`.
    pub efficiency_gain: String,
    /// The configured maximum batch size.
    pub batch_size: u64,
    /// Always `"active"`: the batcher is on whenever stats exist.
    pub status: String,
    /// Items requested by callers.
    pub loads_requested: u64,
    /// Requests answered from the cache.
    pub cache_hits: u64,
    /// Requests joined to a key already pending or in flight.
    pub deduplicated_keys: u64,
    /// Keys sent to the source over all batches.
    pub keys_dispatched: u64,
    /// The largest batch sent to the source.
    pub largest_batch: u64,
    /// Mean keys per batch, one decimal.
    pub mean_batch_size: f64,
    /// Batches that failed (source error or panic).
    pub errors: u64,
}

impl StatsSnapshot {
    /// A snapshot from totals alone: `loads` served by `queries` queries.
    pub fn from_totals(batch_size: usize, loads: u64, queries: u64) -> Self {
        Self::from_counts(Counts {
            batch_size: batch_size as u64,
            loads_requested: loads,
            batches_dispatched: queries,
            ..Counts::default()
        })
    }

    fn from_counts(c: Counts) -> Self {
        let queries_saved = c.loads_requested.saturating_sub(c.batches_dispatched);
        let gain = if c.batches_dispatched == 0 {
            0.0
        } else {
            queries_saved as f64 * 100.0 / c.batches_dispatched as f64
        };
        let mean = if c.batches_dispatched == 0 {
            0.0
        } else {
            (c.keys_dispatched as f64 / c.batches_dispatched as f64 * 10.0).round() / 10.0
        };
        Self {
            total_operations: c.batches_dispatched,
            queries_saved,
            efficiency_gain: format!("{gain:.1}%"),
            batch_size: c.batch_size,
            status: "active".to_owned(),
            loads_requested: c.loads_requested,
            cache_hits: c.cache_hits,
            deduplicated_keys: c.deduplicated_keys,
            keys_dispatched: c.keys_dispatched,
            largest_batch: c.largest_batch,
            mean_batch_size: mean,
            errors: c.errors,
        }
    }

    /// Combine the statistics of several loaders into one view.
    ///
    /// ```
    /// use coalesce::StatsSnapshot;
    /// let a = StatsSnapshot::from_totals(100, 10, 1);
    /// let b = StatsSnapshot::from_totals(100, 5, 5);
    /// let sum = a.merge(&b);
    /// assert_eq!((sum.total_operations, sum.queries_saved), (6, 9));
    /// ```
    pub fn merge(&self, other: &Self) -> Self {
        Self::from_counts(Counts {
            batch_size: self.batch_size.max(other.batch_size),
            loads_requested: self.loads_requested + other.loads_requested,
            cache_hits: self.cache_hits + other.cache_hits,
            deduplicated_keys: self.deduplicated_keys + other.deduplicated_keys,
            batches_dispatched: self.total_operations + other.total_operations,
            keys_dispatched: self.keys_dispatched + other.keys_dispatched,
            largest_batch: self.largest_batch.max(other.largest_batch),
            errors: self.errors + other.errors,
        })
    }
}
