//! Twin tables: the same operations run batched through the toolkit on
//! one and one by one with the naive per-item statement on the other, and
//! each caller's result and both tables' contents compared.
//!
//! Serial semantics, per item in batch order: a read answers the row
//! `SELECT ... WHERE key = ?` finds, or nothing; an upsert is one
//! `INSERT ... ON CONFLICT` / `ON DUPLICATE KEY UPDATE`; a delete is
//! `DELETE ... WHERE key = ?` and reports `rows_affected > 0` (so of keys
//! matching the same row, the first in batch order reports it deleted).
//! The batched `delete` returns the requested keys that existed: compared
//! as a multiset with the keys the serial run reports deleted.

use crate::backend::{Args, Backend, Bind};
use crate::rows::Naive;
use coalesce::{LoadError, Loader, StatsSnapshot, WriteSink, Writer, from_fn};
use coalesce_sql::{Db, Error, Key, Record, Table};
use futures::future::join_all;
use sqlx::{FromRow, Pool};
use std::{collections::HashSet, fmt::Debug, sync::Mutex};

/// A key the tests use on backend `DB`: the toolkit's key, bindable by
/// the naive path, printable and sortable.
pub trait TestKey<DB: Backend>: Key<DB> + Bind<DB> + Debug + Ord {}
impl<DB: Backend, K: Key<DB> + Bind<DB> + Debug + Ord> TestKey<DB> for K {}

/// A row the tests read back on backend `DB`.
pub trait TestRow<DB: Backend>:
    for<'r> FromRow<'r, DB::Row> + Debug + Clone + Ord + Send + Sync + Unpin + 'static
{
}
impl<DB: Backend, R> TestRow<DB> for R where
    R: for<'r> FromRow<'r, DB::Row> + Debug + Clone + Ord + Send + Sync + Unpin + 'static
{
}

/// How batched operations reach the toolkit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// One call of `Db::fetch` / `upsert` / `delete` with the whole batch.
    Direct,
    /// One caller per item, all at once (`join_all` in one task), through a
    /// `coalesce::Loader` whose source calls `Db::fetch`, or a
    /// `coalesce::Writer` whose sink calls `Db::upsert` / `delete`.
    Engine,
}

/// A pair of tables with the same definition: `batched` for the toolkit,
/// `serial` for the naive statements.
pub struct Twins<DB: Backend> {
    pub pool: Pool<DB>,
    pub sql: Db<DB>,
    pub batched: String,
    pub serial: String,
    key: Vec<String>,
    values: Vec<String>,
    select: String,
}

/// The upsert's `on_update` column and the expression that counts hits.
const COUNTER: &str = "n";

impl<DB: Backend> Twins<DB> {
    /// Two tables `prefix_...` of `columns` (DDL) with the given key and
    /// value columns; `select` is the list every read and dump uses.
    pub async fn create(
        pool: &Pool<DB>,
        prefix: &str,
        columns: &str,
        key: &[&str],
        values: &[&str],
        select: &str,
    ) -> Self {
        let batched = crate::common::unique(&format!("{prefix}_b"));
        let serial = crate::common::unique(&format!("{prefix}_s"));
        for name in [&batched, &serial] {
            let ddl = format!("CREATE TABLE {name} ({columns})");
            DB::run(pool, ddl.clone())
                .await
                .unwrap_or_else(|e| panic!("{}: {ddl}: {e}", DB::NAME));
        }
        Self {
            pool: pool.clone(),
            sql: Db::new(pool.clone()),
            batched,
            serial,
            key: key.iter().map(|c| (*c).to_owned()).collect(),
            values: values.iter().map(|c| (*c).to_owned()).collect(),
            select: select.to_owned(),
        }
    }

    /// The batched table as the toolkit sees it; `counting` adds the hit
    /// counter `n = <table>.n + 1` to the upsert's update.
    pub fn table(&self, counting: bool) -> Table {
        let table = Table::new(&self.batched)
            .key(self.key.iter())
            .values(self.values.iter())
            .select(self.select.clone());
        if counting {
            table.on_update(COUNTER, counter(&self.batched))
        } else {
            table
        }
    }

    /// Empty both tables.
    pub async fn clear(&self) {
        for name in [&self.batched, &self.serial] {
            DB::run(&self.pool, format!("DELETE FROM {name}"))
                .await
                .expect("tables empty");
        }
    }

    /// Drop both tables.
    pub async fn drop(self) {
        for name in [&self.batched, &self.serial] {
            DB::run(&self.pool, format!("DROP TABLE {name}"))
                .await
                .expect("tables dropped");
        }
    }

    /// `WHERE k1 = ? AND k2 = ?` for one key.
    fn where_key(&self) -> String {
        let equalities: Vec<String> = self
            .key
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} = {}", DB::quote(c), DB::placeholder(i + 1)))
            .collect();
        format!("WHERE {}", equalities.join(" AND "))
    }

    /// The naive read of one key on the serial table.
    pub async fn naive_read<K: TestKey<DB>, R: TestRow<DB>>(
        &self,
        key: &K,
    ) -> Result<Option<R>, sqlx::Error> {
        let sql = format!(
            "SELECT {} FROM {} {}",
            self.select,
            self.serial,
            self.where_key()
        );
        let mut args = Args::<DB>::default();
        key.bind_into(&mut args).map_err(sqlx::Error::Encode)?;
        Ok(DB::fetch_all::<R>(&self.pool, sql, args)
            .await?
            .into_iter()
            .next())
    }

    /// The naive upsert of one row on the serial table.
    pub async fn naive_upsert<W: Naive<DB>>(
        &self,
        row: &W,
        counting: bool,
    ) -> Result<(), sqlx::Error> {
        let expression = counter(&self.serial);
        let on_update = counting.then_some((COUNTER, expression.as_str()));
        let sql = DB::upsert_one(&self.serial, &self.key, &self.values, on_update);
        let mut args = Args::<DB>::default();
        row.bind_all(&mut args).map_err(sqlx::Error::Encode)?;
        DB::affected(&self.pool, sql, args).await.map(drop)
    }

    /// The naive delete of one key on the serial table: whether it deleted.
    pub async fn naive_delete<K: TestKey<DB>>(&self, key: &K) -> Result<bool, sqlx::Error> {
        let sql = format!("DELETE FROM {} {}", self.serial, self.where_key());
        let mut args = Args::<DB>::default();
        key.bind_into(&mut args).map_err(sqlx::Error::Encode)?;
        Ok(DB::affected(&self.pool, sql, args).await? > 0)
    }

    /// Every row of `table`, sorted.
    pub async fn contents<R: TestRow<DB>>(&self, table: &str) -> Vec<R> {
        let sql = format!("SELECT {} FROM {table}", self.select);
        let mut rows = DB::fetch_all::<R>(&self.pool, sql, Args::<DB>::default())
            .await
            .unwrap_or_else(|e| panic!("{}: reading {table} back: {e}", DB::NAME));
        rows.sort();
        rows
    }

    /// Both tables hold the same rows.
    pub async fn same_contents<R: TestRow<DB>>(&self) -> Result<(), String> {
        let batched: Vec<R> = self.contents(&self.batched).await;
        let serial: Vec<R> = self.contents(&self.serial).await;
        if batched == serial {
            return Ok(());
        }
        // Only the rows that differ: tables can hold a thousand.
        let mut only_serial = serial.clone();
        let only_batched: Vec<R> = batched
            .into_iter()
            .filter(
                |row| match only_serial.iter().position(|other| other == row) {
                    Some(i) => {
                        only_serial.remove(i);
                        false
                    }
                    None => true,
                },
            )
            .collect();
        Err(format!(
            "{}: the tables differ ({} rows one by one)\n  only batched:    {only_batched:?}\n  only one by one: {only_serial:?}",
            DB::NAME,
            serial.len()
        ))
    }

    /// Read `keys` both ways; each key's row must be the same.
    pub async fn read<K: TestKey<DB>, R: TestRow<DB>>(
        &self,
        keys: &[K],
        via: Via,
    ) -> Result<(), String> {
        let batched: Vec<Option<R>> = match via {
            Via::Direct => {
                let found = self.sql.fetch::<K, R>(&self.table(false), keys).await;
                let found = found.map_err(|e| self.failed("fetch", keys, &e))?;
                keys.iter().map(|key| found.get(key).cloned()).collect()
            }
            Via::Engine => {
                let (sql, table) = (self.sql.clone(), self.table(false));
                let loader = Loader::new(from_fn(move |keys: Vec<K>| {
                    let (sql, table) = (sql.clone(), table.clone());
                    async move { sql.fetch::<K, R>(&table, &keys).await }
                }));
                let loads = join_all(keys.iter().cloned().map(|key| loader.load(key))).await;
                coalesced(&loader.stats(), keys.len())?;
                let loads: Result<Vec<Option<R>>, LoadError<Error>> = loads.into_iter().collect();
                loads.map_err(|e| self.failed("Loader over fetch", keys, &e))?
            }
        };
        let mut wrong = Vec::new();
        for (key, batched) in keys.iter().zip(batched) {
            let serial: Option<R> = self
                .naive_read(key)
                .await
                .map_err(|e| self.failed("naive read", keys, &e))?;
            if batched != serial {
                wrong.push(format!(
                    "key {key:?}: batched {batched:?}, one by one {serial:?}"
                ));
            }
        }
        if wrong.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{}: read of {} ({via:?}) differs:\n  {}",
            DB::NAME,
            listed(keys),
            wrong.join("\n  ")
        ))
    }

    /// Upsert `rows` both ways (with the hit counter if `counting`); both
    /// must succeed and leave the same rows.
    pub async fn upsert<W, R>(&self, rows: &[W], counting: bool, via: Via) -> Result<(), String>
    where
        W: Naive<DB>,
        W::Key: Debug,
        R: TestRow<DB>,
    {
        let table = self.table(counting);
        // The order the toolkit was given the rows in: batch order.
        let order: Vec<usize> = match via {
            Via::Direct => {
                let done = self.sql.upsert(&table, rows).await;
                done.map_err(|e| self.failed("upsert", &keys_of(rows), &e))?;
                (0..rows.len()).collect()
            }
            Via::Engine => {
                let writer = Writer::new(Upserts::new(self.sql.clone(), table));
                let writes = rows.iter().cloned().enumerate().map(|op| writer.write(op));
                for written in join_all(writes).await {
                    written.map_err(|e| self.failed("Writer over upsert", &keys_of(rows), &e))?;
                }
                coalesced(&writer.stats(), rows.len())?;
                writer.sink().order()
            }
        };
        for &i in &order {
            self.naive_upsert(&rows[i], counting)
                .await
                .map_err(|e| self.failed("naive upsert", &keys_of(rows), &e))?;
        }
        self.same_contents::<R>().await
    }

    /// Delete `keys` both ways: the batched call must report the keys the
    /// serial run reports deleted, and leave the same rows.
    pub async fn delete<K: TestKey<DB>, R: TestRow<DB>>(
        &self,
        keys: &[K],
        via: Via,
    ) -> Result<(), String> {
        let (mut batched, order): (Vec<K>, Vec<usize>) = match via {
            Via::Direct => {
                let existed = self.sql.delete(&self.table(false), keys).await;
                let existed = existed.map_err(|e| self.failed("delete", keys, &e))?;
                (existed, (0..keys.len()).collect())
            }
            Via::Engine => {
                let writer = Writer::new(Deletes::new(self.sql.clone(), self.table(false)));
                let deletes = keys.iter().cloned().enumerate().map(|op| writer.write(op));
                let deletes = join_all(deletes).await;
                coalesced(&writer.stats(), keys.len())?;
                let mut existed = Vec::new();
                for (key, deleted) in keys.iter().zip(deletes) {
                    let deleted =
                        deleted.map_err(|e| self.failed("Writer over delete", keys, &e))?;
                    if deleted {
                        existed.push(key.clone());
                    }
                }
                (existed, writer.sink().order())
            }
        };
        let mut serial = Vec::new();
        for i in order {
            if self
                .naive_delete(&keys[i])
                .await
                .map_err(|e| self.failed("naive delete", keys, &e))?
            {
                serial.push(keys[i].clone());
            }
        }
        batched.sort();
        serial.sort();
        if batched != serial {
            return Err(format!(
                "{}: delete of {} ({via:?}) reports {batched:?} deleted, one by one {serial:?}",
                DB::NAME,
                listed(keys)
            ));
        }
        self.same_contents::<R>().await
    }

    fn failed<K: Debug>(&self, what: &str, keys: &[K], error: &dyn std::fmt::Display) -> String {
        format!("{}: {what} of {} failed: {error}", DB::NAME, listed(keys))
    }
}

/// `keys` for a message: the first dozen of a long list.
pub fn listed<K: Debug>(keys: &[K]) -> String {
    const SHOWN: usize = 12;
    if keys.len() <= SHOWN {
        return format!("{keys:?}");
    }
    format!("{:?} and {} more", &keys[..SHOWN], keys.len() - SHOWN)
}

/// Callers that arrived together shared batches: the engine path ran.
pub fn coalesced(stats: &StatsSnapshot, callers: usize) -> Result<(), String> {
    if callers > 1 && stats.total_operations >= callers as u64 {
        return Err(format!("{callers} callers were not coalesced: {stats:?}"));
    }
    Ok(())
}

/// `<table>.n + 1`: the hit counter a user's upsert increments.
fn counter(table: &str) -> String {
    format!("{table}.{COUNTER} + 1")
}

fn keys_of<DB: Backend, W: Record<DB>>(rows: &[W]) -> Vec<W::Key> {
    rows.iter().map(Record::key).collect()
}

/// A `WriteSink` that upserts each batch with one `Db::upsert`, noting
/// the callers (their position in the test's list) in the order it got them.
pub struct Upserts<DB: Backend, W> {
    sql: Db<DB>,
    table: Table,
    order: Mutex<Vec<usize>>,
    _rows: std::marker::PhantomData<fn(W)>,
}

impl<DB: Backend, W> Upserts<DB, W> {
    pub fn new(sql: Db<DB>, table: Table) -> Self {
        Self {
            sql,
            table,
            order: Mutex::default(),
            _rows: std::marker::PhantomData,
        }
    }

    /// The callers, in the order the batches listed them.
    pub fn order(&self) -> Vec<usize> {
        self.order.lock().expect("not poisoned").clone()
    }
}

impl<DB: Backend, W: Record<DB> + 'static> WriteSink for Upserts<DB, W> {
    type Op = (usize, W);
    type Output = ();
    type Error = Error;

    async fn write(&self, ops: Vec<(usize, W)>) -> Result<Vec<()>, Error> {
        let (callers, rows): (Vec<usize>, Vec<W>) = ops.into_iter().unzip();
        self.order.lock().expect("not poisoned").extend(callers);
        self.sql.upsert(&self.table, &rows).await?;
        Ok(vec![(); rows.len()])
    }
}

/// A `WriteSink` that deletes each batch with one `Db::delete`: a
/// caller learns whether its key was deleted, the first caller of a key
/// that existed in batch order (serial semantics).
pub struct Deletes<DB: Backend, K> {
    sql: Db<DB>,
    table: Table,
    order: Mutex<Vec<usize>>,
    _keys: std::marker::PhantomData<fn(K)>,
}

impl<DB: Backend, K> Deletes<DB, K> {
    pub fn new(sql: Db<DB>, table: Table) -> Self {
        Self {
            sql,
            table,
            order: Mutex::default(),
            _keys: std::marker::PhantomData,
        }
    }

    /// The callers, in the order the batches listed them.
    pub fn order(&self) -> Vec<usize> {
        self.order.lock().expect("not poisoned").clone()
    }
}

impl<DB: Backend, K: Key<DB>> WriteSink for Deletes<DB, K> {
    type Op = (usize, K);
    type Output = bool;
    type Error = Error;

    async fn write(&self, ops: Vec<(usize, K)>) -> Result<Vec<bool>, Error> {
        let (callers, keys): (Vec<usize>, Vec<K>) = ops.into_iter().unzip();
        self.order.lock().expect("not poisoned").extend(callers);
        let existed = self.sql.delete(&self.table, &keys).await?;
        Ok(deleted_by(existed, &keys))
    }
}

/// Whether each of `keys` deleted a row, from the keys a batched delete
/// reports: of equal keys, the first in batch order.
pub fn deleted_by<K: Eq + std::hash::Hash>(existed: Vec<K>, keys: &[K]) -> Vec<bool> {
    let mut existed: HashSet<K> = existed.into_iter().collect();
    keys.iter().map(|key| existed.remove(key)).collect()
}
