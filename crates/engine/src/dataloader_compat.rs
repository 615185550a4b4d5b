//! Run an existing [`dataloader::BatchFn`] as a [`BatchSource`], so moving
//! from the `dataloader` crate changes one type, not the batch function.

use super::BatchSource;
use parking_lot::Mutex;
use std::{collections::HashMap, convert::Infallible, hash::Hash, marker::PhantomData, sync::Arc};

/// A [`BatchSource`] over a `dataloader::BatchFn`.
///
/// `BatchFn::load` takes `&mut self` and returns a future that is not known
/// to be `Send`, so each batch runs it on Tokio's blocking pool under a lock
/// (the `dataloader` crate serializes batches the same way). Write a native
/// [`BatchSource`] when that hop matters.
///
/// ```
/// use coalesce::{DataloaderSource, Loader};
/// use std::collections::HashMap;
///
/// struct Doubler;
/// impl dataloader::BatchFn<u32, u32> for Doubler {
///     async fn load(&mut self, keys: &[u32]) -> HashMap<u32, u32> {
///         keys.iter().map(|k| (*k, k * 2)).collect()
///     }
/// }
///
/// # #[tokio::main] async fn main() {
/// // Before: dataloader::non_cached::Loader::new(Doubler)
/// let loader = Loader::new(DataloaderSource::new(Doubler));
/// assert_eq!(loader.load(21).await.unwrap(), Some(42));
/// # }
/// ```
pub struct DataloaderSource<F, K, V> {
    batch_fn: Arc<Mutex<F>>,
    _types: PhantomData<fn(K) -> V>,
}

impl<F, K, V> DataloaderSource<F, K, V> {
    /// Wrap a batch function written for the `dataloader` crate.
    pub fn new(batch_fn: F) -> Self {
        Self {
            batch_fn: Arc::new(Mutex::new(batch_fn)),
            _types: PhantomData,
        }
    }
}

impl<F, K, V> BatchSource for DataloaderSource<F, K, V>
where
    F: dataloader::BatchFn<K, V> + Send + 'static,
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    type Key = K;
    type Value = V;
    type Error = Infallible;

    async fn load(&self, keys: &[K]) -> Result<HashMap<K, V>, Infallible> {
        let batch_fn = Arc::clone(&self.batch_fn);
        let keys = keys.to_vec();
        let handle = tokio::runtime::Handle::current();
        let run = tokio::task::spawn_blocking(move || {
            let mut batch_fn = batch_fn.lock();
            handle.block_on(batch_fn.load(&keys))
        });
        match run.await {
            Ok(values) => Ok(values),
            // Re-raise the batch function's panic; the loader contains it.
            Err(join_error) => match join_error.try_into_panic() {
                Ok(payload) => std::panic::resume_unwind(payload),
                Err(cancelled) => panic!("dataloader batch function did not finish: {cancelled}"),
            },
        }
    }
}
