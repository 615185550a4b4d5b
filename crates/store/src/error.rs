//! What can go wrong in the memory store.

use crate::{
    db::{ConnectError, ServerMessage},
    invalid::InvalidInput,
};
use coalesce::LoadError;

/// The error of every store operation.
#[derive(Debug, thiserror::Error)]
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
    /// A coalesced read failed; every caller of that batch gets this error.
    #[error("{context}: {source}")]
    Batch {
        /// The store operation that failed, e.g. `"get_profile"`.
        context: &'static str,
        /// The loader's error, wrapping the driver's.
        #[source]
        source: LoadError<sqlx::Error>,
    },
    /// Connecting to or migrating the database failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
}

impl StoreError {
    /// Wrap a driver error with the operation it came from.
    pub(crate) fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database { context, source }
    }

    /// Wrap a loader error with the operation it came from.
    pub(crate) fn batch(context: &'static str) -> impl FnOnce(LoadError<sqlx::Error>) -> Self {
        move |source| Self::Batch { context, source }
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
