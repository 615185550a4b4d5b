//! The repository the resolvers call per item, in the service's three
//! modes. The batch functions are written once, as async-graphql loaders
//! ([`SqlLoader`]); a mode only decides who calls them.

use crate::{
    db::{self, Reads},
    model::{Author, Comment, Post},
};
use async_graphql::dataloader::{DataLoader, Loader as GraphqlLoader};
use coalesce::{AsyncGraphqlError, AsyncGraphqlSource, ConfigError, LoadError};
use futures::future::BoxFuture;
use std::{collections::HashMap, hash::Hash, sync::Arc};

/// How per-item reads reach the database.
///
/// ```
/// use clap::ValueEnum;
/// use coalesce_graphql::Mode;
/// assert_eq!(Mode::from_str("async-graphql", false), Ok(Mode::AsyncGraphql));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// One statement per item: the N+1 the other modes remove.
    Naive,
    /// async-graphql's `DataLoader` over the loaders, its default 1 ms delay.
    AsyncGraphql,
    /// coalesce `Loader`s over the same loaders (`AsyncGraphqlSource`).
    Coalesce,
}

/// A loader's error: the database's, shared (async-graphql needs `Clone`).
pub(crate) type SharedError = Arc<db::Error>;

/// Why a per-item read failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RepoError {
    /// The statement failed (naive mode, async-graphql's `DataLoader`, the
    /// root of a list).
    #[error(transparent)]
    Database(#[from] SharedError),
    /// The coalesced batch this read was in failed.
    #[error(transparent)]
    Batch(#[from] LoadError<AsyncGraphqlError<SharedError>>),
}

/// Key of [`Repo::get_author`]: an author's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct AuthorId(pub(crate) i64);

/// Key of [`Repo::posts_of`]: the author's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PostsOf(pub(crate) i64);

/// Key of [`Repo::comments_of`]: the post's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CommentsOf(pub(crate) i64);

/// The batch functions, as an async-graphql user has them today: one
/// `Loader` impl per key type.
pub(crate) struct SqlLoader(Arc<dyn Reads>);

/// One of the batched reads of [`Reads`], which answer by plain ids.
type Read<V> =
    for<'a> fn(&'a dyn Reads, &'a [i64]) -> BoxFuture<'a, Result<HashMap<i64, V>, db::Error>>;

/// Read `keys` with `read`, by the keys' inner ids.
async fn by_id<K: Copy + Hash + Eq, V>(
    reads: &dyn Reads,
    keys: &[K],
    id: fn(K) -> i64,
    read: Read<V>,
) -> Result<HashMap<K, V>, SharedError> {
    let ids: Vec<i64> = keys.iter().map(|&k| id(k)).collect();
    let mut found = read(reads, &ids).await.map_err(Arc::new)?;
    Ok(keys
        .iter()
        .filter_map(|&k| Some((k, found.remove(&id(k))?)))
        .collect())
}

impl GraphqlLoader<AuthorId> for SqlLoader {
    type Value = Author;
    type Error = SharedError;
    async fn load(&self, keys: &[AuthorId]) -> Result<HashMap<AuthorId, Author>, SharedError> {
        by_id(&*self.0, keys, |AuthorId(id)| id, |r, ids| r.authors(ids)).await
    }
}

impl GraphqlLoader<PostsOf> for SqlLoader {
    type Value = Vec<Post>;
    type Error = SharedError;
    async fn load(&self, keys: &[PostsOf]) -> Result<HashMap<PostsOf, Vec<Post>>, SharedError> {
        by_id(
            &*self.0,
            keys,
            |PostsOf(id)| id,
            |r, ids| r.posts_by_author(ids),
        )
        .await
    }
}

impl GraphqlLoader<CommentsOf> for SqlLoader {
    type Value = Vec<Comment>;
    type Error = SharedError;
    async fn load(
        &self,
        keys: &[CommentsOf],
    ) -> Result<HashMap<CommentsOf, Vec<Comment>>, SharedError> {
        by_id(
            &*self.0,
            keys,
            |CommentsOf(id)| id,
            |r, ids| r.comments_by_post(ids),
        )
        .await
    }
}

/// A coalesce loader over one key type of [`SqlLoader`].
type Coalesced<K> = coalesce::Loader<AsyncGraphqlSource<SqlLoader, K>>;

/// One coalesce loader per key type, all over one [`SqlLoader`].
struct CoalescedLoaders {
    authors: Coalesced<AuthorId>,
    posts: Coalesced<PostsOf>,
    comments: Coalesced<CommentsOf>,
}

impl CoalescedLoaders {
    fn new(loader: Arc<SqlLoader>) -> Result<Self, ConfigError> {
        Ok(Self {
            authors: coalesced(Arc::clone(&loader))?,
            posts: coalesced(Arc::clone(&loader))?,
            comments: coalesced(loader)?,
        })
    }
}

/// The one-line switch from `DataLoader::new(loader, tokio::spawn)`, with
/// async-graphql's batch cap of 1,000 keys instead of coalesce's default
/// 100, so both modes send a level of up to 1,000 keys as one statement.
fn coalesced<K>(loader: Arc<SqlLoader>) -> Result<Coalesced<K>, ConfigError>
where
    SqlLoader: GraphqlLoader<K, Error = SharedError>,
    K: Eq + Hash + Clone + Send + Sync + 'static,
{
    coalesce::Loader::builder(AsyncGraphqlSource::shared(loader))
        .max_batch_size(1000)
        .build()
}

/// A key type of [`SqlLoader`], and which coalesce loader serves it.
trait PerItem: Eq + Hash + Clone + Send + Sync + 'static
where
    SqlLoader: GraphqlLoader<Self, Error = SharedError>,
{
    fn loader(loaders: &CoalescedLoaders) -> &Coalesced<Self>;
}

impl PerItem for AuthorId {
    fn loader(loaders: &CoalescedLoaders) -> &Coalesced<Self> {
        &loaders.authors
    }
}

impl PerItem for PostsOf {
    fn loader(loaders: &CoalescedLoaders) -> &Coalesced<Self> {
        &loaders.posts
    }
}

impl PerItem for CommentsOf {
    fn loader(loaders: &CoalescedLoaders) -> &Coalesced<Self> {
        &loaders.comments
    }
}

/// Who calls the batch functions.
enum Fetch {
    Naive(Arc<SqlLoader>),
    AsyncGraphql(DataLoader<SqlLoader>),
    Coalesce(CoalescedLoaders),
}

/// What the resolvers call, one item at a time, in every mode. Lives as
/// long as the schema: every request shares its loaders, as an
/// async-graphql `DataLoader` in the schema's data is shared.
pub(crate) struct Repo {
    reads: Arc<dyn Reads>,
    fetch: Fetch,
}

impl Repo {
    pub(crate) fn new(reads: Arc<dyn Reads>, mode: Mode) -> Result<Self, ConfigError> {
        let loader = SqlLoader(Arc::clone(&reads));
        let fetch = match mode {
            Mode::Naive => Fetch::Naive(Arc::new(loader)),
            Mode::AsyncGraphql => Fetch::AsyncGraphql(DataLoader::new(loader, tokio::spawn)),
            Mode::Coalesce => Fetch::Coalesce(CoalescedLoaders::new(Arc::new(loader))?),
        };
        Ok(Self { reads, fetch })
    }

    /// The root of a list: one statement, in every mode.
    pub(crate) async fn author_page(
        &self,
        first: u32,
        offset: u32,
    ) -> Result<Vec<Author>, RepoError> {
        Ok(self
            .reads
            .author_page(first, offset)
            .await
            .map_err(Arc::new)?)
    }

    pub(crate) async fn get_author(&self, id: i64) -> Result<Option<Author>, RepoError> {
        self.one(AuthorId(id)).await
    }

    pub(crate) async fn posts_of(&self, author_id: i64) -> Result<Vec<Post>, RepoError> {
        Ok(self.one(PostsOf(author_id)).await?.unwrap_or_default())
    }

    pub(crate) async fn comments_of(&self, post_id: i64) -> Result<Vec<Comment>, RepoError> {
        Ok(self.one(CommentsOf(post_id)).await?.unwrap_or_default())
    }

    async fn one<K: PerItem>(
        &self,
        key: K,
    ) -> Result<Option<<SqlLoader as GraphqlLoader<K>>::Value>, RepoError>
    where
        SqlLoader: GraphqlLoader<K, Error = SharedError>,
    {
        Ok(match &self.fetch {
            Fetch::Naive(loader) => loader.load(std::slice::from_ref(&key)).await?.remove(&key),
            Fetch::AsyncGraphql(loader) => loader.load_one(key).await?,
            Fetch::Coalesce(loaders) => K::loader(loaders).load(key).await?,
        })
    }
}
