//! The coalescing wrapper: the same per-item trait, served by batches.

use super::{MemoryBatchRepository, MemoryRepository};
use crate::{
    MemoryKey, MemoryStore, NewMemory, Onboarding, StoreError,
    db::{Database, MemoryPair, OnboardingRow, ProfileRow, triple},
    last_write_wins, validate,
};
use coalesce::{BatchSettings, ConfigError, Stats, StatsSnapshot};
use coalesce_sql::{Rows, RowsOptions};
use std::collections::HashMap;
use std::sync::Arc;

/// [`MemoryRepository`] over a [`MemoryStore`] or a [`Database`]:
/// concurrent single reads share one batched query per kind, and single
/// writes made in the same tick share one bulk statement. Built on the
/// toolkit's [`Rows`] handles, one per table, so it answers and stays
/// consistent as they do.
///
/// Results equal the plain implementation's, each call its own: one bad
/// item (a value the database refuses) fails only its own caller; a
/// `delete_memory` of a key deleted earlier in the same batch answers
/// `false`, as one after the other would. Consistency: once a
/// `save_memory` or `delete_memory` has returned, every read that starts
/// afterwards sees its effect, through this repository, the store, or any
/// other handle of the same database (the toolkit detaches reads in
/// flight on every write of their table); over replicas, reads go where
/// the write has been replayed, and a database made
/// [`with_token`](Database::with_token) reads after its token. Invalid
/// input fails only its own caller, before it joins a batch.
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
pub struct CoalescingRepository<B = MemoryStore> {
    inner: B,
    profiles: Rows<ProfileRow>,
    onboardings: Rows<OnboardingRow>,
    memories: Rows<NewMemory>,
    memories_by_key: Rows<MemoryPair>,
    stats: Arc<Stats>,
}

impl<B: AsRef<Database>> CoalescingRepository<B> {
    /// Wrap `inner` with the defaults: batches of up to 100 items, dispatched
    /// after one yield (or, while another batch of the same kind is in
    /// flight, once full or once that batch completes), at most the
    /// connection pool's size of batches of each kind at once.
    pub fn new(inner: B) -> Self {
        match Self::with_settings(inner, BatchSettings::default()) {
            Ok(wrapped) => wrapped,
            Err(_) => unreachable!("the default settings are valid"),
        }
    }

    /// Wrap `inner`, every table's handle batching with `settings` and
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
    pub fn with_settings(inner: B, settings: BatchSettings) -> Result<Self, ConfigError> {
        settings.validate()?;
        let stats = Arc::new(Stats::new(settings.max_batch_size));
        let options = RowsOptions {
            settings,
            stats: Some(Arc::clone(&stats)),
            // The store's key columns compare bytewise (binary collations,
            // SQLite's default, PostgreSQL's deterministic ones): a write
            // need only detach the reads of its own keys.
            exact_keys: true,
            ..RowsOptions::default()
        };
        let database = inner.as_ref();
        Ok(Self {
            profiles: database.rows(options.clone())?,
            onboardings: database.rows(options.clone())?,
            memories: database.rows(options.clone())?,
            memories_by_key: database.rows(options)?,
            inner,
            stats,
        })
    }

    /// The wrapped store or database.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Statistics of every table's reads and writes together.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }
}

impl<B: AsRef<Database> + Send + Sync + 'static> MemoryRepository for CoalescingRepository<B> {
    async fn get_profile(&self, user_id: &str) -> Result<Option<String>, StoreError> {
        validate::user_id(user_id)?;
        let row = self.profiles.get(user_id.to_owned()).await;
        let row = row.map_err(StoreError::rows("get_profile"))?;
        Ok(row.map(|row| row.profile))
    }

    async fn get_memory(&self, key: &MemoryKey) -> Result<Option<String>, StoreError> {
        validate::memory_key(key)?;
        let row = self.memories.get(triple(key)).await;
        let row = row.map_err(StoreError::rows("get_memory"))?;
        Ok(row.map(|memory| memory.value))
    }

    async fn get_onboarding(&self, user_id: &str) -> Result<Option<Onboarding>, StoreError> {
        validate::user_id(user_id)?;
        let row = self.onboardings.get(user_id.to_owned()).await;
        let row = row.map_err(StoreError::rows("get_onboarding"))?;
        let state = row.as_ref().map(OnboardingRow::state).transpose();
        state.map_err(StoreError::db("get_onboarding"))
    }

    async fn save_memory(&self, memory: NewMemory) -> Result<(), StoreError> {
        validate::new_memory(&memory)?;
        let saved = self.memories.save(memory).await;
        saved.map_err(StoreError::rows("save_memory"))
    }

    async fn delete_memory(&self, user_id: &str, key: &str) -> Result<bool, StoreError> {
        validate::user_id(user_id)?;
        validate::key(key)?;
        let deleted = self
            .memories_by_key
            .delete((user_id.to_owned(), key.to_owned()))
            .await;
        deleted.map_err(StoreError::rows("delete_memory"))
    }
}

impl AsRef<Database> for Database {
    fn as_ref(&self) -> &Database {
        self
    }
}

impl AsRef<Database> for MemoryStore {
    fn as_ref(&self) -> &Database {
        self.database()
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
}
