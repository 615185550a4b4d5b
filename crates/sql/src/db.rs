//! [`Db`]: the handle that runs keyed reads, upserts and deletes for a
//! pool, counts what it sends, and builds [`Rows`] handles.

use crate::chunk::{self, Chunk, Limits};
use crate::dialect::internal::{KeyRows, Lists, Server, Syntax};
use crate::error::{Error, Limit, Operation, Step, is_connection_lost};
use crate::rows::{Handles, OnDb, Readers, Rows, RowsOptions, TableRow};
use crate::value::{Arguments, Columns, Encoding, Key, Record};
use crate::{Dialect, Session, SessionSettings, Table, retry, sql};
use coalesce::ConfigError;
use sqlx::{FromRow, Pool};
use std::{
    collections::{HashMap, HashSet},
    ops::Range,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
};
use tokio::sync::OnceCell;

/// Keys or rows per statement unless set with
/// [`Db::with_rows_per_statement`].
///
/// ```
/// assert_eq!(coalesce_sql::DEFAULT_ROWS_PER_STATEMENT, 1000);
/// ```
pub const DEFAULT_ROWS_PER_STATEMENT: usize = 1000;

/// A database handle: batched statements on one pool (reads of many
/// keys, upserts and deletes of many rows, split and padded within the
/// engine's limits), and the [`Rows`] handles of your tables
/// ([`rows`](Self::rows)). Cheap to clone; clones share the pool, the
/// counters and read-your-writes among their `Rows`. (Named `Batch`
/// before 0.2; that name stays as a deprecated alias.)
///
/// ```no_run
/// use coalesce_sql::{Db, Table};
/// use std::collections::HashMap;
///
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
/// let sql = Db::new(pool);
/// let orders = Table::new("orders").key(["id"]).values(["customer", "total_cents"]);
/// let found: HashMap<i64, (i64, String, i64)> = sql.fetch(&orders, &[1, 2, 3]).await?;
/// assert_eq!(sql.statements(), 1);
/// # drop(found); Ok(()) }
/// ```
#[derive(Debug)]
pub struct Db<DB: Dialect> {
    pool: Pool<DB>,
    counters: Arc<Counters>,
    readers: Arc<Readers>,
    handles: Arc<Handles>,
    server: Arc<OnceCell<Server>>,
    write_attempts: u32,
    rows_per_statement: usize,
    session: SessionSettings,
}

impl<DB: Dialect> Clone for Db<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            counters: Arc::clone(&self.counters),
            readers: Arc::clone(&self.readers),
            handles: Arc::clone(&self.handles),
            server: Arc::clone(&self.server),
            write_attempts: self.write_attempts,
            rows_per_statement: self.rows_per_statement,
            session: self.session,
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

// By hand: a derive would ask `K: Copy`, where only the reference is copied.
impl<K, V: Copy> Clone for Item<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V: Copy> Copy for Item<'_, K, V> {}

impl<K, V> Item<'_, K, V> {
    fn encoding<DB: Dialect>(&self) -> Encoding
    where
        K: Key<DB>,
        V: Columns<DB>,
    {
        self.key.encoding().and(self.values.encoding())
    }
}

/// A delete's error, before or after its `DELETE` ran.
enum Ran {
    Before(sqlx::Error),
    After(sqlx::Error),
}

/// The statements [`Db::split_run`] bisects: upserts of rows, or deletes
/// of keys.
enum Statements<'s, 'a, K, V> {
    Upsert(&'s [Item<'a, K, V>]),
    Delete(&'s [Item<'a, K, ()>]),
}

impl<K, V> Clone for Statements<'_, '_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for Statements<'_, '_, K, V> {}

impl<DB: Dialect> Db<DB> {
    /// A handle on `pool`, counting from zero.
    pub fn new(pool: Pool<DB>) -> Self {
        Self {
            pool,
            counters: Arc::default(),
            readers: Arc::default(),
            handles: Arc::default(),
            server: Arc::default(),
            write_attempts: retry::DEFAULT_WRITE_ATTEMPTS,
            rows_per_statement: DEFAULT_ROWS_PER_STATEMENT,
            session: SessionSettings::default(),
        }
    }

    /// Run statements as `settings` say: through a transaction pooler
    /// ([`Pooler::Transaction`](crate::Pooler::Transaction), PostgreSQL),
    /// every statement unnamed and inside a transaction that sets the
    /// statement timeout, reads included (a read then costs two round
    /// trips more: `BEGIN`, and `COMMIT`; and a statement is planned on
    /// every call, see docs/scale-out.md). The pool's connections should be
    /// opened as the same settings say
    /// ([`SessionSettings::connect_options`]).
    ///
    /// ```no_run
    /// use coalesce_sql::{Db, Pooler, SessionSettings};
    /// use std::time::Duration;
    ///
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let (pooler, url) = Pooler::from_url("postgres://app@127.0.0.1:6432/app?pooler=transaction")?;
    /// let settings = SessionSettings { pooler, statement_timeout: Some(Duration::from_secs(30)) };
    /// let pool = sqlx::PgPool::connect_with(settings.connect_options::<sqlx::Postgres>(&url)?).await?;
    /// let sql = Db::new(pool).with_session_settings(settings);
    /// # Ok(()) }
    /// ```
    pub fn with_session_settings(mut self, settings: SessionSettings) -> Self {
        self.session = settings;
        self
    }

    /// See [`with_session_settings`](Self::with_session_settings).
    ///
    /// ```no_run
    /// # fn f(pool: sqlx::PgPool) {
    /// let sql = coalesce_sql::Db::new(pool);
    /// assert!(sql.session_settings().pooler.named_statements());
    /// # }
    /// ```
    pub fn session_settings(&self) -> &SessionSettings {
        &self.session
    }

    /// How many times a write is tried when the database aborts it to
    /// break a deadlock or serialization conflict (default 5, the first
    /// attempt included; 1 turns retries off). See [`retry::on_conflict`].
    ///
    /// ```no_run
    /// # fn f(pool: sqlx::PgPool) {
    /// let sql = coalesce_sql::Db::new(pool).with_write_attempts(10);
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
    /// let sql = coalesce_sql::Db::new(pool).with_rows_per_statement(200);
    /// # }
    /// ```
    pub fn with_rows_per_statement(mut self, rows: usize) -> Self {
        self.rows_per_statement = rows.max(1);
        self
    }

    /// The pool, for statements of your own (through a transaction pooler,
    /// run them on a [`Session`] of its [`session_settings`](Self::session_settings)).
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

    /// Transactions begun by this handle and its clones for writes of
    /// several statements. (Through a transaction pooler every read and
    /// write runs in a transaction; those of one statement are not counted.)
    pub fn transactions(&self) -> u64 {
        self.counters.transactions.load(Relaxed)
    }

    /// The coalesced handle of `R`'s table on this database, with the
    /// defaults: batches of up to 100 items, at most the pool's size in
    /// flight per kind (reads, saves, deletes), no cache. Shared: while a
    /// clone of it lives, every call on this `Db` or its clones returns
    /// the same handle, so `db.rows::<R>().get(key)` written inline in
    /// each request still coalesces with the others. Every handle over
    /// this `Db` sees the others' writes (see [`Rows`]).
    ///
    /// ```no_run
    /// #[derive(Clone, sqlx::FromRow, coalesce_sql::Record)]
    /// #[record(table = "customers", key(id))]
    /// struct Customer { id: i64, name: String }
    ///
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = coalesce_sql::Db::new(sqlx::PgPool::connect("postgres://localhost/shop").await?);
    /// let customers = db.rows::<Customer>();
    /// let ada = customers.get(1).await?;
    /// # Ok(()) }
    /// ```
    pub fn rows<R: TableRow>(&self) -> Rows<R> {
        self.handles
            .get_or_build(|| match self.rows_with(RowsOptions::default()) {
                Ok(rows) => rows,
                Err(_) => unreachable!("the default options are valid"),
            })
    }

    /// Like [`rows`](Self::rows), batching as `options` say: a handle of
    /// its own, shared by its clones only.
    ///
    /// ```no_run
    /// use coalesce::{BatchSettings, BatchWindow};
    /// use coalesce_sql::RowsOptions;
    /// use std::time::Duration;
    /// # #[derive(Clone, sqlx::FromRow, coalesce_sql::Record)]
    /// # #[record(table = "customers", key(id))]
    /// # struct Customer { id: i64, name: String }
    ///
    /// # fn f(db: coalesce_sql::Db<sqlx::Sqlite>) -> Result<(), coalesce::ConfigError> {
    /// let settings = BatchSettings { window: BatchWindow::Time(Duration::from_millis(2)), ..BatchSettings::default() };
    /// let customers = db.rows_with::<Customer>(RowsOptions { settings, ..RowsOptions::default() })?;
    /// # Ok(()) }
    /// ```
    pub fn rows_with<R: TableRow>(&self, options: RowsOptions) -> Result<Rows<R>, ConfigError> {
        DB::rows::<R, _>(OnDb { db: self, options })
    }

    /// A handle of `R`'s table that does not coalesce: each call sends its
    /// own statement, as a plain repository does. The baseline to compare
    /// a [`rows`](Self::rows) handle with, or a switch to turn coalescing
    /// off without touching call sites. Its writes are seen by the
    /// coalesced handles' reads as any write is.
    ///
    /// ```no_run
    /// # #[derive(Clone, sqlx::FromRow, coalesce_sql::Record)]
    /// # #[record(table = "customers", key(id))]
    /// # struct Customer { id: i64, name: String }
    /// # async fn f(db: coalesce_sql::Db<sqlx::Sqlite>) -> Result<(), coalesce_sql::RowsError> {
    /// let plain = db.rows_per_item::<Customer>();
    /// let (a, b) = tokio::join!(plain.get(1), plain.get(2)); // two statements
    /// # Ok(()) }
    /// ```
    pub fn rows_per_item<R: TableRow>(&self) -> Rows<R> {
        crate::RowsSource::rows_per_item(self)
    }

    /// Which handles read which table, for read-your-writes.
    pub(crate) fn readers(&self) -> &Readers {
        &self.readers
    }

    /// Make a loader of your own a reader of `table` for read-your-writes,
    /// as every [`Rows`] is: each write of `table` through this `Db` or a
    /// clone (and each [`wrote`](Self::wrote)) detaches the loader's reads
    /// already sent, so a load that starts after the write returned never
    /// gets a value read before it. Kept while the loader lives.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// use coalesce::{Loader, from_fn};
    /// use std::{collections::HashMap, convert::Infallible};
    ///
    /// # async fn f(db: coalesce_sql::Db<sqlx::Sqlite>) {
    /// let names = Loader::new(from_fn(|ids: Vec<i64>| async move {
    ///     Ok::<_, Infallible>(HashMap::<i64, String>::new())
    /// }));
    /// db.detach_on_write(&coalesce_sql::Table::new("users"), &names);
    /// # }
    /// # }
    /// ```
    pub fn detach_on_write<S: coalesce::BatchSource>(
        &self,
        table: &Table,
        loader: &coalesce::Loader<S>,
    ) {
        self.readers.register(table, loader, None);
    }

    /// Tell this `Db`'s readers of `table` (its [`Rows`] and the loaders
    /// given to [`detach_on_write`](Self::detach_on_write)) that SQL of
    /// your own wrote it: call it after such a write committed. The
    /// toolkit's own writes do this themselves.
    ///
    /// ```no_run
    /// # async fn f(db: coalesce_sql::Db<sqlx::Postgres>) -> Result<(), sqlx::Error> {
    /// sqlx::query("UPDATE users SET name = 'Ada' WHERE id = 1").execute(db.pool()).await?;
    /// db.wrote(&coalesce_sql::Table::new("users"));
    /// # Ok(()) }
    /// ```
    pub fn wrote(&self, table: &Table) {
        self.readers.written(table);
    }

    /// The rows of `table` whose key is among `keys`, by requested key:
    /// one statement per chunk of distinct keys. Missing keys are absent;
    /// duplicates in `keys` are fine. The database matches rows to keys
    /// under its own rules, as `WHERE key = $1` would: under a
    /// case-insensitive collation `"abc"` finds the row `ABC`, and two
    /// requested keys that both match a row (`"abc"` and `"ABC"`) both get
    /// it. `R` is decoded from each row; the key is never read back.
    ///
    /// ```no_run
    /// # use coalesce_sql::{Db, Table};
    /// # async fn f(sql: Db<sqlx::Postgres>) -> Result<(), coalesce_sql::Error> {
    /// let lines = Table::new("order_lines").key(["order_id", "line_no"]).values(["sku"]);
    /// let found: std::collections::HashMap<(i64, i32), (i64, i32, String)> =
    ///     sql.fetch(&lines, &[(1, 1), (1, 2), (1, 1)]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn fetch<K, R>(&self, table: &Table, keys: &[K]) -> Result<HashMap<K, R>, Error>
    where
        K: Key<DB>,
        R: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
    {
        let keys = distinct(keys);
        let mut found = HashMap::with_capacity(keys.len());
        self.read(table, &keys, |index, row| {
            found.insert(keys[index].key.clone(), row);
        })
        .await?;
        Ok(found)
    }

    /// Like [`fetch`](Self::fetch) for key columns that are not unique:
    /// every matching row, grouped by requested key (in no particular
    /// order within a key). Keys without rows are absent.
    ///
    /// ```no_run
    /// # use coalesce_sql::{Db, Table};
    /// # async fn f(sql: Db<sqlx::Sqlite>) -> Result<(), coalesce_sql::Error> {
    /// let lines_by_order = Table::new("order_lines").key(["order_id"]).values(["line_no", "sku"]);
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
        let keys = distinct(keys);
        let mut found: HashMap<K, Vec<R>> = HashMap::with_capacity(keys.len());
        self.read(table, &keys, |index, row| {
            found.entry(keys[index].key.clone()).or_default().push(row);
        })
        .await?;
        Ok(found)
    }

    /// Like [`fetch`](Self::fetch), with a result per key: one bad key
    /// fails alone. A key that cannot be sent at all (larger than a
    /// statement may be, [`Error::TooLarge`]; a NUL byte in PostgreSQL
    /// text, [`Error::Refused`]) gets its error without being sent; when a
    /// statement fails because of the keys it carries (SQLSTATE class 22
    /// or 23, SQLite's constraint and type errors; say a NUL byte in a
    /// PostgreSQL text key), its keys are read again in halves until the
    /// keys at fault are alone, so every other key gets exactly the answer
    /// of `fetch`. Keys found are `Ok`, keys failed `Err`, missing keys
    /// absent. A connection or server error still fails the whole call.
    /// A failing statement of `n` keys costs about `2 * log2(n)` extra
    /// statements per key at fault.
    ///
    /// ```no_run
    /// # use coalesce_sql::{Db, Table};
    /// # async fn f(sql: Db<sqlx::Postgres>) -> Result<(), coalesce_sql::Error> {
    /// let users = Table::new("users").key(["name"]).values(["email"]);
    /// let names = ["ada".to_owned(), "bad\0name".to_owned()];
    /// let found: std::collections::HashMap<String, Result<(String, String), coalesce_sql::Error>> =
    ///     sql.fetch_each(&users, &names).await?;
    /// assert!(found.get("bad\0name").is_some_and(Result::is_err));
    /// # Ok(()) }
    /// ```
    pub async fn fetch_each<K, R>(
        &self,
        table: &Table,
        keys: &[K],
    ) -> Result<HashMap<K, Result<R, Error>>, Error>
    where
        K: Key<DB>,
        R: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
    {
        let keys = distinct(keys);
        let answers = self.fetch_items(table, &keys).await?;
        Ok(keys
            .iter()
            .zip(answers)
            .filter_map(|(item, answer)| Some((item.key.clone(), answer?)))
            .collect())
    }

    /// Like [`fetch_each`](Self::fetch_each), with one answer per key in
    /// the order of `keys` (`None`: no row): what a loader's
    /// [`BatchSource::load_in_order`](coalesce::BatchSource::load_in_order)
    /// returns, with no map built or searched. Keys are sent as given: a
    /// key repeated in `keys` is read once per place it holds.
    ///
    /// ```no_run
    /// # use coalesce_sql::{Db, Table};
    /// # async fn f(sql: Db<sqlx::Postgres>) -> Result<(), coalesce_sql::Error> {
    /// let users = Table::new("users").key(["name"]).values(["email"]);
    /// let names = ["ada".to_owned(), "nobody".to_owned()];
    /// let found: Vec<Option<Result<(String, String), coalesce_sql::Error>>> =
    ///     sql.fetch_each_in_order(&users, &names).await?;
    /// assert!(found[1].is_none());
    /// # Ok(()) }
    /// ```
    pub async fn fetch_each_in_order<K, R>(
        &self,
        table: &Table,
        keys: &[K],
    ) -> Result<Vec<Option<Result<R, Error>>>, Error>
    where
        K: Key<DB>,
        R: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
    {
        let items: Vec<Item<'_, K, ()>> = keys.iter().map(|key| Item { key, values: () }).collect();
        self.fetch_items(table, &items).await
    }

    /// [`fetch_each_in_order`](Self::fetch_each_in_order) of items.
    async fn fetch_items<K, R>(
        &self,
        table: &Table,
        keys: &[Item<'_, K, ()>],
    ) -> Result<Vec<Option<Result<R, Error>>>, Error>
    where
        K: Key<DB>,
        R: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
    {
        table.validate(K::LEN)?;
        let operation = Operation::Fetch;
        let mut answers: Vec<Option<Result<R, Error>>> = keys.iter().map(|_| None).collect();
        if keys.is_empty() {
            return Ok(answers);
        }
        let server = self.server(operation, table).await?;
        let (sendable, refused) = sendable(keys, server.max_bytes, table);
        for (index, error) in refused {
            answers[index] = Some(Err(error));
        }
        if sendable.indices.is_empty() {
            return Ok(answers);
        }
        // `sendable.indices` says where each sendable key's answer goes.
        let items = sendable.take(keys.iter().copied());
        let chunks = self
            .plan_sizes::<K, ()>(operation, table, &sendable.sizes)
            .await?;
        let sendable = sendable.indices;
        let mut session = self.open(operation, table, 1).await?;
        for (i, chunk) in chunks.iter().enumerate() {
            let step = Step::Chunk {
                index: i + 1,
                of: chunks.len(),
            };
            let mut pending = vec![(chunk.items.clone(), chunk.padding())];
            while let Some((range, padding)) = pending.pop() {
                let read = self
                    .read_range::<K, R>(&mut session, table, &items, range.clone(), padding)
                    .await;
                match read {
                    Ok(rows) => {
                        for (index, row) in rows {
                            answers[sendable[index]] = Some(Ok(row));
                        }
                    }
                    Err(error) if DB::is_data_error(&error) => {
                        // A failed statement aborts the read's transaction
                        // (through a transaction pooler): the statements
                        // after it need a new one (it had nothing to commit).
                        if session.in_transaction() {
                            // Rolled back as it goes back to the pool,
                            // before the next is taken (a pool of one).
                            drop(session);
                            session = self.open(operation, table, 1).await?;
                        }
                        if range.len() == 1 {
                            let error = failed(operation, table, step, error);
                            answers[sendable[range.start]] = Some(Err(error));
                        } else {
                            pending.extend(halves(range).map(|half| (half, 0)));
                        }
                    }
                    Err(error) => return Err(failed(operation, table, step, error)),
                }
            }
        }
        session.end_read(&self.pool, operation, table).await?;
        Ok(answers)
    }

    /// Read the rows of `table` matching `keys`, handing each with the
    /// index in `keys` of the key that found it to `found`.
    async fn read<K, R>(
        &self,
        table: &Table,
        keys: &[Item<'_, K, ()>],
        mut found: impl FnMut(usize, R) + Send,
    ) -> Result<(), Error>
    where
        K: Key<DB>,
        R: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
    {
        table.validate(K::LEN)?;
        if keys.is_empty() {
            return Ok(());
        }
        let operation = Operation::Fetch;
        let chunks = self.plan(operation, table, keys).await?;
        let mut session = self.open(operation, table, 1).await?;
        for (i, chunk) in chunks.iter().enumerate() {
            let step = Step::Chunk {
                index: i + 1,
                of: chunks.len(),
            };
            let rows = self
                .read_range(
                    &mut session,
                    table,
                    keys,
                    chunk.items.clone(),
                    chunk.padding(),
                )
                .await
                .map_err(|e| failed(operation, table, step, e))?;
            for (index, row) in rows {
                found(index, row);
            }
        }
        session.end_read(&self.pool, operation, table).await
    }

    /// One read statement: the rows matching `keys[range]` (padded with
    /// `padding` keys of `NULL`s), each with the index in `keys` of the key
    /// that found it.
    async fn read_range<K, R>(
        &self,
        connection: &mut DB::Connection,
        table: &Table,
        keys: &[Item<'_, K, ()>],
        range: Range<usize>,
        padding: usize,
    ) -> Result<Vec<(usize, R)>, sqlx::Error>
    where
        K: Key<DB>,
        R: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
    {
        let items = &keys[range.clone()];
        let padding = padding_for::<DB>(items.len(), padding);
        let len = items.len() + padding;
        let texts = table.texts();
        let sql = texts.read::<DB, K>(len, false, || {
            typed::<DB, K>(sql::select(&DB::SYNTAX, table, len))
        });
        let arguments = key_arguments(items, padding)?;
        self.count_statement();
        let rows = match DB::fetch_rows(connection, sql, arguments, self.named()).await {
            Err(error) if DB::is_collation_mix(&error) && len > 1 => {
                let sql =
                    texts.read::<DB, K>(len, true, || sql::select(&branches::<DB>(), table, len));
                let arguments = key_arguments(items, padding)?;
                self.count_statement();
                DB::fetch_rows(connection, sql, arguments, self.named()).await?
            }
            rows => rows?,
        };
        let mut found = Vec::with_capacity(rows.len());
        for row in rows {
            // One key is plain equality, without a position column.
            let position = if len == 1 { 1 } else { DB::position(&row)? };
            // Padding matches nothing; a position outside the keys would
            // be a bug, never a row to hand out.
            if let Some(index) = position.checked_sub(1).filter(|&i| i < items.len()) {
                found.push((range.start + index, R::from_row(&row)?));
            }
        }
        Ok(found)
    }

    /// Insert `rows` into `table`, updating the value columns of rows whose
    /// key exists, with the result of upserting them one by one in order:
    /// the last row of a key wins, also where the database's equality is
    /// looser than Rust's (`a` and `A` under a case-insensitive collation or
    /// `citext`, `'x'` and `'x  '` where trailing spaces are ignored): the
    /// key keeps the spelling of its first row, an `on_update` expression
    /// (`n = n + 1`) runs once per row, and a key with a `NULL` part is a
    /// row of its own (`NULL`s are distinct in a unique index). Rows are
    /// never merged in Rust: merging byte-equal keys moved a key's write
    /// past its case variants (`A, a, A` kept `a`'s spelling). More rows
    /// than fit one statement are written in chunks inside one
    /// transaction: all or nothing. Retried on deadlock (see
    /// [`with_write_attempts`](Self::with_write_attempts)).
    ///
    /// MySQL/MariaDB and SQLite apply a statement's rows in order, so a
    /// key repeated in one call costs nothing. On PostgreSQL two rows of
    /// one key in one statement (repeated, or merged by the column's
    /// equality) make it fail (SQLSTATE 21000, a row affected twice); the
    /// write is then run again in one transaction, each failing statement
    /// rolled back to a savepoint and split in halves, in order, until no
    /// statement holds two such rows (a `SAVEPOINT` and a statement per
    /// half, a `ROLLBACK TO SAVEPOINT` per failing one: about `5 * log2(n)`
    /// extra statements per colliding pair).
    ///
    /// ```no_run
    /// # use coalesce_sql::{Db, Dialect, KeyPart, Record, Table, Value};
    /// # struct Order { id: i64, total_cents: i64 }
    /// # impl<DB: Dialect> Record<DB> for Order where i64: KeyPart<DB> {
    /// #     type Key = i64; type Values<'a> = (&'a i64,);
    /// #     fn key(&self) -> i64 { self.id } fn values(&self) -> (&i64,) { (&self.total_cents,) }
    /// # }
    /// # async fn f(sql: Db<sqlx::Sqlite>) -> Result<(), coalesce_sql::Error> {
    /// let orders = Table::new("orders").key(["id"]).values(["total_cents"]);
    /// sql.upsert(&orders, &[Order { id: 1, total_cents: 500 }]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn upsert<R: Record<DB>>(&self, table: &Table, rows: &[R]) -> Result<(), Error> {
        validate_record::<DB, R>(table)?;
        let keys: Vec<R::Key> = rows.iter().map(Record::key).collect();
        let rows = record_items(&keys, rows);
        let failures = self.write(table, &rows, &sizes(&rows), false).await?;
        debug_assert!(failures.is_empty(), "only an isolating write fails items");
        Ok(())
    }

    /// Like [`upsert`](Self::upsert), with a result per row, in the order
    /// of `rows`: one bad row fails alone, and the others end exactly as
    /// upserting each row alone, in order, would leave them. A row that
    /// cannot be sent at all (larger than a statement may be, a NUL byte in
    /// PostgreSQL text) gets its error without being sent. When a statement fails because of its
    /// data (SQLSTATE class 22 or 23: a constraint, a NUL byte, a value
    /// out of range; SQLite's constraint and type errors), the write runs
    /// again in one transaction, each failing statement rolled back to a
    /// savepoint and split in halves until the rows at fault are alone:
    /// they fail, nothing of theirs is written, every other row is
    /// written. Rows are not merged by key here (each runs, in order, with
    /// its `on_update`), so on PostgreSQL a key repeated in one call is
    /// split like a collision. A connection or server error fails the
    /// whole call, with nothing written. Costs, only on failure: the
    /// failed statement, then per halving a `SAVEPOINT` and a statement
    /// per half and a `ROLLBACK TO SAVEPOINT` per failing half, about
    /// `5 * log2(n)` statements per row at fault (31 for one bad row among
    /// 100).
    ///
    /// ```no_run
    /// # use coalesce_sql::{Db, Dialect, KeyPart, Record, Table, Value};
    /// # struct Order { id: i64, total_cents: i64 }
    /// # impl<DB: Dialect> Record<DB> for Order where i64: KeyPart<DB> {
    /// #     type Key = i64; type Values<'a> = (&'a i64,);
    /// #     fn key(&self) -> i64 { self.id } fn values(&self) -> (&i64,) { (&self.total_cents,) }
    /// # }
    /// # async fn f(sql: Db<sqlx::Postgres>) -> Result<(), coalesce_sql::Error> {
    /// // total_cents has CHECK (total_cents >= 0)
    /// let orders = Table::new("orders").key(["id"]).values(["total_cents"]);
    /// let rows = [Order { id: 1, total_cents: 500 }, Order { id: 2, total_cents: -1 }];
    /// let results = sql.upsert_each(&orders, &rows).await?;
    /// assert!(results[0].is_ok() && results[1].is_err());
    /// # Ok(()) }
    /// ```
    pub async fn upsert_each<R: Record<DB>>(
        &self,
        table: &Table,
        rows: &[R],
    ) -> Result<Vec<Result<(), Error>>, Error> {
        validate_record::<DB, R>(table)?;
        let operation = Operation::Upsert;
        let keys: Vec<R::Key> = rows.iter().map(Record::key).collect();
        let items = record_items(&keys, rows);
        let server = self.server(operation, table).await?;
        let (sendable, refused) = sendable(&items, server.max_bytes, table);
        let mut results: Vec<Result<(), Error>> = (0..rows.len()).map(|_| Ok(())).collect();
        for (index, error) in refused {
            results[index] = Err(error);
        }
        let sent = sendable.take(items);
        let written = self.write(table, &sent, &sendable.sizes, true).await?;
        for (index, error) in written {
            results[sendable.indices[index]] = Err(error);
        }
        Ok(results)
    }

    /// Upsert `rows`, of encoded sizes `sizes`; with `isolate`, rows
    /// failing on their data fail alone (their index in `rows` and error
    /// returned), otherwise any failure fails the call.
    async fn write<K: Key<DB>, V: Columns<DB>>(
        &self,
        table: &Table,
        rows: &[Item<'_, K, V>],
        sizes: &[usize],
        isolate: bool,
    ) -> Result<Vec<(usize, Error)>, Error> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let operation = Operation::Upsert;
        let chunks = self.plan_sizes::<K, V>(operation, table, sizes).await?;
        let written = retry::on_conflict(self.write_attempts, || async {
            let whole = self.write_chunks(table, rows, &chunks).await;
            match whole {
                Ok(()) => Ok(Vec::new()),
                Err(Error::Database { source, .. })
                    if splits(&source, isolate, DB::is_data_error) =>
                {
                    self.write_split(table, rows, &chunks, isolate).await
                }
                Err(error) => Err(error),
            }
        })
        .await;
        // Even a failed write may have committed (its outcome unknown).
        self.readers
            .written_keys(table, rows.iter().map(|row| row.key));
        written
    }

    /// Upsert `rows` by `chunks`: all or nothing.
    async fn write_chunks<K: Key<DB>, V: Columns<DB>>(
        &self,
        table: &Table,
        rows: &[Item<'_, K, V>],
        chunks: &[Chunk],
    ) -> Result<(), Error> {
        let operation = Operation::Upsert;
        let mut scope = self.open(operation, table, chunks.len()).await?;
        for (i, chunk) in chunks.iter().enumerate() {
            let step = Step::Chunk {
                index: i + 1,
                of: chunks.len(),
            };
            let done = self
                .upsert_range(&mut *scope, table, rows, chunk.items.clone())
                .await;
            done.map_err(|e| scope.failed(operation, table, step, e))?;
        }
        scope.commit(&self.pool, operation, table).await
    }

    /// Upsert `rows` by `chunks`, bisecting failed statements
    /// ([`split_run`](Self::split_run)). A single row failing on its data
    /// fails alone with `isolate`, the whole write without.
    async fn write_split<K: Key<DB>, V: Columns<DB>>(
        &self,
        table: &Table,
        rows: &[Item<'_, K, V>],
        chunks: &[Chunk],
        isolate: bool,
    ) -> Result<Vec<(usize, Error)>, Error> {
        self.split_run(table, chunks, isolate, Statements::Upsert(rows), |_| {})
            .await
    }

    /// Run `chunks` of `statements` in one transaction, each statement
    /// after a savepoint; a failed statement is rolled back to it and
    /// split in halves, run in order, when its error is of its items'
    /// data (for upserts, only with `isolate`) or, for upserts, of two
    /// rows the key's equality merges (PostgreSQL). A single item failing
    /// so fails alone with `isolate` (its index and error returned), the
    /// whole call without. `credit` gets the indices each delete credited
    /// with a row.
    async fn split_run<K: Key<DB>, V: Columns<DB>>(
        &self,
        table: &Table,
        chunks: &[Chunk],
        isolate: bool,
        statements: Statements<'_, '_, K, V>,
        mut credit: impl FnMut(Vec<usize>),
    ) -> Result<Vec<(usize, Error)>, Error> {
        let operation = match statements {
            Statements::Upsert(_) => Operation::Upsert,
            Statements::Delete(_) => Operation::Delete,
        };
        let split = |error: &sqlx::Error| match statements {
            Statements::Upsert(_) => splits(error, isolate, DB::is_data_error),
            Statements::Delete(_) => DB::is_data_error(error),
        };
        let mut scope = self.open(operation, table, usize::MAX).await?;
        let mut failures = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let step = Step::Chunk {
                index: i + 1,
                of: chunks.len(),
            };
            // A lone chunk is the statement that failed: start with its halves.
            let mut pending = match chunks {
                [only] if only.items.len() > 1 => halves(only.items.clone()).to_vec(),
                _ => vec![chunk.items.clone()],
            };
            while let Some(range) = pending.pop() {
                let fail = |scope: &Session<DB>, e| scope.failed(operation, table, step, e);
                self.count_statement();
                let saved = DB::execute_unprepared(&mut *scope, "SAVEPOINT coalesce_rows").await;
                saved.map_err(|e| fail(&scope, e))?;
                let ran = match statements {
                    Statements::Upsert(rows) => self
                        .upsert_range(&mut *scope, table, rows, range.clone())
                        .await
                        .map(|()| Vec::new()),
                    Statements::Delete(keys) => self
                        .delete_range(&mut *scope, table, keys, range.clone(), 0)
                        .await
                        .map_err(|(Ran::Before(error) | Ran::After(error))| error),
                };
                let error = match ran {
                    Ok(credited) => {
                        credit(credited);
                        continue;
                    }
                    Err(error) => error,
                };
                if !split(&error) {
                    return Err(fail(&scope, error));
                }
                self.count_statement();
                let undone =
                    DB::execute_unprepared(&mut *scope, "ROLLBACK TO SAVEPOINT coalesce_rows")
                        .await;
                undone.map_err(|e| fail(&scope, e))?;
                match range.len() {
                    1 if isolate => failures.push((range.start, fail(&scope, error))),
                    1 => return Err(fail(&scope, error)),
                    _ => pending.extend(halves(range)),
                }
            }
        }
        scope.commit(&self.pool, operation, table).await?;
        Ok(failures)
    }

    /// One upsert statement of `rows[range]`.
    async fn upsert_range<K: Key<DB>, V: Columns<DB>>(
        &self,
        connection: &mut DB::Connection,
        table: &Table,
        rows: &[Item<'_, K, V>],
        range: Range<usize>,
    ) -> Result<(), sqlx::Error> {
        let items = &rows[range];
        let sql = table
            .texts()
            .upsert::<DB, K>(items.len(), || sql::upsert(&DB::SYNTAX, table, items.len()));
        let arguments = arguments(items)?;
        self.count_statement();
        DB::execute(connection, sql, arguments, self.named())
            .await
            .map(drop)
    }

    /// Delete the rows of `table` matching `keys`, with the result of
    /// deleting key by key in order; returns the requested keys that
    /// deleted a row, in request order, each once. As one by one, a row
    /// matched by several requested keys (`"abc"` and `"ABC"` under a
    /// case-insensitive collation) counts for the first of them only; a
    /// key matching several rows (a prefix of the primary key) is returned
    /// once. Chunks run inside one transaction: all or nothing. Retried on
    /// deadlock.
    ///
    /// Forms: one key is `DELETE ... WHERE key = ?` (a row affected or
    /// not); on PostgreSQL several are one statement (`WITH ... DELETE ...
    /// USING UNNEST(...) RETURNING`, rows joined back to the keys); on
    /// MySQL/MariaDB and SQLite, per chunk, a `SELECT` of the first
    /// matching key per row (`FOR UPDATE` on MySQL) and the `DELETE`, in
    /// one transaction.
    ///
    /// ```no_run
    /// # use coalesce_sql::{Db, Table};
    /// # async fn f(sql: Db<sqlx::MySql>) -> Result<(), coalesce_sql::Error> {
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
        let chunks = self.plan(Operation::Delete, table, &keys).await?;
        let deleted = retry::on_conflict(self.write_attempts, || {
            self.delete_chunks(table, &keys, &chunks)
        })
        .await;
        self.readers
            .written_keys(table, keys.iter().map(|item| item.key));
        let deleted = deleted?;
        Ok(keys
            .iter()
            .zip(deleted)
            .filter(|&(_, deleted)| deleted)
            .map(|(item, _)| item.key.clone())
            .collect())
    }

    /// Like [`delete`](Self::delete), with a result per key: whether it
    /// deleted a row (as deleting key by key in order would say), or why
    /// it failed alone. A key that cannot be sent (too large, a NUL byte
    /// in PostgreSQL text) fails without being sent; when a statement
    /// fails because of its keys' rows (SQLSTATE class 23: a foreign key
    /// still referencing a row), the delete runs again in one
    /// transaction, each failing statement rolled back to a savepoint and
    /// split in halves until the keys at fault are alone: they fail and
    /// delete nothing, every other key's rows are deleted. A connection or
    /// server error fails the whole call. Costs only on failure, as
    /// [`upsert_each`](Self::upsert_each).
    ///
    /// ```no_run
    /// # use coalesce_sql::{Db, Table};
    /// # async fn f(sql: Db<sqlx::Postgres>) -> Result<(), coalesce_sql::Error> {
    /// // order 2 still has lines referencing it
    /// let orders = Table::new("orders").key(["id"]);
    /// let results = sql.delete_each(&orders, &[1_i64, 2, 3]).await?;
    /// assert!(matches!(results[&1], Ok(true)) && results[&2].is_err());
    /// # Ok(()) }
    /// ```
    pub async fn delete_each<K: Key<DB>>(
        &self,
        table: &Table,
        keys: &[K],
    ) -> Result<HashMap<K, Result<bool, Error>>, Error> {
        table.validate(K::LEN)?;
        let operation = Operation::Delete;
        let (items, sizes, refused) = self.sendable_keys(operation, table, keys).await?;
        let mut results: HashMap<K, Result<bool, Error>> = refused.into_iter().collect();
        if items.is_empty() {
            return Ok(results);
        }
        let chunks = self.plan_sizes::<K, ()>(operation, table, &sizes).await?;
        let deleted = retry::on_conflict(self.write_attempts, || async {
            match self.delete_chunks(table, &items, &chunks).await {
                Ok(deleted) => Ok((deleted, Vec::new())),
                Err(Error::Database { source, .. }) if DB::is_data_error(&source) => {
                    self.delete_split(table, &items, &chunks).await
                }
                Err(error) => Err(error),
            }
        })
        .await;
        self.readers
            .written_keys(table, items.iter().map(|item| item.key));
        let (deleted, failures) = deleted?;
        for (item, deleted) in items.iter().zip(deleted) {
            results.insert(item.key.clone(), Ok(deleted));
        }
        for (index, error) in failures {
            results.insert(items[index].key.clone(), Err(error));
        }
        Ok(results)
    }

    /// The distinct `keys` that can be sent, as items, with their encoded
    /// sizes, and for each key that cannot (see [`sendable`]) its error,
    /// keyed for the caller.
    async fn sendable_keys<'k, K: Key<DB>, T>(
        &self,
        operation: Operation,
        table: &Table,
        keys: &'k [K],
    ) -> Result<SendableKeys<'k, K, T>, Error> {
        let keys = distinct(keys);
        let server = self.server(operation, table).await?;
        let (sendable, refused) = sendable(&keys, server.max_bytes, table);
        let refused = refused
            .into_iter()
            .map(|(index, error)| (keys[index].key.clone(), Err(error)))
            .collect();
        Ok((sendable.take(keys), sendable.sizes, refused))
    }

    /// Delete `keys` by `chunks`, all or nothing; whether each deleted a
    /// row.
    async fn delete_chunks<K: Key<DB>>(
        &self,
        table: &Table,
        keys: &[Item<'_, K, ()>],
        chunks: &[Chunk],
    ) -> Result<Vec<bool>, Error> {
        let operation = Operation::Delete;
        let statements: usize = chunks
            .iter()
            .map(|chunk| {
                let len = chunk.items.len() + padding_for::<DB>(chunk.items.len(), chunk.padding());
                delete_text::<DB, K>(table, len, false).statements()
            })
            .sum();
        let mut scope = self.open(operation, table, statements).await?;
        let mut deleted = vec![false; keys.len()];
        for (i, chunk) in chunks.iter().enumerate() {
            let step = Step::Chunk {
                index: i + 1,
                of: chunks.len(),
            };
            let credited = self
                .delete_range(
                    &mut *scope,
                    table,
                    keys,
                    chunk.items.clone(),
                    chunk.padding(),
                )
                .await;
            let credited = credited.map_err(|ran| match ran {
                Ran::Before(e) => scope.failed(operation, table, step, e),
                Ran::After(e) => scope.failed_after_execution(operation, table, step, e),
            })?;
            for index in credited {
                deleted[index] = true;
            }
        }
        scope.commit(&self.pool, operation, table).await?;
        Ok(deleted)
    }

    /// Delete `keys` by `chunks`, bisecting statements that fail on their
    /// data ([`split_run`](Self::split_run)) down to single keys, which
    /// fail alone (their index and error returned); which keys deleted a
    /// row.
    async fn delete_split<K: Key<DB>>(
        &self,
        table: &Table,
        keys: &[Item<'_, K, ()>],
        chunks: &[Chunk],
    ) -> Result<(Vec<bool>, Vec<(usize, Error)>), Error> {
        let mut deleted = vec![false; keys.len()];
        let credit = |credited: Vec<usize>| {
            for index in credited {
                deleted[index] = true;
            }
        };
        let statements = Statements::<K, ()>::Delete(keys);
        let failures = self
            .split_run(table, chunks, true, statements, credit)
            .await?;
        Ok((deleted, failures))
    }

    /// One chunk of a delete: the rows matching `keys[range]` (padded with
    /// `padding` keys of `NULL`s) deleted; the indices in `keys` of the
    /// keys credited with a row. An error once a delete has run is
    /// [`Ran::After`]: run alone, that statement committed.
    async fn delete_range<K: Key<DB>>(
        &self,
        connection: &mut DB::Connection,
        table: &Table,
        keys: &[Item<'_, K, ()>],
        range: Range<usize>,
        padding: usize,
    ) -> Result<Vec<usize>, Ran> {
        let items = &keys[range.clone()];
        let padding = padding_for::<DB>(items.len(), padding);
        let positions = |rows: Vec<DB::Row>| -> Result<Vec<usize>, sqlx::Error> {
            let mut credited = Vec::with_capacity(rows.len());
            for row in rows {
                let position = DB::position(&row)?;
                if let Some(index) = position.checked_sub(1).filter(|&i| i < items.len()) {
                    credited.push(range.start + index);
                }
            }
            Ok(credited)
        };
        match delete_text::<DB, K>(table, items.len() + padding, false) {
            sql::Delete::One(delete) => {
                let arguments = key_arguments(items, padding).map_err(Ran::Before)?;
                self.count_statement();
                let affected = DB::execute(connection, delete, arguments, self.named()).await;
                let affected = affected.map_err(Ran::Before)?;
                Ok(if affected > 0 {
                    vec![range.start]
                } else {
                    Vec::new()
                })
            }
            sql::Delete::Returning(delete) => {
                let arguments = key_arguments(items, padding).map_err(Ran::Before)?;
                self.count_statement();
                let rows = DB::fetch_rows(connection, delete, arguments, self.named()).await;
                positions(rows.map_err(Ran::Before)?).map_err(Ran::After)
            }
            sql::Delete::LockedFirst { lock, delete } => {
                let arguments = key_arguments(items, padding).map_err(Ran::Before)?;
                self.count_statement();
                let rows = match DB::fetch_rows(connection, lock, arguments, self.named()).await {
                    Err(error) if DB::is_collation_mix(&error) => {
                        let len = items.len() + padding;
                        let sql::Delete::LockedFirst { lock, .. } =
                            delete_text::<DB, K>(table, len, true)
                        else {
                            return Err(Ran::Before(error));
                        };
                        let arguments = key_arguments(items, padding).map_err(Ran::Before)?;
                        self.count_statement();
                        DB::fetch_rows(connection, lock, arguments, self.named()).await
                    }
                    rows => rows,
                };
                let credited = positions(rows.map_err(Ran::Before)?).map_err(Ran::Before)?;
                let arguments = key_arguments(items, padding).map_err(Ran::Before)?;
                self.count_statement();
                let done = DB::execute(connection, delete, arguments, self.named()).await;
                done.map_err(Ran::Before)?;
                Ok(credited)
            }
        }
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
    /// key lists are spelled out.
    async fn plan<K: Key<DB>, V: Columns<DB>>(
        &self,
        operation: Operation,
        table: &Table,
        items: &[Item<'_, K, V>],
    ) -> Result<Vec<Chunk>, Error> {
        self.plan_sizes::<K, V>(operation, table, &sizes(items))
            .await
    }

    /// [`plan`](Self::plan) of items of encoded sizes `sizes`.
    async fn plan_sizes<K: Key<DB>, V: Columns<DB>>(
        &self,
        operation: Operation,
        table: &Table,
        sizes: &[usize],
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
        let binds_per_item = if arrays { 0 } else { K::LEN + V::LEN };
        // Keyed lists spelled out are padded with keys of `NULL`s (a MySQL
        // `NULL` parameter is its 2-byte type); writes never are.
        let pad = (!arrays && operation != Operation::Upsert).then_some(2 * K::LEN);
        chunk::plan(sizes, binds_per_item, limits, pad).map_err(|too_large| Error::TooLarge {
            table: table.name().to_owned(),
            size: too_large.size,
            limit: too_large.limit,
        })
    }

    /// Whether statements may be named prepared statements.
    fn named(&self) -> bool {
        self.session.pooler.named_statements()
    }

    /// Where `statements` statements run: on a connection of their own if
    /// there is one and the pooler allows it, else in a transaction.
    async fn open(
        &self,
        operation: Operation,
        table: &Table,
        statements: usize,
    ) -> Result<Session<DB>, Error> {
        if statements == 1 && self.named() {
            let session = Session::begin(&self.pool, &self.session).await;
            return session.map_err(|e| failed(operation, table, Step::Connect, e));
        }
        if statements > 1 {
            self.counters.transactions.fetch_add(1, Relaxed);
        }
        let session = Session::transaction(&self.pool, &self.session).await;
        session.map_err(|e| failed(operation, table, Step::Begin, e))
    }
}

/// What a failure means for a write's [`Session`].
impl<DB: Dialect> Session<DB> {
    /// The error for a statement of this write failing at `step`: an
    /// auto-committed statement whose connection failed may have run.
    fn failed(
        &self,
        operation: Operation,
        table: &Table,
        step: Step,
        source: sqlx::Error,
    ) -> Error {
        if !self.in_transaction() && is_connection_lost(&source) {
            return Error::CommitOutcomeUnknown {
                operation,
                table: table.name().to_owned(),
                step,
                source,
            };
        }
        failed(operation, table, step, source)
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
        if self.in_transaction() {
            return failed(operation, table, step, source);
        }
        Error::CommitOutcomeUnknown {
            operation,
            table: table.name().to_owned(),
            step,
            source,
        }
    }

    /// Commit the write's transaction, if any. A connection that fails
    /// once `COMMIT` is sent leaves the outcome unknown.
    async fn commit(
        self,
        pool: &Pool<DB>,
        operation: Operation,
        table: &Table,
    ) -> Result<(), Error> {
        self.finish_batch(pool).await.map_err(|source| {
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

    /// End a read's transaction, if any: nothing to commit, so a failure
    /// is the read's.
    async fn end_read(
        self,
        pool: &Pool<DB>,
        operation: Operation,
        table: &Table,
    ) -> Result<(), Error> {
        self.finish_batch(pool)
            .await
            .map_err(|e| failed(operation, table, Step::Commit, e))
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

/// The delete of `len` keys of type `K` from `table`, in the form for a
/// statement whose table of keys the server refused to compare if
/// `fallback`.
fn delete_text<DB: Dialect, K: Key<DB>>(table: &Table, len: usize, fallback: bool) -> sql::Delete {
    table.texts().delete::<DB, K>(len, fallback, || {
        if fallback {
            return sql::delete(&branches::<DB>(), table, len);
        }
        match sql::delete(&DB::SYNTAX, table, len) {
            sql::Delete::One(delete) => sql::Delete::One(typed::<DB, K>(delete.to_string()).into()),
            sql::Delete::Returning(delete) => {
                sql::Delete::Returning(typed::<DB, K>(delete.to_string()).into())
            }
            locked => locked,
        }
    })
}

/// `sql` for keys of type `K`: on PostgreSQL followed by a comment naming
/// the key's types, so keys of another Rust type (`i16` where `i64` came
/// before) get a statement of their own: a prepared statement keeps the
/// parameter types of its first use, and an `INT2[]` bound where it
/// expects `INT8[]` is refused.
fn typed<DB: Dialect, K: Key<DB>>(mut sql: String) -> String {
    if DB::SYNTAX.lists == Lists::Arrays {
        let names = K::type_names().join(", ");
        let names: String = names
            .chars()
            .filter(|c| c.is_alphanumeric() || " ,_[]".contains(*c))
            .collect();
        sql.push_str(&format!(" /* keys: {names} */"));
    }
    sql
}

/// `DB`'s syntax with key lists spelled as [`KeyRows::Branches`], for a
/// statement whose table of keys the server refused to compare.
fn branches<DB: Dialect>() -> Syntax {
    let lists = match DB::SYNTAX.lists {
        Lists::Rows { max_row_values, .. } => Lists::Rows {
            keys: KeyRows::Branches,
            max_row_values,
        },
        arrays => arrays,
    };
    Syntax {
        lists,
        ..DB::SYNTAX
    }
}

/// The arguments for one upsert's rows, in the dialect's form.
fn arguments<DB: Dialect, K: Key<DB>, V: Columns<DB>>(
    items: &[Item<'_, K, V>],
) -> Result<Arguments<DB>, sqlx::Error> {
    let mut arguments = Arguments::<DB>::default();
    let bound = if DB::SYNTAX.lists == Lists::Arrays {
        let keys: Vec<&K> = items.iter().map(|item| item.key).collect();
        let values: Vec<&V> = items.iter().map(|item| &item.values).collect();
        K::bind_columns(&keys, 0, &mut arguments)
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

/// Keys a PostgreSQL array of several keys is padded to, with `NULL`s.
/// PostgreSQL plans a prepared statement anew on every call while its
/// custom plan looks cheaper than the generic one, which assumes ten
/// elements per array: a read of two to nine keys paid a plan per call
/// (0.1–0.5 ms for a composite key). From ten on it keeps the generic
/// plan; a `NULL` key matches no row and costs nothing.
const MIN_KEY_ARRAY: usize = 16;

/// The padding of a keyed statement of `items` keys: the chunk's
/// (`planned`) where lists are spelled out, up to [`MIN_KEY_ARRAY`] for a
/// PostgreSQL array of several keys.
fn padding_for<DB: Dialect>(items: usize, planned: usize) -> usize {
    if DB::SYNTAX.lists == Lists::Arrays && (2..MIN_KEY_ARRAY).contains(&items) {
        MIN_KEY_ARRAY - items
    } else {
        planned
    }
}

/// The arguments of a keyed statement (read, delete) over `items` keys
/// and `padding` keys of `NULL`s: one key as single values, for the
/// equality `sql` writes for it.
fn key_arguments<DB: Dialect, K: Key<DB>>(
    items: &[Item<'_, K, ()>],
    padding: usize,
) -> Result<Arguments<DB>, sqlx::Error> {
    let mut arguments = Arguments::<DB>::default();
    let bound = match items {
        [only] if padding == 0 => only.key.bind_row(&mut arguments),
        _ if DB::SYNTAX.lists == Lists::Arrays => {
            let keys: Vec<&K> = items.iter().map(|item| item.key).collect();
            K::bind_columns(&keys, padding, &mut arguments)
        }
        _ => items
            .iter()
            .try_for_each(|item| item.key.bind_row(&mut arguments))
            .and_then(|()| (0..padding).try_for_each(|_| K::bind_null_row(&mut arguments))),
    };
    bound.map_err(sqlx::Error::Encode)?;
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

/// Each of `rows` as an item: its key, from `keys` (the rows' keys, which
/// the items borrow), and its values.
fn record_items<'a, DB: Dialect, R: Record<DB>>(
    keys: &'a [R::Key],
    rows: &'a [R],
) -> Vec<Item<'a, R::Key, R::Values<'a>>> {
    keys.iter()
        .zip(rows)
        .map(|(key, row)| Item {
            key,
            values: row.values(),
        })
        .collect()
}

/// The encoded size of each of `items`.
fn sizes<DB: Dialect, K: Key<DB>, V: Columns<DB>>(items: &[Item<'_, K, V>]) -> Vec<usize> {
    items.iter().map(|item| item.encoding().size).collect()
}

/// Check that `R`'s key and values fit `table`'s description.
fn validate_record<DB: Dialect, R: Record<DB>>(table: &Table) -> Result<(), Error> {
    table.validate(<R::Key as Key<DB>>::LEN)?;
    let values = <R::Values<'_> as Columns<DB>>::LEN;
    if table.value_columns().len() != values {
        return Err(Error::BadTable {
            table: table.name().to_owned(),
            reason: format!(
                "{} value column(s) but the record binds {values}",
                table.value_columns().len(),
            ),
        });
    }
    Ok(())
}

/// The items that can be sent: known to be acceptable to the database and
/// fitting a statement of `max_bytes` alone; and an error for each of the
/// others (by index).
fn sendable<DB: Dialect, K: Key<DB>, V: Columns<DB>>(
    items: &[Item<'_, K, V>],
    max_bytes: usize,
    table: &Table,
) -> (Sendable, Vec<(usize, Error)>) {
    let mut sendable = Sendable {
        indices: Vec::with_capacity(items.len()),
        sizes: Vec::with_capacity(items.len()),
    };
    let mut refused = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Encoding { size, refusal } = item.encoding();
        if let Some(reason) = refusal {
            let table = table.name().to_owned();
            refused.push((index, Error::Refused { table, reason }));
        } else if size > max_bytes {
            refused.push((
                index,
                Error::TooLarge {
                    table: table.name().to_owned(),
                    size,
                    limit: Limit::Bytes(max_bytes),
                },
            ));
        } else {
            sendable.indices.push(index);
            sendable.sizes.push(size);
        }
    }
    (sendable, refused)
}

/// The items [`sendable`] found sendable: their indices among the items
/// and their encoded sizes, in order.
struct Sendable {
    indices: Vec<usize>,
    sizes: Vec<usize>,
}

impl Sendable {
    /// The sendable ones of `items` (those [`sendable`] was given, in the
    /// same order), in order.
    fn take<T>(&self, items: impl IntoIterator<Item = T>) -> Vec<T> {
        let mut sendable = self.indices.iter().copied().peekable();
        items
            .into_iter()
            .enumerate()
            .filter_map(|(index, item)| sendable.next_if_eq(&index).map(|_| item))
            .collect()
    }
}

/// What [`Db::sendable_keys`] finds: the sendable keys as items, their
/// encoded sizes, and each refused key with its error.
type SendableKeys<'k, K, T> = (Vec<Item<'k, K, ()>>, Vec<usize>, Vec<(K, Result<T, Error>)>);

/// Whether a failed write statement is split and its halves run again:
/// on two rows the key's equality merges (PostgreSQL's SQLSTATE 21000,
/// "ON CONFLICT DO UPDATE command cannot affect row a second time"),
/// and, when isolating rows, on an error of the rows' data.
fn splits(error: &sqlx::Error, isolate: bool, is_data_error: fn(&sqlx::Error) -> bool) -> bool {
    let collision =
        matches!(error, sqlx::Error::Database(e) if e.code().as_deref() == Some("21000"));
    collision || (isolate && is_data_error(error))
}

/// `range` in two halves, the second first: popped from a stack, the
/// first half runs first, so rows keep their order.
fn halves(range: Range<usize>) -> [Range<usize>; 2] {
    let middle = range.start + range.len() / 2;
    [middle..range.end, range.start..middle]
}
