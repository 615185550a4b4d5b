//! Run an existing [`async_graphql::dataloader::Loader`] as a
//! [`BatchSource`], so moving from async-graphql's `DataLoader` changes the
//! line that builds the loader, not the loader.

use super::BatchSource;
use std::{collections::HashMap, fmt, hash::Hash, marker::PhantomData, sync::Arc};

/// A [`BatchSource`] over one key type of an async-graphql
/// [`Loader`](async_graphql::dataloader::Loader).
///
/// async-graphql's `DataLoader` serves every key type its loader
/// implements; a coalesce [`Loader`](crate::Loader) serves one, so build one
/// per key type; they can share the loader ([`shared`](Self::shared)).
///
/// ```
/// use async_graphql::dataloader::Loader as GraphqlLoader;
/// use coalesce::{AsyncGraphqlSource, Loader};
/// use std::{collections::HashMap, sync::Arc};
///
/// struct Names;
/// impl GraphqlLoader<u64> for Names {
///     type Value = String;
///     type Error = Arc<std::io::Error>;
///     async fn load(&self, keys: &[u64]) -> Result<HashMap<u64, String>, Self::Error> {
///         Ok(keys.iter().map(|k| (*k, format!("user {k}"))).collect())
///     }
/// }
///
/// # #[tokio::main] async fn main() {
/// // Before: DataLoader::new(Names, tokio::spawn), then `load_one(7)`.
/// let names = Loader::new(AsyncGraphqlSource::new(Names));
/// assert_eq!(names.load(7).await.unwrap().as_deref(), Some("user 7"));
/// # }
/// ```
pub struct AsyncGraphqlSource<L, K> {
    loader: Arc<L>,
    _key: PhantomData<fn(K)>,
}

impl<L, K> AsyncGraphqlSource<L, K> {
    /// Serve key type `K` of `loader`.
    ///
    /// ```
    /// # use async_graphql::dataloader::Loader as GraphqlLoader;
    /// # use std::{collections::HashMap, sync::Arc};
    /// # struct Names;
    /// # impl GraphqlLoader<u64> for Names {
    /// #     type Value = u64; type Error = Arc<std::fmt::Error>;
    /// #     async fn load(&self, k: &[u64]) -> Result<HashMap<u64, u64>, Self::Error> { Ok(HashMap::new()) }
    /// # }
    /// let names = coalesce::Loader::new(coalesce::AsyncGraphqlSource::new(Names));
    /// # let _: &coalesce::Loader<coalesce::AsyncGraphqlSource<Names, u64>> = &names;
    /// ```
    pub fn new(loader: L) -> Self {
        Self::shared(Arc::new(loader))
    }

    /// Serve key type `K` of a loader shared with the sources of its other
    /// key types.
    ///
    /// ```
    /// # use async_graphql::dataloader::Loader as GraphqlLoader;
    /// # use std::{collections::HashMap, sync::Arc};
    /// use coalesce::{AsyncGraphqlSource, Loader};
    ///
    /// struct Repo;
    /// # impl GraphqlLoader<u64> for Repo {
    /// #     type Value = u64; type Error = Arc<std::fmt::Error>;
    /// #     async fn load(&self, k: &[u64]) -> Result<HashMap<u64, u64>, Self::Error> { Ok(HashMap::new()) }
    /// # }
    /// # impl GraphqlLoader<String> for Repo {
    /// #     type Value = u64; type Error = Arc<std::fmt::Error>;
    /// #     async fn load(&self, k: &[String]) -> Result<HashMap<String, u64>, Self::Error> { Ok(HashMap::new()) }
    /// # }
    /// let repo = Arc::new(Repo);
    /// let by_id = Loader::new(AsyncGraphqlSource::<_, u64>::shared(Arc::clone(&repo)));
    /// let by_name = Loader::new(AsyncGraphqlSource::<_, String>::shared(repo));
    /// # drop((by_id, by_name));
    /// ```
    pub fn shared(loader: Arc<L>) -> Self {
        Self {
            loader,
            _key: PhantomData,
        }
    }

    /// The wrapped loader.
    ///
    /// ```
    /// # use async_graphql::dataloader::Loader as GraphqlLoader;
    /// # use std::{collections::HashMap, sync::Arc};
    /// # struct Names;
    /// # impl GraphqlLoader<u64> for Names {
    /// #     type Value = u64; type Error = Arc<std::fmt::Error>;
    /// #     async fn load(&self, k: &[u64]) -> Result<HashMap<u64, u64>, Self::Error> { Ok(HashMap::new()) }
    /// # }
    /// let source = coalesce::AsyncGraphqlSource::<_, u64>::new(Names);
    /// let _names: &Names = source.loader();
    /// ```
    pub fn loader(&self) -> &L {
        &self.loader
    }
}

/// A batch's error from an async-graphql loader, which need not implement
/// [`std::error::Error`] (`async_graphql::Error` does not): shown by its
/// `Debug` form, and given back whole in the public field.
///
/// ```
/// let error = coalesce::AsyncGraphqlError("no connection");
/// assert_eq!(error.to_string(), r#"async-graphql loader failed: "no connection""#);
/// assert_eq!(error.0, "no connection");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AsyncGraphqlError<E>(pub E);

impl<E: fmt::Debug> fmt::Display for AsyncGraphqlError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "async-graphql loader failed: {:?}", self.0)
    }
}

impl<E: fmt::Debug> std::error::Error for AsyncGraphqlError<E> {}

impl<L, K> BatchSource for AsyncGraphqlSource<L, K>
where
    L: async_graphql::dataloader::Loader<K>,
    L::Error: fmt::Debug + Sync,
    K: Eq + Hash + Clone + Send + Sync + 'static,
{
    type Key = K;
    type Value = L::Value;
    type Error = AsyncGraphqlError<L::Error>;

    async fn load(&self, keys: &[K]) -> Result<HashMap<K, L::Value>, Self::Error> {
        self.loader.load(keys).await.map_err(AsyncGraphqlError)
    }
}
