//! Opt-in memoization for request-scoped loaders.

use lru::LruCache;
use std::{
    hash::Hash,
    num::NonZeroUsize,
    time::{Duration, Instant},
};

/// How a loader memoizes results. Off by default: a long-lived loader shared
/// by many requests coalesces concurrent loads but never serves stale data.
///
/// ```
/// use coalesce::CachePolicy;
/// use std::time::Duration;
///
/// let per_request = CachePolicy::Unbounded;
/// let bounded = CachePolicy::Bounded { capacity: 10_000, time_to_live: Some(Duration::from_secs(5)) };
/// assert_ne!(per_request, bounded);
/// assert_eq!(CachePolicy::default(), CachePolicy::Disabled);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CachePolicy {
    /// No memoization (the default).
    #[default]
    Disabled,
    /// Keep every result until cleared; for loaders that live one request.
    Unbounded,
    /// Keep at most `capacity` results (least recently used leave first),
    /// each for at most `time_to_live` when one is given.
    Bounded {
        /// Most entries kept; zero behaves as [`CachePolicy::Disabled`].
        capacity: usize,
        /// How long an entry may be served after it was stored.
        time_to_live: Option<Duration>,
    },
}

/// The cache store itself: found values and known misses, with their age.
pub(crate) struct Cache<K: Hash + Eq, V> {
    entries: LruCache<K, (Option<V>, Instant)>,
    time_to_live: Option<Duration>,
}

impl<K: Hash + Eq, V: Clone> Cache<K, V> {
    pub(crate) fn new(policy: CachePolicy) -> Option<Self> {
        let (entries, time_to_live) = match policy {
            CachePolicy::Disabled => return None,
            CachePolicy::Unbounded => (LruCache::unbounded(), None),
            CachePolicy::Bounded {
                capacity,
                time_to_live,
            } => (LruCache::new(NonZeroUsize::new(capacity)?), time_to_live),
        };
        Some(Self {
            entries,
            time_to_live,
        })
    }

    /// `Some(result)` on a fresh hit; expired entries are dropped.
    pub(crate) fn get(&mut self, key: &K) -> Option<Option<V>> {
        let (value, stored) = self.entries.get(key)?;
        if self.time_to_live.is_some_and(|ttl| stored.elapsed() > ttl) {
            self.entries.pop(key);
            return None;
        }
        Some(value.clone())
    }

    pub(crate) fn insert(&mut self, key: K, value: Option<V>) {
        self.entries.put(key, (value, Instant::now()));
    }

    pub(crate) fn remove(&mut self, key: &K) {
        self.entries.pop(key);
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}
