//! Input the store refuses, named before any statement runs.

use crate::echo::Echo;
use coalesce::ConfigError;

/// Input the store refuses before it reaches the database; nothing is
/// written when a call fails with one of these.
///
/// ```
/// use coalesce_store::{Category, InvalidInput};
///
/// let err = "NOPE".parse::<Category>().unwrap_err();
/// assert_eq!(err, InvalidInput::UnknownCategory("NOPE".into()));
/// assert_eq!(err.to_string(), "unknown memory category \"NOPE\"");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    /// A user id was empty.
    #[error("user id must not be empty")]
    EmptyUserId,
    /// A text held a NUL byte, which PostgreSQL text cannot store.
    #[error("{field} contains a NUL byte")]
    NulByte {
        /// Which input held it: `"user_id"`, `"key"`, `"value"`, `"profile"`.
        field: &'static str,
    },
    /// A text was longer than the schema allows.
    #[error("{field} is {len} characters long, more than the {max} allowed")]
    TooLong {
        /// Which input it was.
        field: &'static str,
        /// Its length in characters.
        len: usize,
        /// The most the schema stores.
        max: usize,
    },
    /// A category name that is not one of the five.
    #[error("unknown memory category {0}")]
    UnknownCategory(Echo),
    /// A limit of zero or less.
    #[error("limit must be at least 1, got {0}")]
    BadLimit(i64),
    /// A store setting that cannot work, such as zero rows per statement.
    #[error("invalid store configuration: {0}")]
    BadConfig(&'static str),
}

/// A loader setting that cannot work, reported as the store's
/// configuration error (the store and the repository build loaders from
/// their configuration).
impl From<ConfigError> for InvalidInput {
    fn from(error: ConfigError) -> Self {
        Self::BadConfig(match error {
            ConfigError::ZeroBatchSize => "max_batch_size must be at least 1",
            ConfigError::ZeroConcurrency => "max_concurrent_batches must be at least 1",
        })
    }
}
