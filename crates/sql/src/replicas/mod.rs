//! Read replicas with read-your-writes: one handle over a primary and any
//! number of replicas that sends reads to replicas, writes to the primary,
//! and never answers a read from a replica that has not replayed a write
//! the read must see.
//!
//! # The guarantee
//!
//! A read ([`Replicated::fetch`], [`Replicated::read`]) sees every write
//! that
//!
//! - returned successfully from [`Replicated::upsert`],
//!   [`delete`](Replicated::delete) or [`write`](Replicated::write) **on the
//!   same handle** before the read started, and touched one of the read's
//!   keys (the same table and key; for `read`/`write`, the same [`KeyId`]), or
//! - is covered by the position token the read presents: the
//!   [`Written::position`] of a write made through any handle, in any
//!   process, on the same primary, or a handle's
//!   [`last_written`](Replicated::last_written) (presented by
//!   [`fetch`](Replicated::fetch), [`read`](Replicated::read), and the
//!   [`Rows`] of [`after`](Replicated::after)).
//!
//! Such a read is served by a replica known to have replayed that position,
//! or one that replays it within [`ReplicaSettings::wait_for_replay`];
//! otherwise by the primary. Nothing else is promised: a read of keys this
//! handle never wrote, without a token, may be answered by a lagging replica
//! (that is what replicas are for), and a write whose call returned an error
//! is not covered.
//!
//! Positions are remembered for the life of the handle, in a fixed number of
//! slots ([`ReplicaSettings::remembered_slots`]): keys that share a slot
//! wait for each other's writes, never for less than their own. Once a
//! replica has been seen past a position, reads that need it cost nothing
//! extra there; that knowledge is dropped whenever the pool opens a
//! connection to the replica (as after its restart, which can set a crashed
//! replica back), and a read that saw a connection opened while it ran is
//! answered again by the primary.
//!
//! # Cost
//!
//! A read whose keys were not written here and that carries no token goes
//! straight to a replica: no extra statement. A read that needs a position
//! the replica is not known to have reached costs one check first (MariaDB:
//! `MASTER_GTID_WAIT`, which also waits) or a few polls (PostgreSQL 15 has
//! no server-side wait: `pg_last_wal_replay_lsn()`, every 1 to 10 ms). A
//! write costs one statement after it, to read the primary's position.
//!
//! # Failover
//!
//! A replica whose connection or server fails is skipped for
//! [`ReplicaSettings::retry_after`], and the read that met the failure goes
//! on to the next server; so is a replica that has failed to reach positions
//! in time for longer than [`ReplicaSettings::lag_bound`]. After that it is
//! tried again. Each time, a `tracing` warning says which replica and why,
//! and [`ServerStats::last_out_of_use`] keeps the last reason. A read that
//! waited out [`ReplicaSettings::replica_acquire_timeout`] for a connection
//! while every connection of the replica's pool was busy goes on to the
//! next server without taking the replica out: that is this process's own
//! contention, not the replica's failure.
//!
//! ```no_run
//! use coalesce_sql::{Dialect, KeyPart, Record, Table, Value};
//! use coalesce_sql::replicas::{ReplicaSettings, Replicated};
//! use std::collections::HashMap;
//!
//! #[derive(sqlx::FromRow)]
//! struct Note { id: i64, body: String }
//!
//! impl<DB: Dialect> Record<DB> for Note where i64: KeyPart<DB>, String: Value<DB> {
//!     type Key = i64;
//!     type Values<'a> = (&'a String,);
//!     fn key(&self) -> i64 { self.id }
//!     fn values(&self) -> Self::Values<'_> { (&self.body,) }
//! }
//!
//! # async fn demo() -> Result<(), coalesce_sql::replicas::ReplicaError> {
//! let db = Replicated::<sqlx::Postgres>::connect(
//!     "postgres://postgres@127.0.0.1:55432/test",
//!     &["postgres://postgres@127.0.0.1:55433/test"],
//!     ReplicaSettings::default(),
//! )
//! .await?;
//! let notes = Table::new("notes").key(["id"]).values(["body"]);
//!
//! let written = db.upsert(&notes, &[Note { id: 7, body: "new".into() }]).await?;
//! // Sees "new": on a replica that has replayed the upsert, or on the primary.
//! let found: HashMap<i64, Note> = db.fetch(&notes, &[7], None).await?;
//!
//! // Another process, given the token, sees it too.
//! let token: Option<String> = written.position.map(|position| position.to_string());
//! # Ok(()) }
//! ```

mod backend;
mod error;
mod memory;
mod position;
mod server;

pub use backend::{Fault, Replay, Replication};
pub use error::ReplicaError;
pub use memory::KeyId;
pub use position::{GtidPosition, Lsn, Position, PositionError};
pub use server::{OutOfUse, ServerName, ServerStats};

use crate::rows::{Handles, OnReplicas};
use crate::{Db, Key, Pooler, Record, Rows, RowsOptions, SessionSettings, Table, TableRow};
use coalesce::ConfigError;
use error::{is_pool_timeout, is_server_failure};
use memory::WrittenPositions;
use server::Server;
use sqlx::{FromRow, pool::PoolOptions};
use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

/// How a [`Replicated`] handle connects, waits and fails over.
///
/// ```
/// use coalesce_sql::replicas::ReplicaSettings;
/// use std::time::Duration;
///
/// let settings = ReplicaSettings {
///     wait_for_replay: Duration::from_millis(20),
///     ..ReplicaSettings::default()
/// };
/// assert_eq!(settings.pool_size, ReplicaSettings::default().pool_size);
/// ```
#[derive(Debug, Clone)]
pub struct ReplicaSettings {
    /// Connections per server.
    pub pool_size: u32,
    /// The longest a read waits for a replica to replay the position it
    /// needs before it goes to the primary instead.
    pub wait_for_replay: Duration,
    /// A replica that has failed to reach positions in time for this long
    /// is skipped (for [`retry_after`](Self::retry_after)).
    pub lag_bound: Duration,
    /// How long a failed or lagging replica is skipped before it is tried
    /// again.
    pub retry_after: Duration,
    /// How long getting a replica connection may take before the replica
    /// counts as failed.
    pub replica_acquire_timeout: Duration,
    /// Slots of the written-key memory, allocated once (32 bytes each on
    /// 64-bit targets, plus a MariaDB position's domains: the default takes
    /// 2 MiB); see the module documentation.
    pub remembered_slots: usize,
    /// A connection idle at least this long is pinged before it is handed
    /// out (a dead one is replaced); a busy one is not, as a ping is a round
    /// trip before every read. `Duration::ZERO` pings on every checkout
    /// (sqlx's `test_before_acquire`), `Duration::MAX` never.
    pub ping_after_idle: Duration,
    /// How long [`Replicated::connect`] waits for the primary to accept
    /// and set up its first connection.
    pub connect_timeout: Duration,
    /// How long every server lets one statement run (see
    /// [`SessionSettings`]); `None`: each server's own setting.
    pub statement_timeout: Option<Duration>,
}

impl Default for ReplicaSettings {
    fn default() -> Self {
        ReplicaSettings {
            pool_size: 8,
            wait_for_replay: Duration::from_millis(50),
            lag_bound: Duration::from_secs(10),
            retry_after: Duration::from_secs(5),
            replica_acquire_timeout: Duration::from_secs(2),
            remembered_slots: 65_536,
            ping_after_idle: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(30),
            statement_timeout: None,
        }
    }
}

/// What a write returned, and the primary's position after it.
///
/// ```
/// use coalesce_sql::replicas::{Position, Written};
///
/// let written = Written { value: 3_u64, position: Some("wal:0/10".parse()?) };
/// // A token for another process: parse it back with `str::parse`.
/// let token = written.position.as_ref().map(Position::to_string);
/// assert_eq!(token.as_deref(), Some("wal:0/10"));
/// # Ok::<(), coalesce_sql::replicas::PositionError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written<T> {
    /// What the write returned.
    pub value: T,
    /// A position covering the write; `None` if the primary has never
    /// committed anything that replicates.
    pub position: Option<Position>,
}

/// A primary and its replicas behind one handle; see the [module
/// documentation](self) for the guarantee.
#[derive(Debug)]
pub struct Replicated<DB: Replication> {
    primary: Server<DB>,
    replicas: Vec<Server<DB>>,
    written: WrittenPositions,
    /// Where the round-robin over replicas starts next.
    next_replica: AtomicUsize,
    settings: ReplicaSettings,
    /// The [`rows`](Self::rows) handles, one per row type while it lives.
    handles: Handles,
}

impl<DB: Replication> Replicated<DB> {
    /// Connect to the primary (now: an unreachable primary is an error,
    /// within [`ReplicaSettings::connect_timeout`]) and to each replica
    /// (lazily: a replica that is down is skipped until it is up). A URL
    /// may name a transaction pooler in front of its server
    /// (`?pooler=transaction`, see [`Pooler`]); every server's statements
    /// are limited to [`ReplicaSettings::statement_timeout`].
    pub async fn connect(
        primary_url: &str,
        replica_urls: &[&str],
        settings: ReplicaSettings,
    ) -> Result<Self, ReplicaError> {
        let name = ServerName::Primary;
        let failed = |server| move |source| ReplicaError::Database { server, source };
        let (session, connect) =
            connect_options::<DB>(primary_url, &settings).map_err(failed(name))?;
        let opened = Arc::new(AtomicU64::new(0));
        let pool = pool_options(&settings, session, &opened).connect_with(connect);
        let pool = tokio::time::timeout(settings.connect_timeout, pool)
            .await
            .map_err(|_| ReplicaError::ConnectTimedOut {
                server: name,
                after: settings.connect_timeout,
            })?
            .map_err(failed(name))?;
        let primary = Server::new(name, pool, session, opened);
        let mut replicas = Vec::with_capacity(replica_urls.len());
        for (index, url) in replica_urls.iter().enumerate() {
            let name = ServerName::Replica(index);
            let (session, connect) = connect_options::<DB>(url, &settings).map_err(failed(name))?;
            let opened = Arc::new(AtomicU64::new(0));
            let pool = pool_options(&settings, session, &opened)
                .acquire_timeout(settings.replica_acquire_timeout)
                .connect_lazy_with(connect);
            replicas.push(Server::new(name, pool, session, opened));
        }
        Ok(Replicated {
            primary,
            replicas,
            written: WrittenPositions::new(settings.remembered_slots),
            next_replica: AtomicUsize::new(0),
            settings,
            handles: Handles::default(),
        })
    }

    /// The rows of `table` for `keys` ([`Db::fetch`]), from a replica
    /// that has replayed this handle's writes to those keys and `token`,
    /// else from the primary.
    ///
    /// See the [module documentation](self) for an example.
    pub async fn fetch<K, R>(
        &self,
        table: &Table,
        keys: &[K],
        token: Option<&Position>,
    ) -> Result<HashMap<K, R>, ReplicaError>
    where
        K: Key<DB>,
        R: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
    {
        let ids = key_ids(table, keys);
        self.read(&ids, token, |batch| async move {
            Ok(batch.fetch(table, keys).await?)
        })
        .await
    }

    /// Insert or update `rows` on the primary ([`Db::upsert`]) and
    /// remember the position for their keys.
    pub async fn upsert<R: Record<DB>>(
        &self,
        table: &Table,
        rows: &[R],
    ) -> Result<Written<()>, ReplicaError> {
        let keys: Vec<R::Key> = rows.iter().map(Record::key).collect();
        let ids = key_ids(table, &keys);
        self.write(
            &ids,
            |batch| async move { Ok(batch.upsert(table, rows).await?) },
        )
        .await
    }

    /// Delete the rows of `keys` on the primary ([`Db::delete`]: the
    /// value is the keys that existed) and remember the position for them.
    pub async fn delete<K: Key<DB>>(
        &self,
        table: &Table,
        keys: &[K],
    ) -> Result<Written<Vec<K>>, ReplicaError> {
        let ids = key_ids(table, keys);
        self.write(
            &ids,
            |batch| async move { Ok(batch.delete(table, keys).await?) },
        )
        .await
    }

    /// Run `write` with the primary's [`Db`], then remember the primary's
    /// position for `keys` (the keys it wrote).
    ///
    /// What `write` did must be committed when its future completes: the
    /// toolkit's writes are; SQL of your own on [`Db::pool`] should run
    /// in a transaction it commits.
    ///
    /// ```no_run
    /// # async fn demo(db: coalesce_sql::replicas::Replicated<sqlx::Postgres>)
    /// # -> Result<(), coalesce_sql::replicas::ReplicaError> {
    /// use coalesce_sql::replicas::KeyId;
    ///
    /// let written = db
    ///     .write(&[KeyId::new("notes", &7_i64)], |batch| async move {
    ///         let sql = "UPDATE notes SET body = 'new' WHERE id = 7";
    ///         Ok(sqlx::query(sql).execute(batch.pool()).await?.rows_affected())
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn write<T, F, Fut>(
        &self,
        keys: &[KeyId],
        write: F,
    ) -> Result<Written<T>, ReplicaError>
    where
        F: FnOnce(Db<DB>) -> Fut,
        Fut: Future<Output = Result<T, Fault>>,
    {
        let primary = &self.primary;
        let value = write(primary.batch.clone())
            .await
            .map_err(|fault| ReplicaError::at(primary.name, fault))?;
        primary.count_write();
        let unpositioned = |fault| ReplicaError::Unpositioned {
            source: Box::new(ReplicaError::at(primary.name, fault)),
        };
        let position = async {
            let mut conn = primary.batch.pool().acquire().await?;
            primary.count_position_statements(1);
            DB::commit_position(&mut conn).await
        };
        let position = position.await.map_err(unpositioned)?;
        if let Some(position) = &position {
            self.written
                .record(keys, position)
                .map_err(|source| unpositioned(Fault::Position(source)))?;
        }
        Ok(Written { value, position })
    }

    /// Run `read` with the [`Db`] of a replica that has replayed every
    /// write of this handle to `keys` and the position `token`, else with
    /// the primary's.
    ///
    /// `read` may be called again (for another server) after a replica
    /// failed under it, so it must not change anything.
    ///
    /// ```no_run
    /// # async fn demo(db: coalesce_sql::replicas::Replicated<sqlx::Postgres>)
    /// # -> Result<(), coalesce_sql::replicas::ReplicaError> {
    /// use coalesce_sql::replicas::KeyId;
    ///
    /// let body: String = db
    ///     .read(&[KeyId::new("notes", &7_i64)], None, |batch| async move {
    ///         let sql = "SELECT body FROM notes WHERE id = 7";
    ///         Ok(sqlx::query_scalar(sql).fetch_one(batch.pool()).await?)
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn read<T, F, Fut>(
        &self,
        keys: &[KeyId],
        token: Option<&Position>,
        mut read: F,
    ) -> Result<T, ReplicaError>
    where
        F: FnMut(Db<DB>) -> Fut,
        Fut: Future<Output = Result<T, Fault>>,
    {
        if let Some(token) = token.filter(|token| !DB::is_own(token)) {
            let token = token.to_string();
            return Err(ReplicaError::ForeignToken { token });
        }
        // Only a token can be of another kind, and it was checked: an error
        // here means positions the primary reported do not combine.
        let required =
            self.written
                .required(keys, token)
                .map_err(|source| ReplicaError::Position {
                    server: ServerName::Primary,
                    source,
                })?;
        let mut waited = false;
        for replica in self.replicas_in_turn() {
            // One wait per read: a read that could not be served in time by
            // one replica goes to the primary rather than wait again.
            let may_wait = !waited;
            match self
                .read_on_replica(replica, required.as_ref(), may_wait, &mut read)
                .await
            {
                Ok(Routed::Served(value)) => return Ok(value),
                Ok(Routed::Behind { after_waiting }) => waited |= after_waiting,
                // Every connection to it busy with this process's other
                // statements: the next server serves the read, and the
                // replica stays in use.
                Err(fault) if is_pool_timeout(&fault) && replica.pool_is_full() => {}
                Err(fault) if is_server_failure(&fault) => {
                    replica.failed(&fault, self.settings.retry_after);
                }
                Err(fault) => return Err(ReplicaError::at(replica.name, fault)),
            }
        }
        let primary = &self.primary;
        primary.count_read();
        if required.is_some() {
            primary.count_fallback_read();
        }
        read(primary.batch.clone())
            .await
            .map_err(|fault| ReplicaError::at(primary.name, fault))
    }

    /// Statements per server, the primary first, then the replicas in the
    /// order given to [`connect`](Self::connect).
    pub fn stats(&self) -> Vec<ServerStats> {
        std::iter::once(&self.primary)
            .chain(&self.replicas)
            .map(Server::stats)
            .collect()
    }

    /// The coalesced handle of `R`'s table over these servers: [`Rows`]
    /// as [`Db::rows`] builds it (the same batching, answers and
    /// defaults, with at most [`ReplicaSettings::pool_size`] batches of
    /// each kind in flight), whose batches of reads each go through
    /// [`read`](Self::read) with their keys (on a replica that has
    /// replayed this handle's writes to them, else on the primary), and
    /// whose batches of writes each go through [`write`](Self::write) on
    /// the primary. A `get` that starts after a `save` of its key through
    /// this handle's `Rows` (or [`upsert`](Self::upsert)) returned sees
    /// it; reads in flight are detached on every write through the
    /// primary's [`Db`], as for [`Db::rows`].
    ///
    /// Shared, as [`Db::rows`]: while a clone of it lives, every call on
    /// this handle returns the same one. An error of a server reaches the
    /// caller as [`Error::Replica`](crate::Error::Replica), the server
    /// named (a batch of writes that committed but whose position could
    /// not be read fails each of its callers with
    /// [`ReplicaError::Unpositioned`]: `may_have_committed()` says so).
    ///
    /// Its reads present no position token: a write of another process is
    /// seen through the handles of [`after`](Self::after) (a batch serves
    /// many callers, and one caller's token would hold back the others':
    /// those handles batch only callers of one token).
    ///
    /// ```no_run
    /// use coalesce_sql::replicas::{ReplicaSettings, Replicated};
    /// use std::sync::Arc;
    ///
    /// #[derive(Clone, sqlx::FromRow, coalesce_sql::Record)]
    /// #[record(table = "customers", key(id))]
    /// struct Customer { id: i64, name: String }
    ///
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let servers = Arc::new(
    ///     Replicated::<sqlx::Postgres>::connect(
    ///         "postgres://postgres@127.0.0.1:55432/test",
    ///         &["postgres://postgres@127.0.0.1:55433/test"],
    ///         ReplicaSettings::default(),
    ///     )
    ///     .await?,
    /// );
    /// let customers = servers.rows::<Customer>();
    /// customers.save(Customer { id: 1, name: "Ada".into() }).await?;
    /// // Served where the save has been replayed: the primary, or a replica.
    /// let ada = customers.get(1).await?;
    /// assert_eq!(ada.map(|c| c.name).as_deref(), Some("Ada"));
    /// # Ok(()) }
    /// ```
    pub fn rows<R: TableRow>(self: &Arc<Self>) -> Rows<R> {
        self.handles
            .get_or_build(|| match self.rows_with(RowsOptions::default()) {
                Ok(rows) => rows,
                Err(_) => unreachable!("the default options are valid"),
            })
    }

    /// Like [`rows`](Self::rows), as `options` say (see
    /// [`Db::rows_with`]): a handle of its own, shared by its clones only.
    /// `per_item: true` routes each call alone.
    ///
    /// ```no_run
    /// use coalesce::CachePolicy;
    /// use coalesce_sql::RowsOptions;
    /// # #[derive(Clone, sqlx::FromRow, coalesce_sql::Record)]
    /// # #[record(table = "customers", key(id))]
    /// # struct Customer { id: i64, name: String }
    ///
    /// # fn f(servers: std::sync::Arc<coalesce_sql::replicas::Replicated<sqlx::MySql>>)
    /// # -> Result<(), coalesce::ConfigError> {
    /// let options = RowsOptions { table_name: Some("customers_eu".into()), ..RowsOptions::default() };
    /// let customers = servers.rows_with::<Customer>(options)?;
    /// # Ok(()) }
    /// ```
    pub fn rows_with<R: TableRow>(
        self: &Arc<Self>,
        options: RowsOptions,
    ) -> Result<Rows<R>, ConfigError> {
        DB::rows::<R, _>(OnReplicas {
            replicated: self,
            token: None,
            options,
        })
    }

    /// A position covering every write through this handle that has
    /// returned: its [`write`](Self::write), [`upsert`](Self::upsert) and
    /// [`delete`](Self::delete), and the saves and deletes of its
    /// [`rows`](Self::rows) handles; `None` before the first. The token to
    /// hand to another process (as a string: `Display` and `FromStr`), which
    /// reads after it with [`after`](Self::after) or [`fetch`](Self::fetch).
    ///
    /// ```no_run
    /// # async fn f(servers: std::sync::Arc<coalesce_sql::replicas::Replicated<sqlx::Postgres>>) -> Result<(), coalesce_sql::RowsError> {
    /// # #[derive(Clone, sqlx::FromRow, coalesce_sql::Record)]
    /// # #[record(table = "customers", key(id))]
    /// # struct Customer { id: i64, name: String }
    /// servers.rows::<Customer>().save(Customer { id: 1, name: "Ada".into() }).await?;
    /// let token: Option<String> = servers.last_written().map(|position| position.to_string());
    /// // e.g. "wal:0/3000148", sent with the response, presented by the next request
    /// # Ok(()) }
    /// ```
    pub fn last_written(&self) -> Option<Position> {
        self.written.latest()
    }

    /// A source of [`Rows`] handles whose reads all see what `token`
    /// covers (a write of another process, say: its
    /// [`last_written`](Self::last_written)), besides this handle's own
    /// writes: served by a replica that has replayed it, else by the
    /// primary. Its handles batch only their own callers, who share the
    /// token; writes go to the primary as through [`rows`](Self::rows).
    /// Build one per token (per request that presents one); a repository
    /// made with [`repository!`](crate::repository) takes it as its source.
    ///
    /// A token of the other backend (a MariaDB position on PostgreSQL) is
    /// refused here, as [`ReplicaError::ForeignToken`].
    ///
    /// ```no_run
    /// use coalesce_sql::replicas::Position;
    /// # #[derive(Clone, sqlx::FromRow, coalesce_sql::Record)]
    /// # #[record(table = "customers", key(id))]
    /// # struct Customer { id: i64, name: String }
    /// # async fn f(servers: std::sync::Arc<coalesce_sql::replicas::Replicated<sqlx::Postgres>>) -> Result<(), Box<dyn std::error::Error>> {
    /// let token: Position = "wal:0/3000148".parse()?; // from the request
    /// let customers = servers.after(&token)?.rows::<Customer>();
    /// let ada = customers.get(1).await?; // sees the write the token covers
    /// # Ok(()) }
    /// ```
    pub fn after(self: &Arc<Self>, token: &Position) -> Result<AfterToken<DB>, ReplicaError> {
        if !DB::is_own(token) {
            let token = token.to_string();
            return Err(ReplicaError::ForeignToken { token });
        }
        Ok(AfterToken {
            servers: Arc::clone(self),
            token: token.clone(),
        })
    }

    /// The primary's toolkit handle, for statements that are neither reads
    /// nor writes to remember (migrations, say).
    pub fn primary(&self) -> &Db<DB> {
        &self.primary.batch
    }

    /// The replicas in use now, starting from the next in round-robin order.
    fn replicas_in_turn(&self) -> impl Iterator<Item = &Server<DB>> {
        let count = self.replicas.len();
        let start = self.next_replica.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        (0..count)
            .map(move |offset| &self.replicas[(start + offset) % count])
            .filter(move |replica| replica.in_use(now))
    }

    async fn read_on_replica<T, F, Fut>(
        &self,
        replica: &Server<DB>,
        required: Option<&Position>,
        may_wait: bool,
        read: &mut F,
    ) -> Result<Routed<T>, Fault>
    where
        F: FnMut(Db<DB>) -> Fut,
        Fut: Future<Output = Result<T, Fault>>,
    {
        let Some(position) = required else {
            replica.count_read();
            return Ok(Routed::Served(read(replica.batch.clone()).await?));
        };
        let mut generation = replica.generation();
        if !replica.known_to_cover(generation, position) {
            let mut conn = replica.batch.pool().acquire().await?;
            // Taken after the acquire: if that opened a connection, what
            // was known of this replica no longer counts.
            generation = replica.generation();
            let wait = if may_wait {
                self.settings.wait_for_replay
            } else {
                Duration::ZERO
            };
            let replay = DB::await_replay(&mut conn, position, wait).await?;
            replica.count_position_statements(replay.statements);
            let settings = &self.settings;
            let (reached, lag_bound, retry_after) =
                (replay.reached, settings.lag_bound, settings.retry_after);
            replica.observed(generation, replay.replayed, reached, lag_bound, retry_after);
            if !reached {
                return Ok(Routed::Behind {
                    after_waiting: may_wait,
                });
            }
        }
        replica.count_read();
        let value = read(replica.batch.clone()).await?;
        // A connection opened meanwhile may be to a replica that restarted
        // behind the position: the answer cannot be trusted.
        if replica.generation() != generation {
            return Ok(Routed::Behind {
                after_waiting: false,
            });
        }
        Ok(Routed::Served(value))
    }
}

/// Where a read went on a replica.
enum Routed<T> {
    Served(T),
    /// The replica had not replayed the read's position (after waiting for
    /// it, or at once), or may have fallen back meanwhile.
    Behind {
        after_waiting: bool,
    },
}

/// A [`Replicated`] handle whose [`Rows`] read after a token
/// ([`Replicated::after`]): a [`RowsSource`](crate::RowsSource).
#[derive(Debug)]
pub struct AfterToken<DB: Replication> {
    servers: Arc<Replicated<DB>>,
    token: Position,
}

impl<DB: Replication> Clone for AfterToken<DB> {
    fn clone(&self) -> Self {
        AfterToken {
            servers: Arc::clone(&self.servers),
            token: self.token.clone(),
        }
    }
}

impl<DB: Replication> AfterToken<DB> {
    /// The token every read presents.
    pub fn token(&self) -> &Position {
        &self.token
    }

    /// A coalesced handle of `R`'s table whose reads present the token,
    /// with the default options: a handle of its own (every call builds
    /// one), batching only its own callers.
    pub fn rows<R: TableRow>(&self) -> Rows<R> {
        match self.rows_with(RowsOptions::default()) {
            Ok(rows) => rows,
            Err(_) => unreachable!("the default options are valid"),
        }
    }

    /// Like [`rows`](Self::rows), as `options` say (see [`Db::rows_with`]).
    pub fn rows_with<R: TableRow>(&self, options: RowsOptions) -> Result<Rows<R>, ConfigError> {
        DB::rows::<R, _>(OnReplicas {
            replicated: &self.servers,
            token: Some(&self.token),
            options,
        })
    }
}

impl<DB: Replication> crate::RowsSource for AfterToken<DB> {
    fn rows<R: TableRow>(&self) -> Rows<R> {
        AfterToken::rows(self)
    }

    fn rows_with<R: TableRow>(&self, options: RowsOptions) -> Result<Rows<R>, ConfigError> {
        AfterToken::rows_with(self, options)
    }
}

impl<DB: Replication> crate::RowsSource for Arc<Replicated<DB>> {
    fn rows<R: TableRow>(&self) -> Rows<R> {
        Replicated::rows(self)
    }

    fn rows_with<R: TableRow>(&self, options: RowsOptions) -> Result<Rows<R>, ConfigError> {
        Replicated::rows_with(self, options)
    }
}

/// The read-your-writes identity of a key of `table`.
pub(crate) fn key_id<K: std::hash::Hash>(table: &Table, key: &K) -> KeyId {
    KeyId::new(table.name(), key)
}

/// The read-your-writes identities of a table's keys.
fn key_ids<DB: Replication, K: Key<DB>>(table: &Table, keys: &[K]) -> Vec<KeyId> {
    keys.iter().map(|key| key_id(table, key)).collect()
}

/// The session settings of the server at `url` (its pooler, the
/// statement timeout) and sqlx's options to connect to it.
fn connect_options<DB: Replication>(
    url: &str,
    settings: &ReplicaSettings,
) -> Result<
    (
        SessionSettings,
        <DB::Connection as sqlx::Connection>::Options,
    ),
    sqlx::Error,
> {
    let (pooler, url) = Pooler::from_url(url).map_err(|e| sqlx::Error::Configuration(e.into()))?;
    let session = SessionSettings {
        pooler,
        statement_timeout: settings.statement_timeout,
    };
    Ok((session, session.connect_options::<DB>(&url)?))
}

/// Pool options whose every new connection is set up as `session` says,
/// then bumps `opened`.
fn pool_options<DB: Replication>(
    settings: &ReplicaSettings,
    session: SessionSettings,
    opened: &Arc<AtomicU64>,
) -> PoolOptions<DB> {
    let opened = Arc::clone(opened);
    let options = PoolOptions::new()
        .max_connections(settings.pool_size)
        .after_connect(move |connection, _| {
            let opened = Arc::clone(&opened);
            Box::pin(async move {
                session.set_up::<DB>(connection).await?;
                opened.fetch_add(1, Ordering::AcqRel);
                Ok(())
            })
        });
    crate::ping_after_idle(options, settings.ping_after_idle)
}
