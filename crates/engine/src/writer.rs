//! Write coalescing: single writes made in the same tick become one bulk
//! statement, and each caller learns its own outcome.
//!
//! A [`Writer`] rides on the [`Loader`] machinery (window, cap, concurrency
//! limit, panic containment, cancellation, statistics): every write gets a
//! unique ticket number as its key, and the batch source hands the queued
//! operations to a [`WriteSink`] in one call.

use super::{BatchSource, ConfigError, LoadError, Loader, LoaderBuilder, StatsSnapshot};
use parking_lot::Mutex;
use std::{
    collections::HashMap,
    future::Future,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};

/// Applies a batch of write operations at once, typically as one bulk
/// statement in one transaction.
///
/// Return one output per operation, in the order given; or an error, which
/// every caller of the batch receives, in which case nothing of the batch
/// may have been written.
///
/// ```
/// use coalesce::WriteSink;
/// use std::{convert::Infallible, sync::Mutex};
///
/// #[derive(Default)]
/// struct Log(Mutex<Vec<Vec<String>>>);
/// impl WriteSink for Log {
///     type Op = String;
///     type Output = usize;
///     type Error = Infallible;
///     async fn write(&self, ops: Vec<String>) -> Result<Vec<usize>, Infallible> {
///         let sizes = ops.iter().map(String::len).collect();
///         self.0.lock().unwrap().push(ops);
///         Ok(sizes)
///     }
/// }
/// ```
pub trait WriteSink: Send + Sync + 'static {
    /// One caller's operation, such as a row to upsert.
    type Op: Send + 'static;
    /// What a caller learns, such as whether a row was deleted.
    type Output: Clone + Send + Sync + 'static;
    /// The error a batch can fail with.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Apply `ops` (in arrival order) and return their outputs in that order.
    fn write(
        &self,
        ops: Vec<Self::Op>,
    ) -> impl Future<Output = Result<Vec<Self::Output>, Self::Error>> + Send;
}

/// The [`BatchSource`] behind a [`Writer`]: keys are write tickets, and the
/// operations wait here until their batch is dispatched.
pub struct WriteSource<S: WriteSink> {
    sink: S,
    queued: Mutex<HashMap<u64, S::Op>>,
}

impl<S: WriteSink> BatchSource for WriteSource<S> {
    type Key = u64;
    type Value = S::Output;
    type Error = S::Error;

    async fn load(&self, tickets: &[u64]) -> Result<HashMap<u64, S::Output>, S::Error> {
        Ok(super::keyed(tickets, self.load_in_order(tickets).await?))
    }

    /// Each ticket's output at its place: each moves to its one caller.
    async fn load_in_order(&self, tickets: &[u64]) -> Result<Vec<Option<S::Output>>, S::Error> {
        let (places, ops): (Vec<usize>, Vec<S::Op>) = {
            let mut queued = self.queued.lock();
            tickets
                .iter()
                .enumerate()
                .filter_map(|(place, ticket)| Some((place, queued.remove(ticket)?)))
                .unzip()
        };
        let outputs = self.sink.write(ops).await?;
        let mut answers: Vec<Option<S::Output>> = tickets.iter().map(|_| None).collect();
        for (place, output) in places.into_iter().zip(outputs) {
            answers[place] = Some(output);
        }
        Ok(answers)
    }
}

/// Coalesces concurrent single writes into batched calls of a [`WriteSink`].
///
/// ```
/// use coalesce::{WriteSink, Writer};
/// use std::{convert::Infallible, sync::atomic::{AtomicUsize, Ordering}};
///
/// #[derive(Default)]
/// struct Counter(AtomicUsize);
/// impl WriteSink for Counter {
///     type Op = u32;
///     type Output = ();
///     type Error = Infallible;
///     async fn write(&self, ops: Vec<u32>) -> Result<Vec<()>, Infallible> {
///         self.0.fetch_add(1, Ordering::SeqCst); // one statement per batch
///         Ok(vec![(); ops.len()])
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let writer = Writer::new(Counter::default());
/// let (a, b, c) = tokio::join!(writer.write(1), writer.write(2), writer.write(3));
/// assert!(a.is_ok() && b.is_ok() && c.is_ok());
/// assert_eq!(writer.sink().0.load(Ordering::SeqCst), 1);
/// # }
/// ```
pub struct Writer<S: WriteSink> {
    loader: Loader<WriteSource<S>>,
    next_ticket: AtomicU64,
}

impl<S: WriteSink> Writer<S> {
    /// A writer with the loader defaults (batches of up to 100 writes).
    pub fn new(sink: S) -> Self {
        Self {
            loader: Loader::new(Self::source(sink)),
            next_ticket: AtomicU64::new(0),
        }
    }

    /// A writer configured like a loader (cap, window, concurrency, stats).
    ///
    /// ```
    /// # use coalesce::{WriteSink, Writer};
    /// # use std::convert::Infallible;
    /// # struct Sink;
    /// # impl WriteSink for Sink {
    /// #     type Op = u8; type Output = (); type Error = Infallible;
    /// #     async fn write(&self, ops: Vec<u8>) -> Result<Vec<()>, Infallible> { Ok(vec![(); ops.len()]) }
    /// # }
    /// let writer = Writer::configure(Sink, |b| b.max_batch_size(100).max_concurrent_batches(4)).unwrap();
    /// # drop(writer);
    /// ```
    pub fn configure(
        sink: S,
        configure: impl FnOnce(LoaderBuilder<WriteSource<S>>) -> LoaderBuilder<WriteSource<S>>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            loader: configure(Loader::builder(Self::source(sink))).build()?,
            next_ticket: AtomicU64::new(0),
        })
    }

    fn source(sink: S) -> WriteSource<S> {
        WriteSource {
            sink,
            queued: Mutex::new(HashMap::new()),
        }
    }

    /// Queue one operation and wait for its batch to be written.
    ///
    /// A caller that drops this future after its first poll does not cancel
    /// the write: it is in a batch and will be applied with the others.
    pub async fn write(&self, op: S::Op) -> Result<S::Output, LoadError<S::Error>> {
        let ticket = self.next_ticket.fetch_add(1, Relaxed);
        self.loader.source().queued.lock().insert(ticket, op);
        match self.loader.load(ticket).await {
            Ok(Some(output)) => Ok(output),
            Ok(None) => Err(LoadError::NoOutput),
            Err(err) => {
                // The batch never ran (no runtime): do not keep the op.
                self.loader.source().queued.lock().remove(&ticket);
                Err(err)
            }
        }
    }

    /// This writer's statistics: batches are statements issued.
    pub fn stats(&self) -> StatsSnapshot {
        self.loader.stats()
    }

    /// The sink, for calls that bypass coalescing.
    pub fn sink(&self) -> &S {
        &self.loader.source().sink
    }
}
