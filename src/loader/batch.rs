//! One batch: the keys it collects, the task that dispatches it, and the
//! outcome its callers wait for.

use super::{BatchSource, LoadError, Shared};
use futures::FutureExt;
use parking_lot::Mutex;
use std::{
    collections::HashMap, panic::AssertUnwindSafe, sync::Arc, sync::OnceLock, time::Instant,
};
use tokio::sync::Notify;

pub(crate) type Outcome<S> = Result<
    HashMap<<S as BatchSource>::Key, <S as BatchSource>::Value>,
    LoadError<<S as BatchSource>::Error>,
>;

/// A batch from the moment its first key arrives until its outcome is known.
pub(crate) struct Batch<S: BatchSource> {
    /// Keys collected while the batch is open; taken when it is sealed.
    keys: Mutex<Vec<S::Key>>,
    /// Signalled when the batch reached the cap, so its dispatcher skips the
    /// rest of the window.
    full: Notify,
    /// Signalled once `outcome` is set.
    done: Notify,
    outcome: OnceLock<Outcome<S>>,
}

impl<S: BatchSource> Batch<S> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            keys: Mutex::new(Vec::with_capacity(capacity)),
            full: Notify::new(),
            done: Notify::new(),
            outcome: OnceLock::new(),
        }
    }

    /// Add a key; returns how many keys the batch now holds. Called only
    /// while the batch is the loader's open batch, under the state lock.
    pub(crate) fn push(&self, key: S::Key) -> usize {
        let mut keys = self.keys.lock();
        keys.push(key);
        keys.len()
    }

    pub(crate) fn mark_full(&self) {
        self.full.notify_one();
    }

    /// Wait for the outcome and pick this caller's value out of it.
    pub(crate) async fn wait(&self, key: &S::Key) -> Result<Option<S::Value>, LoadError<S::Error>> {
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            // Register before checking, so a completion between the check
            // and the await is not missed.
            notified.as_mut().enable();
            if let Some(outcome) = self.outcome.get() {
                return match outcome {
                    Ok(values) => Ok(values.get(key).cloned()),
                    Err(err) => Err(err.clone()),
                };
            }
            notified.await;
        }
    }
}

/// Runs one batch: waits out the window, takes a concurrency permit, seals
/// the batch, calls the source with the panic contained, and publishes the
/// outcome. Spawned as its own task, so no caller's cancellation affects it.
pub(crate) async fn dispatch<S: BatchSource>(shared: Arc<Shared<S>>, batch: Arc<Batch<S>>) {
    let guard = AbandonGuard {
        shared: &shared,
        batch: &batch,
    };
    shared.config.window.wait(&batch.full).await;
    let _permit = match &shared.permits {
        // The semaphore is never closed, so acquiring cannot fail.
        Some(permits) => permits.acquire().await.ok(),
        None => None,
    };
    let keys = {
        let mut state = shared.state.lock();
        state.seal(&batch);
        std::mem::take(&mut *batch.keys.lock())
    };

    let batch_size = keys.len();
    shared.stats.record_batch(batch_size);
    let started = Instant::now();
    let result = AssertUnwindSafe(shared.source.load(&keys))
        .catch_unwind()
        .await;
    let outcome = match result {
        Ok(Ok(values)) => Ok(values),
        Ok(Err(err)) => Err(LoadError::Source {
            source: Arc::new(err),
            batch_size,
        }),
        Err(panic) => Err(LoadError::Panicked {
            message: panic_message(panic.as_ref()).into(),
            batch_size,
        }),
    };
    if outcome.is_err() {
        shared.stats.record_error();
    }
    tracing::debug!(
        target: "coalesce::loader",
        batch_size,
        elapsed_us = started.elapsed().as_micros() as u64,
        ok = outcome.is_ok(),
        "batch completed"
    );

    // Release the keys before publishing, so once any caller has its value
    // the loader holds nothing of this batch.
    shared
        .state
        .lock()
        .complete(&batch, &keys, outcome.as_ref().ok());
    let _ = batch.outcome.set(outcome);
    batch.done.notify_waiters();
    drop(guard);
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}

/// If the dispatcher is dropped before publishing (the runtime is shutting
/// down), fail the batch so no caller waits forever, and forget its keys.
struct AbandonGuard<'a, S: BatchSource> {
    shared: &'a Shared<S>,
    batch: &'a Arc<Batch<S>>,
}

impl<S: BatchSource> Drop for AbandonGuard<'_, S> {
    fn drop(&mut self) {
        if self.batch.outcome.get().is_none() {
            self.shared.state.lock().forget(self.batch);
            let _ = self.batch.outcome.set(Err(LoadError::Abandoned));
            self.batch.done.notify_waiters();
        }
    }
}
