//! One batch: the keys it collects, the task that dispatches it, and the
//! outcome its callers wait for.

use super::{BatchSource, LoadError, Shared};
use futures::FutureExt;
use parking_lot::Mutex;
use std::{
    collections::HashMap,
    panic::AssertUnwindSafe,
    sync::{Arc, OnceLock},
    task::{Context, Poll, Waker},
    time::Instant,
};

pub(crate) type Outcome<S> = Result<
    HashMap<<S as BatchSource>::Key, <S as BatchSource>::Value>,
    LoadError<<S as BatchSource>::Error>,
>;

/// A batch from the moment its first key arrives until its outcome is known.
pub(crate) struct Batch<S: BatchSource> {
    /// Keys collected while the batch is open, and the tasks to wake.
    inner: Mutex<Inner<S::Key>>,
    outcome: OnceLock<Outcome<S>>,
}

struct Inner<K> {
    /// Taken when the batch is sealed.
    keys: Vec<K>,
    /// One waker per waiting caller (a caller re-polled with another waker
    /// replaces its own entry). Taken, and woken, once `outcome` is set; a
    /// dropped caller's entry is at most one spurious wake-up.
    wakers: Vec<Waker>,
    /// The batch reached the cap: its dispatcher skips the rest of the window.
    full: bool,
    /// The dispatcher, while a time window waits for the batch to fill.
    dispatcher: Option<Waker>,
}

impl<S: BatchSource> Batch<S> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                keys: Vec::with_capacity(capacity),
                // Room for a typical batch's callers without growing from
                // tiny sizes, without a large allocation for a lone load.
                wakers: Vec::with_capacity(capacity.min(32)),
                full: false,
                dispatcher: None,
            }),
            outcome: OnceLock::new(),
        }
    }

    /// Add a key; returns how many keys the batch now holds. Called only
    /// while the batch is the loader's open batch, under the state lock.
    pub(crate) fn push(&self, key: S::Key) -> usize {
        let mut inner = self.inner.lock();
        inner.keys.push(key);
        inner.keys.len()
    }

    pub(crate) fn mark_full(&self) {
        let dispatcher = {
            let mut inner = self.inner.lock();
            inner.full = true;
            inner.dispatcher.take()
        };
        if let Some(dispatcher) = dispatcher {
            dispatcher.wake();
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.inner.lock().full
    }

    /// Ready once the batch is full; otherwise wake `cx` when it fills.
    pub(crate) fn poll_full(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.inner.lock();
        if inner.full {
            return Poll::Ready(());
        }
        match &mut inner.dispatcher {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The keys collected so far; the batch takes no more after this.
    fn take_keys(&self) -> Vec<S::Key> {
        std::mem::take(&mut self.inner.lock().keys)
    }

    /// Set the outcome and wake every caller waiting for it.
    fn publish(&self, outcome: Outcome<S>) {
        let _ = self.outcome.set(outcome);
        // Taken under the lock: a caller that found no outcome registers its
        // waker under the same lock, so it is either taken here or sees the
        // outcome when it re-checks.
        let wakers = std::mem::take(&mut self.inner.lock().wakers);
        for waker in wakers {
            waker.wake();
        }
    }

    /// Wait for the outcome and pick this caller's value out of it.
    pub(crate) async fn wait(&self, key: &S::Key) -> Result<Option<S::Value>, LoadError<S::Error>> {
        let mut slot: Option<usize> = None;
        let outcome = std::future::poll_fn(|cx| {
            if let Some(outcome) = self.outcome.get() {
                return Poll::Ready(outcome);
            }
            let mut inner = self.inner.lock();
            if let Some(outcome) = self.outcome.get() {
                return Poll::Ready(outcome);
            }
            match slot {
                Some(index) => {
                    let registered = &mut inner.wakers[index];
                    if !registered.will_wake(cx.waker()) {
                        registered.clone_from(cx.waker());
                    }
                }
                None => {
                    slot = Some(inner.wakers.len());
                    inner.wakers.push(cx.waker().clone());
                }
            }
            Poll::Pending
        })
        .await;
        match outcome {
            Ok(values) => Ok(values.get(key).cloned()),
            Err(err) => Err(err.clone()),
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
    shared.config.window.wait(&batch).await;
    let _permit = match &shared.permits {
        // The semaphore is never closed, so acquiring cannot fail.
        Some(permits) => permits.acquire().await.ok(),
        None => None,
    };
    let keys = {
        let mut state = shared.state.lock();
        state.seal(&batch);
        batch.take_keys()
    };

    let batch_size = keys.len();
    shared.stats.record_batch(batch_size);
    // Two clock reads a batch only when someone listens for the event.
    let started =
        tracing::enabled!(target: "coalesce::loader", tracing::Level::DEBUG).then(Instant::now);
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
    if let Some(started) = started {
        tracing::debug!(
            target: "coalesce::loader",
            batch_size,
            elapsed_us = started.elapsed().as_micros() as u64,
            ok = outcome.is_ok(),
            "batch completed"
        );
    }

    shared
        .state
        .lock()
        .complete(&batch, &keys, outcome.as_ref().ok());
    batch.publish(outcome);
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
            self.batch.publish(Err(LoadError::Abandoned));
        }
    }
}
