//! Drop-in batching of an existing per-item repository.
//!
//! Applications often read through a per-item trait such as
//! [`MemoryRepository`], called from many places and tasks. Build a
//! [`CoalescingRepository`] where the repository is built (one line), and
//! every `get_profile(id)` made concurrently becomes one `IN` query, every
//! `save_memory` made in the same tick one bulk upsert, with the same
//! results as the plain implementation.
//!
//! ```no_run
//! use coalesce_store::repo::{CoalescingRepository, MemoryRepository, PlainRepository};
//! use coalesce_store::MemoryStore;
//!
//! # #[tokio::main] async fn main() -> Result<(), coalesce_store::StoreError> {
//! let store = MemoryStore::connect("sqlite://target/app.db", 8).await?;
//! // Before: let repo = PlainRepository::new(store.database().clone());
//! let repo = CoalescingRepository::new(store);
//! let (a, b) = tokio::join!(repo.get_profile("u1"), repo.get_profile("u2")); // one query
//! # drop((a, b)); Ok(()) }
//! ```
//!
//! [`CoalescingRepository`] is four of the `coalesce-sql` toolkit's `Rows`
//! handles, one per table. A trait of your own over tables of your own
//! takes the same handles and `coalesce_sql::repository!`, one line a
//! method: see `docs/drop-in.md` and `examples/orders.rs`.

mod coalescing;
mod plain;

pub use coalescing::CoalescingRepository;
pub use plain::PlainRepository;

use crate::{MemoryKey, NewMemory, Onboarding, StoreError};
use std::{collections::HashMap, future::Future};

/// The per-item repository an application calls today: one row per call.
///
/// Implemented by [`PlainRepository`] (one statement per call) and by
/// [`CoalescingRepository`] (calls made concurrently share a statement).
pub trait MemoryRepository: Send + Sync + 'static {
    /// One user's profile text.
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

    /// Insert or overwrite one memory. An error means nothing was written,
    /// except [`StoreError::CommitOutcomeUnknown`]: the connection failed
    /// while the write was committing, so it may have been applied.
    fn save_memory(&self, memory: NewMemory)
    -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Delete a user's memories with this key (in every category); whether
    /// any existed. Errors as for [`save_memory`](Self::save_memory).
    fn delete_memory(
        &self,
        user_id: &str,
        key: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The explicit batch operations under the per-item calls: each serves
/// many items with one statement. Inputs arrive validated.
///
/// Implemented by [`MemoryStore`](crate::MemoryStore) and by
/// [`Database`](crate::db::Database).
pub trait MemoryBatchRepository: Send + Sync + 'static {
    /// The profiles that exist among `user_ids`.
    fn get_profiles(
        &self,
        user_ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, String>, sqlx::Error>> + Send;

    /// The onboarding states that exist among `user_ids`.
    fn get_onboardings(
        &self,
        user_ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, Onboarding>, sqlx::Error>> + Send;

    /// The values of the memories that exist among `keys`.
    fn get_memories(
        &self,
        keys: &[MemoryKey],
    ) -> impl Future<Output = Result<HashMap<MemoryKey, String>, sqlx::Error>> + Send;

    /// Upsert `memories` atomically; several entries for one (user,
    /// category, key) resolve to the last.
    fn save_memories(
        &self,
        memories: &[NewMemory],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Delete memories by (user, key), users mixed; the pairs that existed.
    fn delete_memories(
        &self,
        pairs: &[(String, String)],
    ) -> impl Future<Output = Result<Vec<(String, String)>, sqlx::Error>> + Send;

    /// Most batches worth running at once (the connection pool's size).
    fn max_concurrent_batches(&self) -> Option<usize> {
        None
    }
}
