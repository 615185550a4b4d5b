//! The database-agnostic coalescing engine.
//!
//! A [`Loader`] collects the `load(key)` calls that concurrent tasks make
//! within one tick of the runtime (or an optional short time window), and
//! calls its [`BatchSource`] once for the distinct keys, at most
//! `max_batch_size` at a time. Each caller receives its own value, `None`
//! when the source returned nothing for its key, or the batch's error.
//!
//! ```
//! use coalesce::{from_fn, BatchWindow, Loader};
//! use std::{collections::HashMap, convert::Infallible, time::Duration};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let loader = Loader::builder(from_fn(|keys: Vec<u64>| async move {
//!     Ok::<_, Infallible>(keys.into_iter().filter(|k| k % 2 == 0).map(|k| (k, k * 10)).collect::<HashMap<_, _>>())
//! }))
//! .max_batch_size(100)
//! .window(BatchWindow::Time(Duration::from_millis(2)))
//! .max_concurrent_batches(10)
//! .build()
//! .unwrap();
//! assert_eq!(loader.load_many([2, 3, 2]).await.unwrap(), vec![Some(20), None, Some(20)]);
//! # }
//! ```
//!
//! How a load travels: the caller registers its key under a short lock; a
//! key already pending or in flight joins that batch (de-duplication and
//! single-flight), otherwise it joins the open batch, opening one if there
//! is none. The `load` that opened a batch leads it: it waits out the
//! window, or less when the batch fills, takes a concurrency permit, seals
//! the batch and polls the source's future once; a source that answers at
//! once is done without a task. A pending fetch with other callers waiting
//! continues as its own task; a lone load's is driven by its caller, like a
//! direct query, until another caller comes to wait on it. With the default
//! window, [`BatchWindow::FillWhileBusy`], a batch whose window has
//! ended while other batches of the loader are in flight keeps collecting
//! keys until it is full or one of them completes: a quiet loader sends a
//! lone load after one yield, loads made within one poll of one task
//! (`join_all`) as one batch, a busy loader full batches (callers looping
//! on full batches: two halves in flight at once).
//! Batches opened by `load_many`, and a batch whose leader was dropped
//! before its fetch began, run in a dispatcher task instead. Other callers
//! only wait on the outcome, and no fetch belongs to a caller, so dropping
//! a caller never affects a batch.
//!
//! ```
//! use coalesce::{from_fn, Loader};
//! use std::{collections::HashMap, convert::Infallible, sync::Arc};
//! use tokio::{sync::Semaphore, task::yield_now};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let round_trip = Arc::new(Semaphore::new(0));
//! let loader = Loader::new(from_fn({
//!     let round_trip = Arc::clone(&round_trip);
//!     move |keys: Vec<u64>| {
//!         let round_trip = Arc::clone(&round_trip);
//!         async move {
//!             let _answered = round_trip.acquire().await;
//!             Ok::<_, Infallible>(keys.into_iter().map(|k| (k, k)).collect::<HashMap<_, _>>())
//!         }
//!     }
//! }));
//! let load = |k| { let l = loader.clone(); tokio::spawn(async move { l.load(k).await }) };
//! // A quiet loader: the first load is dispatched at once.
//! let mut tasks = vec![load(0)];
//! while loader.stats().total_operations == 0 { yield_now().await; }
//! // While it is in flight, loads arriving a tick apart share one batch.
//! for k in 1..=3 {
//!     tasks.push(load(k));
//!     yield_now().await;
//! }
//! while loader.in_flight() < 4 { yield_now().await; }
//! round_trip.add_permits(1);
//! for task in tasks { task.await.unwrap().unwrap(); }
//! assert_eq!(loader.stats().total_operations, 2);
//! # }
//! ```
//!
//! # Observability
//!
//! Each batch opens a `tracing` span named `batch` (target
//! `coalesce::loader`, level debug) around its fetch, so the source's own
//! spans and events (a driver's query span, say) are its children. Its
//! fields: `loader` (the name given to [`LoaderBuilder::name`]), `keys`,
//! `window_us` (from the batch's first key until it was due),
//! `permit_wait_us` (waiting for `max_concurrent_batches`), `fetch_us` and
//! `outcome` (`ok`, `error` or `panicked`); a `batch completed` event closes
//! it. With no subscriber listening at that level (and without the
//! `metrics` feature), a batch costs no span and no clock read beyond the
//! two around its fetch that the dispatch policy uses.
//!
//! With the `metrics` feature, every batch is also recorded through the
//! [`metrics`](https://docs.rs/metrics) facade, for whatever exporter
//! (Prometheus, OpenTelemetry, ...) the application installs; each metric
//! is labelled `loader`:
//!
//! | name | kind | what |
//! |---|---|---|
//! | `coalesce_batch_keys` | histogram | distinct keys per batch |
//! | `coalesce_batch_window_wait_seconds` | histogram | the window, as above |
//! | `coalesce_batch_permit_wait_seconds` | histogram | the permit wait |
//! | `coalesce_batch_fetch_seconds` | histogram | the source's call |
//! | `coalesce_batches_total` | counter | batches, also labelled `outcome` |

#[cfg(feature = "async-graphql")]
mod async_graphql_compat;
mod batch;
mod cache;
#[cfg(feature = "dataloader")]
mod dataloader_compat;
mod error;
mod observe;
mod registry;
mod source;
mod stats;
mod writer;

#[cfg(feature = "async-graphql")]
pub use async_graphql_compat::{AsyncGraphqlError, AsyncGraphqlSource};
pub use cache::CachePolicy;
#[cfg(feature = "dataloader")]
pub use dataloader_compat::DataloaderSource;
pub use error::LoadError;
pub use source::{BatchMethod, BatchSource, FnSource, MethodSource, from_fn, from_method, keyed};
pub use stats::{Stats, StatsSnapshot};
pub use writer::{WriteSink, WriteSource, Writer};

use batch::{Batch, LastBatch, dispatch, lead};
use cache::Cache;
use parking_lot::Mutex;
use registry::{Registry, Seat};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::{
    fmt,
    sync::{Arc, Weak},
    time::Duration,
};
use std::{future::Future, task::Poll};
use tokio::{
    runtime::Handle,
    sync::{Notify, Semaphore},
};

/// The default cap on keys per batch, as the specification sets it.
pub const DEFAULT_MAX_BATCH_SIZE: usize = 100;

/// How long a batch stays open for more keys before it is dispatched.
///
/// ```
/// use coalesce::BatchWindow;
/// use std::time::Duration;
/// assert_eq!(BatchWindow::default(), BatchWindow::FillWhileBusy);
/// // The rule before `FillWhileBusy`: always dispatch after one yield.
/// let eager = BatchWindow::Yield(1);
/// let wait_for_more = BatchWindow::Time(Duration::from_millis(2));
/// # drop((eager, wait_for_more));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BatchWindow {
    /// Dispatch once the runtime has let every ready task run this many
    /// times, however busy the loader is.
    Yield(u32),
    /// Wait up to this long for more keys; worth it where a round trip is
    /// expensive and load arrives spread out. Needs the Tokio time driver.
    Time(Duration),
    /// The default: one yield, and then, while another batch of this loader
    /// is in flight, keep collecting keys until the batch is full or a batch
    /// completes (after which the woken callers get one more yield to add
    /// their next keys), and check again. A quiet loader thus dispatches a
    /// lone load after one yield, while a busy one sends full batches
    /// (several at once, up to `max_concurrent_batches`) instead of
    /// splitting its callers over many small ones. The yield is never
    /// skipped: loads made within one poll of one task (`join_all` of
    /// per-item calls, a GraphQL list field) reach the source as one batch,
    /// up to the cap. While the source has never been seen to wait (it
    /// answers at once, so no batch is in flight to gather behind), a batch
    /// whose yield added keys on the multi-thread runtime keeps yielding,
    /// each time until the runtime's ready tasks have run, while that adds
    /// keys: a storm of tasks sends full batches, a lone load still goes
    /// after one yield.
    /// Callers that come back from a full batch within its fetch time (a
    /// loop, such as 100 tasks each loading key after key) are split into
    /// two batches of half the cap, kept in flight together: the source
    /// serves one while the other's callers come back, instead of the two
    /// taking turns. Only keys of several tasks are split so: one task's
    /// fan-out goes whole, up to the cap, whenever it comes.
    #[default]
    FillWhileBusy,
}

impl BatchWindow {
    /// Wait out the window, or less once the batch is full. The rest of
    /// `FillWhileBusy` depends on other batches: see `batch::until_due`.
    async fn wait<S: BatchSource>(self, batch: &Batch<S>) {
        match self {
            Self::Yield(times) => yields(times, batch).await,
            Self::FillWhileBusy => yields(1, batch).await,
            Self::Time(duration) => {
                let sleep = tokio::time::sleep(duration);
                tokio::pin!(sleep);
                std::future::poll_fn(|cx| {
                    if batch.poll_full(cx).is_ready() {
                        return Poll::Ready(());
                    }
                    sleep.as_mut().poll(cx)
                })
                .await;
            }
        }
    }
}

/// Let every ready task run `times` times (each may add its key), or less
/// once the batch is full.
async fn yields<S: BatchSource>(times: u32, batch: &Batch<S>) {
    // Each yield wakes the waiting task at once, which puts it at the back
    // of the worker's run queue: every task already ready runs (and adds its
    // key) before it is polled again. (`tokio::task::yield_now` would
    // instead defer the wake-up until the worker parks, a driver poll per
    // lone load.)
    let mut left = times;
    std::future::poll_fn(|cx| {
        if left == 0 || batch.is_full() {
            return Poll::Ready(());
        }
        left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}

/// Yield once; if other loads added keys meanwhile (a storm, not a lone
/// load), keep yielding, deferred until the runtime's ready tasks have run
/// (Tokio wakes a deferred task once its worker runs out of ready tasks, or
/// at its periodic driver poll), until three yields in a row add no key or
/// the batch is full. For a source that answers at once, which leaves no
/// batch in flight for a storm of loads to gather behind: the batch stays
/// open while the storm is still adding keys, while a lone load pays one
/// plain yield, as with any other source.
async fn yields_while_growing<S: BatchSource>(batch: &Batch<S>) {
    let opened_with = batch.len();
    yields(1, batch).await;
    let mut seen = batch.len();
    if seen <= opened_with {
        return;
    }
    // Three in a row: a worker also wakes its deferred tasks at its
    // periodic driver poll, which can come right after a yield, before
    // any other task has run.
    let mut idle = 0;
    while !batch.is_full() && idle < 3 {
        tokio::task::yield_now().await;
        let len = batch.len();
        idle = if len == seen { idle + 1 } else { 0 };
        seen = len;
    }
}

/// A loader configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `max_batch_size` was zero.
    #[error("max_batch_size must be at least 1")]
    ZeroBatchSize,
    /// `max_concurrent_batches` was zero.
    #[error("max_concurrent_batches must be at least 1")]
    ZeroConcurrency,
}

#[derive(Debug, Clone, Copy)]
struct Config {
    max_batch_size: usize,
    window: BatchWindow,
    /// How the loader's batch spans and metrics name it.
    name: &'static str,
}

/// Loader state behind one short lock: the open batch, every key pending or
/// in flight with its seat in the batch that will answer it, and the
/// optional cache.
struct State<S: BatchSource> {
    open: Option<Arc<Batch<S>>>,
    in_flight: Registry<S>,
    cache: Option<Cache<S::Key, S::Value>>,
}

/// What registering a key produced: an answer now, or a seat to wait in.
enum Ticket<S: BatchSource> {
    Ready(Option<S::Value>),
    Pending(Seat<S>),
    /// The key needs a new batch, and there is no runtime to run it on.
    NoRuntime,
}

impl<S: BatchSource> State<S> {
    fn is_open(&self, batch: &Arc<Batch<S>>) -> bool {
        self.open
            .as_ref()
            .is_some_and(|open| Arc::ptr_eq(open, batch))
    }

    /// Stop a batch from accepting keys.
    fn seal(&mut self, batch: &Arc<Batch<S>>) {
        if self.is_open(batch) {
            self.open = None;
        }
    }

    /// Register one key; `new_batch` receives a batch that needs a dispatcher.
    fn register(
        &mut self,
        key: S::Key,
        shared: &Shared<S>,
        runtime: &mut Option<Handle>,
        new_batch: &mut Vec<Arc<Batch<S>>>,
    ) -> Ticket<S> {
        let (config, stats) = (&shared.config, &shared.stats);
        if let Some(hit) = self.cache.as_mut().and_then(|cache| cache.get(&key)) {
            stats.record_cache_hits(1);
            return Ticket::Ready(hit);
        }
        // One hash of the key: join the batch already holding it, or add it
        // to the open batch.
        let hash = self.in_flight.hash(&key);
        if let Some(seat) = self.in_flight.find(hash, &key) {
            stats.record_deduplicated(1);
            seat.batch.join(seat.index);
            return Ticket::Pending(seat.clone());
        }
        let batch = match &self.open {
            Some(open) => Arc::clone(open),
            None => {
                // Only a new batch needs the runtime (and a handle costs an
                // atomic increment on a line every worker shares).
                if runtime.is_none() {
                    match Handle::try_current() {
                        Ok(handle) => *runtime = Some(handle),
                        Err(_) => return Ticket::NoRuntime,
                    }
                }
                let batch = Arc::new(Batch::new(config.max_batch_size));
                self.open = Some(Arc::clone(&batch));
                new_batch.push(Arc::clone(&batch));
                batch
            }
        };
        let (index, len, one_task) = batch.push(key, tokio::task::try_id());
        let seat = self.in_flight.insert(hash, batch, index);
        let batch = &seat.batch;
        // The early sizes are for callers coming back from a batch, each in
        // a task of its own; one task's fan-out (made in one poll) goes
        // whole, up to the cap.
        let due = if one_task {
            config.max_batch_size
        } else {
            self.dispatch_size(len, shared)
        };
        if len >= due {
            self.open = None;
            batch.mark_full();
        }
        Ticket::Pending(seat)
    }

    /// How many keys make the open batch (holding `len`) due at once.
    ///
    /// The cap, except with [`BatchWindow::FillWhileBusy`] under a steady
    /// load, where two batches in flight beat one: while one is fetched,
    /// the callers the other answered come back and fill the next, so the
    /// database and the callers work at the same time instead of in turn
    /// (measured in docs/BENCHMARKS.md, "Dispatch policy"). So while about
    /// half the cap or more, but fewer keys than the cap, are in flight, a
    /// batch goes once it holds nine tenths of them (a tenth of slack, so a
    /// caller or two more or less does not stall it), but never fewer than
    /// half the cap; behind a few keys, or a cap's worth, it fills up. With
    /// nothing in flight, keys arriving within the last batch's fetch time
    /// of its answer (its callers, loading again) go in halves of the cap:
    /// the only way a loop of one full batch at a time becomes two. Any
    /// other burst goes whole, as it did before.
    fn dispatch_size(&self, len: usize, shared: &Shared<S>) -> usize {
        let cap = shared.config.max_batch_size;
        if shared.config.window != BatchWindow::FillWhileBusy {
            return cap;
        }
        let half = cap.div_ceil(2);
        let others = self.in_flight.len() - len;
        if others == 0 {
            let split = len >= half && shared.last_batch.answered_within_its_fetch_time();
            return if split || len < half { half } else { cap };
        }
        let nine_tenths = others * 9 / 10;
        if others >= cap || nine_tenths < half * 9 / 10 {
            return cap;
        }
        nine_tenths.max(half)
    }

    /// A batch finished: release its keys that are still attached to it and
    /// cache their results (a detached key was cleared after the fetch
    /// began, so its value must not be cached). Released seats go to
    /// `released`, for the caller to drop once the state is unlocked:
    /// freeing them is work no load needs to wait for.
    fn complete(
        &mut self,
        batch: &Arc<Batch<S>>,
        keys: &[S::Key],
        values: Option<&[Option<S::Value>]>,
        released: &mut Vec<Seat<S>>,
    ) {
        for (index, key) in keys.iter().enumerate() {
            let hash = self.in_flight.hash(key);
            let Some(seat) = self.in_flight.remove_seat(hash, batch, index) else {
                continue; // detached
            };
            if let (Some(cache), Some(values)) = (self.cache.as_mut(), values) {
                let value = values.get(index).cloned().flatten();
                cache.insert(key.clone(), value);
            }
            released.push(seat);
        }
    }

    /// Drop every trace of an abandoned batch.
    fn forget(&mut self, batch: &Arc<Batch<S>>) {
        self.seal(batch);
        self.in_flight
            .retain(|seat| !Arc::ptr_eq(&seat.batch, batch));
    }

    /// Detach a key from a batch whose fetch may already have begun, so the
    /// next load fetches it anew. A key in the open batch stays: that fetch
    /// has not started, so it will read the current value.
    fn detach(&mut self, key: &S::Key) {
        let hash = self.in_flight.hash(key);
        let open = self.open.as_ref();
        self.in_flight.remove_unless(hash, key, |seat| {
            open.is_some_and(|open| Arc::ptr_eq(open, &seat.batch))
        });
    }
}

/// Everything a loader's clones and dispatcher tasks share.
struct Shared<S: BatchSource> {
    source: S,
    config: Config,
    state: Mutex<State<S>>,
    permits: Option<Arc<Semaphore>>,
    /// Batches past their window (waiting for a permit or fetching) and not
    /// yet published; see `batch::InFlight`.
    in_flight_batches: AtomicUsize,
    /// Signalled each time one of those batches is done.
    batch_done: Notify,
    /// A fetch a leader polled has not finished at once: the source waits
    /// for I/O, so batches gather behind batches in flight; until then a
    /// storm of loads is gathered by deferred yields (see
    /// `batch::until_due`).
    fetches_wait: AtomicBool,
    /// Who the last published batch answered, and when.
    last_batch: LastBatch,
    stats: Arc<Stats>,
}

/// Coalesces concurrent loads into batched calls of a [`BatchSource`].
///
/// Cheap to clone: clones share batches, cache and statistics. `load` must
/// be called within a Tokio runtime (a batch whose fetch does not finish at
/// once may run as its own task).
///
/// ```
/// use coalesce::{from_fn, Loader};
/// use std::{collections::HashMap, convert::Infallible};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let loader = Loader::new(from_fn(|keys: Vec<u32>| async move {
///     Ok::<_, Infallible>(keys.into_iter().map(|k| (k, k * 2)).collect::<HashMap<_, _>>())
/// }));
/// let tasks: Vec<_> = (0..10)
///     .map(|k| { let l = loader.clone(); tokio::spawn(async move { l.load(k).await }) })
///     .collect();
/// for (k, task) in tasks.into_iter().enumerate() {
///     assert_eq!(task.await.unwrap().unwrap(), Some(k as u32 * 2));
/// }
/// assert_eq!(loader.stats().total_operations, 1);
/// # }
/// ```
pub struct Loader<S: BatchSource> {
    shared: Arc<Shared<S>>,
}

impl<S: BatchSource> Clone for Loader<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: BatchSource> fmt::Debug for Loader<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loader")
            .field("max_batch_size", &self.shared.config.max_batch_size)
            .field("name", &self.shared.config.name)
            .field("window", &self.shared.config.window)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl<S: BatchSource> Loader<S> {
    /// A loader with the defaults: batches of up to 100 keys, dispatched
    /// after one yield or, while another batch is in flight, once full or
    /// once a batch completes ([`BatchWindow::FillWhileBusy`]); no
    /// concurrency limit, no cache.
    pub fn new(source: S) -> Self {
        Self::from_builder(LoaderBuilder::new(source))
    }

    /// Configure a loader.
    ///
    /// ```
    /// use coalesce::{from_fn, CachePolicy, Loader};
    /// use std::{collections::HashMap, convert::Infallible};
    ///
    /// let request_scoped = Loader::builder(from_fn(|keys: Vec<u8>| async move {
    ///     Ok::<_, Infallible>(HashMap::<u8, u8>::new())
    /// }))
    /// .cache(CachePolicy::Unbounded)
    /// .build()
    /// .unwrap();
    /// # drop(request_scoped);
    /// ```
    pub fn builder(source: S) -> LoaderBuilder<S> {
        LoaderBuilder::new(source)
    }

    fn from_builder(builder: LoaderBuilder<S>) -> Self {
        let settings = builder.settings;
        let stats = builder
            .stats
            .unwrap_or_else(|| Arc::new(Stats::new(settings.max_batch_size)));
        Self {
            shared: Arc::new(Shared {
                source: builder.source,
                config: Config {
                    max_batch_size: settings.max_batch_size,
                    window: settings.window,
                    name: builder.name,
                },
                state: Mutex::new(State {
                    open: None,
                    in_flight: Registry::default(),
                    cache: Cache::new(builder.cache),
                }),
                permits: settings
                    .max_concurrent_batches
                    .map(|n| Arc::new(Semaphore::new(n))),
                in_flight_batches: AtomicUsize::new(0),
                batch_done: Notify::new(),
                fetches_wait: AtomicBool::new(false),
                last_batch: LastBatch::default(),
                stats,
            }),
        }
    }

    /// Load one key: `Ok(Some(value))`, `Ok(None)` when the source returned
    /// nothing for it, or the error of the batch it was in.
    ///
    /// ```
    /// # use coalesce::{from_fn, Loader};
    /// # use std::{collections::HashMap, convert::Infallible};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let loader = Loader::new(from_fn(|keys: Vec<u32>| async move {
    ///     Ok::<_, Infallible>(keys.into_iter().filter(|k| *k < 10).map(|k| (k, k)).collect::<HashMap<_, _>>())
    /// }));
    /// assert_eq!(loader.load(3).await.unwrap(), Some(3));
    /// assert_eq!(loader.load(30).await.unwrap(), None);
    /// # }
    /// ```
    pub async fn load(&self, key: S::Key) -> Result<Option<S::Value>, LoadError<S::Error>> {
        let mut runtime = None;
        let mut new_batch = Vec::new();
        let ticket =
            self.shared
                .state
                .lock()
                .register(key, &self.shared, &mut runtime, &mut new_batch);
        match ticket {
            Ticket::Ready(value) => {
                self.shared.stats.record_requests(1);
                Ok(value)
            }
            Ticket::Pending(Seat { batch, index, .. }) => {
                self.shared.stats.record_requests(1);
                // This load opened the batch: it runs the batch itself.
                if let (Some(opened), Some(handle)) = (new_batch.pop(), &runtime) {
                    debug_assert!(Arc::ptr_eq(&opened, &batch));
                    // Boxed: one load in a batch leads, and the leader's
                    // state would otherwise make every load's future
                    // several times larger (moved, and copied, per load).
                    Box::pin(lead(&self.shared, &batch, handle)).await;
                }
                batch.wait(index).await
            }
            Ticket::NoRuntime => Err(LoadError::NoRuntime),
        }
    }

    /// Load many keys; results come in the order of `keys`, duplicates
    /// allowed. More keys than `max_batch_size` are split across batches.
    /// Fails with the first failed batch's error.
    ///
    /// ```
    /// # use coalesce::{from_fn, Loader};
    /// # use std::{collections::HashMap, convert::Infallible};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let loader = Loader::new(from_fn(|keys: Vec<u32>| async move {
    ///     Ok::<_, Infallible>(keys.into_iter().map(|k| (k, k + 1)).collect::<HashMap<_, _>>())
    /// }));
    /// assert_eq!(loader.load_many([1, 1, 2]).await.unwrap(), vec![Some(2), Some(2), Some(3)]);
    /// # }
    /// ```
    pub async fn load_many(
        &self,
        keys: impl IntoIterator<Item = S::Key>,
    ) -> Result<Vec<Option<S::Value>>, LoadError<S::Error>> {
        let mut runtime = Some(Handle::try_current().map_err(|_| LoadError::NoRuntime)?);
        // Collected before the lock: the caller's iterator may run any code.
        let keys: Vec<S::Key> = keys.into_iter().collect();
        self.shared.stats.record_requests(keys.len());
        let mut new_batches = Vec::new();
        let tickets: Vec<Ticket<S>> = {
            let mut state = self.shared.state.lock();
            keys.into_iter()
                .map(|key| state.register(key, &self.shared, &mut runtime, &mut new_batches))
                .collect()
        };
        if let Some(handle) = &runtime {
            self.spawn_dispatchers(handle, new_batches);
        }
        let mut values = Vec::with_capacity(tickets.len());
        for ticket in tickets {
            values.push(match ticket {
                Ticket::Ready(value) => value,
                Ticket::Pending(Seat { batch, index, .. }) => batch.wait(index).await?,
                // The runtime was found before registering.
                Ticket::NoRuntime => return Err(LoadError::NoRuntime),
            });
        }
        Ok(values)
    }

    fn spawn_dispatchers(&self, handle: &Handle, batches: Vec<Arc<Batch<S>>>) {
        for batch in batches {
            handle.spawn(dispatch(Arc::clone(&self.shared), batch));
        }
    }

    /// Fill the cache with a value for a key it knows nothing about, as
    /// graphql/dataloader's `prime` does: a key already cached, or pending
    /// or being fetched (its fetch will cache what it reads), keeps what it
    /// has. Returns whether the value was stored; always `false` when
    /// caching is off. To replace a value, [`clear`](Self::clear) the key
    /// first.
    ///
    /// ```
    /// # use coalesce::{from_fn, CachePolicy, Loader};
    /// # use std::{collections::HashMap, convert::Infallible};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let loader = Loader::builder(from_fn(|_: Vec<u32>| async move {
    ///     Ok::<_, Infallible>(HashMap::<u32, &'static str>::new())
    /// })).cache(CachePolicy::Unbounded).build().unwrap();
    /// assert!(loader.prime(7, "seven"));
    /// assert!(!loader.prime(7, "sept"), "an existing value is kept");
    /// assert_eq!(loader.load(7).await.unwrap(), Some("seven"));
    /// loader.clear(&7);
    /// assert!(loader.prime(7, "sept"), "clear, then prime, replaces it");
    /// assert_eq!(loader.load(7).await.unwrap(), Some("sept"));
    /// assert_eq!(loader.stats().total_operations, 0);
    /// # }
    /// ```
    pub fn prime(&self, key: S::Key, value: S::Value) -> bool {
        let mut state = self.shared.state.lock();
        let State {
            in_flight, cache, ..
        } = &mut *state;
        let Some(cache) = cache.as_mut() else {
            return false;
        };
        let hash = in_flight.hash(&key);
        if in_flight.find(hash, &key).is_some() || cache.get(&key).is_some() {
            return false;
        }
        cache.insert(key, Some(value));
        true
    }

    /// Forget a key: drop it from the cache and detach it from any batch
    /// whose fetch may have begun. A load that starts after `clear` returns
    /// never receives a value fetched before it.
    ///
    /// ```
    /// # use coalesce::{from_fn, CachePolicy, Loader};
    /// # use std::{collections::HashMap, convert::Infallible};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let loader = Loader::builder(from_fn(|keys: Vec<u32>| async move {
    ///     Ok::<_, Infallible>(keys.into_iter().map(|k| (k, k)).collect::<HashMap<_, _>>())
    /// })).cache(CachePolicy::Unbounded).build().unwrap();
    /// loader.load(1).await.unwrap();
    /// loader.clear(&1);
    /// loader.load(1).await.unwrap();
    /// assert_eq!(loader.stats().total_operations, 2);
    /// # }
    /// ```
    pub fn clear(&self, key: &S::Key) {
        let mut state = self.shared.state.lock();
        state.detach(key);
        if let Some(cache) = state.cache.as_mut() {
            cache.remove(key);
        }
    }

    /// Forget every key: empty the cache and detach all keys from batches
    /// whose fetch may have begun.
    ///
    /// ```
    /// # use coalesce::{from_fn, CachePolicy, Loader};
    /// # use std::{collections::HashMap, convert::Infallible};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let loader = Loader::builder(from_fn(|keys: Vec<u32>| async move {
    ///     Ok::<_, Infallible>(keys.into_iter().map(|k| (k, k)).collect::<HashMap<_, _>>())
    /// })).cache(CachePolicy::Unbounded).build().unwrap();
    /// loader.load_many([1, 2]).await.unwrap();
    /// loader.clear_all();
    /// assert_eq!(loader.cached(), 0);
    /// # }
    /// ```
    pub fn clear_all(&self) {
        let mut state = self.shared.state.lock();
        let State {
            open,
            in_flight,
            cache,
        } = &mut *state;
        in_flight.retain(|seat| open.as_ref().is_some_and(|o| Arc::ptr_eq(o, &seat.batch)));
        if let Some(cache) = cache.as_mut() {
            cache.clear();
        }
    }

    /// Keys pending or being fetched right now (zero when the loader is idle).
    ///
    /// ```
    /// # use coalesce::{from_fn, Loader};
    /// # use std::{collections::HashMap, convert::Infallible};
    /// let loader = Loader::new(from_fn(|_: Vec<u8>| async { Ok::<_, Infallible>(HashMap::<u8, u8>::new()) }));
    /// assert_eq!(loader.in_flight(), 0);
    /// ```
    pub fn in_flight(&self) -> usize {
        self.shared.state.lock().in_flight.len()
    }

    /// Entries in the cache (zero when caching is off).
    ///
    /// ```
    /// # use coalesce::{from_fn, Loader};
    /// # use std::{collections::HashMap, convert::Infallible};
    /// let loader = Loader::new(from_fn(|_: Vec<u8>| async { Ok::<_, Infallible>(HashMap::<u8, u8>::new()) }));
    /// assert_eq!(loader.cached(), 0);
    /// ```
    pub fn cached(&self) -> usize {
        self.shared
            .state
            .lock()
            .cache
            .as_ref()
            .map_or(0, Cache::len)
    }

    /// A snapshot of this loader's statistics (shared with every loader
    /// built with the same [`LoaderBuilder::stats`] handle).
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// The batch source, for calls that bypass batching.
    pub fn source(&self) -> &S {
        &self.shared.source
    }

    /// A handle that does not keep the loader alive: for registries that
    /// reach a loader while it exists (say, to [`clear_all`](Self::clear_all)
    /// it after a write) without extending its life.
    ///
    /// ```
    /// # use coalesce::{from_fn, Loader};
    /// # use std::{collections::HashMap, convert::Infallible};
    /// let loader = Loader::new(from_fn(|_: Vec<u8>| async { Ok::<_, Infallible>(HashMap::<u8, u8>::new()) }));
    /// let weak = loader.downgrade();
    /// assert!(weak.upgrade().is_some());
    /// drop(loader);
    /// assert!(weak.upgrade().is_none());
    /// ```
    pub fn downgrade(&self) -> WeakLoader<S> {
        WeakLoader {
            shared: Arc::downgrade(&self.shared),
        }
    }
}

/// A [`Loader`] that may be gone: see [`Loader::downgrade`].
pub struct WeakLoader<S: BatchSource> {
    shared: Weak<Shared<S>>,
}

impl<S: BatchSource> Clone for WeakLoader<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Weak::clone(&self.shared),
        }
    }
}

impl<S: BatchSource> WeakLoader<S> {
    /// The loader, while any clone of it lives.
    pub fn upgrade(&self) -> Option<Loader<S>> {
        self.shared.upgrade().map(|shared| Loader { shared })
    }
}

/// How a loader (or writer) batches: the settings that do not depend on
/// its source, so one value can configure several.
///
/// ```
/// use coalesce::{BatchSettings, BatchWindow};
/// let settings = BatchSettings { max_concurrent_batches: Some(10), ..BatchSettings::default() };
/// assert_eq!(settings.max_batch_size, 100);
/// assert_eq!(settings.window, BatchWindow::FillWhileBusy);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSettings {
    /// Most keys in one call of the source (default 100); a fuller batch is
    /// dispatched at once.
    pub max_batch_size: usize,
    /// How long a batch collects keys (default:
    /// [`BatchWindow::FillWhileBusy`]).
    pub window: BatchWindow,
    /// Most batches running at once (default: no limit), typically the pool
    /// size; further batches wait their turn in order and keep collecting
    /// keys meanwhile.
    pub max_concurrent_batches: Option<usize>,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            max_batch_size: DEFAULT_MAX_BATCH_SIZE,
            window: BatchWindow::default(),
            max_concurrent_batches: None,
        }
    }
}

impl BatchSettings {
    /// Why these settings cannot work, if they cannot.
    ///
    /// ```
    /// use coalesce::{BatchSettings, ConfigError};
    /// let zero = BatchSettings { max_batch_size: 0, ..BatchSettings::default() };
    /// assert_eq!(zero.validate(), Err(ConfigError::ZeroBatchSize));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_batch_size == 0 {
            return Err(ConfigError::ZeroBatchSize);
        }
        if self.max_concurrent_batches == Some(0) {
            return Err(ConfigError::ZeroConcurrency);
        }
        Ok(())
    }
}

/// Builds a [`Loader`]; see [`Loader::builder`].
pub struct LoaderBuilder<S: BatchSource> {
    source: S,
    settings: BatchSettings,
    cache: CachePolicy,
    stats: Option<Arc<Stats>>,
    name: &'static str,
}

impl<S: BatchSource> LoaderBuilder<S> {
    fn new(source: S) -> Self {
        Self {
            source,
            settings: BatchSettings::default(),
            cache: CachePolicy::Disabled,
            stats: None,
            name: "loader",
        }
    }

    /// The name this loader's batch spans and metrics carry in their
    /// `loader` field (default `"loader"`); see
    /// [Observability](crate#observability).
    ///
    /// ```
    /// use coalesce::{from_fn, Loader};
    /// use std::{collections::HashMap, convert::Infallible};
    ///
    /// let profiles = Loader::builder(from_fn(|_: Vec<u32>| async {
    ///     Ok::<_, Infallible>(HashMap::<u32, String>::new())
    /// }))
    /// .name("profiles")
    /// .build()
    /// .unwrap();
    /// # drop(profiles);
    /// ```
    pub fn name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Replace every batching setting at once.
    pub fn settings(mut self, settings: BatchSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Most keys in one call of the source (default 100); a fuller batch is
    /// dispatched at once.
    pub fn max_batch_size(mut self, max: usize) -> Self {
        self.settings.max_batch_size = max;
        self
    }

    /// How long a batch collects keys (default:
    /// [`BatchWindow::FillWhileBusy`]).
    pub fn window(mut self, window: BatchWindow) -> Self {
        self.settings.window = window;
        self
    }

    /// Most batches running at once, typically the pool size; further
    /// batches wait their turn in order and keep collecting keys meanwhile.
    pub fn max_concurrent_batches(mut self, max: usize) -> Self {
        self.settings.max_concurrent_batches = Some(max);
        self
    }

    /// Memoize results (default off).
    pub fn cache(mut self, policy: CachePolicy) -> Self {
        self.cache = policy;
        self
    }

    /// Count into a shared [`Stats`], so several loaders report as one.
    pub fn stats(mut self, stats: Arc<Stats>) -> Self {
        self.stats = Some(stats);
        self
    }

    /// The loader, or why the configuration cannot work.
    pub fn build(self) -> Result<Loader<S>, ConfigError> {
        self.settings.validate()?;
        Ok(Loader::from_builder(self))
    }
}
