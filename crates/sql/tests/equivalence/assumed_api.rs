//! The toolkit's per-item calls (issue 19, "Per-item failure isolation"),
//! in the shape the isolation tests compare: one outcome per item, in the
//! order given, either the item's own result or the item's own error
//! (shared, so every caller of the item can hold it). The outer `Err` is a
//! failure of the whole call (connection, timeout, server), which fails
//! every caller.

use coalesce_sql::{Db, Dialect, Error, Key, Record, Table};
use sqlx::FromRow;
use std::{
    collections::{HashMap, HashSet},
    hash::Hash,
    sync::Arc,
};

/// One item's own result, or its own error.
pub type Outcome<T> = Result<T, Arc<Error>>;

/// Upsert `rows` with [`Db::upsert_each`]; one outcome per row.
pub async fn upsert_each<DB: Dialect, R: Record<DB>>(
    sql: &Db<DB>,
    table: &Table,
    rows: &[R],
) -> Result<Vec<Outcome<()>>, Error> {
    let outcomes = sql.upsert_each(table, rows).await?;
    Ok(outcomes.into_iter().map(|o| o.map_err(Arc::new)).collect())
}

/// Read `keys` with [`Db::fetch_each`]; one outcome per key: its row,
/// or `None`.
pub async fn fetch_each<DB, K, R>(
    sql: &Db<DB>,
    table: &Table,
    keys: &[K],
) -> Result<Vec<Outcome<Option<R>>>, Error>
where
    DB: Dialect,
    K: Key<DB>,
    R: for<'r> FromRow<'r, DB::Row> + Clone + Send + Unpin,
{
    let found = shared(sql.fetch_each::<K, R>(table, keys).await?);
    Ok(keys
        .iter()
        .map(|key| found.get(key).cloned().transpose())
        .collect())
}

/// Delete `keys` with [`Db::delete_each`]; one outcome per key: whether
/// it deleted a row (of keys matching the same row, the first in batch
/// order; a key repeated in the call deletes nothing the second time).
pub async fn delete_each<DB: Dialect, K: Key<DB>>(
    sql: &Db<DB>,
    table: &Table,
    keys: &[K],
) -> Result<Vec<Outcome<bool>>, Error> {
    let deleted = shared(sql.delete_each(table, keys).await?);
    let mut seen = HashSet::new();
    Ok(keys
        .iter()
        .map(|key| match deleted.get(key) {
            Some(outcome) if seen.insert(key) => outcome.clone(),
            _ => Ok(false),
        })
        .collect())
}

/// Per-key outcomes with their errors shared.
fn shared<K: Eq + Hash, T>(outcomes: HashMap<K, Result<T, Error>>) -> HashMap<K, Outcome<T>> {
    outcomes
        .into_iter()
        .map(|(key, outcome)| (key, outcome.map_err(Arc::new)))
        .collect()
}
