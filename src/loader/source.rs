//! Where a loader's values come from: one call per batch of distinct keys.

use std::{collections::HashMap, future::Future, hash::Hash, marker::PhantomData};

/// A batch function: given distinct keys, return the values found.
///
/// Keys missing from the returned map resolve to `Ok(None)` for their
/// callers. The slice never holds the same key twice and never holds more
/// than the loader's `max_batch_size` keys.
///
/// ```
/// use coalesce::loader::BatchSource;
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
    /// The key a caller loads by, such as a primary key.
    type Key: Eq + Hash + Clone + Send + Sync + 'static;
    /// The value a key resolves to; cloned once per caller.
    type Value: Clone + Send + Sync + 'static;
    /// The error a batch can fail with; shared among callers, never cloned.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Fetch the values for `keys` in one round trip.
    fn load(
        &self,
        keys: &[Self::Key],
    ) -> impl Future<Output = Result<HashMap<Self::Key, Self::Value>, Self::Error>> + Send;
}

/// A [`BatchSource`] made from an async closure; see [`from_fn`].
pub struct FnSource<F, K, V, E> {
    batch_fn: F,
    _types: PhantomData<fn(K) -> (V, E)>,
}

/// Turn an async function of a `Vec` of keys into a [`BatchSource`].
///
/// ```
/// use coalesce::loader::{from_fn, Loader};
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
