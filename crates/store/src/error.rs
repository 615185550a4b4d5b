//! What can go wrong in the memory store.

use crate::{
    db::{ConnectError, TokenError, may_have_committed},
    invalid::InvalidInput,
};
use coalesce::LoadError;
use coalesce_sql::{RowsError, ServerMessage};
use std::sync::Arc;

/// The error of every store operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The input was refused before any query ran.
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    /// A statement failed; `context` names the operation (the message
    /// is the database's, without PostgreSQL's source line).
    #[error("{context}: {}", ServerMessage(source))]
    Database {
        /// The store operation that failed, e.g. `"batch_save_memories"`.
        context: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A coalesced read failed; every caller of that batch gets this error
    /// (the message is the database's, without PostgreSQL's source line).
    #[error("{context}: {}", BatchMessage(source))]
    Batch {
        /// The store operation that failed, e.g. `"get_profile"`.
        context: &'static str,
        /// The loader's error, wrapping the driver's.
        #[source]
        source: LoadError<sqlx::Error>,
    },
    /// A call of the coalescing repository failed: its own item (a
    /// constraint it broke, a value the database refused) or its batch's
    /// statement (every caller of that batch gets it). The message is the
    /// database's.
    #[error("{context}: {source}")]
    Rows {
        /// The repository operation that failed, e.g. `"save_memory"`.
        context: &'static str,
        /// The toolkit's error, through the engine.
        #[source]
        source: RowsError,
    },
    /// A write's connection failed after the write reached the database
    /// in a form that commits (its `COMMIT`, or a single auto-committed
    /// statement) and before the answer came back: its rows **may or may
    /// not** be written. Read them back, or run the write again (saves are
    /// upserts and deletes are idempotent). Every other error of a write
    /// means nothing of it was written.
    #[error(
        "{context}: the connection failed while the write was committing; it may or may not have been applied: {}",
        ServerMessage(source)
    )]
    CommitOutcomeUnknown {
        /// The store operation that failed, e.g. `"batch_save_memories"`.
        context: &'static str,
        /// The driver's error (shared with the other callers of a
        /// coalesced write).
        #[source]
        source: Arc<sqlx::Error>,
    },
    /// Connecting to or migrating the database failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A position token could not be used (see
    /// [`MemoryStore::with_token`](crate::MemoryStore::with_token)).
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// A loader's error as a person reads it: a failed batch with the
/// database's own message (see [`ServerMessage`]).
struct BatchMessage<'a>(&'a LoadError<sqlx::Error>);

impl std::fmt::Display for BatchMessage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            LoadError::Source { source, batch_size } => write!(
                f,
                "batch of {batch_size} keys failed: {}",
                ServerMessage(source)
            ),
            other => other.fmt(f),
        }
    }
}

impl StoreError {
    /// Whether the operation may have written although it failed: only
    /// [`StoreError::CommitOutcomeUnknown`], or a [`StoreError::Rows`]
    /// whose toolkit error says so. Any other error of a write means
    /// nothing of it was written.
    ///
    /// ```
    /// use coalesce_store::{InvalidInput, StoreError};
    ///
    /// assert!(!StoreError::from(InvalidInput::EmptyUserId).may_have_committed());
    /// ```
    pub fn may_have_committed(&self) -> bool {
        match self {
            Self::CommitOutcomeUnknown { .. } => true,
            Self::Rows {
                source: LoadError::Source { source, .. },
                ..
            } => source.may_have_committed(),
            _ => false,
        }
    }

    /// Wrap an error of a coalescing repository's call with the operation
    /// it came from.
    pub(crate) fn rows(context: &'static str) -> impl FnOnce(RowsError) -> Self {
        move |source| Self::Rows { context, source }
    }

    /// Wrap a driver error with the operation it came from.
    pub(crate) fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| {
            if may_have_committed(&source) {
                let source = Arc::new(source);
                Self::CommitOutcomeUnknown { context, source }
            } else {
                Self::Database { context, source }
            }
        }
    }

    /// Wrap a loader error (a coalesced read's or write's) with the
    /// operation it came from.
    pub(crate) fn batch(context: &'static str) -> impl FnOnce(LoadError<sqlx::Error>) -> Self {
        move |source| match &source {
            LoadError::Source { source, .. } if may_have_committed(source) => {
                let source = Arc::clone(source);
                Self::CommitOutcomeUnknown { context, source }
            }
            _ => Self::Batch { context, source },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coalesce::ConfigError;

    #[test]
    fn loader_config_errors_name_their_setting() {
        let message = |error| StoreError::from(InvalidInput::from(error)).to_string();
        assert_eq!(
            message(ConfigError::ZeroBatchSize),
            "invalid store configuration: max_batch_size must be at least 1"
        );
        assert_eq!(
            message(ConfigError::ZeroConcurrency),
            "invalid store configuration: max_concurrent_batches must be at least 1"
        );
    }
}
