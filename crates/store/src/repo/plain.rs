//! The plain per-item implementation: one statement per call, as most
//! applications have today. The baseline every coalesced result must equal.

use super::MemoryRepository;
use crate::{MemoryKey, NewMemory, Onboarding, StoreError, db::Database, validate};

/// [`MemoryRepository`] with one statement per call.
///
/// ```no_run
/// use coalesce_store::repo::{MemoryRepository, PlainRepository};
/// use coalesce_store::db::Database;
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let db = Database::connect("sqlite://target/app.db", 4).await?;
/// db.migrate().await?;
/// let repo = PlainRepository::new(db);
/// let profile = repo.get_profile("u1").await?; // one statement per call
/// # drop(profile); Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PlainRepository {
    db: Database,
}

impl PlainRepository {
    /// A repository over an open, migrated database.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// The database underneath, for its statement counter.
    pub fn database(&self) -> &Database {
        &self.db
    }
}

impl MemoryRepository for PlainRepository {
    async fn get_profile(&self, user_id: &str) -> Result<Option<String>, StoreError> {
        validate::user_id(user_id)?;
        let found = self.db.profile_direct(user_id).await;
        found.map_err(StoreError::db("get_profile"))
    }

    async fn get_memory(&self, key: &MemoryKey) -> Result<Option<String>, StoreError> {
        validate::memory_key(key)?;
        let found = self.db.memory_direct(key).await;
        found.map_err(StoreError::db("get_memory"))
    }

    async fn get_onboarding(&self, user_id: &str) -> Result<Option<Onboarding>, StoreError> {
        validate::user_id(user_id)?;
        let found = self.db.onboarding_direct(user_id).await;
        found.map_err(StoreError::db("get_onboarding"))
    }

    async fn save_memory(&self, memory: NewMemory) -> Result<(), StoreError> {
        validate::new_memory(&memory)?;
        let saved = self
            .db
            .save_memories(std::slice::from_ref(&memory), 1)
            .await;
        saved.map_err(StoreError::db("save_memory"))
    }

    async fn delete_memory(&self, user_id: &str, key: &str) -> Result<bool, StoreError> {
        validate::user_id(user_id)?;
        validate::key(key)?;
        let deleted = self.db.delete_memories(user_id, &[key.to_owned()]).await;
        Ok(deleted.map_err(StoreError::db("delete_memory"))? > 0)
    }
}
