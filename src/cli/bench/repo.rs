//! TEMPORARY stand-in for the library's `repo` module (issue 4), with the
//! planned API, until it lands on `main`; replaced by `coalesce::repo` then.

use coalesce::{
    sql::Database,
    store::{MemoryKey, MemoryStore, NewMemory, Onboarding, StoreError},
};
use std::future::Future;

/// The per-item repository trait applications have.
pub trait MemoryRepository: Send + Sync + 'static {
    /// One user's profile.
    fn get_profile(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// One memory's value.
    fn get_memory(
        &self,
        key: &MemoryKey,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// One user's onboarding state.
    fn get_onboarding(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Option<Onboarding>, StoreError>> + Send;
    /// Save one memory.
    fn save_memory(&self, memory: NewMemory) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Delete one key of a user in every category.
    fn delete_memory(
        &self,
        user_id: &str,
        key: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

fn db_error(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Database { context, source }
}

/// One statement per call.
#[derive(Debug, Clone)]
pub struct PlainRepository {
    db: Database,
}

impl PlainRepository {
    /// A plain repository over `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

impl MemoryRepository for PlainRepository {
    async fn get_profile(&self, user_id: &str) -> Result<Option<String>, StoreError> {
        let found = self.db.profile_direct(user_id).await;
        found.map_err(db_error("get_profile"))
    }

    async fn get_memory(&self, key: &MemoryKey) -> Result<Option<String>, StoreError> {
        let found = self.db.memory_direct(key).await;
        found.map_err(db_error("get_memory"))
    }

    async fn get_onboarding(&self, user_id: &str) -> Result<Option<Onboarding>, StoreError> {
        let found = self.db.onboarding_direct(user_id).await;
        found.map_err(db_error("get_onboarding"))
    }

    async fn save_memory(&self, memory: NewMemory) -> Result<(), StoreError> {
        let saved = self.db.save_memories(std::slice::from_ref(&memory), 1).await;
        saved.map_err(db_error("save_memory"))
    }

    async fn delete_memory(&self, user_id: &str, key: &str) -> Result<bool, StoreError> {
        let deleted = self.db.delete_memories(user_id, &[key.to_owned()]).await;
        Ok(deleted.map_err(db_error("delete_memory"))? > 0)
    }
}

/// Reads through the store's loaders.
#[derive(Debug, Clone)]
pub struct CoalescingRepository {
    store: MemoryStore,
}

impl CoalescingRepository {
    /// A coalescing repository over `store`.
    pub fn new(store: MemoryStore) -> Self {
        Self { store }
    }
}

impl MemoryRepository for CoalescingRepository {
    async fn get_profile(&self, user_id: &str) -> Result<Option<String>, StoreError> {
        self.store.get_profile(user_id).await
    }

    async fn get_memory(&self, key: &MemoryKey) -> Result<Option<String>, StoreError> {
        let found = self.store.get_memory(&key.user_id, key.category, &key.key);
        Ok(found.await?.map(|m| m.value))
    }

    async fn get_onboarding(&self, user_id: &str) -> Result<Option<Onboarding>, StoreError> {
        self.store.get_onboarding(user_id).await
    }

    async fn save_memory(&self, memory: NewMemory) -> Result<(), StoreError> {
        self.store.save_memory(&memory).await
    }

    async fn delete_memory(&self, user_id: &str, key: &str) -> Result<bool, StoreError> {
        self.store.delete_memory(user_id, key).await
    }
}
