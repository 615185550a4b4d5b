//! A coalescing [`Rows`](super::Rows): a loader for reads, a writer for
//! saves and one for deletes, over the toolkit's per-item-isolating calls
//! at a [`Place`] (one `Db`, or a primary and its replicas).

use super::{Access, Place, RowsError, RowsOptions, Stored, TableRow};
use crate::{Error, Record, Table};
use coalesce::{
    BatchSettings, BatchSource, ConfigError, LoadError, Loader, Stats, StatsSnapshot, WriteSink,
    Writer,
};
use futures::future::BoxFuture;
use std::{
    collections::{HashMap, HashSet},
    hash::{DefaultHasher, Hash, Hasher},
    marker::PhantomData,
    sync::Arc,
};

/// One item's outcome inside a batch that ran: its own error, shared
/// with the callers of the same key.
type Outcome<T> = Result<T, Arc<Error>>;

/// The handle's parts, running their statements at `P`.
pub(super) struct Coalesced<P: Place, R: Stored<P::Db>> {
    reads: Loader<Reads<P, R>>,
    saves: Writer<Saves<P, R>>,
    deletes: Writer<Deletes<P, R>>,
    stats: Arc<Stats>,
}

impl<P: Place, R: Stored<P::Db>> Coalesced<P, R> {
    /// The handle for `R`'s table at `place`, counted among the table's
    /// readers of its [`Db`](crate::Db).
    pub(super) fn new(
        place: P,
        table: Table,
        options: RowsOptions,
    ) -> Result<Arc<Self>, ConfigError> {
        // A pool of no connections (which sqlx lets one make) bounds nothing.
        let pool_size = usize::try_from(place.db().pool().options().get_max_connections())
            .ok()
            .filter(|&size| size > 0);
        let settings = BatchSettings {
            max_concurrent_batches: options.settings.max_concurrent_batches.or(pool_size),
            ..options.settings
        };
        settings.validate()?;
        let exact_keys = options.exact_keys;
        let stats = options
            .stats
            .unwrap_or_else(|| Arc::new(Stats::new(settings.max_batch_size)));
        let on = Arc::new(On {
            place,
            table,
            rows: PhantomData,
        });
        let coalesced = Arc::new(Self {
            reads: Loader::builder(Reads(Arc::clone(&on)))
                .name(span_name(&on.table, "get"))
                .settings(settings)
                .cache(options.cache)
                .stats(Arc::clone(&stats))
                .build()?,
            saves: Writer::configure(Saves(Arc::clone(&on)), |builder| {
                builder
                    .name(span_name(&on.table, "save"))
                    .settings(settings)
                    .stats(Arc::clone(&stats))
            })?,
            deletes: Writer::configure(Deletes(Arc::clone(&on)), |builder| {
                builder
                    .name(span_name(&on.table, "delete"))
                    .settings(settings)
                    .stats(Arc::clone(&stats))
            })?,
            stats,
        });
        on.place.db().readers().register(
            &on.table,
            &coalesced.reads,
            exact_keys.then_some(R::keys_written_by),
        );
        Ok(coalesced)
    }
}

/// The name of a handle's `operation` (`get`, `save`, `delete`) in its
/// spans and metrics: `<table>.<operation>`, as the engine wants it,
/// `'static`. Each distinct name is allocated once for the process (a
/// process names few tables), then reused by every handle.
fn span_name(table: &Table, operation: &str) -> &'static str {
    static NAMES: parking_lot::Mutex<Option<HashSet<&'static str>>> = parking_lot::Mutex::new(None);
    let name = format!("{}.{operation}", table.name());
    let mut names = NAMES.lock();
    let names = names.get_or_insert_with(HashSet::new);
    match names.get(name.as_str()) {
        Some(known) => known,
        None => {
            let leaked: &'static str = Box::leak(name.into_boxed_str());
            names.insert(leaked);
            leaked
        }
    }
}

/// A caller's own error from an item's outcome.
fn own<T>(outcome: Outcome<T>) -> Result<T, RowsError> {
    outcome.map_err(|source| LoadError::Source {
        source,
        batch_size: 1,
    })
}

impl<P: Place, R: Stored<P::Db>> Access<R> for Coalesced<P, R> {
    fn get(&self, key: <R as TableRow>::Key) -> BoxFuture<'_, Result<Option<R>, RowsError>> {
        Box::pin(async move { self.reads.load(key).await?.map(own).transpose() })
    }

    fn save(&self, row: R) -> BoxFuture<'_, Result<(), RowsError>> {
        Box::pin(async move { own(self.saves.write(row).await?) })
    }

    fn delete(&self, key: <R as TableRow>::Key) -> BoxFuture<'_, Result<bool, RowsError>> {
        Box::pin(async move { own(self.deletes.write(key).await?) })
    }

    fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }
}

/// Where the parts run, shared by them: the place and the table of rows
/// `R`.
struct On<P, R> {
    place: P,
    table: Table,
    rows: PhantomData<fn() -> R>,
}

/// Reads: one `fetch_each_in_order` per batch.
struct Reads<P, R>(Arc<On<P, R>>);

impl<P: Place, R: Stored<P::Db>> BatchSource for Reads<P, R> {
    type Key = <R as TableRow>::Key;
    type Value = Outcome<R>;
    type Error = Error;

    async fn load(
        &self,
        keys: &[<R as TableRow>::Key],
    ) -> Result<HashMap<<R as TableRow>::Key, Outcome<R>>, Error> {
        Ok(coalesce::keyed(keys, self.load_in_order(keys).await?))
    }

    /// What the loader calls: the database gives each row the position of
    /// the key that found it, so no map is built.
    async fn load_in_order(
        &self,
        keys: &[<R as TableRow>::Key],
    ) -> Result<Vec<Option<Outcome<R>>>, Error> {
        let found = self.0.place.fetch_each_in_order::<R>(&self.0.table, keys);
        Ok(found
            .await?
            .into_iter()
            .map(|row| row.map(|row| row.map_err(Arc::new)))
            .collect())
    }
}

/// Saves: `upsert_each` per round of distinct keys.
struct Saves<P, R>(Arc<On<P, R>>);

impl<P: Place, R: Stored<P::Db>> WriteSink for Saves<P, R> {
    type Op = R;
    type Output = Outcome<()>;
    type Error = Error;

    async fn write(&self, rows: Vec<R>) -> Result<Vec<Outcome<()>>, Error> {
        let keys: Vec<<R as TableRow>::Key> = rows.iter().map(Record::key).collect();
        let mut rows: Vec<Option<R>> = rows.into_iter().map(Some).collect();
        let mut outcomes: Vec<Outcome<()>> = vec![Ok(()); rows.len()];
        let rounds = rounds(&keys);
        for (done, round) in rounds.iter().enumerate() {
            let batch: Vec<R> = round.iter().filter_map(|&i| rows[i].take()).collect();
            match self.0.place.upsert_each(&self.0.table, &batch).await {
                Ok(results) => {
                    for (&i, result) in round.iter().zip(results) {
                        outcomes[i] = result.map_err(Arc::new);
                    }
                }
                // The rounds before were written: their callers keep `Ok`;
                // this round's and the later ones' share the error.
                Err(error) => {
                    let error = Arc::new(error);
                    for &i in rounds[done..].iter().flatten() {
                        outcomes[i] = Err(Arc::clone(&error));
                    }
                    break;
                }
            }
        }
        Ok(outcomes)
    }
}

/// Deletes: one `delete_each` per batch; a key named again after its
/// delete finds nothing, as it would run alone.
struct Deletes<P, R>(Arc<On<P, R>>);

impl<P: Place, R: Stored<P::Db>> WriteSink for Deletes<P, R> {
    type Op = <R as TableRow>::Key;
    type Output = Outcome<bool>;
    type Error = Error;

    async fn write(&self, keys: Vec<<R as TableRow>::Key>) -> Result<Vec<Outcome<bool>>, Error> {
        let mut ordered: Vec<&<R as TableRow>::Key> = keys.iter().collect();
        ordered.sort_by_key(|key| lock_order(*key));
        ordered.dedup();
        let ordered: Vec<<R as TableRow>::Key> = ordered.into_iter().cloned().collect();
        let mut results: HashMap<<R as TableRow>::Key, Outcome<bool>> = self
            .0
            .place
            .delete_each::<R>(&self.0.table, &ordered)
            .await?
            .into_iter()
            .map(|(key, result)| (key, result.map_err(Arc::new)))
            .collect();
        Ok(keys
            .iter()
            .map(|key| match results.get_mut(key) {
                // The first caller of a key gets its result; later ones
                // find the row gone (or fail as it did).
                Some(result) => {
                    let first = result.clone();
                    if let Ok(deleted) = result {
                        *deleted = false;
                    }
                    first
                }
                None => Ok(false),
            })
            .collect())
    }
}

/// A fixed order over keys, the same in every batch of this process, so
/// two batches lock shared rows in the same order.
fn lock_order<K: Hash>(key: &K) -> u64 {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// The positions of `keys` in rounds: the first write of each key in the
/// first round, its second in the second, ...; each round in
/// [`lock_order`]. A key's writes so stay in order, and no statement
/// carries one key twice (PostgreSQL refuses that in one upsert).
fn rounds<K: Hash + Eq>(keys: &[K]) -> Vec<Vec<usize>> {
    let mut seen: HashMap<&K, usize> = HashMap::with_capacity(keys.len());
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let occurrence = seen.entry(key).or_default();
        if rounds.len() <= *occurrence {
            rounds.push(Vec::new());
        }
        rounds[*occurrence].push(i);
        *occurrence += 1;
    }
    for round in &mut rounds {
        round.sort_by_key(|&i| lock_order(&keys[i]));
    }
    rounds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_keep_each_key_s_writes_in_order_and_distinct() {
        let keys = ["a", "b", "a", "c", "a", "b"];
        let rounds = rounds(&keys);
        assert_eq!(rounds.len(), 3);
        let mut sorted: Vec<Vec<usize>> = rounds.clone();
        for round in &mut sorted {
            round.sort_unstable();
        }
        assert_eq!(sorted, [vec![0, 1, 3], vec![2, 5], vec![4]]);
        for round in &rounds {
            let orders: Vec<u64> = round.iter().map(|&i| lock_order(&keys[i])).collect();
            assert!(orders.is_sorted(), "each round in lock order");
        }
    }

    #[test]
    fn a_handles_name_is_its_tables_and_made_once() {
        let orders = Table::new("orders");
        let first = span_name(&orders, "get");
        assert_eq!(first, "orders.get");
        assert!(std::ptr::eq(first, span_name(&orders, "get")), "reused");
        assert_eq!(span_name(&Table::new("lines"), "save"), "lines.save");
    }
}
