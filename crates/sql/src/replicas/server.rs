//! One server behind a [`Replicated`](super::Replicated) handle: its
//! toolkit handle, its statement counters and, for a replica, what is known of its health
//! and of how far it has replayed.

use super::position::Position;
use crate::{Db, Dialect, SessionSettings};
use std::{
    fmt,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// Which server of a [`Replicated`](super::Replicated) handle.
///
/// ```
/// use coalesce_sql::replicas::ServerName;
///
/// assert_eq!(ServerName::Primary.to_string(), "primary");
/// assert_eq!(ServerName::Replica(0).to_string(), "replica 0");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerName {
    /// The server writes go to.
    Primary,
    /// A replica, by its index in the list given at connection.
    Replica(usize),
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerName::Primary => f.write_str("primary"),
            ServerName::Replica(index) => write!(f, "replica {index}"),
        }
    }
}

/// Why a replica was taken out of use.
///
/// ```
/// use coalesce_sql::replicas::OutOfUse;
/// use std::time::Duration;
///
/// let lagging = OutOfUse::Lagging { behind_for: Duration::from_secs(10) };
/// assert_eq!(lagging.to_string(), "behind the positions reads needed for 10s");
/// assert_eq!(OutOfUse::Failed("connection refused".into()).to_string(), "failed: connection refused");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutOfUse {
    /// A read or a position check on it failed because the server did
    /// (down, restarting, unreachable): the error.
    Failed(String),
    /// It did not reach the positions reads needed in time for at least
    /// [`ReplicaSettings::lag_bound`](super::ReplicaSettings::lag_bound).
    Lagging {
        /// How long it had been behind.
        behind_for: Duration,
    },
}

impl fmt::Display for OutOfUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutOfUse::Failed(error) => write!(f, "failed: {error}"),
            OutOfUse::Lagging { behind_for } => {
                write!(f, "behind the positions reads needed for {behind_for:?}")
            }
        }
    }
}

/// What one server was asked to do, since the handle was made.
///
/// ```
/// use coalesce_sql::replicas::{ServerName, ServerStats};
///
/// let stats = ServerStats { server: ServerName::Primary, reads: 2, writes: 1,
///     batch_statements: 3, position_statements: 1, fallback_reads: 1, failures: 0,
///     last_out_of_use: None };
/// assert_eq!(stats.statements(), 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStats {
    /// The server.
    pub server: ServerName,
    /// Reads it served (each one call of a read closure or one
    /// [`fetch`](super::Replicated::fetch), whatever its number of keys).
    pub reads: u64,
    /// Writes made on it (the primary only).
    pub writes: u64,
    /// Statements the toolkit sent it for those reads and writes (see
    /// [`Db::statements`]); SQL of your own on [`Db::pool`] is not
    /// counted here.
    pub batch_statements: u64,
    /// Statements spent on positions: reading a commit's position on the
    /// primary, checking or waiting for one on a replica.
    pub position_statements: u64,
    /// Of `reads`, those that needed a position no replica had replayed in
    /// time (the primary only).
    pub fallback_reads: u64,
    /// Reads or checks that failed because the server did (replicas only:
    /// each one took the replica out of use for a while).
    pub failures: u64,
    /// Why it was last taken out of use (replicas only), if ever.
    pub last_out_of_use: Option<OutOfUse>,
}

impl ServerStats {
    /// Statements sent to it by the toolkit and for positions.
    pub fn statements(&self) -> u64 {
        self.batch_statements + self.position_statements
    }
}

#[derive(Debug, Default)]
struct Counters {
    reads: AtomicU64,
    writes: AtomicU64,
    position_statements: AtomicU64,
    fallback_reads: AtomicU64,
    failures: AtomicU64,
}

/// How far a replica is known to have replayed, and for which generation
/// of its connections that knowledge holds.
#[derive(Debug, Default)]
struct Health {
    /// Not used for reads until then (it failed, or lagged too long).
    skipped_until: Option<Instant>,
    /// Since when it has failed to reach positions in time.
    behind_since: Option<Instant>,
    /// Replayed at least this far, as seen under that connection generation.
    replayed: Option<(u64, Position)>,
    /// Why it was last taken out of use.
    last_out_of_use: Option<OutOfUse>,
}

/// One server: its toolkit handle and what is known about it.
#[derive(Debug)]
pub(crate) struct Server<DB: Dialect> {
    pub(crate) name: ServerName,
    pub(crate) batch: Db<DB>,
    counters: Counters,
    health: Mutex<Health>,
    /// Bumped by the pool's `after_connect` hook: connections ever opened.
    connections_opened: Arc<AtomicU64>,
}

impl<DB: Dialect> Server<DB> {
    /// A server over `pool`, whose connections are used as `session`
    /// says and whose `after_connect` hook bumps `connections_opened`.
    pub(crate) fn new(
        name: ServerName,
        pool: sqlx::Pool<DB>,
        session: SessionSettings,
        connections_opened: Arc<AtomicU64>,
    ) -> Self {
        Server {
            name,
            batch: Db::new(pool).with_session_settings(session),
            counters: Counters::default(),
            health: Mutex::new(Health::default()),
            connections_opened,
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether reads may be sent to it now.
    pub(crate) fn in_use(&self, now: Instant) -> bool {
        self.health().skipped_until.is_none_or(|until| now >= until)
    }

    /// The generation of its connections: taken after a connection was
    /// acquired, it changes if any connection was opened since.
    pub(crate) fn generation(&self) -> u64 {
        self.connections_opened.load(Ordering::Acquire)
    }

    /// Whether it is known, within `generation`, to have replayed `position`.
    ///
    /// Knowledge is dropped whenever a connection is opened to it: a replica
    /// that restarted after a crash may reopen behind a point it had already
    /// shown, and a restart forces every connection to be reopened.
    pub(crate) fn known_to_cover(&self, generation: u64, position: &Position) -> bool {
        self.health()
            .replayed
            .as_ref()
            .is_some_and(|(seen, replayed)| *seen == generation && replayed.covers(position))
    }

    /// Record what a check saw, and whether it reached its position in time.
    pub(crate) fn observed(
        &self,
        generation: u64,
        replayed: Option<Position>,
        reached: bool,
        lag_bound: Duration,
        retry_after: Duration,
    ) {
        let now = Instant::now();
        let mut health = self.health();
        if let Some(replayed) = replayed {
            let newer = match &health.replayed {
                Some((seen, known)) => *seen != generation || replayed.covers(known),
                None => true,
            };
            // Only knowledge of the current generation is worth keeping.
            if newer && generation == self.generation() {
                health.replayed = Some((generation, replayed));
            }
        }
        if reached {
            health.behind_since = None;
        } else {
            let behind_since = *health.behind_since.get_or_insert(now);
            let behind_for = now.duration_since(behind_since);
            if behind_for >= lag_bound {
                self.take_out(&mut health, OutOfUse::Lagging { behind_for }, retry_after);
            }
        }
    }

    /// Take it out of use for `retry_after` after it failed with `error`.
    pub(crate) fn failed(&self, error: &dyn fmt::Display, retry_after: Duration) {
        self.counters.failures.fetch_add(1, Ordering::Relaxed);
        let mut health = self.health();
        health.replayed = None;
        self.take_out(
            &mut health,
            OutOfUse::Failed(error.to_string()),
            retry_after,
        );
    }

    /// Skip it for `retry_after`, saying why: an operator sees a replica
    /// that stops serving reads in the log, not only in a statement count.
    fn take_out(&self, health: &mut Health, reason: OutOfUse, retry_after: Duration) {
        tracing::warn!(
            server = %self.name,
            %reason,
            ?retry_after,
            "replica taken out of use"
        );
        health.skipped_until = Some(Instant::now() + retry_after);
        health.last_out_of_use = Some(reason);
    }

    /// Whether every connection its pool may open is open (idle or busy):
    /// a pool timeout then means they were all busy with other statements
    /// of this process for the whole wait, the client's own contention,
    /// where a pool with room left timed out opening a connection to the
    /// server.
    pub(crate) fn pool_is_full(&self) -> bool {
        let pool = self.batch.pool();
        pool.size() >= pool.options().get_max_connections()
    }

    pub(crate) fn count_read(&self) {
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_fallback_read(&self) {
        self.counters.fallback_reads.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_write(&self) {
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_position_statements(&self, statements: u64) {
        self.counters
            .position_statements
            .fetch_add(statements, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> ServerStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ServerStats {
            server: self.name,
            reads: load(&self.counters.reads),
            writes: load(&self.counters.writes),
            batch_statements: self.batch.statements(),
            position_statements: load(&self.counters.position_statements),
            fallback_reads: load(&self.counters.fallback_reads),
            failures: load(&self.counters.failures),
            last_out_of_use: self.health().last_out_of_use.clone(),
        }
    }
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use super::*;

    fn position(token: &str) -> Position {
        token.parse().expect("test token parses")
    }

    /// A server whose pool never connects (nothing listens on port 1).
    fn server() -> (Server<sqlx::Postgres>, Arc<AtomicU64>) {
        let pool = sqlx::PgPool::connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .expect("the URL parses");
        let opened = Arc::new(AtomicU64::new(0));
        let server = Server::new(
            ServerName::Replica(0),
            pool,
            SessionSettings::default(),
            Arc::clone(&opened),
        );
        (server, opened)
    }

    const FOREVER: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn knowledge_holds_until_a_connection_is_opened() {
        let (server, opened) = server();
        let generation = server.generation();
        server.observed(
            generation,
            Some(position("wal:0/20")),
            true,
            FOREVER,
            FOREVER,
        );
        assert!(server.known_to_cover(generation, &position("wal:0/10")));
        assert!(!server.known_to_cover(generation, &position("wal:0/30")));
        opened.fetch_add(1, Ordering::AcqRel);
        let generation = server.generation();
        assert!(!server.known_to_cover(generation, &position("wal:0/10")));
    }

    #[tokio::test]
    async fn a_check_from_an_older_generation_is_not_kept() {
        let (server, opened) = server();
        let before = server.generation();
        opened.fetch_add(1, Ordering::AcqRel);
        server.observed(before, Some(position("wal:0/20")), true, FOREVER, FOREVER);
        let now = server.generation();
        assert!(!server.known_to_cover(now, &position("wal:0/10")));
        assert!(!server.known_to_cover(before, &position("wal:0/10")));
    }

    #[tokio::test]
    async fn a_failure_takes_the_replica_out_of_use_and_forgets_it() {
        let (server, _) = server();
        let generation = server.generation();
        server.observed(
            generation,
            Some(position("wal:0/20")),
            true,
            FOREVER,
            FOREVER,
        );
        server.failed(&"connection refused", FOREVER);
        assert!(!server.in_use(Instant::now()));
        assert!(server.in_use(Instant::now() + FOREVER));
        assert!(!server.known_to_cover(generation, &position("wal:0/10")));
        assert_eq!(server.stats().failures, 1);
        let reason = OutOfUse::Failed("connection refused".into());
        assert_eq!(server.stats().last_out_of_use, Some(reason));
    }

    #[tokio::test]
    async fn a_replica_behind_past_the_lag_bound_says_so() {
        let (server, _) = server();
        let generation = server.generation();
        assert_eq!(server.stats().last_out_of_use, None);
        server.observed(generation, None, false, Duration::ZERO, FOREVER);
        assert!(!server.in_use(Instant::now()));
        let reason = server.stats().last_out_of_use;
        assert!(
            matches!(reason, Some(OutOfUse::Lagging { .. })),
            "{reason:?}"
        );
        assert_eq!(server.stats().failures, 0);
    }
}
