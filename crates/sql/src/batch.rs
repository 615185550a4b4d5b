//! [`Batch`]: the handle that runs keyed reads, upserts and deletes for a
//! pool, and counts what it sends.

use crate::chunk::{self, Chunk, Limits};
use crate::dialect::internal::{Lists, Server};
use crate::error::{Error, Operation, Step, is_connection_lost};
use crate::value::{Arguments, Columns, Key, Record};
use crate::{Dialect, Table, retry, sql};
use sqlx::{FromRow, Pool, pool::PoolConnection};
use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
};
use tokio::sync::OnceCell;

/// Keys or rows per statement unless set with
/// [`Batch::with_rows_per_statement`].
///
/// ```
/// assert_eq!(coalesce_sql::DEFAULT_ROWS_PER_STATEMENT, 1000);
/// ```
pub const DEFAULT_ROWS_PER_STATEMENT: usize = 1000;

/// Batched statements on one pool: reads of many keys, upserts and
/// deletes of many rows, split and padded within the engine's limits.
/// Cheap to clone; clones share the pool and the counters.
///
/// ```no_run
/// use coalesce_sql::{Batch, Table};
/// use std::collections::HashMap;
///
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
/// let sql = Batch::new(pool);
/// let orders = Table::new("orders").key(["id"]).columns(["customer", "total_cents"]);
/// let found: HashMap<i64, (i64, String, i64)> = sql.fetch(&orders, &[1, 2, 3]).await?;
/// assert_eq!(sql.statements(), 1);
/// # drop(found); Ok(()) }
/// ```
#[derive(Debug)]
pub struct Batch<DB: Dialect> {
    pool: Pool<DB>,
    counters: Arc<Counters>,
    server: Arc<OnceCell<Server>>,
    write_attempts: u32,
    rows_per_statement: usize,
}

impl<DB: Dialect> Clone for Batch<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            counters: Arc::clone(&self.counters),
            server: Arc::clone(&self.server),
            write_attempts: self.write_attempts,
            rows_per_statement: self.rows_per_statement,
        }
    }
}

/// Statements and transactions sent, shared by clones.
#[derive(Debug, Default)]
struct Counters {
    statements: AtomicU64,
    transactions: AtomicU64,
}

/// One item of a list: a key, and for an upsert the row's values.
struct Item<'a, K, V> {
    key: &'a K,
    values: V,
}

impl<K, V> Item<'_, K, V> {
    fn encoded_size<DB: Dialect>(&self) -> usize
    where
        K: Key<DB>,
        V: Columns<DB>,
    {
        self.key.encoded_size() + self.values.encoded_size()
    }
}

/// Where a write runs: one auto-committed statement, or a transaction.
enum Scope<DB: Dialect> {
    Single(PoolConnection<DB>),
    Transaction(sqlx::Transaction<'static, DB>),
}

impl<DB: Dialect> Batch<DB> {
    /// A handle on `pool`, counting from zero.
    pub fn new(pool: Pool<DB>) -> Self {
        Self {
            pool,
            counters: Arc::default(),
            server: Arc::default(),
            write_attempts: retry::DEFAULT_WRITE_ATTEMPTS,
            rows_per_statement: DEFAULT_ROWS_PER_STATEMENT,
        }
    }

    /// How many times a write is tried when the database aborts it to
    /// break a deadlock or serialization conflict (default 5, the first
    /// attempt included; 1 turns retries off). See [`retry::on_conflict`].
    ///
    /// ```no_run
    /// # fn f(pool: sqlx::PgPool) {
    /// let sql = coalesce_sql::Batch::new(pool).with_write_attempts(10);
    /// # }
    /// ```
    pub fn with_write_attempts(mut self, attempts: u32) -> Self {
        self.write_attempts = attempts.max(1);
        self
    }

    /// The most keys or rows one statement carries (default 1,000; at
    /// least 1). Lower it to bound each statement's work; the engine's
    /// bind and packet limits apply on top, and on MySQL/MariaDB a read or
    /// delete by composite key carries at most 64 keys (its range optimizer
    /// is quadratic in a longer list of row values).
    ///
    /// ```no_run
    /// # fn f(pool: sqlx::MySqlPool) {
    /// let sql = coalesce_sql::Batch::new(pool).with_rows_per_statement(200);
    /// # }
    /// ```
    pub fn with_rows_per_statement(mut self, rows: usize) -> Self {
        self.rows_per_statement = rows.max(1);
        self
    }

    /// The pool, for statements of your own.
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// Statements sent by this handle and its clones, failed ones
    /// included. `BEGIN`/`COMMIT` are not statements here (see
    /// [`transactions`](Self::transactions)), nor is the one query a
    /// MySQL pool's limits take, asked once.
    pub fn statements(&self) -> u64 {
        self.counters.statements.load(Relaxed)
    }

    /// Transactions begun by this handle and its clones.
    pub fn transactions(&self) -> u64 {
        self.counters.transactions.load(Relaxed)
    }

    /// The rows of `table` whose key is among `keys`, by key: one
    /// statement per chunk of distinct keys. Missing keys are absent;
    /// duplicates in `keys` are fine. `R` is decoded from each row, and the
    /// key from the same row's key columns.
    ///
    /// ```no_run
    /// # use coalesce_sql::{Batch, Table};
    /// # async fn f(sql: Batch<sqlx::Postgres>) -> Result<(), coalesce_sql::Error> {
    /// let lines = Table::new("order_lines").key(["order_id", "line_no"]).columns(["sku"]);
    /// let found: std::collections::HashMap<(i64, i32), (i64, i32, String)> =
    ///     sql.fetch(&lines, &[(1, 1), (1, 2), (1, 1)]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn fetch<K, R>(&self, table: &Table, keys: &[K]) -> Result<HashMap<K, R>, Error>
    where
        K: Key<DB>,
        R: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
    {
        let mut found = HashMap::with_capacity(keys.len());
        self.fetch_each(table, keys, |key, row| {
            found.insert(key, row);
        })
        .await?;
        Ok(found)
    }

    /// Like [`fetch`](Self::fetch) for key columns that are not unique:
    /// every matching row, grouped by key (in no particular order within a
    /// key). Keys without rows are absent.
    ///
    /// ```no_run
    /// # use coalesce_sql::{Batch, Table};
    /// # async fn f(sql: Batch<sqlx::Sqlite>) -> Result<(), coalesce_sql::Error> {
    /// let lines_by_order = Table::new("order_lines").key(["order_id"]).columns(["line_no", "sku"]);
    /// let lines: std::collections::HashMap<i64, Vec<(i64, i64, String)>> =
    ///     sql.fetch_grouped(&lines_by_order, &[1, 2]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn fetch_grouped<K, R>(
        &self,
        table: &Table,
        keys: &[K],
    ) -> Result<HashMap<K, Vec<R>>, Error>
    where
        K: Key<DB>,
        R: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
    {
        let mut found: HashMap<K, Vec<R>> = HashMap::with_capacity(keys.len());
        let group = |key, row| found.entry(key).or_default().push(row);
        self.fetch_each(table, keys, group).await?;
        Ok(found)
    }

    /// Read the rows of `table` whose key is among `keys`, handing each
    /// with its key to `found`.
    async fn fetch_each<K, R>(
        &self,
        table: &Table,
        keys: &[K],
        mut found: impl FnMut(K, R) + Send,
    ) -> Result<(), Error>
    where
        K: Key<DB>,
        R: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
    {
        table.validate(K::LEN)?;
        let keys = distinct(keys);
        if keys.is_empty() {
            return Ok(());
        }
        let operation = Operation::Fetch;
        let chunks = self.plan(operation, table, &keys).await?;
        let mut connection = self
            .pool
            .acquire()
            .await
            .map_err(|e| failed(operation, table, Step::Connect, e))?;
        for (i, chunk) in chunks.iter().enumerate() {
            let step = Step::Chunk {
                index: i + 1,
                of: chunks.len(),
            };
            let fail = |e| failed(operation, table, step, e);
            let items = keyed_items::<DB, _>(chunk, &keys);
            let sql = sql::select(&DB::SYNTAX, table, items.len());
            let arguments = key_arguments(&items).map_err(fail)?;
            self.count_statement();
            for row in DB::fetch_rows(&mut connection, sql, arguments)
                .await
                .map_err(fail)?
            {
                let key = K::from_row(&row, table.key_columns()).map_err(fail)?;
                found(key, R::from_row(&row).map_err(fail)?);
            }
        }
        Ok(())
    }

    /// Insert `rows` into `table`, updating the value columns of rows whose
    /// key exists. The last row of a key wins within the call. More rows
    /// than fit one statement are written in chunks inside one transaction:
    /// all or nothing. Retried on deadlock (see
    /// [`with_write_attempts`](Self::with_write_attempts)).
    ///
    /// ```no_run
    /// # use coalesce_sql::{Batch, Dialect, KeyPart, Record, Table, Value};
    /// # struct Order { id: i64, total_cents: i64 }
    /// # impl<DB: Dialect> Record<DB> for Order where i64: KeyPart<DB> {
    /// #     type Key = i64; type Values<'a> = (&'a i64,);
    /// #     fn key(&self) -> i64 { self.id } fn values(&self) -> (&i64,) { (&self.total_cents,) }
    /// # }
    /// # async fn f(sql: Batch<sqlx::Sqlite>) -> Result<(), coalesce_sql::Error> {
    /// let orders = Table::new("orders").key(["id"]).columns(["total_cents"]);
    /// sql.upsert(&orders, &[Order { id: 1, total_cents: 500 }]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn upsert<R: Record<DB>>(&self, table: &Table, rows: &[R]) -> Result<(), Error> {
        table.validate(<R::Key as Key<DB>>::LEN)?;
        if table.value_columns().len() != <R::Values<'_> as Columns<DB>>::LEN {
            return Err(Error::BadTable {
                table: table.name().to_owned(),
                reason: format!(
                    "{} value column(s) but the record binds {}",
                    table.value_columns().len(),
                    <R::Values<'_> as Columns<DB>>::LEN
                ),
            });
        }
        let (keys, rows) = last_of_each_key(rows);
        let rows: Vec<Item<'_, R::Key, R::Values<'_>>> = keys
            .iter()
            .zip(rows)
            .map(|(key, row)| Item {
                key,
                values: row.values(),
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        let operation = Operation::Upsert;
        let chunks = self.plan(operation, table, &rows).await?;
        retry::on_conflict(self.write_attempts, || async {
            let mut scope = self.open(operation, table, chunks.len()).await?;
            for (i, chunk) in chunks.iter().enumerate() {
                let step = Step::Chunk {
                    index: i + 1,
                    of: chunks.len(),
                };
                let items = chunk.padded(&rows);
                let sql = sql::upsert(&DB::SYNTAX, table, items.len());
                let arguments =
                    arguments(&items).map_err(|e| scope.failed(operation, table, step, e))?;
                self.count_statement();
                let done = DB::execute(scope.connection(), sql, arguments).await;
                done.map_err(|e| scope.failed(operation, table, step, e))?;
            }
            scope.commit(operation, table).await
        })
        .await
    }

    /// Delete the rows of `table` whose key is among `keys`; returns the
    /// key of each row deleted (so each existing key once where the key
    /// columns are unique, once per row where they are not, as in a
    /// delete by a prefix of the primary key). Chunks run inside one transaction:
    /// all or nothing. `DELETE ... RETURNING` where the server has it;
    /// on Oracle MySQL, per chunk a `SELECT ... FOR UPDATE` and a `DELETE`
    /// in one transaction (so the rows read are the rows deleted). Retried
    /// on deadlock.
    ///
    /// ```no_run
    /// # use coalesce_sql::{Batch, Table};
    /// # async fn f(sql: Batch<sqlx::MySql>) -> Result<(), coalesce_sql::Error> {
    /// let orders = Table::new("orders").key(["id"]);
    /// let existed: Vec<i64> = sql.delete(&orders, &[1, 2, 3]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete<K: Key<DB>>(&self, table: &Table, keys: &[K]) -> Result<Vec<K>, Error> {
        table.validate(K::LEN)?;
        let keys = distinct(keys);
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let operation = Operation::Delete;
        let chunks = self.plan(operation, table, &keys).await?;
        let returning = self.server(operation, table).await?.delete_returning;
        // Without RETURNING, each chunk is two statements.
        let statements = chunks.len() * if returning { 1 } else { 2 };
        retry::on_conflict(self.write_attempts, || async {
            let mut scope = self.open(operation, table, statements).await?;
            let mut existed = Vec::new();
            for (i, chunk) in chunks.iter().enumerate() {
                let step = Step::Chunk {
                    index: i + 1,
                    of: chunks.len(),
                };
                let fail = |scope: &Scope<DB>, e| scope.failed(operation, table, step, e);
                let items = keyed_items::<DB, _>(chunk, &keys);
                let rows = if returning {
                    let sql = sql::delete_returning(&DB::SYNTAX, table, items.len());
                    let arguments = key_arguments(&items).map_err(|e| fail(&scope, e))?;
                    self.count_statement();
                    let rows = DB::fetch_rows(scope.connection(), sql, arguments).await;
                    rows.map_err(|e| fail(&scope, e))?
                } else {
                    let lock = sql::lock_existing(&DB::SYNTAX, table, items.len());
                    let arguments = key_arguments(&items).map_err(|e| fail(&scope, e))?;
                    self.count_statement();
                    let rows = DB::fetch_rows(scope.connection(), lock, arguments).await;
                    let rows = rows.map_err(|e| fail(&scope, e))?;
                    let delete = sql::delete(&DB::SYNTAX, table, items.len());
                    let arguments = key_arguments(&items).map_err(|e| fail(&scope, e))?;
                    self.count_statement();
                    let done = DB::execute(scope.connection(), delete, arguments).await;
                    done.map_err(|e| fail(&scope, e))?;
                    rows
                };
                for row in rows {
                    let key = K::from_row(&row, table.key_columns());
                    existed.push(
                        key.map_err(|e| scope.failed_after_execution(operation, table, step, e))?,
                    );
                }
            }
            scope.commit(operation, table).await?;
            Ok(existed)
        })
        .await
    }

    fn count_statement(&self) {
        self.counters.statements.fetch_add(1, Relaxed);
    }

    /// The server's limits, asked once per pool.
    async fn server(&self, operation: Operation, table: &Table) -> Result<Server, Error> {
        self.server
            .get_or_try_init(|| DB::server(&self.pool))
            .await
            .copied()
            .map_err(|e| failed(operation, table, Step::Limits, e))
    }

    /// Split `items` into chunks within the server's limits, padded where
    /// lists are spelled out.
    async fn plan<K: Key<DB>, V: Columns<DB>>(
        &self,
        operation: Operation,
        table: &Table,
        items: &[Item<'_, K, V>],
    ) -> Result<Vec<Chunk>, Error> {
        let server = self.server(operation, table).await?;
        let arrays = DB::SYNTAX.lists == Lists::Arrays;
        let items_per_statement = match DB::SYNTAX.lists {
            // Composite keys to read or delete travel as an `IN` list of
            // row values, which a dialect may cap; an upsert's rows do not.
            Lists::Rows { max_row_values, .. } if K::LEN > 1 && operation != Operation::Upsert => {
                self.rows_per_statement.min(max_row_values)
            }
            _ => self.rows_per_statement,
        };
        let limits = Limits {
            binds: server.max_binds,
            bytes: server.max_bytes,
            items: items_per_statement,
        };
        let sizes: Vec<usize> = items.iter().map(Item::encoded_size).collect();
        let binds_per_item = if arrays { 0 } else { K::LEN + V::LEN };
        chunk::plan(&sizes, binds_per_item, limits, !arrays).map_err(|too_large| Error::TooLarge {
            table: table.name().to_owned(),
            size: too_large.size,
            limit: too_large.limit,
        })
    }

    /// Where a write of `statements` statements runs: alone, or in a
    /// transaction if there are several.
    async fn open(
        &self,
        operation: Operation,
        table: &Table,
        statements: usize,
    ) -> Result<Scope<DB>, Error> {
        if statements == 1 {
            let connection = self.pool.acquire().await;
            let connection = connection.map_err(|e| failed(operation, table, Step::Connect, e))?;
            return Ok(Scope::Single(connection));
        }
        self.counters.transactions.fetch_add(1, Relaxed);
        let transaction = self.pool.begin().await;
        let transaction = transaction.map_err(|e| failed(operation, table, Step::Begin, e))?;
        Ok(Scope::Transaction(transaction))
    }
}

impl<DB: Dialect> Scope<DB> {
    fn connection(&mut self) -> &mut DB::Connection {
        match self {
            Self::Single(connection) => connection,
            Self::Transaction(transaction) => transaction,
        }
    }

    /// The error for a statement of this write failing at `step`: an
    /// auto-committed statement whose connection failed may have run.
    fn failed(
        &self,
        operation: Operation,
        table: &Table,
        step: Step,
        source: sqlx::Error,
    ) -> Error {
        match self {
            Self::Single(_) if is_connection_lost(&source) => Error::CommitOutcomeUnknown {
                operation,
                table: table.name().to_owned(),
                step,
                source,
            },
            _ => failed(operation, table, step, source),
        }
    }

    /// The error for a failure once this write's statement at `step` has
    /// run: an auto-committed statement has been applied already.
    fn failed_after_execution(
        &self,
        operation: Operation,
        table: &Table,
        step: Step,
        source: sqlx::Error,
    ) -> Error {
        match self {
            Self::Single(_) => Error::CommitOutcomeUnknown {
                operation,
                table: table.name().to_owned(),
                step,
                source,
            },
            Self::Transaction(_) => failed(operation, table, step, source),
        }
    }

    /// Commit the transaction, if any. A connection that fails once
    /// `COMMIT` is sent leaves the outcome unknown.
    async fn commit(self, operation: Operation, table: &Table) -> Result<(), Error> {
        let Self::Transaction(transaction) = self else {
            return Ok(());
        };
        transaction.commit().await.map_err(|source| {
            if is_connection_lost(&source) {
                Error::CommitOutcomeUnknown {
                    operation,
                    table: table.name().to_owned(),
                    step: Step::Commit,
                    source,
                }
            } else {
                failed(operation, table, Step::Commit, source)
            }
        })
    }
}

/// A database error at `step` of `operation` on `table`.
fn failed(operation: Operation, table: &Table, step: Step, source: sqlx::Error) -> Error {
    Error::Database {
        operation,
        table: table.name().to_owned(),
        step,
        source,
    }
}

/// The arguments for one statement's list, in the dialect's form.
fn arguments<DB: Dialect, K: Key<DB>, V: Columns<DB>>(
    items: &[&Item<'_, K, V>],
) -> Result<Arguments<DB>, sqlx::Error> {
    let mut arguments = Arguments::<DB>::default();
    let bound = if DB::SYNTAX.lists == Lists::Arrays {
        let keys: Vec<&K> = items.iter().map(|item| item.key).collect();
        let values: Vec<&V> = items.iter().map(|item| &item.values).collect();
        K::bind_columns(&keys, &mut arguments)
            .and_then(|()| V::bind_columns(&values, &mut arguments))
    } else {
        items.iter().try_for_each(|item| {
            item.key.bind_row(&mut arguments)?;
            item.values.bind_row(&mut arguments)
        })
    };
    bound.map_err(sqlx::Error::Encode)?;
    Ok(arguments)
}

/// Keys a PostgreSQL array of several keys is padded to, repeating its
/// first key. PostgreSQL plans a prepared statement anew on every call
/// while its custom plan looks cheaper than the generic one, which assumes
/// ten elements per array: a read of two to nine keys paid a plan per call
/// (0.1–0.5 ms for a composite key). From ten on it keeps the generic
/// plan; the repeated keys cost nothing (`= ANY` and the `UNNEST`
/// semi-join match each row once).
const MIN_KEY_ARRAY: usize = 16;

/// The keys of one keyed statement (read, lock, delete): the chunk's, padded
/// as the dialect wants (MySQL and SQLite lists to a few fixed lengths,
/// PostgreSQL arrays of several keys to [`MIN_KEY_ARRAY`]).
fn keyed_items<'a, DB: Dialect, T>(chunk: &Chunk, keys: &'a [T]) -> Vec<&'a T> {
    let mut items = chunk.padded(keys);
    if DB::SYNTAX.lists == Lists::Arrays && (2..MIN_KEY_ARRAY).contains(&items.len()) {
        let first = items[0];
        items.resize(MIN_KEY_ARRAY, first);
    }
    items
}

/// The arguments of a keyed statement (read, lock, delete) over `items`
/// keys: one key as single values, for the equality `sql` writes for it.
fn key_arguments<DB: Dialect, K: Key<DB>>(
    items: &[&Item<'_, K, ()>],
) -> Result<Arguments<DB>, sqlx::Error> {
    let [only] = items else {
        return arguments(items);
    };
    let mut arguments = Arguments::<DB>::default();
    only.key
        .bind_row(&mut arguments)
        .map_err(sqlx::Error::Encode)?;
    Ok(arguments)
}

/// The distinct keys, in the order of their first occurrence, as items.
fn distinct<K: std::hash::Hash + Eq>(keys: &[K]) -> Vec<Item<'_, K, ()>> {
    let mut seen = HashSet::with_capacity(keys.len());
    keys.iter()
        .filter(|key| seen.insert(*key))
        .map(|key| Item { key, values: () })
        .collect()
}

/// The last row of each key with its key, in the order of those rows.
fn last_of_each_key<DB: Dialect, R: Record<DB>>(rows: &[R]) -> (Vec<R::Key>, Vec<&R>) {
    let mut last = HashMap::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        last.insert(row.key(), i);
    }
    let mut kept: Vec<(R::Key, usize)> = last.into_iter().collect();
    kept.sort_unstable_by_key(|&(_, i)| i);
    kept.into_iter().map(|(key, i)| (key, &rows[i])).unzip()
}

#[cfg(all(test, feature = "mysql"))]
mod tests {
    use super::*;

    /// The MariaDB test server, or `None` outside CI when it is unreachable.
    async fn mariadb() -> Option<sqlx::MySqlPool> {
        let url = std::env::var("COALESCE_TEST_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
        match sqlx::MySqlPool::connect(&url).await {
            Ok(pool) => Some(pool),
            Err(error) if std::env::var_os("CI").is_some() => {
                panic!("MariaDB test database unreachable in CI: {error}")
            }
            Err(error) => {
                eprintln!("SKIPPED: MariaDB unreachable ({error}); set CI=1 to fail instead");
                None
            }
        }
    }

    /// Oracle MySQL's delete (no `RETURNING`): run on MariaDB by telling
    /// the handle its server lacks `RETURNING`.
    #[tokio::test]
    async fn the_locking_delete_matches_delete_returning() {
        let Some(pool) = mariadb().await else { return };
        let name = format!("locking_{}", std::process::id());
        let ddl = format!("CREATE TABLE {name} (a BIGINT, b BIGINT, PRIMARY KEY (a, b))");
        sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
            .execute(&pool)
            .await
            .unwrap();
        let table = Table::new(&name).key(["a", "b"]);
        let returning = Batch::new(pool.clone()).with_rows_per_statement(4);
        let locking = returning.clone();
        let server = returning.server(Operation::Delete, &table).await.unwrap();
        assert!(server.delete_returning, "MariaDB has DELETE ... RETURNING");
        let locking = Batch {
            server: Arc::new(OnceCell::new_with(Some(Server {
                delete_returning: false,
                ..server
            }))),
            ..locking
        };

        let keys: Vec<(i64, i64)> = (0..6).map(|i| (i, i % 2)).collect();
        let mut asked = keys.clone();
        asked.extend([(9, 9), (0, 0)]); // missing, duplicate
        let mut results = Vec::new();
        for batch in [&returning, &locking] {
            struct Pair((i64, i64));
            impl Record<sqlx::MySql> for Pair {
                type Key = (i64, i64);
                type Values<'a> = ();
                fn key(&self) -> (i64, i64) {
                    self.0
                }
                fn values(&self) {}
            }
            let pairs: Vec<Pair> = keys.iter().copied().map(Pair).collect();
            batch.upsert(&table, &pairs).await.unwrap();
            let (statements, transactions) = (batch.statements(), batch.transactions());
            let mut existed = batch.delete(&table, &asked).await.unwrap();
            existed.sort_unstable();
            let counts = (
                batch.statements() - statements,
                batch.transactions() - transactions,
            );
            // One chunk: the locking delete still needs its transaction.
            batch.upsert(&table, &pairs[..1]).await.unwrap();
            let (statements, transactions) = (batch.statements(), batch.transactions());
            assert_eq!(batch.delete(&table, &keys[..1]).await.unwrap(), keys[..1]);
            let one_chunk = (
                batch.statements() - statements,
                batch.transactions() - transactions,
            );
            results.push((existed, counts, one_chunk));
        }
        assert_eq!(
            results[0],
            (keys.clone(), (2, 1), (1, 0)),
            "RETURNING: one statement per chunk of 4, no transaction for one"
        );
        assert_eq!(
            results[1],
            (keys, (4, 1), (2, 1)),
            "locking: SELECT ... FOR UPDATE and DELETE per chunk, always in a transaction"
        );
        let drop = format!("DROP TABLE {name}");
        sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
            .execute(&pool)
            .await
            .unwrap();
    }
}
