//! Re-running a write that the database rolled back to break a deadlock.
//!
//! Concurrent batched writes touch many rows each, so two of them (an upsert
//! and a delete of overlapping keys, say) can lock rows in opposite orders.
//! The database then aborts one transaction with a deadlock or serialization
//! error, having rolled all of it back, and expects the client to run it
//! again. Writes through [`Database`](super::Database) do that, a few times,
//! with a short randomized pause, before the error reaches the caller.

use std::{
    collections::hash_map::RandomState,
    future::Future,
    hash::{BuildHasher, Hasher},
    time::Duration,
};

/// Attempts per write, first included, unless set with
/// [`Database::with_write_attempts`](super::Database::with_write_attempts).
pub(super) const DEFAULT_WRITE_ATTEMPTS: u32 = 5;

/// The pause before the first retry; it doubles with each further one.
const FIRST_PAUSE: Duration = Duration::from_millis(2);

/// Whether the database aborted the whole statement or transaction to
/// resolve a conflict with another one, so running it again is safe and
/// will likely succeed: SQLSTATE `40001` (serialization failure; also
/// MySQL/MariaDB's deadlock, error 1213) and `40P01` (PostgreSQL's
/// deadlock). SQLite serializes writers behind its busy timeout instead.
pub(super) fn is_conflict(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(error) => {
            matches!(error.code().as_deref(), Some("40001" | "40P01"))
        }
        _ => false,
    }
}

/// Run `write` until it succeeds, fails with something other than a
/// conflict, or has been tried `attempts` times. `write` must be a whole
/// transaction or a single statement, so an aborted attempt left nothing.
pub(super) async fn on_conflict<T, F, Fut>(attempts: u32, mut write: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut tried = 1;
    loop {
        match write().await {
            Err(error) if tried < attempts && is_conflict(&error) => {
                tracing::debug!(attempt = tried, %error, "write aborted by a conflict; retrying");
                tokio::time::sleep(pause(tried)).await;
                tried += 1;
            }
            result => return result,
        }
    }
}

/// A random pause in `[base / 2, base)`, `base` doubling per attempt, so
/// the two sides of a deadlock do not collide again in lockstep.
fn pause(attempt: u32) -> Duration {
    let base = FIRST_PAUSE * 2u32.pow(attempt.saturating_sub(1).min(10));
    // A fresh `RandomState` is randomly keyed: a random number without a
    // random-number crate.
    let random = RandomState::new().build_hasher().finish();
    let fraction = (random % 1024) as u32;
    base / 2 + base / 2 * fraction / 1024
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn pauses_grow_and_stay_in_range() {
        for attempt in 1..=6 {
            let base = FIRST_PAUSE * 2u32.pow(attempt - 1);
            let p = pause(attempt);
            assert!(p >= base / 2 && p < base, "attempt {attempt}: {p:?}");
        }
    }

    #[tokio::test]
    async fn other_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = on_conflict(5, || {
            calls.fetch_add(1, Ordering::Relaxed);
            async { Err(sqlx::Error::RowNotFound) }
        })
        .await;
        assert!(matches!(result, Err(sqlx::Error::RowNotFound)));
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }
}
