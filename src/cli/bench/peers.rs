//! The peer loaders the bench compares against, over the SQL layer's own
//! batch functions (`Database::profiles`, `Database::memories_by_key`), so
//! every path sends the same batched statement and only the engine differs.

use super::paths::{EngineStats, OpError, PathKind};
use coalesce::{sql::Database, store::MemoryKey};
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

/// Spread a batch's rows (or its error) over its keys.
fn slots<K: Eq + Hash + Clone>(
    keys: &[K],
    rows: Result<Vec<(K, String)>, sqlx::Error>,
    counters: &Counters,
) -> HashMap<K, Slot> {
    match rows {
        Ok(rows) => {
            let mut found: HashMap<K, Slot> =
                rows.into_iter().map(|(k, v)| (k, Ok(Some(v)))).collect();
            for key in keys {
                found.entry(key.clone()).or_insert(Ok(None));
            }
            found
        }
        Err(error) => {
            counters.errors.fetch_add(1, Relaxed);
            let message = error.to_string();
            keys.iter()
                .map(|k| (k.clone(), Err(message.clone())))
                .collect()
        }
    }
}

/// Profiles through `Database::profiles`, for the `dataloader` crate.
struct DlProfiles(Database, Arc<Counters>);

impl dataloader::BatchFn<String, Slot> for DlProfiles {
    async fn load(&mut self, keys: &[String]) -> HashMap<String, Slot> {
        self.1.batch(keys.len());
        slots(keys, self.0.profiles(keys).await, &self.1)
    }
}

/// Memories through `Database::memories_by_key`, for the `dataloader` crate.
struct DlMemories(Database, Arc<Counters>);

impl dataloader::BatchFn<MemoryKey, Slot> for DlMemories {
    async fn load(&mut self, keys: &[MemoryKey]) -> HashMap<MemoryKey, Slot> {
        self.1.batch(keys.len());
        slots(keys, self.0.memories_by_key(keys).await, &self.1)
    }
}

/// Profiles through `Database::profiles`, for async-graphql.
struct AgProfiles(Database, Arc<Counters>);

impl async_graphql::dataloader::Loader<String> for AgProfiles {
    type Value = String;
    type Error = Arc<sqlx::Error>;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, String>, Self::Error> {
        self.1.batch(keys.len());
        let rows = self.0.profiles(keys).await.map_err(Arc::new);
        if rows.is_err() {
            self.1.errors.fetch_add(1, Relaxed);
        }
        Ok(rows?.into_iter().collect())
    }
}

/// Memories through `Database::memories_by_key`, for async-graphql.
struct AgMemories(Database, Arc<Counters>);

impl async_graphql::dataloader::Loader<MemoryKey> for AgMemories {
    type Value = String;
    type Error = Arc<sqlx::Error>;

    async fn load(&self, keys: &[MemoryKey]) -> Result<HashMap<MemoryKey, String>, Self::Error> {
        self.1.batch(keys.len());
        let rows = self.0.memories_by_key(keys).await.map_err(Arc::new);
        if rows.is_err() {
            self.1.errors.fetch_add(1, Relaxed);
        }
        Ok(rows?.into_iter().collect())
    }
}

type AgLoader<T> = async_graphql::dataloader::DataLoader<T>;

enum Loaders {
    Dataloader {
        profiles: dataloader::non_cached::Loader<String, Slot, DlProfiles>,
        memories: dataloader::non_cached::Loader<MemoryKey, Slot, DlMemories>,
    },
    AsyncGraphql {
        profiles: AgLoader<AgProfiles>,
        memories: AgLoader<AgMemories>,
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
        let loaders = match kind {
            PathKind::AsyncGraphql | PathKind::AsyncGraphqlNoDelay => {
                let zero_delay = kind == PathKind::AsyncGraphqlNoDelay;
                Loaders::AsyncGraphql {
                    profiles: ag_loader(AgProfiles(db.clone(), Arc::clone(&counters)), zero_delay),
                    memories: ag_loader(AgMemories(db.clone(), Arc::clone(&counters)), zero_delay),
                }
            }
            _ => Loaders::Dataloader {
                profiles: dataloader::non_cached::Loader::new(DlProfiles(
                    db.clone(),
                    Arc::clone(&counters),
                )),
                memories: dataloader::non_cached::Loader::new(DlMemories(
                    db.clone(),
                    Arc::clone(&counters),
                )),
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
            mean_batch: if batches == 0 {
                0.0
            } else {
                (keys as f64 / batches as f64 * 10.0).round() / 10.0
            },
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
