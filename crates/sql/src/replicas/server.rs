//! One server behind a [`Replicated`](super::Replicated) handle: its
//! toolkit handle, its statement counters and, for a replica, what is known of its health
//! and of how far it has replayed.

use super::position::Position;
use crate::{Db, Dialect};
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

/// What one server was asked to do, since the handle was made.
///
/// ```
/// use coalesce_sql::replicas::{ServerName, ServerStats};
///
/// let stats = ServerStats { server: ServerName::Primary, reads: 2, writes: 1,
///     batch_statements: 3, position_statements: 1, fallback_reads: 1, failures: 0 };
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
    /// A server over `pool`, whose `after_connect` hook bumps
    /// `connections_opened`.
    pub(crate) fn new(
        name: ServerName,
        pool: sqlx::Pool<DB>,
        connections_opened: Arc<AtomicU64>,
    ) -> Self {
        Server {
            name,
            batch: Db::new(pool),
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
            if now.duration_since(behind_since) >= lag_bound {
                health.skipped_until = Some(now + retry_after);
            }
        }
    }

    /// Take it out of use for `retry_after` after it failed.
    pub(crate) fn failed(&self, retry_after: Duration) {
        self.counters.failures.fetch_add(1, Ordering::Relaxed);
        let mut health = self.health();
        health.skipped_until = Some(Instant::now() + retry_after);
        health.replayed = None;
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
        let server = Server::new(ServerName::Replica(0), pool, Arc::clone(&opened));
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
        server.failed(FOREVER);
        assert!(!server.in_use(Instant::now()));
        assert!(server.in_use(Instant::now() + FOREVER));
        assert!(!server.known_to_cover(generation, &position("wal:0/10")));
        assert_eq!(server.stats().failures, 1);
    }
}
