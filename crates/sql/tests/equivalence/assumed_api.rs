//! ASSUMED API, not in the toolkit yet: per-item outcomes of one batch
//! (issue 19, "Per-item failure isolation").
//!
//! A `Loader` source or `WriteSink` can only let one bad item fail alone if
//! the toolkit tells it which item failed. The shape the isolation tests
//! assume: a batched call answers one outcome per item, in the order
//! given, either the item's own result or the item's own error (shared,
//! so every caller of the item can hold it); the outer `Err` is kept for
//! failures of the whole call (connection, timeout, server), which fail
//! every caller as now.
//!
//! Each function here is the single place to switch to the toolkit's own
//! call once it exists: `Batch::upsert_each` answering
//! `Vec<Result<(), Error>>`, `Batch::fetch_each` answering
//! `HashMap<K, Result<R, Error>>` (missing keys absent), and a per-key
//! delete. Today each maps the existing whole-batch call onto that shape,
//! so one bad item still fails every item: the defect the isolation tests
//! show.

use crate::twins::deleted_by;
use coalesce_sql::{Batch, Dialect, Error, Key, Record, Table};
use sqlx::FromRow;
use std::sync::Arc;

/// One item's own result, or its own error.
pub type Outcome<T> = Result<T, Arc<Error>>;

/// Upsert `rows`; one outcome per row.
pub async fn upsert_each<DB: Dialect, R: Record<DB>>(
    sql: &Batch<DB>,
    table: &Table,
    rows: &[R],
) -> Result<Vec<Outcome<()>>, Error> {
    sql.upsert(table, rows).await?;
    Ok(vec![Ok(()); rows.len()])
}

/// Read `keys`; one outcome per key: its row, or `None`.
pub async fn fetch_each<DB, K, R>(
    sql: &Batch<DB>,
    table: &Table,
    keys: &[K],
) -> Result<Vec<Outcome<Option<R>>>, Error>
where
    DB: Dialect,
    K: Key<DB>,
    R: for<'r> FromRow<'r, DB::Row> + Clone + Send + Unpin,
{
    let found = sql.fetch::<K, R>(table, keys).await?;
    Ok(keys.iter().map(|key| Ok(found.get(key).cloned())).collect())
}

/// Delete `keys`; one outcome per key: whether it deleted a row (of keys
/// matching the same row, the first in batch order).
pub async fn delete_each<DB: Dialect, K: Key<DB>>(
    sql: &Batch<DB>,
    table: &Table,
    keys: &[K],
) -> Result<Vec<Outcome<bool>>, Error> {
    let existed = sql.delete(table, keys).await?;
    Ok(deleted_by(existed, keys).into_iter().map(Ok).collect())
}
