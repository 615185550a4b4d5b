//! How each backend names a commit's position and waits for a replica to
//! replay it: PostgreSQL by WAL location, MariaDB by GTID.

use super::position::{Position, PositionError};
use crate::Dialect;
use std::time::Duration;

/// A backend whose replicas can be asked how far they have replayed.
///
/// Implemented for `sqlx::Postgres` (feature `postgres`) and
/// `sqlx::MySql` (feature `mysql`, MariaDB's GTIDs); sealed.
///
/// ```
/// # #[cfg(feature = "postgres")] {
/// use coalesce_sql::replicas::{Replicated, Replication};
///
/// fn takes_any_backend<DB: Replication>(_: &Replicated<DB>) {}
/// # }
/// ```
pub trait Replication: Dialect + sealed::Sealed {
    /// Whether `position` is of this backend's kind (a token from another
    /// backend never is).
    fn is_own(position: &Position) -> bool;

    /// On the primary, on any connection, after a commit has returned: a
    /// position that covers it (and possibly later commits of others), or
    /// `None` if the server has committed nothing that replicates.
    fn commit_position(
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<Option<Position>, Fault>> + Send;

    /// On a replica: wait at most `wait` for it to replay `position`.
    fn await_replay(
        conn: &mut Self::Connection,
        position: &Position,
        wait: Duration,
    ) -> impl Future<Output = Result<Replay, Fault>> + Send;
}

/// What a replica said when asked to reach a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// Whether it has replayed the position.
    pub reached: bool,
    /// How far it has replayed, as last seen (`None` if it did not say).
    pub replayed: Option<Position>,
    /// Statements the check took.
    pub statements: u64,
}

/// What went wrong inside a routed read or write, before the handle names
/// the server it happened on (see [`ReplicaError`](super::ReplicaError)).
///
/// The read and write closures return it; `?` converts the driver's and
/// the toolkit's errors:
///
/// ```
/// use coalesce_sql::replicas::Fault;
///
/// fn driver() -> Result<(), sqlx::Error> { Err(sqlx::Error::PoolTimedOut) }
/// fn in_a_closure() -> Result<(), Fault> { Ok(driver()?) }
/// assert!(matches!(in_a_closure(), Err(Fault::Database(_))));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    /// A statement of your own failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A toolkit operation ([`Db`](crate::Db)) failed.
    #[error(transparent)]
    Batch(#[from] crate::Error),
    /// The server answered with a position that does not parse.
    #[error(transparent)]
    Position(#[from] PositionError),
}

mod sealed {
    pub trait Sealed {}
    #[cfg(feature = "postgres")]
    impl Sealed for sqlx::Postgres {}
    #[cfg(feature = "mysql")]
    impl Sealed for sqlx::MySql {}
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::{Fault, Position, Replay, Replication};
    use crate::replicas::position::Lsn;
    use sqlx::{PgConnection, Postgres, Row};
    use std::time::Duration;
    use tokio::time::Instant;

    /// PostgreSQL 15 has no server-side wait for a WAL location, so the
    /// replica is polled, at first often (a replica is usually milliseconds
    /// behind), then less.
    const FIRST_POLL: Duration = Duration::from_millis(1);
    const LONGEST_POLL: Duration = Duration::from_millis(10);

    /// The one text column of a parameterless query, sent as a simple
    /// query: one round trip, nothing prepared, so it runs as well through
    /// a transaction pooler as directly (a prepared statement, unnamed,
    /// takes two exchanges there, which a pooler may give to different
    /// servers), and planning a call of one function costs nothing.
    async fn text(
        conn: &mut PgConnection,
        sql: &'static str,
    ) -> Result<Option<String>, sqlx::Error> {
        sqlx::raw_sql(sql).fetch_one(conn).await?.try_get(0)
    }

    impl Replication for Postgres {
        fn is_own(position: &Position) -> bool {
            matches!(position, Position::Wal(_))
        }

        async fn commit_position(conn: &mut PgConnection) -> Result<Option<Position>, Fault> {
            // The insert location, not pg_current_wal_lsn() (the write
            // location): with synchronous_commit = off a commit returns
            // before its record is written, and only the insert location is
            // certain to be past it. It is global: any connection will do.
            let lsn = text(conn, "SELECT pg_current_wal_insert_lsn()::text").await?;
            let lsn = lsn.ok_or_else(|| sqlx::Error::ColumnNotFound("a WAL location".into()))?;
            Ok(Some(Position::Wal(lsn.parse()?)))
        }

        async fn await_replay(
            conn: &mut PgConnection,
            position: &Position,
            wait: Duration,
        ) -> Result<Replay, Fault> {
            let deadline = Instant::now() + wait;
            let mut pause = FIRST_POLL;
            let mut statements = 0;
            loop {
                // NULL on a server that is not (or no longer) a replica: it
                // replays nothing, so no position is ever reached there.
                let lsn = text(conn, "SELECT pg_last_wal_replay_lsn()::text").await?;
                statements += 1;
                let replayed = lsn
                    .map(|lsn| lsn.parse::<Lsn>())
                    .transpose()?
                    .map(Position::Wal);
                let reached = replayed.as_ref().is_some_and(|at| at.covers(position));
                let now = Instant::now();
                if reached || now >= deadline {
                    return Ok(Replay {
                        reached,
                        replayed,
                        statements,
                    });
                }
                tokio::time::sleep(pause.min(deadline - now)).await;
                pause = (pause * 2).min(LONGEST_POLL);
            }
        }
    }
}

#[cfg(feature = "mysql")]
mod mariadb {
    use super::{Fault, Position, Replay, Replication};
    use crate::replicas::position::GtidPosition;
    use sqlx::{MySql, MySqlConnection};
    use std::time::Duration;

    impl Replication for MySql {
        fn is_own(position: &Position) -> bool {
            matches!(position, Position::Gtid(_))
        }

        async fn commit_position(conn: &mut MySqlConnection) -> Result<Option<Position>, Fault> {
            // The binary log's position, global: it covers every commit that
            // has returned, on any connection (@@last_gtid would be exact,
            // but only on the committing session, which the toolkit's
            // writes do not hand out).
            let gtid: String = sqlx::query_scalar("SELECT CAST(@@GLOBAL.gtid_binlog_pos AS CHAR)")
                .fetch_one(conn)
                .await?;
            let gtid: GtidPosition = gtid.parse()?;
            Ok((!gtid.is_empty()).then_some(Position::Gtid(gtid)))
        }

        async fn await_replay(
            conn: &mut MySqlConnection,
            position: &Position,
            wait: Duration,
        ) -> Result<Replay, Fault> {
            let Position::Gtid(gtid) = position else {
                // A WAL location is never reached on MariaDB.
                return Ok(Replay {
                    reached: false,
                    replayed: None,
                    statements: 0,
                });
            };
            // One round trip: the server waits (0 = reached, -1 = timed
            // out), then reports where it is.
            let (outcome, replayed): (i64, String) = sqlx::query_as(
                "SELECT CAST(MASTER_GTID_WAIT(?, ?) AS SIGNED), CAST(@@GLOBAL.gtid_slave_pos AS CHAR)",
            )
            .bind(gtid.to_string())
            .bind(wait.as_secs_f64())
            .fetch_one(conn)
            .await?;
            Ok(Replay {
                reached: outcome == 0,
                replayed: Some(Position::Gtid(replayed.parse()?)),
                statements: 1,
            })
        }
    }
}
