//! An instrumented in-memory batch source: records every batch, can hold a
//! batch in flight until the test releases it, and fails or panics on
//! chosen keys.

use coalesce::BatchSource;
use parking_lot::Mutex;
use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst},
    },
    time::Duration,
};
use tokio::sync::Semaphore;

/// A key whose batch the source fails with an error.
pub const FAIL_KEY: u64 = 666;
/// A key whose batch makes the source panic.
pub const PANIC_KEY: u64 = 999;

#[derive(Debug, thiserror::Error)]
#[error("source refused key {0}")]
pub struct SourceError(pub u64);

#[derive(Default)]
struct Inner {
    batches: Mutex<Vec<Vec<u64>>>,
    running: AtomicUsize,
    most_running: AtomicUsize,
    version: AtomicU64,
    gate: Option<Semaphore>,
    delay: Option<Duration>,
}

/// Cheap to clone; clones share their records.
#[derive(Clone, Default)]
pub struct Recorder(Arc<Inner>);

/// What a direct per-key lookup returns: every fifth key is missing.
pub fn expected(key: u64, version: u64) -> Option<String> {
    (!key.is_multiple_of(5)).then(|| format!("value {key} v{version}"))
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every batch waits for a permit from [`Recorder::release`].
    pub fn gated() -> Self {
        Self(Arc::new(Inner {
            gate: Some(Semaphore::new(0)),
            ..Inner::default()
        }))
    }

    /// Every batch takes this long.
    pub fn slow(delay: Duration) -> Self {
        Self(Arc::new(Inner {
            delay: Some(delay),
            ..Inner::default()
        }))
    }

    pub fn release(&self, batches: usize) {
        if let Some(gate) = &self.0.gate {
            gate.add_permits(batches);
        }
    }

    pub fn batches(&self) -> Vec<Vec<u64>> {
        self.0.batches.lock().clone()
    }

    pub fn running(&self) -> usize {
        self.0.running.load(SeqCst)
    }

    pub fn most_running(&self) -> usize {
        self.0.most_running.load(SeqCst)
    }

    /// Change what every key's value reads as, like a write would.
    pub fn bump_version(&self) -> u64 {
        self.0.version.fetch_add(1, SeqCst) + 1
    }

    /// Wait (yielding) until `n` batches are inside the source; a test
    /// fails rather than hangs when they never arrive.
    pub async fn until_running(&self, n: usize) {
        let arrived = async {
            while self.running() < n {
                tokio::task::yield_now().await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(5), arrived)
            .await
            .is_err()
        {
            panic!(
                "expected {n} batches inside the source, saw {:?}",
                self.batches()
            );
        }
    }
}

impl BatchSource for Recorder {
    type Key = u64;
    type Value = String;
    type Error = SourceError;

    async fn load(&self, keys: &[u64]) -> Result<HashMap<u64, String>, SourceError> {
        let inner = &self.0;
        inner.batches.lock().push(keys.to_vec());
        // Read the version when the fetch begins, as a query would.
        let version = inner.version.load(SeqCst);
        let now = inner.running.fetch_add(1, SeqCst) + 1;
        inner.most_running.fetch_max(now, SeqCst);
        if let Some(gate) = &inner.gate {
            gate.acquire().await.expect("gate is never closed").forget();
        }
        if let Some(delay) = inner.delay {
            tokio::time::sleep(delay).await;
        }
        inner.running.fetch_sub(1, SeqCst);
        if keys.contains(&PANIC_KEY) {
            panic!("source exploded on key {PANIC_KEY}");
        }
        if keys.contains(&FAIL_KEY) {
            return Err(SourceError(FAIL_KEY));
        }
        Ok(keys
            .iter()
            .filter_map(|k| expected(*k, version).map(|v| (*k, v)))
            .collect())
    }
}
