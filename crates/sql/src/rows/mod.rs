//! [`Rows`]: a table of your own behind per-item calls (`get`, `save`,
//! `delete`), coalesced across concurrent callers into the toolkit's
//! batched statements, with read-your-writes.
//!
//! A row type declares its table once, with `#[derive(Record)]`
//! ([`TableRow`]); [`Db::rows`](crate::Db::rows) gives the handle (or
//! `Replicated::rows`, over read
//! replicas). Code over it is the same
//! on every database, with no bound to write:
//!
//! ```no_run
//! use coalesce_sql::{Db, Record, Rows};
//!
//! #[derive(Clone, sqlx::FromRow, Record)]
//! #[record(table = "order_lines", key(order_id, line_no))]
//! struct Line { order_id: i64, line_no: i32, sku: String, quantity: i32 }
//!
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let db = Db::new(sqlx::SqlitePool::connect("sqlite://shop.db").await?);
//! let lines: Rows<Line> = db.rows();
//! lines.save(Line { order_id: 1, line_no: 1, sku: "tea".into(), quantity: 2 }).await?;
//! let (a, b) = tokio::join!(lines.get((1, 1)), lines.get((1, 2))); // one statement
//! assert_eq!(a?.map(|line| line.quantity), Some(2));
//! assert!(b?.is_none());
//! assert!(lines.delete((1, 1)).await?);
//! # Ok(()) }
//! ```

mod coalesced;
mod handles;
mod per_item;
mod place;
mod readers;
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod replicated;
mod repository;

pub(crate) use handles::Handles;
pub(crate) use place::OnDb;
pub(crate) use readers::Readers;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) use replicated::OnReplicas;

use place::Place;

use crate::{Dialect, Error, Key, Record, Table};
use coalesce::{BatchSettings, CachePolicy, ConfigError, LoadError, StatsSnapshot};
use futures::future::{BoxFuture, join_all};
use sqlx::FromRow;
use std::{hash::Hash, sync::Arc};

/// A row of a table of your own, for [`Rows`]: the table it lives in and
/// its key. Derived with `#[derive(Record)]` (which also implements
/// [`Record`] for every dialect):
///
/// ```
/// #[derive(Clone, sqlx::FromRow, coalesce_sql::Record)]
/// #[record(table = "customers", key(id))]
/// struct Customer { id: i64, name: String }
///
/// use coalesce_sql::TableRow;
/// assert_eq!(Customer::table().key_columns(), ["id"]);
/// assert_eq!(Customer::table().value_columns(), ["name"]);
/// ```
///
/// Written by hand, it ends with `coalesce_sql::table_row_backends!();`
/// (what each enabled dialect needs to build a [`Rows`]), and the row must
/// also be a [`Record`] and a [`sqlx::FromRow`] on each enabled dialect.
pub trait TableRow: Clone + Send + Sync + Unpin + 'static {
    /// The key: one column's type, or a tuple for a composite key.
    type Key: Eq + Hash + Clone + Send + Sync + 'static;

    /// The table: its name, key columns and value columns.
    fn table() -> Table;

    /// With [`RowsOptions::exact_keys`]: the keys of this table that a
    /// write by `key`, a key of another type (a delete by part of the
    /// key, through another handle of the same table), covers, if they can
    /// be listed; their reads in flight are then detached, not every
    /// read. By default `None`: every read is detached.
    ///
    /// ```
    /// use coalesce_sql::{Table, TableRow};
    /// use std::any::Any;
    ///
    /// #[derive(Clone, sqlx::FromRow, coalesce_sql::Record)]
    /// #[record(table = "lines", key(order_id, line_no))]
    /// struct Line { order_id: i64, line_no: i16, sku: String }
    ///
    /// // Lines are numbered 1 to 3: a delete by order covers three keys.
    /// fn lines_of(key: &dyn Any) -> Option<Vec<(i64, i16)>> {
    ///     let order = key.downcast_ref::<i64>()?;
    ///     Some((1..=3).map(|line| (*order, line)).collect())
    /// }
    /// assert_eq!(lines_of(&7_i64), Some(vec![(7, 1), (7, 2), (7, 3)]));
    /// assert_eq!(Line::keys_written_by(&7_i64), None, "the default");
    /// ```
    fn keys_written_by(key: &dyn std::any::Any) -> Option<Vec<Self::Key>> {
        let _ = key;
        None
    }

    /// Over read replicas: the identities a read of `key` in `table` checks
    /// and a write of it marks (see [`replicas`](crate::replicas)). By
    /// default the key's own, `KeyId::new(table.name(), key)`. Add the
    /// identity of a group of rows that a query of yours reads as a whole
    /// (all of a user's rows, read with
    /// `Replicated::read(&[KeyId::new("notes_of", &user)], ...)`), so that
    /// the query sees every write of its rows through this handle.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    fn replica_ids(table: &Table, key: &Self::Key) -> Vec<crate::replicas::KeyId> {
        vec![crate::replicas::key_id(table, key)]
    }

    #[cfg(feature = "postgres")]
    #[doc(hidden)]
    fn __postgres<B: Build<sqlx::Postgres>>(build: B) -> Result<Rows<Self>, ConfigError>;

    #[cfg(feature = "mysql")]
    #[doc(hidden)]
    fn __mysql<B: Build<sqlx::MySql>>(build: B) -> Result<Rows<Self>, ConfigError>;

    #[cfg(feature = "sqlite")]
    #[doc(hidden)]
    fn __sqlite<B: Build<sqlx::Sqlite>>(build: B) -> Result<Rows<Self>, ConfigError>;
}

/// The error of a call through [`Rows`]: the toolkit's [`Error`] (shared
/// when one batch's failure reaches several callers), or the engine's own
/// reasons ([`LoadError`]).
pub type RowsError = LoadError<Error>;

/// How a [`Rows`] handle batches ([`Db::rows_with`](crate::Db::rows_with)).
///
/// ```
/// use coalesce::CachePolicy;
/// use coalesce_sql::RowsOptions;
///
/// let cached = RowsOptions { cache: CachePolicy::Bounded { capacity: 10_000, time_to_live: None }, ..RowsOptions::default() };
/// # drop(cached);
/// ```
#[derive(Debug, Clone, Default)]
pub struct RowsOptions {
    /// The table's name, instead of the one the row type declares: the
    /// same table under another name (a tenant's copy, a test's own
    /// table), in the declared schema.
    pub table_name: Option<String>,
    /// The table's whole description, instead of the one the row type
    /// declares (`table_name` still renames it): for what differs by
    /// database, such as an `on_update` timestamp (`now()`,
    /// `CURRENT_TIMESTAMP(6)`) or a `select` with a cast
    /// (`data::text AS data` for a `JSONB` column read as text). Its key
    /// and value columns must be the row's.
    pub table: Option<Table>,
    /// The key columns compare in the database exactly as the key type
    /// does in Rust (integers, UUIDs, text under a binary collation or
    /// PostgreSQL's deterministic ones), so a write detaches only the
    /// reads in flight of the keys it wrote, not every read of the table
    /// (default `false`: see [`Rows`]' consistency). Under a looser
    /// equality (a case-insensitive collation, `citext`, `CHAR(n)`'s
    /// padding) this would let a read of `ABC` miss a write of `abc`.
    /// Writes by other keys (a delete by part of the key) detach every
    /// read unless [`TableRow::keys_written_by`] lists the keys they
    /// cover; SQL of your own ([`Db::wrote`](crate::Db::wrote)) detaches
    /// every read.
    pub exact_keys: bool,
    /// Count into these statistics (one for a whole repository, say)
    /// instead of the handle's own; [`Rows::stats`] then reports them.
    pub stats: Option<Arc<coalesce::Stats>>,
    /// Window, batch cap and concurrency of reads and of each kind of
    /// write. Unset `max_concurrent_batches` means the pool's size.
    pub settings: BatchSettings,
    /// Reads' cache (default: none). Every write to the table empties it
    /// (with `exact_keys`, of the written keys; see [`Rows`]'
    /// consistency); a key that failed stays failed in the cache until
    /// then.
    pub cache: CachePolicy,
    /// Do not coalesce: each call sends its own statement, as a plain
    /// repository does (default `false`; [`Db::rows_per_item`](crate::Db::rows_per_item)). The
    /// baseline to compare with, or a switch to turn coalescing off from
    /// your configuration; `settings` and `cache` are then unused.
    pub per_item: bool,
}

/// A table's rows by key, coalesced: concurrent `get`s share one keyed
/// read, concurrent `save`s one upsert, concurrent `delete`s one delete.
/// Cheap to clone (clones share batches). Built by [`Db::rows`](crate::Db::rows),
/// or over read replicas by `Replicated::rows`.
///
/// **Answers.** Each call answers as its own statement would, run alone
/// (`SELECT ... WHERE key = $1`, one upsert, `DELETE ... WHERE key = $1`)
/// under the database's rules: keys are matched by the database, not by
/// Rust. One bad item (a constraint it breaks, a value the database
/// refuses, a row too large) fails only its own caller. Two deletes of
/// one key in a batch answer as one after the other would: `true`, then
/// `false`.
///
/// **Consistency.** A call that starts after a `save` or `delete` returned
/// sees its effect: every write of a table (through any `Rows`, or the
/// [`Db`](crate::Db)'s own `upsert`/`delete`, on this `Db` or its clones) detaches
/// that table's reads already sent from later callers. The whole table's,
/// not the written keys': only the database knows which keys are equal
/// (`abc` and `ABC` under a case-insensitive collation); with
/// [`RowsOptions::exact_keys`], only the written keys'.
///
/// **Writes.** A batch's rows are written in one fixed order (so two
/// batches do not lock the same rows in opposite orders), each key's
/// writes in the order they were made; deadlocks are retried.
///
/// **Over replicas** (`Replicated::rows`):
/// the same, with each batch of reads served by a replica that has
/// replayed every write of its keys made through the `Replicated` handle
/// (its `Rows`, `upsert`, `delete`, `write`), else by the primary; writes
/// go to the primary. A write through the primary's own `Db` (or a `Rows`
/// built on it) detaches reads in flight but leaves no position: a later
/// read may be served by a replica that has not replayed it.
pub struct Rows<R: TableRow> {
    access: Arc<dyn Access<R>>,
}

impl<R: TableRow> Clone for Rows<R> {
    fn clone(&self) -> Self {
        Self {
            access: Arc::clone(&self.access),
        }
    }
}

impl<R: TableRow> std::fmt::Debug for Rows<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows")
            .field("table", &R::table().name())
            .finish_non_exhaustive()
    }
}

impl<R: TableRow> Rows<R> {
    /// The row of `key`, if any.
    ///
    /// ```no_run
    /// # #[derive(Clone, sqlx::FromRow, coalesce_sql::Record)]
    /// # #[record(table = "customers", key(id))]
    /// # struct Customer { id: i64, name: String }
    /// # async fn f(customers: coalesce_sql::Rows<Customer>) -> Result<(), coalesce_sql::RowsError> {
    /// let ada = customers.get(1).await?;
    /// # Ok(()) }
    /// ```
    pub async fn get(&self, key: R::Key) -> Result<Option<R>, RowsError> {
        self.access.get(key).await
    }

    /// The rows of `keys`, in their order (duplicates allowed); fails with
    /// the first key's error, if any fails.
    ///
    /// ```no_run
    /// # #[derive(Clone, sqlx::FromRow, coalesce_sql::Record)]
    /// # #[record(table = "customers", key(id))]
    /// # struct Customer { id: i64, name: String }
    /// # async fn f(customers: coalesce_sql::Rows<Customer>) -> Result<(), coalesce_sql::RowsError> {
    /// let found: Vec<Option<Customer>> = customers.get_many([1, 2, 3]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_many(
        &self,
        keys: impl IntoIterator<Item = R::Key>,
    ) -> Result<Vec<Option<R>>, RowsError> {
        let gets = keys.into_iter().map(|key| self.access.get(key));
        join_all(gets).await.into_iter().collect()
    }

    /// Insert `row`, or overwrite the row of its key.
    ///
    /// ```no_run
    /// # #[derive(Clone, sqlx::FromRow, coalesce_sql::Record)]
    /// # #[record(table = "customers", key(id))]
    /// # struct Customer { id: i64, name: String }
    /// # async fn f(customers: coalesce_sql::Rows<Customer>) -> Result<(), coalesce_sql::RowsError> {
    /// customers.save(Customer { id: 1, name: "Ada".into() }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn save(&self, row: R) -> Result<(), RowsError> {
        self.access.save(row).await
    }

    /// Save each of `rows`, in order; each its own result.
    ///
    /// ```no_run
    /// # #[derive(Clone, sqlx::FromRow, coalesce_sql::Record)]
    /// # #[record(table = "customers", key(id))]
    /// # struct Customer { id: i64, name: String }
    /// # async fn f(customers: coalesce_sql::Rows<Customer>) {
    /// let rows = (1..=3).map(|id| Customer { id, name: format!("c{id}") });
    /// let results = customers.save_many(rows).await;
    /// assert!(results.iter().all(Result::is_ok));
    /// # }
    /// ```
    pub async fn save_many(&self, rows: impl IntoIterator<Item = R>) -> Vec<Result<(), RowsError>> {
        join_all(rows.into_iter().map(|row| self.access.save(row))).await
    }

    /// Delete the row of `key`; whether there was one.
    ///
    /// ```no_run
    /// # #[derive(Clone, sqlx::FromRow, coalesce_sql::Record)]
    /// # #[record(table = "customers", key(id))]
    /// # struct Customer { id: i64, name: String }
    /// # async fn f(customers: coalesce_sql::Rows<Customer>) -> Result<(), coalesce_sql::RowsError> {
    /// let existed = customers.delete(1).await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete(&self, key: R::Key) -> Result<bool, RowsError> {
        self.access.delete(key).await
    }

    /// Delete the rows of `keys`, in order; each its own result (a key
    /// named twice: `true` then `false`, as one after the other).
    ///
    /// ```no_run
    /// # #[derive(Clone, sqlx::FromRow, coalesce_sql::Record)]
    /// # #[record(table = "customers", key(id))]
    /// # struct Customer { id: i64, name: String }
    /// # async fn f(customers: coalesce_sql::Rows<Customer>) {
    /// let existed = customers.delete_many([1, 2]).await;
    /// # }
    /// ```
    pub async fn delete_many(
        &self,
        keys: impl IntoIterator<Item = R::Key>,
    ) -> Vec<Result<bool, RowsError>> {
        join_all(keys.into_iter().map(|key| self.access.delete(key))).await
    }

    /// Calls, batches and statements saved, reads and writes together.
    ///
    /// ```no_run
    /// # #[derive(Clone, sqlx::FromRow, coalesce_sql::Record)]
    /// # #[record(table = "customers", key(id))]
    /// # struct Customer { id: i64, name: String }
    /// # fn f(customers: coalesce_sql::Rows<Customer>) {
    /// println!("{} calls in {} batches", customers.stats().loads_requested, customers.stats().total_operations);
    /// # }
    /// ```
    pub fn stats(&self) -> StatsSnapshot {
        self.access.stats()
    }
}

/// Where [`Rows`] handles come from: a [`Db`](crate::Db), or an
/// `Arc<Replicated<DB>>` over read replicas. What the constructors
/// [`repository!`](crate::repository) writes take, so one repository
/// struct runs on either.
///
/// ```no_run
/// use coalesce_sql::{Db, Rows, RowsSource};
/// # #[derive(Clone, sqlx::FromRow, coalesce_sql::Record)]
/// # #[record(table = "customers", key(id))]
/// # struct Customer { id: i64, name: String }
///
/// fn customers(source: &impl RowsSource) -> Rows<Customer> {
///     source.rows()
/// }
/// # async fn f() -> Result<(), sqlx::Error> {
/// let db = Db::new(sqlx::SqlitePool::connect("sqlite://shop.db").await?);
/// let handle = customers(&db);
/// # Ok(()) }
/// ```
pub trait RowsSource {
    /// The coalesced handle of `R`'s table, shared while it lives
    /// ([`Db::rows`](crate::Db::rows)).
    fn rows<R: TableRow>(&self) -> Rows<R>;

    /// A handle of `R`'s table of its own, batching as `options` say
    /// ([`Db::rows_with`](crate::Db::rows_with)).
    fn rows_with<R: TableRow>(&self, options: RowsOptions) -> Result<Rows<R>, ConfigError>;

    /// A handle of `R`'s table that sends each call's own statement
    /// ([`Db::rows_per_item`](crate::Db::rows_per_item)).
    fn rows_per_item<R: TableRow>(&self) -> Rows<R> {
        let options = RowsOptions {
            per_item: true,
            ..RowsOptions::default()
        };
        match self.rows_with(options) {
            Ok(rows) => rows,
            Err(_) => unreachable!("a per-item handle has no settings to refuse"),
        }
    }
}

impl<DB: Dialect> RowsSource for crate::Db<DB> {
    fn rows<R: TableRow>(&self) -> Rows<R> {
        crate::Db::rows(self)
    }

    fn rows_with<R: TableRow>(&self, options: RowsOptions) -> Result<Rows<R>, ConfigError> {
        crate::Db::rows_with(self, options)
    }
}

/// What a [`Rows`] does, for one dialect (its type erased, so code using
/// `Rows` names none).
trait Access<R: TableRow>: Send + Sync {
    fn get(&self, key: R::Key) -> BoxFuture<'_, Result<Option<R>, RowsError>>;
    fn save(&self, row: R) -> BoxFuture<'_, Result<(), RowsError>>;
    fn delete(&self, key: R::Key) -> BoxFuture<'_, Result<bool, RowsError>>;
    fn stats(&self) -> StatsSnapshot;
}

/// A [`TableRow`] that dialect `DB` reads and writes: a [`Record`] of the
/// same key and a [`FromRow`] there. (Implemented wherever that holds.)
#[doc(hidden)]
pub trait Stored<DB: Dialect>:
    TableRow<Key: Key<DB>> + Record<DB, Key = <Self as TableRow>::Key> + for<'r> FromRow<'r, DB::Row>
{
}

impl<DB: Dialect, R> Stored<DB> for R where
    R: TableRow<Key: Key<DB>>
        + Record<DB, Key = <R as TableRow>::Key>
        + for<'r> FromRow<'r, DB::Row>
{
}

/// A [`Rows`] to build, on a [`Db`](crate::Db) or a replicated handle: what each
/// dialect's hidden [`TableRow`] fn is given, and calls with the row type
/// once its [`Record`] and [`FromRow`] impls there are checked (in the
/// row's own crate, where the row type is concrete).
#[doc(hidden)]
pub trait Build<DB: Dialect> {
    /// Build the handle of rows `R`.
    fn build<R: Stored<DB>>(self) -> Result<Rows<R>, ConfigError>;
}

/// `R`'s handle with its statements run at `place`, as `options` say.
fn build_at<P: Place, R: Stored<P::Db>>(
    place: P,
    options: RowsOptions,
) -> Result<Rows<R>, ConfigError> {
    let table = options.table.clone().unwrap_or_else(R::table);
    let table = match &options.table_name {
        Some(name) => table.renamed(name),
        None => table,
    };
    let access: Arc<dyn Access<R>> = if options.per_item {
        Arc::new(per_item::PerItem::<P, R>::new(place, table))
    } else {
        coalesced::Coalesced::<P, R>::new(place, table, options)?
    };
    Ok(Rows { access })
}

/// The hidden part of a hand-written [`TableRow`] impl: how each enabled
/// dialect builds the row's [`Rows`]. `#[derive(Record)]` writes it.
#[macro_export]
macro_rules! table_row_backends {
    () => {
        $crate::__postgres_rows!();
        $crate::__mysql_rows!();
        $crate::__sqlite_rows!();
    };
}

/// Expands per dialect, in this crate's features (a `cfg` in the user's
/// crate would test the user's features).
macro_rules! dialect_rows {
    ($feature:literal, $macro:ident, $function:ident, $db:ty) => {
        #[cfg(feature = $feature)]
        #[doc(hidden)]
        #[macro_export]
        macro_rules! $macro {
            () => {
                fn $function<B: $crate::__private::BuildRows<$db>>(
                    build: B,
                ) -> Result<$crate::Rows<Self>, $crate::__private::ConfigError> {
                    build.build::<Self>()
                }
            };
        }
        #[cfg(not(feature = $feature))]
        #[doc(hidden)]
        #[macro_export]
        macro_rules! $macro {
            () => {};
        }
    };
}

dialect_rows!("postgres", __postgres_rows, __postgres, ::sqlx::Postgres);
dialect_rows!("mysql", __mysql_rows, __mysql, ::sqlx::MySql);
dialect_rows!("sqlite", __sqlite_rows, __sqlite, ::sqlx::Sqlite);
