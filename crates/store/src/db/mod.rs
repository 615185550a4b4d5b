//! The SQL layer: one connection pool per backend and the memory store's
//! statements in each dialect.
//!
//! [`Database`] wraps a PostgreSQL, MySQL/MariaDB or SQLite pool, chosen
//! from the URL scheme, and counts every statement it executes. Its methods
//! come in two kinds: batched ones, one statement for many keys, and
//! `*_direct` ones, one statement per item, the plain baseline.
//!
//! - `batched`: the reads and writes of many keys or rows, on the
//!   `coalesce-sql` toolkit (arrays on PostgreSQL, padded `IN` lists on
//!   MySQL/SQLite, split within every bind and packet limit).
//! - `shared`: the other statements, written once for every backend
//!   (templates spelled in each dialect), with fixed texts for the lists of
//!   MySQL/MariaDB and SQLite (top-N through `ROW_NUMBER()`).
//! - `postgres`: PostgreSQL's list statements; `= ANY($1)` for a user's
//!   keys, top-N per category through `LATERAL`.
//! - `mysql`, `sqlite`: what their statements differ in (the upserts).
//!
//! ```no_run
//! use coalesce_store::db::Database;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let db = Database::connect("sqlite://target/coalesce.db", 4).await?;
//! db.migrate().await?;
//! let profiles = db.profiles(&["u1".to_owned(), "u2".to_owned()]).await?;
//! assert_eq!(db.statements(), 1);
//! # drop(profiles); Ok(()) }
//! ```

mod batched;
mod connect;
mod mysql;
mod pinned;
mod postgres;
mod readers;
mod replicated;
mod rows;
mod shared;
mod sqlite;
mod token;

pub(crate) use batched::triple;
pub use connect::{Backend, ConnectError, ConnectOptions};
pub(crate) use rows::{MemoryPair, OnboardingRow, ProfileRow};
pub use token::{Token, TokenError};

use crate::model::{Category, Memory, MemoryKey, NewMemory, Onboarding};
pub(crate) use batched::may_have_committed;
use batched::{Batches, batched};
pub use coalesce_sql::replicas::{ReplicaSettings, ServerName, ServerStats};
use coalesce_sql::{SessionSettings, replicas::KeyId, retry};
pub(crate) use readers::StoreReaders;
use shared::Statements;
use sqlx::{
    MySqlPool, PgPool, SqlitePool,
    migrate::{Migrate, MigrateError, Migrator},
};
use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
};

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");
static MYSQL_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/mysql");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");

/// The versions of the migrations a database has recorded as applied
/// (creating sqlx's bookkeeping table if missing, as a run would).
async fn applied(conn: &mut impl Migrate) -> Result<Vec<i64>, MigrateError> {
    let table = "_sqlx_migrations";
    conn.ensure_migrations_table(table).await?;
    let applied = conn.list_applied_migrations(table).await?;
    Ok(applied.into_iter().map(|m| m.version).collect())
}

/// One migration of the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationInfo {
    /// Its version (the number its file name starts with).
    pub version: i64,
    /// Its description (the rest of the file name).
    pub description: String,
}

/// What [`Database::migrate_report`] did, in version order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// The migrations this call applied.
    pub applied: Vec<MigrationInfo>,
    /// The migrations the database had already.
    pub already_applied: Vec<MigrationInfo>,
}

/// A connection pool of one of the supported backends.
#[derive(Debug, Clone)]
pub enum Pool {
    /// A PostgreSQL pool.
    Postgres(PgPool),
    /// A MySQL/MariaDB pool.
    MySql(MySqlPool),
    /// A SQLite pool.
    Sqlite(SqlitePool),
}

/// Statements and transactions executed, for tests and benchmarks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    statements: AtomicU64,
    transactions: AtomicU64,
}

impl Counters {
    /// Count one statement about to be sent.
    pub(crate) fn statement(&self) {
        self.statements.fetch_add(1, Relaxed);
    }

    /// Count one transaction about to begin.
    pub(crate) fn transaction(&self) {
        self.transactions.fetch_add(1, Relaxed);
    }
}

/// A pool of connections to one database, running the memory store's
/// statements in its dialect and counting them. Cheap to clone; clones
/// share the pool and the counters.
#[derive(Debug, Clone)]
pub struct Database {
    pool: Pool,
    pool_size: u32,
    counters: Arc<Counters>,
    write_attempts: u32,
    /// How statements run on the pool's connections (the pooler between).
    session: SessionSettings,
    /// The batched statements, sharing the pool; counted apart.
    batches: Batches,
    /// Every store's and repository's loaders, for read-your-writes.
    readers: Arc<StoreReaders>,
}

/// Call the same [`Statements`] function on the pool of the backend.
///
/// Each backend's future is boxed, as the batched ones are (see
/// `batched!`): a statement on a [`coalesce_sql::Session`] holds the
/// future of its `BEGIN` and of its statement, and inline, every caller's
/// future would carry the largest of the three backends' (a plain
/// `get_profile` was a 2.9 KB future).
macro_rules! dispatch {
    ($self:ident . $function:ident ( $($arg:expr),* )) => {
        match &$self.pool {
            Pool::Postgres(pool) => {
                Box::pin(Statements::$function(pool, &$self.session, &$self.counters, $($arg),*))
                    .await
            }
            Pool::MySql(pool) => {
                Box::pin(Statements::$function(pool, &$self.session, &$self.counters, $($arg),*))
                    .await
            }
            Pool::Sqlite(pool) => {
                Box::pin(Statements::$function(pool, &$self.session, &$self.counters, $($arg),*))
                    .await
            }
        }
    };
}

/// [`dispatch!`] a write, run again if the database aborted it to break a
/// deadlock (see `retry`). The arguments are evaluated once per attempt,
/// so pass references or copies.
macro_rules! dispatch_write {
    ($self:ident . $function:ident ( $($arg:expr),* )) => {{
        let this = $self;
        retry::on_conflict(this.write_attempts, move || async move {
            dispatch!(this.$function($($arg),*))
        })
        .await
    }};
}

/// [`dispatch!`] a query of user `$user`'s memories; on a primary with
/// replicas, routed (see `Routed::read`) to a replica that has replayed this
/// database's writes of that user's memories (the user's slot) and its
/// token, else to the primary. The arguments are evaluated once per server
/// tried, so pass references or copies.
macro_rules! dispatch_query {
    ($self:ident . $function:ident ( $($arg:expr),* ), of $user:expr) => {{
        let this = $self;
        match &this.batches {
            Batches::ReplicatedPostgres(routed) => {
                Box::pin(routed.read(&[replicated::memories_of($user)], |batch| async move {
                    let settings = batch.session_settings();
                    Statements::$function(batch.pool(), settings, &this.counters, $($arg),*).await
                }))
                .await
            }
            Batches::ReplicatedMySql(routed) => {
                Box::pin(routed.read(&[replicated::memories_of($user)], |batch| async move {
                    let settings = batch.session_settings();
                    Statements::$function(batch.pool(), settings, &this.counters, $($arg),*).await
                }))
                .await
            }
            Batches::Postgres(_) | Batches::MySql(_) | Batches::Sqlite(_) => {
                dispatch!(this.$function($($arg),*))
            }
        }
    }};
}

impl Database {
    /// Wrap a pool opened elsewhere (with options of your own, such as
    /// timeouts); its maximum size becomes [`pool_size`](Self::pool_size).
    ///
    /// ```no_run
    /// use coalesce_store::db::{Database, Pool};
    /// use std::time::Duration;
    ///
    /// # async fn f() -> Result<(), sqlx::Error> {
    /// let pg = sqlx::postgres::PgPoolOptions::new()
    ///     .max_connections(10)
    ///     .acquire_timeout(Duration::from_secs(2))
    ///     .connect("postgres://localhost/app")
    ///     .await?;
    /// let db = Database::new(Pool::Postgres(pg));
    /// assert_eq!(db.pool_size(), 10);
    /// # Ok(()) }
    /// ```
    pub fn new(pool: Pool) -> Self {
        let pool_size = match &pool {
            Pool::Postgres(pool) => pool.options().get_max_connections(),
            Pool::MySql(pool) => pool.options().get_max_connections(),
            Pool::Sqlite(pool) => pool.options().get_max_connections(),
        };
        Self {
            batches: Batches::new(&pool, retry::DEFAULT_WRITE_ATTEMPTS),
            pool,
            pool_size,
            counters: Arc::default(),
            write_attempts: retry::DEFAULT_WRITE_ATTEMPTS,
            readers: Arc::default(),
            session: SessionSettings::default(),
        }
    }

    /// Run every statement as `settings` say: for a pool opened elsewhere
    /// through a transaction pooler (PgBouncer's `pool_mode =
    /// transaction`), `Pooler::Transaction`, so no statement is a named
    /// prepared statement and each runs in a transaction that sets the
    /// statement timeout. [`connect`](Self::connect) does this itself for
    /// a URL with `?pooler=transaction`.
    ///
    /// ```no_run
    /// use coalesce_store::db::{Database, Pool};
    /// use coalesce_sql::{Pooler, SessionSettings};
    ///
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let settings = SessionSettings { pooler: Pooler::Transaction, statement_timeout: None };
    /// let options = settings.connect_options::<sqlx::Postgres>("postgres://app@127.0.0.1:6432/app")?;
    /// let pg = sqlx::PgPool::connect_with(options).await?;
    /// let db = Database::new(Pool::Postgres(pg)).with_session_settings(settings);
    /// # Ok(()) }
    /// ```
    pub fn with_session_settings(mut self, settings: SessionSettings) -> Self {
        self.session = settings;
        self.batches = self.batches.with_session_settings(settings);
        self
    }

    /// How many times a write is tried when the database aborts it to
    /// resolve a deadlock or serialization failure with a concurrent one
    /// (default 5, the first attempt included; 1 turns retries off). Each
    /// write is one transaction or one statement, so an aborted attempt
    /// leaves nothing behind; the pause between attempts starts near 2 ms
    /// and doubles, randomized. Other errors are never retried.
    ///
    /// ```no_run
    /// use coalesce_store::db::Database;
    ///
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = Database::connect("postgres://localhost/app", 10)
    ///     .await?
    ///     .with_write_attempts(10);
    /// # Ok(()) }
    /// ```
    pub fn with_write_attempts(mut self, attempts: u32) -> Self {
        self.write_attempts = attempts.max(1);
        self.batches = self.batches.with_write_attempts(self.write_attempts);
        self
    }

    /// Create or update the tables (`migrations/<backend>`); safe to run
    /// from several processes at once, and through a transaction pooler.
    pub async fn migrate(&self) -> Result<(), ConnectError> {
        match &self.pool {
            Pool::Postgres(pool) if !self.session.pooler.named_statements() => {
                // `run_direct`: `run` on a borrowed connection is refused
                // ("`Acquire` is not general enough"), as sqlx's own comment
                // on `run_direct` says.
                pinned::pinned(pool, |conn| {
                    Box::pin(POSTGRES_MIGRATIONS.run_direct(None, conn, false))
                })
                .await?
            }
            Pool::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
            Pool::MySql(pool) => MYSQL_MIGRATIONS.run(pool).await?,
            Pool::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// [`migrate`](Self::migrate), saying which migrations this call
    /// applied: those the database had not recorded before it ran. (A
    /// migration another process applies at the same moment may be counted
    /// by both.)
    pub async fn migrate_report(&self) -> Result<MigrationReport, ConnectError> {
        let backend = self.backend();
        let failed = |source| ConnectError::Connect { backend, source };
        let (migrator, before) = match &self.pool {
            Pool::Postgres(pool) if !self.session.pooler.named_statements() => {
                let before = pinned::pinned(pool, |conn| Box::pin(applied(conn))).await?;
                (&POSTGRES_MIGRATIONS, before)
            }
            Pool::Postgres(pool) => {
                let mut conn = pool.acquire().await.map_err(failed)?;
                (&POSTGRES_MIGRATIONS, applied(&mut *conn).await?)
            }
            Pool::MySql(pool) => {
                let mut conn = pool.acquire().await.map_err(failed)?;
                (&MYSQL_MIGRATIONS, applied(&mut *conn).await?)
            }
            Pool::Sqlite(pool) => {
                let mut conn = pool.acquire().await.map_err(failed)?;
                (&SQLITE_MIGRATIONS, applied(&mut *conn).await?)
            }
        };
        self.migrate().await?;
        let mut report = MigrationReport::default();
        for migration in migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
        {
            let info = MigrationInfo {
                version: migration.version,
                description: migration.description.to_string(),
            };
            if before.contains(&migration.version) {
                report.already_applied.push(info);
            } else {
                report.applied.push(info);
            }
        }
        Ok(report)
    }

    /// Which database family this is.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Postgres(_) => Backend::Postgres,
            Pool::MySql(_) => Backend::MySql,
            Pool::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// The underlying pool, for queries of your own (the primary's, on a
    /// database opened with replicas: what runs there is not routed).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The most connections the pool opens.
    pub fn pool_size(&self) -> u32 {
        self.pool_size
    }

    /// Statements sent through this database (and its clones) so far,
    /// failed ones included; `BEGIN`/`COMMIT` are counted by
    /// [`transactions`](Self::transactions) instead, and a MySQL-family
    /// server's version, asked once a pool, not at all.
    pub fn statements(&self) -> u64 {
        self.counters.statements.load(Relaxed) + self.batches.counts().0
    }

    /// Transactions begun through this database (and its clones) so far.
    pub fn transactions(&self) -> u64 {
        self.counters.transactions.load(Relaxed) + self.batches.counts().1
    }

    /// Statements per server, the primary first, then the replicas in the
    /// order given to [`connect_replicated`](Self::connect_replicated);
    /// `None` for a database opened without replicas. `batch_statements`
    /// counts the batched reads and writes, `position_statements` the
    /// position checks, and `reads` every routed read: the batched ones and
    /// the queries of a user's memories (by category, top-N, recent,
    /// counts, key lists), whose statements [`statements`](Self::statements)
    /// counts. The per-item (`*_direct`) reads, and the writes of profiles
    /// and onboarding states, run on the primary's own pool.
    ///
    /// ```no_run
    /// use coalesce_store::db::{ConnectOptions, Database, ReplicaSettings};
    ///
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = Database::connect_replicated(
    ///     "mysql://root@127.0.0.1:33306/test",
    ///     &["mysql://root@127.0.0.1:33307/test"],
    ///     &ConnectOptions::new(4),
    ///     ReplicaSettings::default(),
    /// )
    /// .await?;
    /// db.profiles(&["u1".to_owned()]).await?;
    /// for stats in db.server_stats().unwrap_or_default() {
    ///     println!("{}: {} statements", stats.server, stats.statements());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn server_stats(&self) -> Option<Vec<ServerStats>> {
        self.batches.server_stats()
    }

    /// A token covering every write through this database and its clones
    /// that has returned successfully: give it to another [`Database`] (in
    /// another process, say) and [`with_token`](Self::with_token) its reads
    /// see those writes. `None` before the first write, and on a database
    /// opened without replicas (its reads go to the one server, which has
    /// every write). A token another handle gave this one is not included:
    /// pass it on as well if this handle's readers need it.
    ///
    /// ```no_run
    /// use coalesce_store::db::{ConnectOptions, Database, ReplicaSettings};
    ///
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = Database::connect_replicated(
    ///     "postgres://postgres@127.0.0.1:55432/test",
    ///     &["postgres://postgres@127.0.0.1:55433/test"],
    ///     &ConnectOptions::new(4),
    ///     ReplicaSettings::default(),
    /// )
    /// .await?;
    /// db.save_profile("u1", "likes tea").await?;
    /// // "wal:0/3A1B2C8": into the response, a cookie, a queue message...
    /// let token: Option<String> = db.token().map(|token| token.to_string());
    /// # Ok(()) }
    /// ```
    pub fn token(&self) -> Option<Token> {
        self.batches.last_written().map(Token::from)
    }

    /// A handle on the same pools whose reads also see every write `token`
    /// covers, wherever it was made: each is served by a replica that has
    /// replayed the token's position (waiting up to
    /// [`ReplicaSettings::wait_for_replay`] for one), else by the primary.
    /// It shares everything else with `self` (its writes, counters,
    /// read-your-writes); a second token adds to the first. Cheap: make one
    /// per request. Without replicas the token changes nothing, as every
    /// read goes to the primary.
    ///
    /// The token must be of this database's kind (a PostgreSQL `wal:` or a
    /// MariaDB `gtid:` position; SQLite takes none):
    /// [`TokenError::OtherBackend`] otherwise.
    ///
    /// ```no_run
    /// use coalesce_store::db::{ConnectOptions, Database, ReplicaSettings, Token};
    ///
    /// # async fn f(token_from_the_request: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// let db = Database::connect_replicated(
    ///     "postgres://postgres@127.0.0.1:55432/test",
    ///     &["postgres://postgres@127.0.0.1:55433/test"],
    ///     &ConnectOptions::new(4),
    ///     ReplicaSettings::default(),
    /// )
    /// .await?;
    /// let token: Token = token_from_the_request.parse()?;
    /// // Sees the profile another process saved before it made the token.
    /// let profiles = db.with_token(&token)?.profiles(&["u1".to_owned()]).await?;
    /// # Ok(()) }
    /// ```
    pub fn with_token(&self, token: &Token) -> Result<Database, TokenError> {
        let position = token.of(self.backend())?;
        let other_backend = |_| TokenError::OtherBackend {
            token: token.to_string(),
            backend: self.backend(),
        };
        let batches = self.batches.clone().with_token(position);
        Ok(Database {
            batches: batches.map_err(other_backend)?,
            ..self.clone()
        })
    }

    /// Keep these loaders' reads consistent with every write through this
    /// database or its clones: each save or delete detaches the keys it
    /// wrote from their reads already sent (and their caches), so a load
    /// that starts after the write returned never gets a value read before
    /// it. Every store and coalescing repository over this database
    /// registers its loaders; kept while each loader lives.
    ///
    /// ```no_run
    /// use coalesce::{Loader, from_method};
    /// use coalesce_store::db::Database;
    /// use std::sync::Arc;
    ///
    /// # async fn f(db: Database) {
    /// let shared = Arc::new(db.clone());
    /// let profiles = Loader::new(from_method(Arc::clone(&shared), |db, ids| Box::pin(db.profiles(ids))));
    /// let onboardings = Loader::new(from_method(Arc::clone(&shared), |db, ids| Box::pin(db.onboardings(ids))));
    /// let memories = Loader::new(from_method(shared, |db, keys| Box::pin(db.memories_by_key(keys))));
    /// db.register_readers(&profiles, &onboardings, &memories);
    /// # }
    /// ```
    pub fn register_readers<P, O, M>(
        &self,
        profiles: &coalesce::Loader<P>,
        onboardings: &coalesce::Loader<O>,
        memories: &coalesce::Loader<M>,
    ) where
        P: coalesce::BatchSource<Key = String>,
        O: coalesce::BatchSource<Key = String>,
        M: coalesce::BatchSource<Key = MemoryKey>,
    {
        self.readers.profiles.register(profiles);
        self.readers.onboardings.register(onboardings);
        self.readers.memories.register(memories);
    }

    /// The loaders over this database and its clones.
    pub(crate) fn readers(&self) -> &StoreReaders {
        &self.readers
    }

    /// Profiles by user id, of the users found among `user_ids`: one
    /// statement per 1,000 distinct users.
    pub async fn profiles(
        &self,
        user_ids: &[String],
    ) -> Result<HashMap<String, String>, sqlx::Error> {
        batched!(
            &self.batches,
            read(ids(user_ids, |id| replicated::profile(id))),
            profiles(user_ids)
        )
    }

    /// One user's profile: one statement, the plain per-item path.
    pub async fn profile_direct(&self, user_id: &str) -> Result<Option<String>, sqlx::Error> {
        dispatch!(self.profile_direct(user_id))
    }

    /// Insert or replace a user's profile.
    pub async fn save_profile(&self, user_id: &str, profile: &str) -> Result<(), sqlx::Error> {
        let keys = || vec![replicated::profile(user_id)];
        let written = async { dispatch_write!(self.save_profile(user_id, profile)) };
        let saved = self.batches.remember(keys, written).await;
        // Even a failed write may have committed (its outcome unknown).
        self.readers.profiles.written(&[user_id.to_owned()]);
        self.wrote::<ProfileRow>();
        saved
    }

    /// Onboarding states by user id, of the users found among `user_ids`.
    pub async fn onboardings(
        &self,
        user_ids: &[String],
    ) -> Result<HashMap<String, Onboarding>, sqlx::Error> {
        let rows = batched!(
            &self.batches,
            read(ids(user_ids, |id| replicated::onboarding(id))),
            onboardings(user_ids)
        )?;
        rows.into_iter()
            .map(|(user_id, (data, completed))| Ok((user_id, onboarding(&data, completed)?)))
            .collect()
    }

    /// One user's onboarding state: one statement, the plain per-item path.
    pub async fn onboarding_direct(
        &self,
        user_id: &str,
    ) -> Result<Option<Onboarding>, sqlx::Error> {
        dispatch!(self.onboarding_direct(user_id))?
            .map(|(data, completed)| onboarding(&data, completed))
            .transpose()
    }

    /// Insert or replace a user's onboarding state.
    pub async fn save_onboarding(
        &self,
        user_id: &str,
        state: &Onboarding,
    ) -> Result<(), sqlx::Error> {
        let data = serde_json::to_string(&state.data).map_err(|e| sqlx::Error::Encode(e.into()))?;
        let (data, completed) = (data.as_str(), state.completed);
        let keys = || vec![replicated::onboarding(user_id)];
        let written = async { dispatch_write!(self.save_onboarding(user_id, data, completed)) };
        let saved = self.batches.remember(keys, written).await;
        self.readers.onboardings.written(&[user_id.to_owned()]);
        self.wrote::<OnboardingRow>();
        saved
    }

    /// The values of the memories found among `keys` (user, category, key),
    /// by key.
    pub async fn memories_by_key(
        &self,
        keys: &[MemoryKey],
    ) -> Result<HashMap<MemoryKey, String>, sqlx::Error> {
        batched!(
            &self.batches,
            read(ids(keys, |k| replicated::memory(&k.user_id, &k.key))),
            memories_by_key(keys)
        )
    }

    /// Every memory of each (user, key) pair found among `pairs`, in any
    /// category, by pair (pairs with none are absent): the read behind
    /// coalesced `batch_get_memories` calls.
    pub async fn memory_groups(
        &self,
        pairs: &[(String, String)],
    ) -> Result<HashMap<(String, String), Vec<Memory>>, sqlx::Error> {
        batched!(
            &self.batches,
            read(ids(pairs, |(user, key)| replicated::memory(user, key))),
            memory_groups(pairs)
        )
    }

    /// One memory's value: one statement, the plain per-item path.
    pub async fn memory_direct(&self, key: &MemoryKey) -> Result<Option<String>, sqlx::Error> {
        dispatch!(self.memory_direct(key))
    }

    /// A user's memories, optionally of one category and among `keys`,
    /// ordered by category then key (bytewise), at most `limit`. An empty
    /// `keys` list returns nothing without a query.
    pub async fn memories(
        &self,
        user_id: &str,
        category: Option<Category>,
        keys: Option<&[String]>,
        limit: Option<i64>,
    ) -> Result<Vec<Memory>, sqlx::Error> {
        if keys.is_some_and(<[String]>::is_empty) {
            return Ok(Vec::new());
        }
        let category_name = category.map(Category::as_str);
        // On PostgreSQL, however many keys: one array bind (on a pool
        // handle of its own, an `Arc`, so the future owns what it borrows).
        let among_keys = |pool: PgPool, settings: SessionSettings, keys| async move {
            let counters = &self.counters;
            postgres::memories(
                &pool,
                &settings,
                counters,
                user_id,
                category_name,
                keys,
                limit,
            )
            .await
        };
        let rows = match (&self.pool, &self.batches, keys) {
            (_, Batches::ReplicatedPostgres(routed), Some(keys)) => {
                let slot = [replicated::memories_of(user_id)];
                let read = routed.read(&slot, |batch| {
                    among_keys(batch.pool().clone(), *batch.session_settings(), Some(keys))
                });
                Box::pin(read).await
            }
            (Pool::Postgres(pool), _, Some(keys)) => {
                among_keys(pool.clone(), self.session, Some(keys)).await
            }
            (_, _, Some(keys)) => {
                return batched!(
                    &self.batches,
                    read(ids(keys, |key| replicated::memory(user_id, key))),
                    memories_among(user_id, category, keys, limit)
                );
            }
            (_, _, None) => dispatch_query!(
                self.memories(user_id, category_name, limit),
                of user_id
            ),
        };
        memories(rows?)
    }

    /// A user's `limit` most recently updated memories of each category, in
    /// one statement, grouped in the order of `categories` (newest first).
    pub async fn top_memories_per_category(
        &self,
        user_id: &str,
        categories: &[Category],
        limit: i64,
    ) -> Result<Vec<Memory>, sqlx::Error> {
        if categories.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = categories.iter().map(|c| c.as_str().to_owned()).collect();
        let names = names.as_slice();
        memories(dispatch_query!(
            self.top_memories_per_category(user_id, names, limit),
            of user_id
        )?)
    }

    /// A user's `limit` most recently updated memories of one category:
    /// one statement, the plain per-category path.
    pub async fn top_memories_direct(
        &self,
        user_id: &str,
        category: Category,
        limit: i64,
    ) -> Result<Vec<Memory>, sqlx::Error> {
        memories(dispatch!(self.top_memories_direct(
            user_id,
            category.as_str(),
            limit
        ))?)
    }

    /// A user's `limit` most recently created memories, newest first.
    pub async fn recent_memories(
        &self,
        user_id: &str,
        limit: i64,
    ) -> Result<Vec<Memory>, sqlx::Error> {
        memories(dispatch_query!(
            self.recent_memories(user_id, limit),
            of user_id
        )?)
    }

    /// How many memories a user has.
    pub async fn count_memories(&self, user_id: &str) -> Result<u64, sqlx::Error> {
        let count: i64 = dispatch_query!(self.count_memories(user_id), of user_id)?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    /// Upsert memories, at most `rows_per_statement` rows a statement (and
    /// below the bind limit); several statements run in one transaction.
    /// The rows must be distinct on (user, category, key).
    pub async fn save_memories(
        &self,
        rows: &[NewMemory],
        rows_per_statement: usize,
    ) -> Result<(), sqlx::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let saved = batched!(
            &self.batches,
            write(memory_writes(
                rows.iter().map(|row| (&row.user_id, &row.key))
            )),
            save_memories(rows, rows_per_statement.max(1))
        );
        let keys: Vec<MemoryKey> = rows.iter().map(NewMemory::memory_key).collect();
        self.readers.memories_written(keys.iter());
        saved
    }

    /// Delete a user's memories with these keys (in every category); the
    /// number of distinct keys that existed (a key held in several
    /// categories counts once). Several chunks run in one transaction.
    pub async fn delete_memories(
        &self,
        user_id: &str,
        keys: &[String],
    ) -> Result<u64, sqlx::Error> {
        let pairs: Vec<(String, String)> = keys
            .iter()
            .map(|key| (user_id.to_owned(), key.clone()))
            .collect();
        let deleted = self.delete_memory_pairs(&pairs).await?;
        Ok(deleted.len() as u64)
    }
}

impl Database {
    /// Insert or replace many users' profiles: one statement on PostgreSQL,
    /// one transaction of single-row statements on MariaDB and SQLite. For
    /// bulk loads such as seeding; validate input first (the store does).
    pub async fn save_profiles(&self, rows: &[(String, String)]) -> Result<(), sqlx::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let keys = || ids(rows, |(user_id, _)| replicated::profile(user_id));
        let written = async { dispatch_write!(self.save_profiles(rows)) };
        let saved = self.batches.remember(keys, written).await;
        let user_ids: Vec<String> = rows.iter().map(|(user_id, _)| user_id.clone()).collect();
        self.readers.profiles.written(&user_ids);
        self.wrote::<ProfileRow>();
        saved
    }

    /// Insert or replace many users' onboarding states, like
    /// [`save_profiles`](Self::save_profiles).
    pub async fn save_onboardings(&self, rows: &[(String, Onboarding)]) -> Result<(), sqlx::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let rows = rows
            .iter()
            .map(|(user_id, state)| {
                let data = serde_json::to_string(&state.data)
                    .map_err(|e| sqlx::Error::Encode(e.into()))?;
                Ok((user_id.clone(), data, state.completed))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let rows = rows.as_slice();
        let keys = || ids(rows, |(user_id, _, _)| replicated::onboarding(user_id));
        let written = async { dispatch_write!(self.save_onboardings(rows)) };
        let saved = self.batches.remember(keys, written).await;
        let user_ids: Vec<String> = rows.iter().map(|(user_id, _, _)| user_id.clone()).collect();
        self.readers.onboardings.written(&user_ids);
        self.wrote::<OnboardingRow>();
        saved
    }

    /// Delete memories by (user, key) pairs, in every category, users mixed
    /// in one statement (per bind-limit chunk, chunks in one transaction);
    /// returns the distinct pairs that existed, each once, in request order.
    /// One statement a chunk on PostgreSQL; on MySQL/MariaDB and SQLite a
    /// locking `SELECT` and the `DELETE` in one transaction (two
    /// statements a chunk). See `coalesce_sql::Db::delete`.
    pub async fn delete_memory_pairs(
        &self,
        pairs: &[(String, String)],
    ) -> Result<Vec<(String, String)>, sqlx::Error> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let deleted = batched!(
            &self.batches,
            write(memory_writes(pairs.iter().map(|(user, key)| (user, key)))),
            delete_memory_pairs(pairs)
        );
        self.readers.pairs_deleted(pairs);
        deleted
    }
}

/// The read-your-writes identities of `items`, one each.
fn ids<T>(items: &[T], id: impl Fn(&T) -> KeyId) -> Vec<KeyId> {
    items.iter().map(id).collect()
}

/// The read-your-writes identities a write of memories (user, key)
/// touches: each memory's, and each user's slot, which the queries of the
/// user's memories read.
fn memory_writes<'a>(memories: impl Iterator<Item = (&'a String, &'a String)>) -> Vec<KeyId> {
    let mut keys = Vec::new();
    let mut users = std::collections::HashSet::new();
    for (user_id, key) in memories {
        keys.push(replicated::memory(user_id, key));
        if users.insert(user_id) {
            keys.push(replicated::memories_of(user_id));
        }
    }
    keys
}

fn decode_error(error: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(error))
}

fn category_of(name: &str) -> Result<Category, sqlx::Error> {
    name.parse().map_err(decode_error)
}

fn onboarding(data: &str, completed: bool) -> Result<Onboarding, sqlx::Error> {
    Ok(Onboarding {
        data: serde_json::from_str(data).map_err(decode_error)?,
        completed,
    })
}

/// Memory rows as the dialects return them: (category, key, value).
type MemoryRow = (String, String, String);

fn memories(rows: Vec<MemoryRow>) -> Result<Vec<Memory>, sqlx::Error> {
    rows.into_iter()
        .map(|(category, key, value)| {
            Ok(Memory {
                category: category_of(&category)?,
                key,
                value,
            })
        })
        .collect()
}
