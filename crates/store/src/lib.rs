//! The memory store: the specification's `DatabaseBatcher` in Rust.
//!
//! Batch operations send one statement for many items; single-item reads
//! (`get_profile`, `get_onboarding`, `get_memory`) go through the engine's
//! loaders, so concurrent callers share one batched query. Every input is
//! validated before any statement runs, so refused input writes nothing.
//!
//! ```no_run
//! use coalesce_store::{Category, MemoryStore, NewMemory};
//!
//! # #[tokio::main] async fn main() -> Result<(), coalesce_store::StoreError> {
//! let store = MemoryStore::connect("sqlite://target/memories.db", 8).await?;
//! store.batch_save_memories(&[
//!     NewMemory::new("123", Category::Fact, "name", "John"),
//!     NewMemory::new("123", Category::Fact, "age", "30"),
//! ]).await?; // one statement
//! let keys = ["name".to_owned(), "age".to_owned()];
//! let facts = store.batch_get_memories("123", None, Some(&keys), None).await?; // one statement
//! assert_eq!(facts.len(), 2);
//! let (a, b) = tokio::join!(store.get_profile("123"), store.get_profile("456")); // one statement
//! println!("{}", serde_json::to_string(&store.stats()).unwrap());
//! # drop((a, b)); Ok(()) }
//! ```
//!
//! The crate's rooms, each using only those listed before it:
//! - `invalid`, [`model`]: refused input ([`InvalidInput`]) and the store's
//!   types (memories, categories, profiles, onboarding);
//! - [`db`]: connection pools and the store's statements in each dialect;
//! - the crate root: [`MemoryStore`], batch operations and coalesced single reads;
//! - [`repo`]: drop-in batching of a per-item repository trait;
//! - [`tools`]: the store as agent tools (JSON Schemas and one JSON dispatch).

pub mod db;
mod echo;
mod error;
mod invalid;
pub mod model;
pub mod repo;
pub mod tools;
pub(crate) mod validate;

pub use echo::{ECHO_LIMIT, Echo};
pub use error::StoreError;
pub use invalid::InvalidInput;
pub use model::{Category, Memory, MemoryKey, NewMemory, Onboarding, UserData};
pub use validate::{MAX_KEY_CHARS, MAX_USER_ID_CHARS, MAX_VALUE_CHARS};

use crate::db::Database;
use coalesce::{
    BatchMethod, DEFAULT_MAX_BATCH_SIZE, Loader, MethodSource, Stats, StatsSnapshot, from_method,
};
use std::{
    collections::{HashMap, HashSet, hash_map::Entry},
    hash::Hash,
    sync::Arc,
};

/// The most rows a configured upsert statement may hold: below SQLite's
/// bind limit at four binds a row.
pub const MAX_ROWS_PER_STATEMENT: usize = 8_000;

/// How the store batches.
///
/// ```
/// use coalesce_store::StoreConfig;
/// let config = StoreConfig { rows_per_statement: 500, ..StoreConfig::default() };
/// assert_eq!(config.max_batch_size, 100);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    /// Rows per upsert statement in `batch_save_memories` (default 100,
    /// at most [`MAX_ROWS_PER_STATEMENT`]).
    pub rows_per_statement: usize,
    /// Most keys in one batch of a single-item loader (default 100).
    pub max_batch_size: usize,
    /// How many recent memories `prefetch_user_data` loads (default 20).
    pub recent_memories: i64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            rows_per_statement: 100,
            max_batch_size: DEFAULT_MAX_BATCH_SIZE,
            recent_memories: 20,
        }
    }
}

/// Memories, profiles and onboarding data of users, read and written in
/// batches. Cheap to clone: clones share the pool, loaders and statistics.
#[derive(Clone)]
pub struct MemoryStore {
    db: Database,
    config: StoreConfig,
    stats: Arc<Stats>,
    pub(crate) profiles: BatchRead<String, String>,
    pub(crate) onboardings: BatchRead<String, Onboarding>,
    pub(crate) memories: BatchRead<MemoryKey, String>,
    /// Every category's memory of a (user, key) pair: what concurrent
    /// `batch_get_memories` calls by keys share.
    memory_groups: BatchRead<(String, String), Vec<Memory>>,
}

/// A loader of the store over one of the SQL layer's batch reads.
type BatchRead<K, V> = Loader<MethodSource<Database, K, V, sqlx::Error>>;

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("backend", &self.db.backend())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// Connect with a pool of `pool_size`, apply the migrations, and build a
    /// store with the default configuration.
    pub async fn connect(url: &str, pool_size: u32) -> Result<Self, StoreError> {
        let db = Database::connect(url, pool_size).await?;
        db.migrate().await?;
        Self::new(db)
    }

    /// A store over an open (and migrated) database, default configuration.
    pub fn new(db: Database) -> Result<Self, StoreError> {
        Self::with_config(db, StoreConfig::default())
    }

    /// A store over an open database. Its loaders run at most as many
    /// batches at once as the pool has connections, and cache nothing.
    pub fn with_config(db: Database, config: StoreConfig) -> Result<Self, StoreError> {
        if !(1..=MAX_ROWS_PER_STATEMENT).contains(&config.rows_per_statement) {
            return Err(InvalidInput::BadConfig("rows_per_statement must be 1..=8000").into());
        }
        validate::limit(config.recent_memories)?;
        let stats = Arc::new(Stats::new(config.max_batch_size));
        Self::over(db, config, stats)
    }

    /// A store over `db` (its configuration checked), counting into `stats`.
    fn over(db: Database, config: StoreConfig, stats: Arc<Stats>) -> Result<Self, StoreError> {
        let concurrency = usize::try_from(db.pool_size()).unwrap_or(usize::MAX);
        let reads = Arc::new(db.clone());
        let loader = LoaderConfig {
            db: &reads,
            config: &config,
            concurrency,
            stats: &stats,
        };
        let store = Self {
            profiles: loader.build("profiles", |db, ids| Box::pin(db.profiles(ids)))?,
            onboardings: loader.build("onboardings", |db, ids| Box::pin(db.onboardings(ids)))?,
            memories: loader.build("memories", |db, keys| Box::pin(db.memories_by_key(keys)))?,
            memory_groups: loader.build("memory_groups", |db, pairs| {
                Box::pin(db.memory_groups(pairs))
            })?,
            db,
            config,
            stats,
        };
        // Writes through any store or repository over this database detach
        // their keys from these loaders' reads in flight (read-your-writes
        // across handles; this store's own writes included).
        let db = &store.db;
        db.register_readers(&store.profiles, &store.onboardings, &store.memories);
        db.readers().memory_groups.register(&store.memory_groups);
        Ok(store)
    }

    /// A token covering every write through this store's database (and
    /// its clones, other stores over it included) that has returned; see
    /// [`Database::token`]. `None` before the first write and without
    /// replicas.
    ///
    /// ```no_run
    /// use coalesce_store::{Category, MemoryStore, NewMemory};
    /// use coalesce_store::db::{ConnectOptions, Database, ReplicaSettings};
    ///
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = Database::connect_replicated(
    ///     "mysql://root@127.0.0.1:33306/test",
    ///     &["mysql://root@127.0.0.1:33307/test"],
    ///     &ConnectOptions::new(4),
    ///     ReplicaSettings::default(),
    /// )
    /// .await?;
    /// let store = MemoryStore::new(db)?;
    /// store.save_memory(&NewMemory::new("u1", Category::Fact, "name", "Ann")).await?;
    /// let token = store.token().map(|token| token.to_string()); // "gtid:0-1-42"
    /// # Ok(()) }
    /// ```
    pub fn token(&self) -> Option<db::Token> {
        self.db.token()
    }

    /// A store whose reads (single, batched and queries) also see every
    /// write `token` covers, made through any store, in any process, on
    /// the same primary: a store per request that carries a token. It has
    /// loaders of its own (its reads are not batched with the other
    /// stores', which need not wait for the token) and shares the database,
    /// the configuration and the statistics. See [`Database::with_token`].
    ///
    /// ```no_run
    /// use coalesce_store::{Category, MemoryStore, db::Token};
    ///
    /// # async fn f(store: MemoryStore, token_from_the_request: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// let token: Token = token_from_the_request.parse()?;
    /// let name = store.with_token(&token)?.get_memory("u1", Category::Fact, "name").await?;
    /// # Ok(()) }
    /// ```
    pub fn with_token(&self, token: &db::Token) -> Result<MemoryStore, StoreError> {
        let db = self.db.with_token(token)?;
        Self::over(db, self.config, Arc::clone(&self.stats))
    }

    /// The SQL layer underneath, for plain per-item queries and counters.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The configuration the store was built with.
    pub fn config(&self) -> StoreConfig {
        self.config
    }

    /// One user's profile; concurrent calls share one query.
    pub async fn get_profile(&self, user_id: &str) -> Result<Option<String>, StoreError> {
        validate::user_id(user_id)?;
        let load = self.profiles.load(user_id.to_owned());
        load.await.map_err(StoreError::batch("get_profile"))
    }

    /// One user's onboarding state; concurrent calls share one query.
    pub async fn get_onboarding(&self, user_id: &str) -> Result<Option<Onboarding>, StoreError> {
        validate::user_id(user_id)?;
        let load = self.onboardings.load(user_id.to_owned());
        load.await.map_err(StoreError::batch("get_onboarding"))
    }

    /// One memory; concurrent calls (for any users) share one query.
    pub async fn get_memory(
        &self,
        user_id: &str,
        category: Category,
        key: &str,
    ) -> Result<Option<Memory>, StoreError> {
        let id = MemoryKey::new(user_id, category, key);
        validate::memory_key(&id)?;
        let value = self.memories.load(id).await;
        Ok(value
            .map_err(StoreError::batch("get_memory"))?
            .map(|value| Memory {
                category,
                key: key.to_owned(),
                value,
            }))
    }

    /// A user's memories, optionally only of one `category` and among
    /// `keys`, ordered by category then key, at most `limit`: one statement
    /// (none for an empty `keys` list). Calls by at most `max_batch_size`
    /// keys go through a loader, so concurrent calls, for any users, share
    /// their statements as single reads do; a longer list is a batch of its
    /// own and is sent at once.
    pub async fn batch_get_memories(
        &self,
        user_id: &str,
        category: Option<Category>,
        keys: Option<&[String]>,
        limit: Option<i64>,
    ) -> Result<Vec<Memory>, StoreError> {
        validate::user_id(user_id)?;
        if let Some(keys) = keys {
            validate::keys(keys)?;
        }
        if let Some(limit) = limit {
            validate::limit(limit)?;
        }
        let items = keys.map_or(1, <[String]>::len);
        if items == 0 {
            return Ok(Vec::new());
        }
        if let Some(keys) = keys.filter(|keys| keys.len() <= self.config.max_batch_size) {
            // Each key once: a key listed twice still names its rows once.
            let distinct: HashSet<&String> = keys.iter().collect();
            let pairs = distinct
                .into_iter()
                .map(|key| (user_id.to_owned(), key.clone()));
            let groups = self.memory_groups.load_many(pairs).await;
            let groups = groups.map_err(StoreError::batch("batch_get_memories"))?;
            let found = groups.into_iter().flatten().flatten();
            return Ok(Memory::select(found, category, limit));
        }
        self.record(items);
        let found = self.db.memories(user_id, category, keys, limit).await;
        found.map_err(StoreError::db("batch_get_memories"))
    }

    /// Insert or overwrite memories: `rows_per_statement` rows a statement,
    /// every statement of the call in one transaction (all or nothing; a
    /// call that fits one statement needs none, that statement is atomic).
    /// Several entries for one (user, category, key) resolve to the last.
    /// Returns how many distinct memories were written.
    pub async fn batch_save_memories(&self, memories: &[NewMemory]) -> Result<usize, StoreError> {
        memories.iter().try_for_each(validate::new_memory)?;
        let rows = last_write_wins(memories);
        if rows.is_empty() {
            return Ok(0);
        }
        self.stats.record_requests(memories.len());
        for chunk in rows.chunks(self.config.rows_per_statement) {
            self.stats.record_batch(chunk.len());
        }
        let saved = self
            .db
            .save_memories(&rows, self.config.rows_per_statement)
            .await;
        saved.map_err(StoreError::db("batch_save_memories"))?;
        Ok(rows.len())
    }

    /// Save one memory (a batch of one).
    pub async fn save_memory(&self, memory: &NewMemory) -> Result<(), StoreError> {
        self.batch_save_memories(std::slice::from_ref(memory))
            .await
            .map(drop)
    }

    /// Delete a user's memories with these keys, in every category: one
    /// statement (none for an empty list). Returns how many were deleted.
    pub async fn batch_delete_memories(
        &self,
        user_id: &str,
        keys: &[String],
    ) -> Result<u64, StoreError> {
        validate::user_id(user_id)?;
        validate::keys(keys)?;
        if keys.is_empty() {
            return Ok(0);
        }
        self.record(keys.len());
        let deleted = self.db.delete_memories(user_id, keys).await;
        deleted.map_err(StoreError::db("batch_delete_memories"))
    }

    /// Delete one key of a user, in every category; whether any was deleted.
    pub async fn delete_memory(&self, user_id: &str, key: &str) -> Result<bool, StoreError> {
        let deleted = self
            .batch_delete_memories(user_id, &[key.to_owned()])
            .await?;
        Ok(deleted > 0)
    }

    /// The profiles of these users that exist, through the profile loader:
    /// one statement per 100 distinct users (none for an empty list).
    pub async fn batch_get_profiles(
        &self,
        user_ids: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        user_ids.iter().try_for_each(|id| validate::user_id(id))?;
        let loaded = self.profiles.load_many(user_ids.iter().cloned()).await;
        let profiles = loaded.map_err(StoreError::batch("batch_get_profiles"))?;
        Ok(coalesce::keyed(user_ids, profiles))
    }

    /// Insert or replace a user's profile.
    pub async fn save_profile(&self, user_id: &str, profile: &str) -> Result<(), StoreError> {
        validate::user_id(user_id)?;
        validate::profile(profile)?;
        self.record(1);
        let saved = self.db.save_profile(user_id, profile).await;
        saved.map_err(StoreError::db("save_profile"))
    }

    /// Insert or replace a user's onboarding state.
    pub async fn save_onboarding(
        &self,
        user_id: &str,
        state: &Onboarding,
    ) -> Result<(), StoreError> {
        validate::user_id(user_id)?;
        validate::json("data", &state.data)?;
        self.record(1);
        let saved = self.db.save_onboarding(user_id, state).await;
        saved.map_err(StoreError::db("save_onboarding"))
    }

    /// The `limit_per_category` most recently updated memories of each
    /// requested category, in one statement. Every requested category is in
    /// the map, with an empty list where the user has none.
    pub async fn bulk_memory_search(
        &self,
        user_id: &str,
        categories: &[Category],
        limit_per_category: i64,
    ) -> Result<HashMap<Category, Vec<Memory>>, StoreError> {
        validate::user_id(user_id)?;
        validate::limit(limit_per_category)?;
        let mut found: HashMap<Category, Vec<Memory>> =
            categories.iter().map(|c| (*c, Vec::new())).collect();
        if categories.is_empty() {
            return Ok(found);
        }
        self.record(found.len());
        let rows = self
            .db
            .top_memories_per_category(user_id, categories, limit_per_category)
            .await
            .map_err(StoreError::db("bulk_memory_search"))?;
        for memory in rows {
            found.entry(memory.category).or_default().push(memory);
        }
        Ok(found)
    }

    /// Profile, recent memories, onboarding state and memory count of a
    /// user, fetched concurrently (four statements in parallel, the profile
    /// and onboarding reads batched with other callers').
    pub async fn prefetch_user_data(&self, user_id: &str) -> Result<UserData, StoreError> {
        validate::user_id(user_id)?;
        let recent = async {
            self.record(1);
            let recent = self
                .db
                .recent_memories(user_id, self.config.recent_memories);
            recent
                .await
                .map_err(StoreError::db("prefetch_user_data: recent memories"))
        };
        let count = async {
            self.record(1);
            let count = self.db.count_memories(user_id);
            count
                .await
                .map_err(StoreError::db("prefetch_user_data: memory count"))
        };
        let (profile, recent_memories, onboarding, memory_count) = tokio::try_join!(
            self.get_profile(user_id),
            recent,
            self.get_onboarding(user_id),
            count
        )?;
        Ok(UserData {
            profile,
            recent_memories,
            onboarding,
            memory_count,
        })
    }

    /// The statistics of the store's loaders and batch calls, in the
    /// specification's JSON shape.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Count an explicit call of one statement serving `items` items.
    fn record(&self, items: usize) {
        self.stats.record_requests(items);
        self.stats.record_batch(items);
    }
}

/// What the store's loaders share.
struct LoaderConfig<'a> {
    db: &'a Arc<Database>,
    config: &'a StoreConfig,
    concurrency: usize,
    stats: &'a Arc<Stats>,
}

impl LoaderConfig<'_> {
    /// A loader over one batch read of the database: no cache, at most
    /// `concurrency` batches at once, counting into the store's statistics;
    /// its batch spans and metrics carry `name`.
    fn build<K, V>(
        &self,
        name: &'static str,
        read: BatchMethod<Database, K, V, sqlx::Error>,
    ) -> Result<BatchRead<K, V>, StoreError>
    where
        K: Eq + Hash + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        Loader::builder(from_method(Arc::clone(self.db), read))
            .name(name)
            .max_batch_size(self.config.max_batch_size)
            .max_concurrent_batches(self.concurrency)
            .stats(Arc::clone(self.stats))
            .build()
            .map_err(|error| InvalidInput::from(error).into())
    }
}

/// The distinct memories of a call, each (user, category, key) with its
/// last value, in the order of first appearance.
pub(crate) fn last_write_wins(memories: &[NewMemory]) -> Vec<NewMemory> {
    let mut position: HashMap<MemoryKey, usize> = HashMap::with_capacity(memories.len());
    let mut rows: Vec<NewMemory> = Vec::with_capacity(memories.len());
    for memory in memories {
        match position.entry(memory.memory_key()) {
            Entry::Occupied(at) => {
                if let Some(row) = rows.get_mut(*at.get()) {
                    row.value.clone_from(&memory.value);
                }
            }
            Entry::Vacant(slot) => {
                slot.insert(rows.len());
                rows.push(memory.clone());
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_write_wins_keeps_first_position_and_last_value() {
        let m = |key: &str, value: &str| NewMemory::new("u", Category::Fact, key, value);
        let rows = last_write_wins(&[m("a", "1"), m("b", "2"), m("a", "3")]);
        assert_eq!(rows, vec![m("a", "3"), m("b", "2")]);
    }
}
