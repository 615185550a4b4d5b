//! One batch: the keys it collects, the task that dispatches it, and the
//! outcome its callers wait for.

use super::{
    BatchSource, LoadError, Shared,
    observe::{BatchReport, Ending, Stopwatch, Waits},
};
use futures::FutureExt;
use parking_lot::Mutex;
use std::{
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::{
        Arc, OnceLock,
        atomic::{
            AtomicU64,
            Ordering::{Relaxed, SeqCst},
        },
    },
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};
use tokio::{runtime::Handle, sync::OwnedSemaphorePermit};
use tracing::Instrument;

/// A batch's answers, one per key in the order the batch holds them, or
/// the error every caller shares.
type Outcome<S> =
    Result<Box<[Answer<<S as BatchSource>::Value>]>, LoadError<<S as BatchSource>::Error>>;

/// The values a fetch found, in the order of its keys (see
/// [`BatchSource::load_in_order`]).
pub(crate) type Found<S> =
    Result<Vec<Option<<S as BatchSource>::Value>>, LoadError<<S as BatchSource>::Error>>;

/// One key's value and how many of its callers have not taken it yet: the
/// last one takes the value, the others clone it, so a key loaded once (the
/// usual case) moves its value to its caller without a copy.
struct Answer<V> {
    inner: Mutex<(usize, Option<V>)>,
}

impl<V: Clone> Answer<V> {
    fn new(callers: usize, value: Option<V>) -> Self {
        Self {
            inner: Mutex::new((callers, value)),
        }
    }

    /// One caller's copy; the value itself for the last caller. (A caller
    /// dropped before taking its copy leaves the others cloning.)
    fn take(&self) -> Option<V> {
        let mut inner = self.inner.lock();
        let (callers, value) = &mut *inner;
        *callers = callers.saturating_sub(1);
        if *callers == 0 {
            value.take()
        } else {
            value.clone()
        }
    }
}

/// The most keys a batch makes room for before any arrive.
const MAX_PREALLOCATED_KEYS: usize = 1024;

/// A batch from the moment its first key arrives until its outcome is known.
pub(crate) struct Batch<S: BatchSource> {
    /// Keys collected while the batch is open, and the tasks to wake.
    inner: Mutex<Inner<S::Key>>,
    /// The keys, from the moment the batch is sealed until it is dropped:
    /// the fetch reads them, and the loader's registry compares with them.
    sealed: OnceLock<Vec<S::Key>>,
    outcome: OnceLock<Outcome<S>>,
}

struct Inner<K> {
    /// Moved to `sealed` when the batch is sealed.
    keys: Vec<K>,
    /// How many callers wait for each key (by its index in `keys`); taken
    /// when the outcome is published.
    callers: Vec<usize>,
    /// One waker per waiting caller (a caller re-polled with another waker
    /// replaces its own entry). Taken, and woken, once `outcome` is set; a
    /// dropped caller's entry is at most one spurious wake-up.
    wakers: Vec<Waker>,
    /// The batch reached the cap: its dispatcher skips the rest of the window.
    full: bool,
    /// The task that loaded the first key, and whether every key since came
    /// from it (a fan-out of one task, or a lone caller).
    first_task: Option<tokio::task::Id>,
    one_task: bool,
    /// The dispatcher, while a time window waits for the batch to fill.
    dispatcher: Option<Waker>,
    /// A pending fetch its leader drives while it answers no other caller
    /// (see [`lead`]).
    parked: Option<ParkedFetch>,
}

/// A fetch between two polls by its leader: the runtime to hand it to once
/// another caller comes, and the leader to wake then (it would otherwise
/// wait for a fetch that no longer wakes it).
struct ParkedFetch {
    fetch: Fetch,
    runtime: Handle,
    leader: Waker,
}

impl ParkedFetch {
    /// Make the fetch a task of its own, and let its leader know.
    fn hand_to_task(self) {
        self.runtime.spawn(self.fetch);
        self.leader.wake();
    }
}

impl<S: BatchSource> Batch<S> {
    /// A batch of up to `max_size` keys.
    pub(crate) fn new(max_size: usize) -> Self {
        // Room for every key, its caller count and its caller's waker up
        // front (growing copies them all once per doubling), within reason
        // for a cap set very high.
        let capacity = max_size.min(MAX_PREALLOCATED_KEYS);
        Self {
            inner: Mutex::new(Inner {
                keys: Vec::with_capacity(capacity),
                callers: Vec::with_capacity(capacity),
                wakers: Vec::with_capacity(capacity),
                full: false,
                first_task: None,
                one_task: true,
                dispatcher: None,
                parked: None,
            }),
            sealed: OnceLock::new(),
            outcome: OnceLock::new(),
        }
    }

    /// Add a key loaded by `task` (`None` outside a task); returns the
    /// key's index (its caller's [`wait`](Self::wait) names it), how many
    /// keys the batch now holds, and whether they all came from one task.
    /// Called only while the batch is the loader's open batch, under the
    /// state lock.
    pub(crate) fn push(&self, key: S::Key, task: Option<tokio::task::Id>) -> (usize, usize, bool) {
        let mut inner = self.inner.lock();
        if inner.keys.is_empty() {
            inner.first_task = task;
        } else if inner.first_task != task {
            inner.one_task = false;
        }
        inner.keys.push(key);
        inner.callers.push(1);
        let len = inner.keys.len();
        (len - 1, len, inner.one_task)
    }

    /// One more caller waits for the key at `index`. Called under the state
    /// lock while the key is attached to this batch, so before its outcome
    /// is published.
    pub(crate) fn join(&self, index: usize) {
        if let Some(callers) = self.inner.lock().callers.get_mut(index) {
            *callers += 1;
        }
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

    /// Keys collected so far (zero once sealed).
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().keys.len()
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

    /// Keep a pending fetch for its leader to drive, unless a caller is
    /// already waiting on the batch: then it becomes a task at once.
    /// Returns whether it was kept.
    fn park(&self, fetch: Fetch, runtime: &Handle, leader: &Waker) -> bool {
        let mut inner = self.inner.lock();
        if inner.wakers.is_empty() {
            inner.parked = Some(ParkedFetch {
                fetch,
                runtime: runtime.clone(),
                leader: leader.clone(),
            });
            return true;
        }
        drop(inner);
        runtime.spawn(fetch);
        false
    }

    /// Whether the key at `index` is `key`. Called under the state lock,
    /// which the batch is sealed under too.
    pub(crate) fn holds(&self, index: usize, key: &S::Key) -> bool {
        match self.sealed.get() {
            Some(keys) => keys.get(index) == Some(key),
            None => self.inner.lock().keys.get(index) == Some(key),
        }
    }

    /// Take no more keys. Called under the state lock.
    fn seal_keys(&self) {
        let keys = std::mem::take(&mut self.inner.lock().keys);
        let _ = self.sealed.set(keys);
    }

    /// The keys of a sealed batch (none before).
    fn sealed_keys(&self) -> &[S::Key] {
        self.sealed.get().map_or(&[], Vec::as_slice)
    }

    /// Set the outcome and wake every caller waiting for it.
    fn publish(&self, found: Found<S>) {
        let callers = std::mem::take(&mut self.inner.lock().callers);
        let outcome = found.map(|values| {
            let mut values = values.into_iter();
            callers
                .into_iter()
                .map(|callers| Answer::new(callers, values.next().flatten()))
                .collect()
        });
        let _ = self.outcome.set(outcome);
        // Taken under the lock: a caller that found no outcome registers its
        // waker under the same lock, so it is either taken here or sees the
        // outcome when it re-checks.
        let wakers = std::mem::take(&mut self.inner.lock().wakers);
        for waker in wakers {
            waker.wake();
        }
    }

    /// Wait for the outcome and take this caller's value, the key's at
    /// `index`, out of it.
    pub(crate) async fn wait(&self, index: usize) -> Result<Option<S::Value>, LoadError<S::Error>> {
        let mut slot: Option<usize> = None;
        let outcome = std::future::poll_fn(|cx| {
            if let Some(outcome) = self.outcome.get() {
                return Poll::Ready(outcome);
            }
            let mut inner = self.inner.lock();
            if let Some(outcome) = self.outcome.get() {
                return Poll::Ready(outcome);
            }
            let promoted = match slot {
                Some(index) => {
                    let registered = &mut inner.wakers[index];
                    if !registered.will_wake(cx.waker()) {
                        registered.clone_from(cx.waker());
                    }
                    None
                }
                None => {
                    slot = Some(inner.wakers.len());
                    inner.wakers.push(cx.waker().clone());
                    // A fetch driven by its leader now has company: it
                    // becomes a task, so this caller never depends on the
                    // leader being polled.
                    inner.parked.take()
                }
            };
            drop(inner);
            if let Some(parked) = promoted {
                parked.hand_to_task();
            }
            Poll::Pending
        })
        .await;
        match outcome {
            Ok(answers) => Ok(answers.get(index).and_then(Answer::take)),
            Err(err) => Err(err.clone()),
        }
    }
}

/// Runs one batch as its own task: waits until the batch is due, takes a
/// concurrency permit, then fetches. Used for batches that `load_many`
/// opens, and for a batch whose leading caller was dropped before fetching.
///
/// The abandon guard is made before the future, so even a task dropped
/// before its first poll (the runtime shutting down) fails its callers
/// instead of leaving them waiting.
pub(crate) fn dispatch<S: BatchSource>(
    shared: Arc<Shared<S>>,
    batch: Arc<Batch<S>>,
) -> impl Future<Output = ()> + Send + 'static {
    let guard = AbandonGuard { shared, batch };
    async move {
        let mut stopwatch = Stopwatch::start();
        let in_flight = until_due(&guard.shared, &guard.batch).await;
        stopwatch.due();
        let permit = acquire(&guard.shared).await;
        let (shared, batch) = (Arc::clone(&guard.shared), Arc::clone(&guard.batch));
        let waits = stopwatch.permitted();
        fetch(
            shared,
            batch,
            Slot {
                _permit: permit,
                _in_flight: in_flight,
            },
            waits,
        )
        .await;
        drop(guard);
    }
}

/// Runs a batch from inside the `load` call that opened it: the caller
/// waits until the batch is due, takes a permit, seals the batch and polls
/// the fetch once. A source that answers at once is then done. A pending
/// fetch of a batch with other callers becomes its own task; a lone load's
/// fetch is driven to the end by its caller, so it costs no task and no
/// wake-up between tasks, like a direct query. Dropping the caller never
/// drops a fetch, and a caller dropped before its fetch began hands the
/// batch to a task of its own ([`dispatch`]).
pub(crate) async fn lead<S: BatchSource>(
    shared: &Arc<Shared<S>>,
    batch: &Arc<Batch<S>>,
    handle: &Handle,
) {
    let mut hand_off = HandOff {
        shared,
        batch,
        handle,
        armed: true,
    };
    let mut stopwatch = Stopwatch::start();
    let in_flight = until_due(shared, batch).await;
    stopwatch.due();
    let permit = acquire(shared).await;
    // No await from here until the fetch is finished or spawned.
    hand_off.armed = false;
    let slot = Slot {
        _permit: permit,
        _in_flight: in_flight,
    };
    let mut run = Some(fetch(
        Arc::clone(shared),
        Arc::clone(batch),
        slot,
        stopwatch.permitted(),
    ));
    // Drive the fetch while no other caller waits on the batch. Why: a
    // fetch in a task of its own hands its outcome to the caller through a
    // wake-up, and with the task the driver spawned on finishing (a pool
    // returning its connection) already queued, Tokio answers that wake-up
    // by waking a parked worker: a cross-thread wake-up per lone load that
    // a direct query does not pay. Between polls the fetch is parked in the
    // batch; a caller that comes to wait on it hands it to a task and wakes
    // this leader, which then waits like the others, and a leader dropped
    // mid-fetch hands it to a task too: nobody depends on a leader that
    // stops being polled.
    let _hand_off = Parked { batch };
    let mut first = true;
    std::future::poll_fn(|cx| {
        let mut fetch = match run.take() {
            Some(fetch) => fetch,
            None => match batch.inner.lock().parked.take() {
                Some(parked) => parked.fetch,
                None => return Poll::Ready(()), // a task has it now
            },
        };
        let done = fetch.as_mut().poll(cx).is_ready();
        // Sticky: a database's answer sometimes arrives within the first
        // poll (its process, woken by the query, preempts the caller on a
        // busy core and answers before the caller reads), which says
        // nothing about the next fetch.
        if std::mem::take(&mut first) && !done {
            shared.fetches_wait.store(true, Relaxed);
        }
        if done || !batch.park(fetch, handle, cx.waker()) {
            return Poll::Ready(());
        }
        Poll::Pending
    })
    .await;
}

/// Spawns the parked fetch of a leader dropped mid-fetch.
struct Parked<'a, S: BatchSource> {
    batch: &'a Batch<S>,
}

impl<S: BatchSource> Drop for Parked<'_, S> {
    fn drop(&mut self) {
        let parked = self.batch.inner.lock().parked.take();
        if let Some(parked) = parked {
            parked.runtime.spawn(parked.fetch);
        }
    }
}

/// Whether this task runs on Tokio's multi-thread runtime, where a task
/// that wakes itself (a yield) also wakes a parked worker.
fn on_multi_thread_runtime() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// Wait out the window and, with [`BatchWindow::FillWhileBusy`], keep the
/// batch open while the loader is busy, until it fills or a batch in
/// flight completes. Returns the batch's place among the batches in flight.
///
/// [`BatchWindow::FillWhileBusy`]: super::BatchWindow::FillWhileBusy
async fn until_due<S: BatchSource>(shared: &Arc<Shared<S>>, batch: &Batch<S>) -> InFlight<S> {
    let window = shared.config.window;
    if window != super::BatchWindow::FillWhileBusy {
        window.wait(batch).await;
        return InFlight::join(shared);
    }
    // Never dispatched within the poll that opened it: loads made in the
    // same poll of the same task (`join_all`, a GraphQL list field) join
    // it, then ready tasks do during one yield. A source that answers at
    // once leaves no batch in flight for a storm of loads to gather
    // behind: on the multi-thread runtime its batch stays open while the
    // runtime's ready tasks are still adding keys (deferred yields).
    let storm = !shared.fetches_wait.load(Relaxed) && on_multi_thread_runtime();
    let gather = || async move {
        if storm {
            super::yields_while_growing(batch).await;
        } else {
            window.wait(batch).await;
        }
    };
    gather().await;
    loop {
        // Registered before the check, so a batch completing between the
        // check and the wait still wakes this one.
        let done = shared.batch_done.notified();
        tokio::pin!(done);
        done.as_mut().enable();
        if let Some(in_flight) = InFlight::join_unless_busy(shared, batch) {
            return in_flight;
        }
        std::future::poll_fn(|cx| {
            if batch.poll_full(cx).is_ready() {
                return Poll::Ready(());
            }
            done.as_mut().poll(cx)
        })
        .await;
        // The callers of the batch that completed were woken just before
        // this leader: one more yield lets them add their next keys first.
        gather().await;
    }
}

/// A batch counted among its loader's batches in flight, from the end of
/// its window until its fetch is done or dropped; leaving signals any open
/// batch waiting for a batch to complete.
struct InFlight<S: BatchSource> {
    shared: Arc<Shared<S>>,
}

impl<S: BatchSource> InFlight<S> {
    fn join(shared: &Arc<Shared<S>>) -> Self {
        shared.in_flight_batches.fetch_add(1, SeqCst);
        Self {
            shared: Arc::clone(shared),
        }
    }

    /// Join if the batch is full or no other batch is in flight.
    fn join_unless_busy(shared: &Arc<Shared<S>>, batch: &Batch<S>) -> Option<Self> {
        let full = batch.is_full();
        shared
            .in_flight_batches
            .fetch_update(SeqCst, SeqCst, |n| (full || n == 0).then_some(n + 1))
            .ok()?;
        Some(Self {
            shared: Arc::clone(shared),
        })
    }
}

impl<S: BatchSource> Drop for InFlight<S> {
    fn drop(&mut self) {
        self.shared.in_flight_batches.fetch_sub(1, SeqCst);
        self.shared.batch_done.notify_waiters();
    }
}

/// A leading caller dropped before it began the fetch: a task takes over.
struct HandOff<'a, S: BatchSource> {
    shared: &'a Arc<Shared<S>>,
    batch: &'a Arc<Batch<S>>,
    handle: &'a Handle,
    armed: bool,
}

impl<S: BatchSource> Drop for HandOff<'_, S> {
    fn drop(&mut self) {
        if self.armed {
            self.handle
                .spawn(dispatch(Arc::clone(self.shared), Arc::clone(self.batch)));
        }
    }
}

async fn acquire<S: BatchSource>(shared: &Shared<S>) -> Option<OwnedSemaphorePermit> {
    match &shared.permits {
        // The semaphore is never closed, so acquiring cannot fail.
        Some(permits) => Arc::clone(permits).acquire_owned().await.ok(),
        None => None,
    }
}

type Fetch = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a fetch holds until its outcome is published: its concurrency
/// permit and its place among the batches in flight.
struct Slot<S: BatchSource> {
    _permit: Option<OwnedSemaphorePermit>,
    _in_flight: InFlight<S>,
}

/// Seal the batch and return its fetch: call the source with the panic
/// contained, release the keys (caching their values if caching is on) and
/// publish the outcome. The fetch owns all it needs, so it can be polled
/// where it was made and finished by a task.
fn fetch<S: BatchSource>(
    shared: Arc<Shared<S>>,
    batch: Arc<Batch<S>>,
    slot: Slot<S>,
    waits: Option<Waits>,
) -> Fetch {
    {
        let mut state = shared.state.lock();
        state.seal(&batch);
        batch.seal_keys();
    }
    let batch_size = batch.sealed_keys().len();
    shared.stats.record_batch(batch_size);
    let report = BatchReport::begin(shared.config.name, batch_size, waits);
    let guard = AbandonGuard { shared, batch };
    Box::pin(async move {
        // Released once the outcome is published (or the fetch dropped).
        let _slot = slot;
        let AbandonGuard { shared, batch } = &guard;
        let keys = batch.sealed_keys();
        // The source is called inside the guarded future: a `load` may run
        // code (and panic) before it returns its future. That future (a
        // database read's, kilobytes) is boxed: moved once, into the box,
        // instead of with each wrapper around it and with the fetch itself.
        let started = Instant::now();
        let load = async { Box::pin(shared.source.load_in_order(keys)).await };
        let result = AssertUnwindSafe(load)
            .catch_unwind()
            .instrument(report.span())
            .await;
        let finished = Instant::now();
        let (outcome, ending) = match result {
            Ok(Ok(values)) => (Ok(values), Ending::Ok),
            Ok(Err(err)) => {
                let source = Arc::new(err);
                (Err(LoadError::Source { source, batch_size }), Ending::Error)
            }
            Err(panic) => {
                let message = panic_message(panic.as_ref()).into();
                let panicked = LoadError::Panicked {
                    message,
                    batch_size,
                };
                (Err(panicked), Ending::Panicked)
            }
        };
        if outcome.is_err() {
            shared.stats.record_error();
        }
        report.end(ending, finished - started);
        let mut released = Vec::with_capacity(keys.len());
        shared
            .state
            .lock()
            .complete(batch, keys, outcome.as_deref().ok(), &mut released);
        drop(released);
        batch.publish(outcome);
        shared.last_batch.record(started, finished);
    })
}

/// When the last published batch was answered, and how long its fetch
/// took: how the next batch tells callers loading again in a loop from a
/// new burst.
pub(crate) struct LastBatch {
    /// Nanoseconds its fetch took.
    fetch_nanos: AtomicU64,
    /// When it was published, in nanoseconds since `epoch`.
    published_at: AtomicU64,
    epoch: Instant,
}

impl Default for LastBatch {
    fn default() -> Self {
        Self {
            fetch_nanos: AtomicU64::new(0),
            published_at: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

impl LastBatch {
    /// A batch whose fetch ran from `started` to `finished` was published.
    fn record(&self, started: Instant, finished: Instant) {
        self.fetch_nanos.store(nanos(finished - started), Relaxed);
        let published_at = finished.saturating_duration_since(self.epoch);
        self.published_at.store(nanos(published_at), Relaxed);
    }

    /// Less time has passed since it was published than its fetch took:
    /// a key registered now comes from a caller it answered, loading again,
    /// rather than from a new request.
    pub(crate) fn answered_within_its_fetch_time(&self) -> bool {
        let since = nanos(self.epoch.elapsed()).saturating_sub(self.published_at.load(Relaxed));
        since < self.fetch_nanos.load(Relaxed)
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}

/// If a batch's dispatcher or fetch is dropped before publishing (the
/// runtime is shutting down), fail the batch so no caller waits forever,
/// and forget its keys.
struct AbandonGuard<S: BatchSource> {
    shared: Arc<Shared<S>>,
    batch: Arc<Batch<S>>,
}

impl<S: BatchSource> Drop for AbandonGuard<S> {
    fn drop(&mut self) {
        if self.batch.outcome.get().is_none() {
            self.shared.state.lock().forget(&self.batch);
            self.batch.publish(Err(LoadError::Abandoned));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{BatchSource, Loader, from_fn};
    use std::task::Poll;
    use std::{
        collections::HashMap,
        convert::Infallible,
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering::SeqCst},
        },
    };
    use tokio::sync::Semaphore;

    /// A loader whose every fetch waits for a permit of the returned gate
    /// and counts itself in the returned counter; values are `key * 2`.
    fn gated_loader() -> (
        Loader<impl BatchSource<Key = u32, Value = u32, Error = Infallible>>,
        Arc<Semaphore>,
        Arc<AtomicUsize>,
    ) {
        let gate = Arc::new(Semaphore::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        let loader = Loader::new(from_fn({
            let (gate, calls) = (Arc::clone(&gate), Arc::clone(&calls));
            move |keys: Vec<u32>| {
                let gate = Arc::clone(&gate);
                calls.fetch_add(1, SeqCst);
                async move {
                    gate.acquire().await.unwrap().forget();
                    Ok::<_, Infallible>(
                        keys.into_iter()
                            .map(|k| (k, k * 2))
                            .collect::<HashMap<_, _>>(),
                    )
                }
            }
        }));
        (loader, gate, calls)
    }

    #[tokio::test]
    async fn a_dropped_leader_neither_cancels_nor_repeats_its_fetch() {
        let (loader, gate, calls) = gated_loader();
        let leader = tokio::spawn({
            let loader = loader.clone();
            async move { loader.load(1).await }
        });
        let follower = tokio::spawn({
            let loader = loader.clone();
            async move { loader.load(2).await }
        });
        while calls.load(SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        leader.abort();
        assert!(leader.await.unwrap_err().is_cancelled());
        gate.add_permits(1);
        assert_eq!(follower.await.unwrap().unwrap(), Some(4));
        assert_eq!(calls.load(SeqCst), 1, "the fetch ran once");
        assert_eq!(loader.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_leader_dropped_mid_fetch_leaves_its_callers_served_by_one_fetch() {
        let (loader, gate, calls) = gated_loader();
        let mut leader = Box::pin(loader.load(1));
        assert!(futures::poll!(leader.as_mut()).is_pending());
        let followers: Vec<_> = [2, 3]
            .map(|key| {
                let loader = loader.clone();
                tokio::spawn(async move { loader.load(key).await })
            })
            .into();
        tokio::task::yield_now().await;
        while calls.load(SeqCst) == 0 {
            assert!(futures::poll!(leader.as_mut()).is_pending());
        }
        drop(leader);
        gate.add_permits(1);
        for (key, follower) in [2, 3].into_iter().zip(followers) {
            assert_eq!(follower.await.unwrap().unwrap(), Some(key * 2));
        }
        assert_eq!(calls.load(SeqCst), 1, "the fetch ran once");
        assert_eq!(loader.in_flight(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lone_load_fetches_in_its_own_task() {
        let fetched_in = Arc::new(parking_lot::Mutex::new(None));
        let seen = Arc::new(Semaphore::new(0));
        let loader = Loader::new(from_fn({
            let fetched_in = Arc::clone(&fetched_in);
            let seen = Arc::clone(&seen);
            move |keys: Vec<u32>| {
                let (fetched_in, seen) = (Arc::clone(&fetched_in), Arc::clone(&seen));
                async move {
                    // Pending once, like a round trip, then note who polls.
                    seen.acquire().await.unwrap().forget();
                    *fetched_in.lock() = tokio::task::try_id();
                    Ok::<_, Infallible>(keys.into_iter().map(|k| (k, k)).collect::<HashMap<_, _>>())
                }
            }
        }));
        let caller = tokio::spawn({
            let loader = loader.clone();
            async move { (tokio::task::id(), loader.load(7).await) }
        });
        while loader.stats().total_operations == 0 {
            tokio::task::yield_now().await;
        }
        seen.add_permits(1);
        let (caller_id, value) = caller.await.unwrap();
        assert_eq!(value.unwrap(), Some(7));
        assert_eq!(*fetched_in.lock(), Some(caller_id), "no task of its own");
    }

    #[tokio::test]
    async fn a_duplicate_load_never_waits_on_a_leader_that_is_not_polled() {
        let (loader, gate, calls) = gated_loader();
        let mut leader = Box::pin(loader.load(1));
        while calls.load(SeqCst) == 0 {
            assert!(futures::poll!(leader.as_mut()).is_pending());
        }
        // Same key: joins the leader's batch, whose leader is never polled again.
        let duplicate = tokio::spawn({
            let loader = loader.clone();
            async move { loader.load(1).await }
        });
        gate.add_permits(1);
        assert_eq!(duplicate.await.unwrap().unwrap(), Some(2));
        let Poll::Ready(led) = futures::poll!(leader.as_mut()) else {
            panic!("the leader's value is published");
        };
        assert_eq!(led.unwrap(), Some(2));
        assert_eq!(calls.load(SeqCst), 1, "one fetch served both");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_leader_whose_fetch_became_a_task_still_gets_its_value() {
        let (loader, gate, calls) = gated_loader();
        let leader = tokio::spawn({
            let loader = loader.clone();
            async move { loader.load(1).await }
        });
        while calls.load(SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // Same key: the duplicate takes the leader's fetch into a task.
        let duplicate = tokio::spawn({
            let loader = loader.clone();
            async move { loader.load(1).await }
        });
        while loader.stats().deduplicated_keys == 0 {
            tokio::task::yield_now().await;
        }
        // Let the fetch's task poll it, so the leader is no longer the one
        // the fetch wakes.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        gate.add_permits(1);
        let both = async { (leader.await, duplicate.await) };
        let (leader, duplicate) = tokio::time::timeout(std::time::Duration::from_secs(5), both)
            .await
            .expect("neither waits forever");
        assert_eq!(leader.unwrap().unwrap(), Some(2));
        assert_eq!(duplicate.unwrap().unwrap(), Some(2));
        assert_eq!(calls.load(SeqCst), 1, "one fetch served both");
    }

    #[tokio::test]
    async fn a_lone_leader_dropped_mid_fetch_leaves_the_fetch_running() {
        let (loader, gate, calls) = gated_loader();
        let mut leader = Box::pin(loader.load(1));
        while calls.load(SeqCst) == 0 {
            assert!(futures::poll!(leader.as_mut()).is_pending());
        }
        drop(leader);
        assert_eq!(loader.in_flight(), 1, "the fetch goes on");
        gate.add_permits(1);
        while loader.in_flight() != 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(calls.load(SeqCst), 1);
        gate.add_permits(1);
        assert_eq!(loader.load(1).await.unwrap(), Some(2), "nothing stuck");
    }

    #[tokio::test]
    async fn a_leader_dropped_in_its_window_hands_the_batch_to_a_task() {
        let loader = Loader::new(from_fn(|keys: Vec<u32>| async move {
            Ok::<_, Infallible>(
                keys.into_iter()
                    .map(|k| (k, k * 2))
                    .collect::<HashMap<_, _>>(),
            )
        }));
        // Polled once: the key is registered and the window has begun.
        assert!(futures::FutureExt::now_or_never(loader.load(1)).is_none());
        assert_eq!(loader.in_flight(), 1);
        assert_eq!(loader.load(2).await.unwrap(), Some(4));
        assert_eq!(loader.stats().total_operations, 1, "both keys in one batch");
        assert_eq!(loader.in_flight(), 0);
    }
}
