//! Where a loader's values come from: one call per batch of distinct keys.

use futures::future::BoxFuture;
use std::{collections::HashMap, future::Future, hash::Hash, marker::PhantomData, sync::Arc};

/// A batch function: given distinct keys, return the values found.
///
/// Keys missing from the returned map resolve to `Ok(None)` for their
/// callers. The slice never holds the same key twice and never holds more
/// than the loader's `max_batch_size` keys.
///
/// ```
/// use coalesce::BatchSource;
/// use std::{collections::HashMap, convert::Infallible};
///
/// struct Squares;
/// impl BatchSource for Squares {
///     type Key = u64;
///     type Value = u64;
///     type Error = Infallible;
///     async fn load(&self, keys: &[u64]) -> Result<HashMap<u64, u64>, Infallible> {
///         Ok(keys.iter().map(|k| (*k, k * k)).collect())
///     }
/// }
/// ```
pub trait BatchSource: Send + Sync + 'static {
    /// The key a caller loads by, such as a primary key. The loader moves
    /// it into its batch and clones it only for the cache, when caching is
    /// on. (`load`'s map owns its keys: a source answering by position,
    /// with `load_in_order`, clones none.)
    type Key: Eq + Hash + Clone + Send + Sync + 'static;
    /// The value a key resolves to. Its last caller takes it; the key's other
    /// callers (loads of the same key in one batch) get clones.
    type Value: Clone + Send + Sync + 'static;
    /// The error a batch can fail with; shared among callers, never cloned.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Fetch the values for `keys` in one round trip.
    fn load(
        &self,
        keys: &[Self::Key],
    ) -> impl Future<Output = Result<HashMap<Self::Key, Self::Value>, Self::Error>> + Send;

    /// Fetch the values for `keys` in one round trip, as one entry per key
    /// in the order of `keys` (`None`: not found); the loader calls this.
    /// The default looks each key up in [`load`](Self::load)'s map.
    /// Override it where the source knows each value's position already
    /// (a query that returns every row with the position of the key that
    /// found it), so no map is built or searched. Entries beyond the keys
    /// are ignored, and keys beyond the entries resolve to `None`.
    ///
    /// ```
    /// use coalesce::{BatchSource, Loader, keyed};
    /// use std::{collections::HashMap, convert::Infallible};
    ///
    /// struct Squares;
    /// impl BatchSource for Squares {
    ///     type Key = u64;
    ///     type Value = u64;
    ///     type Error = Infallible;
    ///     async fn load(&self, keys: &[u64]) -> Result<HashMap<u64, u64>, Infallible> {
    ///         Ok(keyed(keys, self.load_in_order(keys).await?))
    ///     }
    ///     async fn load_in_order(&self, keys: &[u64]) -> Result<Vec<Option<u64>>, Infallible> {
    ///         Ok(keys.iter().map(|k| k.checked_mul(*k)).collect())
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let loader = Loader::new(Squares);
    /// assert_eq!(loader.load(3).await.unwrap(), Some(9));
    /// assert_eq!(loader.load(u64::MAX).await.unwrap(), None);
    /// # }
    /// ```
    fn load_in_order(
        &self,
        keys: &[Self::Key],
    ) -> impl Future<Output = Result<Vec<Option<Self::Value>>, Self::Error>> + Send {
        async move {
            let mut found = self.load(keys).await?;
            Ok(keys.iter().map(|key| found.remove(key)).collect())
        }
    }
}

/// The map [`BatchSource::load`] returns, from the answers in the order of
/// `keys` that [`BatchSource::load_in_order`] returns: each key with its
/// value, keys without one left out. For a source that answers in order
/// and gives `load` from that.
///
/// ```
/// let found = coalesce::keyed(&["a", "b", "c"], vec![Some(1), None, Some(3)]);
/// assert_eq!(found.len(), 2);
/// assert_eq!((found["a"], found["c"]), (1, 3));
/// ```
pub fn keyed<K: Eq + Hash + Clone, V>(keys: &[K], values: Vec<Option<V>>) -> HashMap<K, V> {
    keys.iter()
        .zip(values)
        .filter_map(|(key, value)| Some((key.clone(), value?)))
        .collect()
}

/// A [`BatchSource`] made from an async closure; see [`from_fn`].
pub struct FnSource<F, K, V, E> {
    batch_fn: F,
    _types: PhantomData<fn(K) -> (V, E)>,
}

/// Turn an async function of a `Vec` of keys into a [`BatchSource`].
///
/// ```
/// use coalesce::{from_fn, Loader};
/// use std::{collections::HashMap, convert::Infallible};
///
/// let loader = Loader::new(from_fn(|keys: Vec<u32>| async move {
///     Ok::<_, Infallible>(keys.into_iter().map(|k| (k, k + 1)).collect::<HashMap<_, _>>())
/// }));
/// # drop(loader);
/// ```
pub fn from_fn<F, Fut, K, V, E>(batch_fn: F) -> FnSource<F, K, V, E>
where
    F: Fn(Vec<K>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<HashMap<K, V>, E>> + Send,
{
    FnSource {
        batch_fn,
        _types: PhantomData,
    }
}

impl<F, Fut, K, V, E> BatchSource for FnSource<F, K, V, E>
where
    F: Fn(Vec<K>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<HashMap<K, V>, E>> + Send,
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    type Key = K;
    type Value = V;
    type Error = E;

    fn load(&self, keys: &[K]) -> impl Future<Output = Result<HashMap<K, V>, E>> + Send {
        (self.batch_fn)(keys.to_vec())
    }
}

/// The batch method a [`MethodSource`] calls: a plain function (or a closure
/// capturing nothing) from a repository and keys to a boxed future.
pub type BatchMethod<R, K, V, E> =
    for<'a> fn(&'a R, &'a [K]) -> BoxFuture<'a, Result<HashMap<K, V>, E>>;

/// A [`BatchSource`] that calls a batch method of a shared repository; see
/// [`from_method`].
pub struct MethodSource<R, K, V, E> {
    repo: Arc<R>,
    method: BatchMethod<R, K, V, E>,
}

/// Use a repository's batch method (`get_orders(&[OrderId])`) as the source
/// of a loader, so a per-item method (`get_order(id)`) can be served by it.
///
/// ```
/// use coalesce::{from_method, Loader};
/// use std::{collections::HashMap, convert::Infallible, sync::Arc};
///
/// struct Orders;
/// impl Orders {
///     async fn get_orders(&self, ids: &[u64]) -> Result<HashMap<u64, String>, Infallible> {
///         Ok(ids.iter().map(|id| (*id, format!("order {id}"))).collect())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let orders = Loader::new(from_method(Arc::new(Orders), |repo, ids| Box::pin(repo.get_orders(ids))));
/// assert_eq!(orders.load(7).await.unwrap().as_deref(), Some("order 7"));
/// # }
/// ```
pub fn from_method<R, K, V, E>(
    repo: Arc<R>,
    method: BatchMethod<R, K, V, E>,
) -> MethodSource<R, K, V, E> {
    MethodSource { repo, method }
}

impl<R, K, V, E> MethodSource<R, K, V, E> {
    /// The repository whose method this source calls.
    pub fn repo(&self) -> &Arc<R> {
        &self.repo
    }
}

impl<R, K, V, E> BatchSource for MethodSource<R, K, V, E>
where
    R: Send + Sync + 'static,
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    type Key = K;
    type Value = V;
    type Error = E;

    async fn load(&self, keys: &[K]) -> Result<HashMap<K, V>, E> {
        (self.method)(&self.repo, keys).await
    }
}
