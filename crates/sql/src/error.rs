//! The crate's one error type.
//!
//! A write ends in one of three ways, and the error says which:
//! - `Ok`: everything was written (one transaction, or one statement).
//! - [`Error::Database`], [`Error::TooLarge`], [`Error::BadTable`]: it
//!   failed and **nothing was written** (the transaction rolled back, or the
//!   failing statement ran on its own and the server refused it).
//! - [`Error::CommitOutcomeUnknown`]: the connection failed after the write
//!   reached the server in a form that commits (its `COMMIT`, or a single
//!   auto-committed statement) and before the server answered; the rows **may
//!   or may not** be written. Read them back, or rely on the write being
//!   idempotent (an upsert is) and run it again.

use std::fmt;

/// Which batched operation failed.
///
/// ```
/// assert_eq!(coalesce_sql::Operation::Upsert.to_string(), "upsert");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A keyed read ([`Db::fetch`](crate::Db::fetch)).
    Fetch,
    /// A bulk upsert ([`Db::upsert`](crate::Db::upsert)).
    Upsert,
    /// A bulk delete ([`Db::delete`](crate::Db::delete)).
    Delete,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Fetch => "fetch",
            Self::Upsert => "upsert",
            Self::Delete => "delete",
        })
    }
}

/// Where in a batched operation a statement failed: its chunk (1-based)
/// out of how many, or the `BEGIN`/`COMMIT` around them.
///
/// ```
/// use coalesce_sql::Step;
///
/// assert_eq!(Step::Chunk { index: 2, of: 3 }.to_string(), "chunk 2 of 3");
/// assert_eq!(Step::Commit.to_string(), "COMMIT");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Asking the pool for a connection.
    Connect,
    /// Reading the server's limits (once per pool).
    Limits,
    /// Opening the transaction.
    Begin,
    /// The statement of one chunk.
    Chunk {
        /// 1-based position of the chunk.
        index: usize,
        /// How many chunks the call was split into.
        of: usize,
    },
    /// Committing the transaction.
    Commit,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect => f.write_str("acquiring a connection"),
            Self::Limits => f.write_str("reading the server's limits"),
            Self::Begin => f.write_str("BEGIN"),
            Self::Chunk { index, of } => write!(f, "chunk {index} of {of}"),
            Self::Commit => f.write_str("COMMIT"),
        }
    }
}

/// An engine limit a statement must stay within.
///
/// ```
/// let limit = coalesce_sql::Limit::Binds(32_766);
/// assert_eq!(limit.to_string(), "the limit of 32766 bind parameters per statement");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Bind parameters in one statement (MySQL 65,535; SQLite 32,766).
    Binds(usize),
    /// Bytes of one statement's parameters: MySQL/MariaDB's
    /// `max_allowed_packet` as the server reports it, PostgreSQL's 1 GiB
    /// message limit.
    Bytes(usize),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Binds(max) => write!(f, "the limit of {max} bind parameters per statement"),
            Self::Bytes(max) => write!(f, "the limit of {max} bytes per statement (packet size)"),
        }
    }
}

/// Everything that can go wrong in this crate.
///
/// ```
/// use coalesce_sql::{Error, Limit};
///
/// let error = Error::TooLarge { table: "orders".into(), size: 20_000_000, limit: Limit::Bytes(16_777_216) };
/// assert!(error.to_string().contains("16777216"));
/// assert!(!error.may_have_committed());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database refused a statement, or the connection failed before
    /// anything could commit. Nothing was written.
    #[error(
        "{operation} on table {table} failed at {step}: {}",
        ServerMessage(source)
    )]
    Database {
        /// The operation.
        operation: Operation,
        /// The table, as described by the caller.
        table: String,
        /// Where it failed.
        step: Step,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// One row or key alone is larger than a statement may be, so no
    /// split can send it. Nothing was written.
    #[error(
        "a single row or key of table {table} needs {size} (bytes or binds) and exceeds {limit}"
    )]
    TooLarge {
        /// The table.
        table: String,
        /// What the row or key needs, in the unit of `limit`.
        size: usize,
        /// The limit it exceeds.
        limit: Limit,
    },
    /// The connection failed while a committing statement was in flight:
    /// the write may or may not have been applied (see the module docs).
    #[error(
        "{operation} on table {table}: the connection failed at {step}, after the write was sent; it may or may not have been committed: {}",
        ServerMessage(source)
    )]
    CommitOutcomeUnknown {
        /// The operation.
        operation: Operation,
        /// The table.
        table: String,
        /// The committing step (`COMMIT`, or the single chunk of an
        /// auto-committed write).
        step: Step,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A key or value the database would refuse, known without sending it
    /// (a NUL byte in PostgreSQL text); reported per item by
    /// [`Db::fetch_each`](crate::Db::fetch_each) and
    /// [`Db::upsert_each`](crate::Db::upsert_each). Nothing was sent
    /// for it.
    #[error("a key or value of table {table} cannot be sent: {reason}")]
    Refused {
        /// The table.
        table: String,
        /// Why.
        reason: &'static str,
    },
    /// The table description cannot be used: no key column, an empty or
    /// duplicated column name, a NUL in a name.
    #[error("bad description of table {table:?}: {reason}")]
    BadTable {
        /// The table name as given.
        table: String,
        /// What is wrong.
        reason: String,
    },
    /// A read or write of a [`Rows`](crate::Rows) handle over read
    /// replicas ([`Replicated::rows`](crate::replicas::Replicated::rows))
    /// failed: on which server, and why (the toolkit's error of that
    /// server is inside, as [`ReplicaError::Batch`](crate::replicas::ReplicaError::Batch)).
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    #[error(transparent)]
    Replica(Box<crate::replicas::ReplicaError>),
}

impl Error {
    /// Whether the write may have been applied although it returned this
    /// error ([`Error::CommitOutcomeUnknown`], also from a replicated
    /// handle's primary, and a replicated write that committed but whose
    /// position could not be read; see the example of [`Error`]).
    pub fn may_have_committed(&self) -> bool {
        match self {
            Self::CommitOutcomeUnknown { .. } => true,
            #[cfg(any(feature = "postgres", feature = "mysql"))]
            Self::Replica(error) => match &**error {
                // It committed; only its position is unknown.
                crate::replicas::ReplicaError::Unpositioned { .. } => true,
                crate::replicas::ReplicaError::Batch { source, .. } => source.may_have_committed(),
                _ => false,
            },
            _ => false,
        }
    }

    /// Whether the database aborted the work to break a deadlock or a
    /// serialization conflict (SQLSTATE `40001`/`40P01`): nothing was
    /// written and running it again will likely succeed. Writes through
    /// [`Db`](crate::Db) are retried on it already.
    ///
    /// ```
    /// let bad = coalesce_sql::Error::BadTable { table: "t".into(), reason: "no key column".into() };
    /// assert!(!bad.is_conflict());
    /// ```
    pub fn is_conflict(&self) -> bool {
        match self {
            Self::Database { source, .. } => crate::retry::is_conflict(source),
            #[cfg(any(feature = "postgres", feature = "mysql"))]
            Self::Replica(error) => match &**error {
                crate::replicas::ReplicaError::Batch { source, .. } => source.is_conflict(),
                _ => false,
            },
            _ => false,
        }
    }
}

/// A driver error as a person reads it: the database's own message, without
/// sqlx's `error returned from database: ` prefix or the position in
/// PostgreSQL's C source that sqlx appends to it (`relation "t" does not
/// exist at line 1449`). Any other driver error (I/O, pool, decoding) reads
/// as sqlx writes it. Every error of this crate shows its driver error so.
///
/// ```
/// use coalesce_sql::ServerMessage;
///
/// let error = sqlx::Error::PoolTimedOut;
/// assert_eq!(ServerMessage(&error).to_string(), error.to_string());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ServerMessage<'a>(pub &'a sqlx::Error);

impl fmt::Display for ServerMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            sqlx::Error::Database(error) => f.write_str(error.message()),
            other => other.fmt(f),
        }
    }
}

/// Whether a driver error means the connection itself failed (as opposed
/// to the server answering with an error), so a statement in flight may
/// have run to completion without the client hearing of it.
pub(crate) fn is_connection_lost(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lost_connections_make_a_commit_ambiguous() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(is_connection_lost(&io));
        assert!(is_connection_lost(&sqlx::Error::WorkerCrashed));
        assert!(!is_connection_lost(&sqlx::Error::RowNotFound));
        assert!(!is_connection_lost(&sqlx::Error::PoolTimedOut));
    }

    #[cfg(any(feature = "postgres", feature = "mysql"))]
    #[test]
    fn replica_errors_say_whether_the_write_may_have_committed() {
        use crate::replicas::{ReplicaError, ServerName};
        let server = ServerName::Primary;
        let lost = || sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into());
        let unknown = Error::CommitOutcomeUnknown {
            operation: Operation::Upsert,
            table: "t".into(),
            step: Step::Commit,
            source: lost(),
        };
        let batch = |source| Error::Replica(Box::new(ReplicaError::Batch { server, source }));
        let unpositioned = ReplicaError::Unpositioned {
            source: Box::new(ReplicaError::Database {
                server,
                source: lost(),
            }),
        };
        assert!(batch(unknown).may_have_committed());
        assert!(Error::Replica(Box::new(unpositioned)).may_have_committed());
        let refused = Error::Refused {
            table: "t".into(),
            reason: "NUL",
        };
        assert!(!batch(refused).may_have_committed());
    }

    #[test]
    fn messages_name_operation_table_and_step() {
        let error = Error::Database {
            operation: Operation::Upsert,
            table: "orders".into(),
            step: Step::Chunk { index: 2, of: 3 },
            source: sqlx::Error::RowNotFound,
        };
        let text = error.to_string();
        assert!(
            text.contains("upsert on table orders failed at chunk 2 of 3"),
            "{text}"
        );
    }
}
