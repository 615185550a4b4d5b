//! Errors of a [`Replicated`](super::Replicated) handle: which server, and why.

use super::{backend::Fault, position::PositionError, server::ServerName};

/// A read or write through a [`Replicated`](super::Replicated) handle failed.
///
/// ```
/// use coalesce_sql::replicas::{ReplicaError, ServerName};
///
/// let error = ReplicaError::Database {
///     server: ServerName::Primary,
///     source: sqlx::Error::PoolTimedOut,
/// };
/// assert!(error.to_string().starts_with("primary: "));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// A statement failed on a server (for a read: on the primary, or on a
    /// replica with an error of the statement itself rather than of the
    /// server, which another server would repeat).
    #[error("{server}: {}", crate::ServerMessage(source))]
    Database {
        /// Where it failed.
        server: ServerName,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The primary accepted no connection, or did not finish setting one
    /// up, within [`ReplicaSettings::connect_timeout`](super::ReplicaSettings::connect_timeout).
    #[error("{server}: no connection within {after:?}")]
    ConnectTimedOut {
        /// The server.
        server: ServerName,
        /// The timeout that ran out.
        after: std::time::Duration,
    },
    /// A toolkit operation failed on a server.
    #[error("{server}: {source}")]
    Batch {
        /// Where it failed.
        server: ServerName,
        /// The toolkit's error.
        #[source]
        source: crate::Error,
    },
    /// A server reported a position this crate cannot read.
    #[error("{server} reported an unreadable position: {source}")]
    Position {
        /// The server.
        server: ServerName,
        /// What was wrong with it.
        #[source]
        source: PositionError,
    },
    /// The write committed, but its position could not be read afterwards:
    /// reads of its keys through replicas are not guaranteed to see it.
    #[error("the write committed, but its position could not be read: {source}")]
    Unpositioned {
        /// Why.
        #[source]
        source: Box<ReplicaError>,
    },
    /// The caller's position token belongs to another backend.
    #[error("position token {token} is not of this handle's backend")]
    ForeignToken {
        /// The token.
        token: String,
    },
}

impl ReplicaError {
    pub(crate) fn at(server: ServerName, fault: Fault) -> ReplicaError {
        match fault {
            Fault::Database(source) => ReplicaError::Database { server, source },
            Fault::Batch(source) => ReplicaError::Batch { server, source },
            Fault::Position(source) => ReplicaError::Position { server, source },
        }
    }
}

/// Whether an error means the server is unusable (down, restarting,
/// unreachable) rather than that the statement was wrong: only the former
/// sends a read to another server.
pub(crate) fn is_server_failure(fault: &Fault) -> bool {
    match fault {
        // A replica that answers nonsense is not one to trust.
        Fault::Position(_) => true,
        Fault::Database(error) => is_driver_failure(error),
        Fault::Batch(
            crate::Error::Database { source, .. }
            | crate::Error::CommitOutcomeUnknown { source, .. },
        ) => is_driver_failure(source),
        Fault::Batch(_) => false,
    }
}

/// Whether a fault is the pool's timeout waiting for a connection (sqlx's
/// `PoolTimedOut`): every connection busy, or opening one took too long.
pub(crate) fn is_pool_timeout(fault: &Fault) -> bool {
    matches!(
        fault,
        Fault::Database(sqlx::Error::PoolTimedOut)
            | Fault::Batch(crate::Error::Database {
                source: sqlx::Error::PoolTimedOut,
                ..
            })
    )
}

fn is_driver_failure(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(error) => {
            // SQLSTATE class 08 (connection exception: also MariaDB's
            // 1053 "shutdown in progress"), 57 (operator intervention:
            // PostgreSQL's shutdown, "cannot connect now") and 70100
            // (MariaDB's "connection was killed").
            let state = error.code().unwrap_or_default();
            state.starts_with("08") || state.starts_with("57") || state == "70100"
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}
