//! The coalescing wrapper: the same per-item trait, served by batches.

use super::{MemoryBatchRepository, MemoryRepository};
use crate::{
    db::Database,
    {
        Category, MemoryKey, MemoryStore, NewMemory, Onboarding, StoreError, last_write_wins,
        validate,
    },
};
use coalesce::{
    BatchSettings, BatchSource, ConfigError, Loader, MethodSource, Stats, StatsSnapshot, WriteSink,
    Writer, from_method,
};
use std::{collections::HashMap, sync::Arc};

type Source<B, K, V> = MethodSource<B, K, V, sqlx::Error>;

/// [`MemoryRepository`] over any [`MemoryBatchRepository`]: concurrent
/// single reads share one batched query per kind, and single writes made in
/// the same tick share one bulk statement.
///
/// Results equal the plain implementation's. Consistency: once a
/// `save_memory` or `delete_memory` has returned, every read that starts
/// afterwards sees its effect (the written keys are detached from read
/// batches that may have begun before the write). A write batch is atomic:
/// if its statement fails, every caller of that batch gets the error and
/// nothing of it is written; invalid input fails only its own caller,
/// before it joins a batch.
///
/// ```no_run
/// use coalesce_store::repo::{CoalescingRepository, MemoryRepository};
/// use coalesce_store::{Category, MemoryStore, NewMemory};
///
/// # #[tokio::main] async fn main() -> Result<(), coalesce_store::StoreError> {
/// let repo = CoalescingRepository::new(MemoryStore::connect("sqlite://target/app.db", 8).await?);
/// let saves = (0..250).map(|i| repo.save_memory(NewMemory::new("u1", Category::Fact, format!("k{i}"), "v")));
/// futures::future::try_join_all(saves).await?; // 3 statements of up to 100 rows
/// println!("{}", serde_json::to_string(&repo.stats()).unwrap());
/// # Ok(()) }
/// ```
pub struct CoalescingRepository<B: MemoryBatchRepository> {
    repo: Arc<B>,
    profiles: Loader<Source<B, String, String>>,
    onboardings: Loader<Source<B, String, Onboarding>>,
    memories: Loader<Source<B, MemoryKey, String>>,
    saves: Writer<SaveSink<B>>,
    deletes: Writer<DeleteSink<B>>,
    stats: Arc<Stats>,
}

impl<B: MemoryBatchRepository> CoalescingRepository<B> {
    /// Wrap `repo` with the defaults: batches of up to 100 items, dispatched
    /// after one yield (or, while another batch of the same kind is in
    /// flight, once full or once that batch completes), at most
    /// `repo.max_concurrent_batches()` batches of each kind at once.
    pub fn new(repo: B) -> Self {
        let settings = BatchSettings {
            max_concurrent_batches: repo.max_concurrent_batches().filter(|n| *n > 0),
            ..BatchSettings::default()
        };
        match Self::with_settings(repo, settings) {
            Ok(wrapped) => wrapped,
            Err(_) => unreachable!("default settings with a non-zero limit are valid"),
        }
    }

    /// Wrap `repo`, every loader and writer batching with `settings` and
    /// counting into one [`Stats`].
    ///
    /// ```no_run
    /// use coalesce::{BatchSettings, BatchWindow};
    /// use coalesce_store::repo::CoalescingRepository;
    /// use coalesce_store::db::Database;
    /// use std::time::Duration;
    ///
    /// # async fn f(db: Database) -> Result<(), coalesce::ConfigError> {
    /// let settings = BatchSettings {
    ///     window: BatchWindow::Time(Duration::from_millis(1)),
    ///     ..BatchSettings::default()
    /// };
    /// let repo = CoalescingRepository::with_settings(db, settings)?;
    /// # drop(repo); Ok(()) }
    /// ```
    pub fn with_settings(repo: B, settings: BatchSettings) -> Result<Self, ConfigError> {
        settings.validate()?;
        let repo = Arc::new(repo);
        let stats = Arc::new(Stats::new(settings.max_batch_size));
        Ok(Self {
            profiles: Loader::builder(from_method(Arc::clone(&repo), |r, ids| {
                Box::pin(r.get_profiles(ids))
            }))
            .name("profiles")
            .settings(settings)
            .stats(Arc::clone(&stats))
            .build()?,
            onboardings: Loader::builder(from_method(Arc::clone(&repo), |r, ids| {
                Box::pin(r.get_onboardings(ids))
            }))
            .name("onboardings")
            .settings(settings)
            .stats(Arc::clone(&stats))
            .build()?,
            memories: Loader::builder(from_method(Arc::clone(&repo), |r, keys| {
                Box::pin(r.get_memories(keys))
            }))
            .name("memories")
            .settings(settings)
            .stats(Arc::clone(&stats))
            .build()?,
            saves: Writer::configure(SaveSink(Arc::clone(&repo)), |b| {
                b.name("saves").settings(settings).stats(Arc::clone(&stats))
            })?,
            deletes: Writer::configure(DeleteSink(Arc::clone(&repo)), |b| {
                b.name("deletes")
                    .settings(settings)
                    .stats(Arc::clone(&stats))
            })?,
            repo,
            stats,
        }
        .reading_consistently())
    }

    /// This repository's loaders, made readers of their tables for writes
    /// through other handles of the same database.
    fn reading_consistently(self) -> Self {
        let repo = &self.repo;
        repo.register_readers(&self.profiles, &self.onboardings, &self.memories);
        self
    }

    /// The wrapped repository.
    pub fn inner(&self) -> &B {
        &self.repo
    }

    /// Statistics of every loader and writer of this repository together.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }
}

impl<B: MemoryBatchRepository> MemoryRepository for CoalescingRepository<B> {
    async fn get_profile(&self, user_id: &str) -> Result<Option<String>, StoreError> {
        validate::user_id(user_id)?;
        let load = self.profiles.load(user_id.to_owned());
        load.await.map_err(StoreError::batch("get_profile"))
    }

    async fn get_memory(&self, key: &MemoryKey) -> Result<Option<String>, StoreError> {
        validate::memory_key(key)?;
        let load = self.memories.load(key.clone());
        load.await.map_err(StoreError::batch("get_memory"))
    }

    async fn get_onboarding(&self, user_id: &str) -> Result<Option<Onboarding>, StoreError> {
        validate::user_id(user_id)?;
        let load = self.onboardings.load(user_id.to_owned());
        load.await.map_err(StoreError::batch("get_onboarding"))
    }

    async fn save_memory(&self, memory: NewMemory) -> Result<(), StoreError> {
        validate::new_memory(&memory)?;
        let key = memory.memory_key();
        let saved = self.saves.write(memory).await;
        saved.map_err(StoreError::batch("save_memory"))?;
        // Committed: reads that start from now on must not get a value
        // fetched before it.
        self.memories.clear(&key);
        Ok(())
    }

    async fn delete_memory(&self, user_id: &str, key: &str) -> Result<bool, StoreError> {
        validate::user_id(user_id)?;
        validate::key(key)?;
        let deleted = self
            .deletes
            .write((user_id.to_owned(), key.to_owned()))
            .await;
        let deleted = deleted.map_err(StoreError::batch("delete_memory"))?;
        for category in Category::ALL {
            self.memories.clear(&MemoryKey::new(user_id, category, key));
        }
        Ok(deleted)
    }
}

/// Single saves, written as one atomic upsert per batch.
struct SaveSink<B>(Arc<B>);

impl<B: MemoryBatchRepository> WriteSink for SaveSink<B> {
    type Op = NewMemory;
    type Output = ();
    type Error = sqlx::Error;

    async fn write(&self, ops: Vec<NewMemory>) -> Result<Vec<()>, sqlx::Error> {
        let count = ops.len();
        // Last write wins within the batch; a fixed row order keeps two
        // concurrent batches from locking the same rows in opposite orders.
        let mut rows = last_write_wins(&ops);
        rows.sort_unstable_by_key(NewMemory::memory_key);
        self.0.save_memories(&rows).await?;
        Ok(vec![(); count])
    }
}

/// Single deletes, run as one statement per batch; each caller learns
/// whether its key existed, as if the batch's deletes ran one by one.
struct DeleteSink<B>(Arc<B>);

impl<B: MemoryBatchRepository> WriteSink for DeleteSink<B> {
    type Op = (String, String);
    type Output = bool;
    type Error = sqlx::Error;

    async fn write(&self, ops: Vec<(String, String)>) -> Result<Vec<bool>, sqlx::Error> {
        let mut pairs = ops.clone();
        pairs.sort_unstable();
        pairs.dedup();
        let mut deleted: std::collections::HashSet<(String, String)> =
            self.0.delete_memories(&pairs).await?.into_iter().collect();
        // A pair named twice in one batch answers as one delete after the
        // other: the first caller deleted it, the second found nothing.
        Ok(ops.iter().map(|pair| deleted.remove(pair)).collect())
    }
}

impl MemoryBatchRepository for Database {
    async fn get_profiles(
        &self,
        user_ids: &[String],
    ) -> Result<HashMap<String, String>, sqlx::Error> {
        self.profiles(user_ids).await
    }

    async fn get_onboardings(
        &self,
        user_ids: &[String],
    ) -> Result<HashMap<String, Onboarding>, sqlx::Error> {
        self.onboardings(user_ids).await
    }

    async fn get_memories(
        &self,
        keys: &[MemoryKey],
    ) -> Result<HashMap<MemoryKey, String>, sqlx::Error> {
        self.memories_by_key(keys).await
    }

    async fn save_memories(&self, memories: &[NewMemory]) -> Result<(), sqlx::Error> {
        let rows = last_write_wins(memories);
        Database::save_memories(self, &rows, rows.len().max(1)).await
    }

    async fn delete_memories(
        &self,
        pairs: &[(String, String)],
    ) -> Result<Vec<(String, String)>, sqlx::Error> {
        self.delete_memory_pairs(pairs).await
    }

    fn max_concurrent_batches(&self) -> Option<usize> {
        usize::try_from(self.pool_size()).ok()
    }

    fn register_readers<P, O, M>(
        &self,
        profiles: &Loader<P>,
        onboardings: &Loader<O>,
        memories: &Loader<M>,
    ) where
        P: BatchSource<Key = String>,
        O: BatchSource<Key = String>,
        M: BatchSource<Key = MemoryKey>,
    {
        Database::register_readers(self, profiles, onboardings, memories);
    }
}

/// The store serves the batch operations through its database, whose
/// writes keep the store's own loaders consistent.
impl MemoryBatchRepository for MemoryStore {
    async fn get_profiles(
        &self,
        user_ids: &[String],
    ) -> Result<HashMap<String, String>, sqlx::Error> {
        self.database().get_profiles(user_ids).await
    }

    async fn get_onboardings(
        &self,
        user_ids: &[String],
    ) -> Result<HashMap<String, Onboarding>, sqlx::Error> {
        self.database().get_onboardings(user_ids).await
    }

    async fn get_memories(
        &self,
        keys: &[MemoryKey],
    ) -> Result<HashMap<MemoryKey, String>, sqlx::Error> {
        self.database().get_memories(keys).await
    }

    // The database's writes detach their keys from this store's loaders
    // (registered with it when the store was made).
    async fn save_memories(&self, memories: &[NewMemory]) -> Result<(), sqlx::Error> {
        MemoryBatchRepository::save_memories(self.database(), memories).await
    }

    async fn delete_memories(
        &self,
        pairs: &[(String, String)],
    ) -> Result<Vec<(String, String)>, sqlx::Error> {
        self.database().delete_memory_pairs(pairs).await
    }

    fn max_concurrent_batches(&self) -> Option<usize> {
        self.database().max_concurrent_batches()
    }

    fn register_readers<P, O, M>(
        &self,
        profiles: &Loader<P>,
        onboardings: &Loader<O>,
        memories: &Loader<M>,
    ) where
        P: BatchSource<Key = String>,
        O: BatchSource<Key = String>,
        M: BatchSource<Key = MemoryKey>,
    {
        self.database()
            .register_readers(profiles, onboardings, memories);
    }
}
