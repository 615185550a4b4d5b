//! Read replicas with read-your-writes: one handle over a primary and any
//! number of replicas that sends reads to replicas, writes to the primary,
//! and never answers a read from a replica that has not replayed a write
//! the read must see.
//!
//! # The guarantee
//!
//! A read through [`Replicated::read`] sees every write that
//!
//! - committed through [`Replicated::write`] **on the same handle** to any
//!   of the read's keys (as [`KeyId`]s) before the read started, or
//! - is covered by the position token the read presents (the
//!   [`Written::position`] of a write made anywhere, through any handle or
//!   process, on the same primary).
//!
//! The read is served by a replica that is known to have replayed that
//! position, or that replays it within [`ReplicaSettings::wait_for_replay`];
//! otherwise by the primary. Nothing else is promised: a read of keys that
//! no write of this handle touched, without a token, may be answered by a
//! lagging replica (that is what replicas are for). A write whose call
//! returned an error is not covered.
//!
//! A key's position is remembered for the life of the handle, in a fixed
//! number of slots ([`ReplicaSettings::remembered_slots`]; keys sharing a
//! slot wait for each other's writes, never for less than their own). Once
//! a replica has been seen past a position, reads needing it cost nothing
//! extra there; that knowledge is dropped whenever the pool opens a new
//! connection to the replica (as after its restart).
//!
//! # Cost
//!
//! A read whose keys were not written here and that carries no token goes
//! straight to a replica: no extra statement. A read that needs a position
//! the chosen replica is not known to have reached costs one check (MariaDB:
//! `MASTER_GTID_WAIT`, which also waits) or a few polls (PostgreSQL:
//! `pg_last_wal_replay_lsn()`) first. A write costs one statement after its
//! commit, to read the commit's position.
//!
//! # Failover
//!
//! A replica whose connection or server fails is skipped for
//! [`ReplicaSettings::retry_after`] (the read that met the failure goes on
//! to the next server); so is one that failed to reach positions in time
//! for longer than [`ReplicaSettings::lag_bound`]. After that it is tried
//! again.
//!
//! ```no_run
//! # #[cfg(feature = "postgres")]
//! # async fn demo() -> Result<(), coalesce_sql::replicas::ReplicaError> {
//! use coalesce_sql::replicas::{KeyId, Replicated, ReplicaSettings};
//!
//! let db = Replicated::<sqlx::Postgres>::connect(
//!     "postgres://postgres@127.0.0.1:55432/test",
//!     &["postgres://postgres@127.0.0.1:55433/test"],
//!     ReplicaSettings::default(),
//! )
//! .await?;
//!
//! let key = KeyId::new("notes", &7);
//! let written = db
//!     .write(&[key], |conn| Box::pin(async move {
//!         sqlx::query("UPDATE notes SET body = 'new' WHERE id = 7").execute(conn).await
//!     }))
//!     .await?;
//!
//! // Sees 'new': from a replica that has replayed the update, or from the primary.
//! let body: String = db
//!     .read(&[key], None, |mut conn| async move {
//!         sqlx::query_scalar("SELECT body FROM notes WHERE id = 7").fetch_one(&mut *conn).await
//!     })
//!     .await?;
//!
//! // Another process, given the token, sees it too.
//! let token = written.position.map(|p| p.to_string());
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
pub use server::{ServerName, ServerStats};

use error::is_server_failure;
use futures_core::future::BoxFuture;
use memory::WrittenPositions;
use server::Server;
use sqlx::{
    Acquire,
    pool::{PoolConnection, PoolOptions},
};
use std::{
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
    /// Slots of the written-key memory (16 bytes and up each; see the
    /// module documentation).
    pub remembered_slots: usize,
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
        }
    }
}

/// What a write returned, and the position it committed at.
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
    /// What the write closure returned.
    pub value: T,
    /// The commit's position; `None` if the transaction wrote nothing that
    /// replicates.
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
}

impl<DB: Replication> Replicated<DB> {
    /// Connect to the primary (now: an unreachable primary is an error) and
    /// to each replica (lazily: a replica that is down is skipped until it
    /// is up).
    pub async fn connect(
        primary_url: &str,
        replica_urls: &[&str],
        settings: ReplicaSettings,
    ) -> Result<Self, ReplicaError> {
        let primary = ServerName::Primary;
        let opened = Arc::new(AtomicU64::new(0));
        let pool = pool_options(&settings, &opened)
            .connect(primary_url)
            .await
            .map_err(|source| ReplicaError::Database {
                server: primary,
                source,
            })?;
        let primary = Server::new(primary, pool, opened);
        let mut replicas = Vec::with_capacity(replica_urls.len());
        for (index, url) in replica_urls.iter().enumerate() {
            let name = ServerName::Replica(index);
            let opened = Arc::new(AtomicU64::new(0));
            let pool = pool_options(&settings, &opened)
                .acquire_timeout(settings.replica_acquire_timeout)
                .connect_lazy(url)
                .map_err(|source| ReplicaError::Database {
                    server: name,
                    source,
                })?;
            replicas.push(Server::new(name, pool, opened));
        }
        Ok(Replicated {
            primary,
            replicas,
            written: WrittenPositions::new(settings.remembered_slots),
            next_replica: AtomicUsize::new(0),
            settings,
        })
    }

    /// Run `write` in a transaction on the primary, commit it, and remember
    /// its position for `keys` (the keys it wrote).
    ///
    /// As with sqlx's `Connection::transaction`, the closure's future may
    /// borrow only the connection: move the rows it writes into it. See the
    /// [module documentation](self) for an example.
    pub async fn write<T, F>(&self, keys: &[KeyId], write: F) -> Result<Written<T>, ReplicaError>
    where
        F: for<'c> FnOnce(&'c mut DB::Connection) -> BoxFuture<'c, Result<T, sqlx::Error>>,
    {
        let primary = &self.primary;
        let failed = |source| ReplicaError::Database {
            server: primary.name,
            source,
        };
        let mut conn = primary.pool.acquire().await.map_err(failed)?;
        let mut transaction = conn.begin().await.map_err(failed)?;
        let value = write(&mut transaction).await.map_err(failed)?;
        transaction.commit().await.map_err(failed)?;
        primary.count_write();
        let position =
            DB::commit_position(&mut conn)
                .await
                .map_err(|fault| ReplicaError::Unpositioned {
                    source: Box::new(ReplicaError::at(primary.name, fault)),
                })?;
        primary.count_position_statements(1);
        if let Some(position) = &position {
            self.written
                .record(keys, position)
                .map_err(|source| ReplicaError::Unpositioned {
                    source: Box::new(ReplicaError::Position {
                        server: primary.name,
                        source,
                    }),
                })?;
        }
        Ok(Written { value, position })
    }

    /// Run `read` on a connection to a replica that has replayed every
    /// write of this handle to `keys` and the position `token`, else to the
    /// primary.
    ///
    /// `read` may be called again (on another server) after a replica
    /// failed under it, so it must not change anything. See the [module
    /// documentation](self) for an example.
    pub async fn read<T, F, Fut>(
        &self,
        keys: &[KeyId],
        token: Option<&Position>,
        mut read: F,
    ) -> Result<T, ReplicaError>
    where
        F: FnMut(PoolConnection<DB>) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let foreign = |token: &Position| ReplicaError::ForeignToken {
            token: token.to_string(),
        };
        if let Some(token) = token.filter(|token| !DB::is_own(token)) {
            return Err(foreign(token));
        }
        // The memory only holds this backend's positions, so only a token
        // could be of another kind, and it was checked.
        let required = self.written.required(keys, token).map_err(|_| {
            token.map_or(
                ReplicaError::ForeignToken {
                    token: String::new(),
                },
                foreign,
            )
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
                Err(fault) if is_server_failure(&fault) => {
                    replica.failed(self.settings.retry_after);
                }
                Err(fault) => return Err(ReplicaError::at(replica.name, fault)),
            }
        }
        let primary = &self.primary;
        let failed = |source| ReplicaError::Database {
            server: primary.name,
            source,
        };
        let conn = primary.pool.acquire().await.map_err(failed)?;
        primary.count_read();
        if required.is_some() {
            primary.count_fallback_read();
        }
        read(conn).await.map_err(failed)
    }

    /// Statements per server, the primary first, then the replicas in the
    /// order given to [`connect`](Self::connect).
    pub fn stats(&self) -> Vec<ServerStats> {
        std::iter::once(&self.primary)
            .chain(&self.replicas)
            .map(Server::stats)
            .collect()
    }

    /// The primary's pool, for statements that are neither a keyed read nor
    /// a write to remember (migrations, say).
    pub fn primary(&self) -> &sqlx::Pool<DB> {
        &self.primary.pool
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
        F: FnMut(PoolConnection<DB>) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let mut conn = replica.pool.acquire().await?;
        if let Some(position) = required {
            // Taken after the acquire: if that opened a connection, what was
            // known of this replica no longer counts.
            let generation = replica.generation();
            if !replica.known_to_cover(generation, position) {
                let wait = if may_wait {
                    self.settings.wait_for_replay
                } else {
                    Duration::ZERO
                };
                let replay = DB::await_replay(&mut conn, position, wait).await?;
                replica.count_position_statements(replay.statements);
                replica.observed(
                    generation,
                    replay.replayed,
                    replay.reached,
                    self.settings.lag_bound,
                    self.settings.retry_after,
                );
                if !replay.reached {
                    return Ok(Routed::Behind {
                        after_waiting: may_wait,
                    });
                }
            }
        }
        replica.count_read();
        Ok(Routed::Served(read(conn).await?))
    }
}

/// Where a read went on a replica.
enum Routed<T> {
    Served(T),
    /// The replica had not replayed the read's position (after waiting for
    /// it, or at once).
    Behind {
        after_waiting: bool,
    },
}

/// Pool options whose every new connection bumps `opened`.
fn pool_options<DB: sqlx::Database>(
    settings: &ReplicaSettings,
    opened: &Arc<AtomicU64>,
) -> PoolOptions<DB> {
    let opened = Arc::clone(opened);
    PoolOptions::new()
        .max_connections(settings.pool_size)
        .after_connect(move |_, _| {
            opened.fetch_add(1, Ordering::AcqRel);
            Box::pin(async { Ok(()) })
        })
}
