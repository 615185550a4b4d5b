//! # coalesce
//!
//! Request coalescing for database access. Many concurrent `load(key)` calls,
//! made by independent tasks within one tick of the runtime, become one call
//! of a batch function (one `IN` / `= ANY($1)` query) and each caller gets its
//! own row back.
//!
//! ```
//! use coalesce::loader::{Loader, from_fn};
//! use std::{collections::HashMap, convert::Infallible};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // One call of this function serves every key requested in the same tick.
//! let users = Loader::new(from_fn(|ids: Vec<u32>| async move {
//!     Ok::<_, Infallible>(ids.into_iter().map(|id| (id, format!("user {id}"))).collect::<HashMap<_, _>>())
//! }));
//! let (a, b) = tokio::join!(users.load(1), users.load(2));
//! assert_eq!(a.unwrap().as_deref(), Some("user 1"));
//! assert_eq!(b.unwrap().as_deref(), Some("user 2"));
//! assert_eq!(users.stats().total_operations, 1); // one batch served both
//! # }
//! ```
//!
//! The crate is layered so that each room has one job:
//! - [`loader`]: the database-agnostic engine (batching window, de-duplication,
//!   single-flight, caps, optional cache, statistics).
//! - [`sql`]: connection pools for PostgreSQL, MySQL/MariaDB and SQLite and
//!   the memory store's statements in each dialect, batched and per item.
//! - [`store`]: the memory store (the specification's `DatabaseBatcher`):
//!   batch operations, and single-item reads coalesced through loaders.
//! - [`repo`]: drop-in batching of a per-item repository trait: the plain
//!   implementation and the coalescing wrapper, for reads and writes.
//! - [`tools`]: the memory store as agent tools (`getDatabaseBatchStats`,
//!   `batchGetMemories`, `bulkMemorySearch`) bound to one user: JSON Schemas
//!   for function calling and one JSON-in, JSON-out dispatch entry point.

pub mod loader;
pub mod repo;
pub mod sql;
pub mod store;
pub mod tools;
