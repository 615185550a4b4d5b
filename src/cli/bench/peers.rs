//! The peer loaders the bench compares against, over the SQL layer's own
//! batch functions (`Database::profiles`, `Database::memories_by_key`), so
//! every path sends the same batched statement and only the engine differs.

use super::paths::{EngineStats, OpError, PathKind};
use coalesce::BatchMethod;
use coalesce_store::MemoryKey;
use coalesce_store::db::Database;
use std::{
    collections::HashMap,
    hash::Hash,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

/// Batches and keys a peer's batch functions were called with.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    batches: AtomicU64,
    keys: AtomicU64,
    largest: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    fn batch(&self, keys: usize) {
        self.batches.fetch_add(1, Relaxed);
        self.keys.fetch_add(keys as u64, Relaxed);
        self.largest.fetch_max(keys as u64, Relaxed);
    }
}

/// A batch's outcome as the `dataloader` crate needs it: one cloneable value per key.
type Slot = Result<Option<String>, String>;

/// One of the SQL layer's batch reads: `Database::profiles` or
/// `Database::memories_by_key`.
type Read<K> = BatchMethod<Database, K, String, sqlx::Error>;

/// A batch read served to a peer crate, counting the batches it is called with.
struct PeerSource<K> {
    db: Database,
    read: Read<K>,
    counters: Arc<Counters>,
}

impl<K> PeerSource<K> {
    fn new(db: &Database, read: Read<K>, counters: &Arc<Counters>) -> Self {
        Self {
            db: db.clone(),
            read,
            counters: Arc::clone(counters),
        }
    }

    /// Run the read for `keys`, counting the batch and a failure.
    async fn fetch(&self, keys: &[K]) -> Result<HashMap<K, String>, sqlx::Error> {
        self.counters.batch(keys.len());
        let rows = (self.read)(&self.db, keys).await;
        if rows.is_err() {
            self.counters.errors.fetch_add(1, Relaxed);
        }
        rows
    }
}

impl<K: Eq + Hash + Clone> dataloader::BatchFn<K, Slot> for PeerSource<K> {
    /// Spread the batch's rows (or its error) over its keys.
    async fn load(&mut self, keys: &[K]) -> HashMap<K, Slot> {
        match self.fetch(keys).await {
            Ok(rows) => {
                let mut found: HashMap<K, Slot> =
                    rows.into_iter().map(|(k, v)| (k, Ok(Some(v)))).collect();
                for key in keys {
                    found.entry(key.clone()).or_insert(Ok(None));
                }
                found
            }
            Err(error) => {
                let message = error.to_string();
                keys.iter()
                    .map(|k| (k.clone(), Err(message.clone())))
                    .collect()
            }
        }
    }
}

impl<K> async_graphql::dataloader::Loader<K> for PeerSource<K>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
{
    type Value = String;
    type Error = Arc<sqlx::Error>;

    async fn load(&self, keys: &[K]) -> Result<HashMap<K, String>, Self::Error> {
        self.fetch(keys).await.map_err(Arc::new)
    }
}

type AgLoader<T> = async_graphql::dataloader::DataLoader<T>;

type DlLoader<K> = dataloader::non_cached::Loader<K, Slot, PeerSource<K>>;

enum Loaders {
    Dataloader {
        profiles: DlLoader<String>,
        memories: DlLoader<MemoryKey>,
    },
    AsyncGraphql {
        profiles: AgLoader<PeerSource<String>>,
        memories: AgLoader<PeerSource<MemoryKey>>,
    },
}

/// A peer path: profile and memory loaders of one peer crate.
pub struct Peers {
    loaders: Loaders,
    counters: Arc<Counters>,
}

impl Peers {
    /// The loaders of peer path `kind` over `db`, with the crate's defaults
    /// (async-graphql: no cache; zero delay for `async-graphql-0`).
    pub fn new(kind: PathKind, db: &Database) -> Self {
        let counters = Arc::new(Counters::default());
        let profiles = PeerSource::new(db, |db, ids| Box::pin(db.profiles(ids)), &counters);
        let memories =
            PeerSource::new(db, |db, keys| Box::pin(db.memories_by_key(keys)), &counters);
        let loaders = match kind {
            PathKind::AsyncGraphql | PathKind::AsyncGraphqlNoDelay => {
                let zero_delay = kind == PathKind::AsyncGraphqlNoDelay;
                Loaders::AsyncGraphql {
                    profiles: ag_loader(profiles, zero_delay),
                    memories: ag_loader(memories, zero_delay),
                }
            }
            _ => Loaders::Dataloader {
                profiles: DlLoader::new(profiles),
                memories: DlLoader::new(memories),
            },
        };
        Self { loaders, counters }
    }

    /// One profile through the peer loader.
    pub async fn profile(&self, user_id: String) -> Result<Option<String>, OpError> {
        self.counters.requests.fetch_add(1, Relaxed);
        match &self.loaders {
            Loaders::Dataloader { profiles, .. } => dl_result(profiles.try_load(user_id).await),
            Loaders::AsyncGraphql { profiles, .. } => profiles
                .load_one(user_id)
                .await
                .map_err(|e| OpError::Peer(e.to_string())),
        }
    }

    /// One memory's value through the peer loader.
    pub async fn memory(&self, key: MemoryKey) -> Result<Option<String>, OpError> {
        self.counters.requests.fetch_add(1, Relaxed);
        match &self.loaders {
            Loaders::Dataloader { memories, .. } => dl_result(memories.try_load(key).await),
            Loaders::AsyncGraphql { memories, .. } => memories
                .load_one(key)
                .await
                .map_err(|e| OpError::Peer(e.to_string())),
        }
    }

    /// The batches the peer's batch functions saw so far.
    pub fn stats(&self) -> EngineStats {
        let c = &self.counters;
        let batches = c.batches.load(Relaxed);
        let keys = c.keys.load(Relaxed);
        EngineStats {
            requests: c.requests.load(Relaxed),
            batches,
            keys,
            mean_batch: EngineStats::mean_batch(keys, batches),
            largest_batch: c.largest.load(Relaxed),
            deduplicated: 0,
            errors: c.errors.load(Relaxed),
        }
    }
}

/// An async-graphql loader without cache, spawning on Tokio, with its
/// default 1 ms delay or none.
fn ag_loader<T>(loader: T, zero_delay: bool) -> AgLoader<T>
where
    T: Send + Sync + 'static,
{
    let loader = AgLoader::new(loader, tokio::spawn);
    if zero_delay {
        loader.delay(Duration::ZERO)
    } else {
        loader
    }
}

fn dl_result(loaded: Result<Slot, std::io::Error>) -> Result<Option<String>, OpError> {
    loaded
        .map_err(|e| OpError::Peer(format!("dataloader: {e}")))?
        .map_err(OpError::Peer)
}
