//! The error a caller of [`Loader::load`](super::Loader::load) receives.

use std::sync::Arc;

/// Why a load failed. Every caller whose key was in a failed batch receives
/// the same error; the source's error is shared through an [`Arc`], so the
/// source's error type need not be `Clone` (`sqlx::Error` is not).
///
/// ```
/// use coalesce::LoadError;
/// use std::sync::Arc;
///
/// let err: LoadError<std::io::Error> = LoadError::Source {
///     source: Arc::new(std::io::Error::other("connection reset")),
///     batch_size: 3,
/// };
/// assert_eq!(err.to_string(), "batch of 3 keys failed: connection reset");
/// ```
#[derive(Debug, thiserror::Error)]
pub enum LoadError<E> {
    /// The batch source returned an error for the batch this key was in.
    #[error("batch of {batch_size} keys failed: {source}")]
    Source {
        /// The source's error, shared by every caller of the batch.
        source: Arc<E>,
        /// How many distinct keys the failed batch held.
        batch_size: usize,
    },
    /// The batch source panicked; the panic was contained to this batch.
    #[error("batch of {batch_size} keys panicked: {message}")]
    Panicked {
        /// The panic payload, when it was a string.
        message: Arc<str>,
        /// How many distinct keys the batch held.
        batch_size: usize,
    },
    /// The task running the batch was dropped before it finished, which
    /// happens when the runtime shuts down.
    #[error("batch was abandoned before it completed (runtime shutting down)")]
    Abandoned,
    /// A write sink returned fewer outputs than it was given operations.
    #[error("the write sink returned no output for this operation")]
    NoOutput,
    /// `load` was called outside a Tokio runtime and needed a new batch,
    /// which runs on the runtime. (A load that joins a batch already
    /// pending, or hits the cache, needs no runtime of its own.)
    #[error("load was called outside a Tokio runtime")]
    NoRuntime,
}

impl<E> Clone for LoadError<E> {
    fn clone(&self) -> Self {
        match self {
            Self::Source { source, batch_size } => Self::Source {
                source: Arc::clone(source),
                batch_size: *batch_size,
            },
            Self::Panicked {
                message,
                batch_size,
            } => Self::Panicked {
                message: Arc::clone(message),
                batch_size: *batch_size,
            },
            Self::Abandoned => Self::Abandoned,
            Self::NoOutput => Self::NoOutput,
            Self::NoRuntime => Self::NoRuntime,
        }
    }
}

impl<E> LoadError<E> {
    /// The source's error, if the batch failed with one.
    ///
    /// ```
    /// use coalesce::LoadError;
    /// let err: LoadError<std::fmt::Error> = LoadError::Abandoned;
    /// assert!(err.source_error().is_none());
    /// ```
    pub fn source_error(&self) -> Option<&E> {
        match self {
            Self::Source { source, .. } => Some(source),
            _ => None,
        }
    }
}
