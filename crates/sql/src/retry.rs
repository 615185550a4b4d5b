//! Re-running a write that the database rolled back to break a deadlock.
//!
//! Concurrent batched writes touch many rows each, so two of them (an upsert
//! and a delete of overlapping keys, say) can lock rows in opposite orders.
//! The database then aborts one transaction with a deadlock or serialization
//! error, having rolled all of it back, and expects the client to run it
//! again. [`Db`](crate::Db)'s writes do that through [`on_conflict`];
//! your own writes can too.

use std::{
    collections::hash_map::RandomState,
    future::Future,
    hash::{BuildHasher, Hasher},
    time::Duration,
};

/// Attempts per write, the first included, unless set with
/// [`Db::with_write_attempts`](crate::Db::with_write_attempts).
///
/// ```
/// assert_eq!(coalesce_sql::retry::DEFAULT_WRITE_ATTEMPTS, 5);
/// ```
pub const DEFAULT_WRITE_ATTEMPTS: u32 = 5;

/// The pause before the first retry; it doubles with each further one.
const FIRST_PAUSE: Duration = Duration::from_millis(2);

/// Whether the database aborted the whole statement or transaction to
/// resolve a conflict with another one, so running it again is safe and
/// will likely succeed: SQLSTATE `40001` (serialization failure; also
/// MySQL/MariaDB's deadlock, error 1213) and `40P01` (PostgreSQL's
/// deadlock). SQLite serializes writers behind its busy timeout instead.
///
/// ```
/// assert!(!coalesce_sql::retry::is_conflict(&sqlx::Error::RowNotFound));
/// ```
pub fn is_conflict(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(error) => {
            matches!(error.code().as_deref(), Some("40001" | "40P01"))
        }
        _ => false,
    }
}

/// An error that can say whether it is a conflict worth retrying
/// (implemented for [`sqlx::Error`] and [`crate::Error`]).
///
/// ```
/// use coalesce_sql::retry::Conflict;
///
/// assert!(!sqlx::Error::PoolTimedOut.is_conflict());
/// ```
pub trait Conflict {
    /// See [`is_conflict`].
    fn is_conflict(&self) -> bool;
}

impl Conflict for sqlx::Error {
    fn is_conflict(&self) -> bool {
        is_conflict(self)
    }
}

impl Conflict for crate::Error {
    fn is_conflict(&self) -> bool {
        crate::Error::is_conflict(self)
    }
}

/// Run `write` until it succeeds, fails with something other than a
/// conflict, or has been tried `attempts` times (at least once). `write`
/// must be a whole transaction or a single statement, so that an aborted
/// attempt left nothing behind. The pause between attempts starts near
/// 2 ms and doubles, randomized so the two sides of a deadlock do not
/// collide again in lockstep.
///
/// ```no_run
/// # async fn f(pool: sqlx::PgPool) -> Result<(), sqlx::Error> {
/// coalesce_sql::retry::on_conflict(5, || async {
///     let mut tx = pool.begin().await?;
///     sqlx::query("UPDATE accounts SET cents = cents - 5 WHERE id = 1").execute(&mut *tx).await?;
///     sqlx::query("UPDATE accounts SET cents = cents + 5 WHERE id = 2").execute(&mut *tx).await?;
///     tx.commit().await
/// })
/// .await
/// # }
/// ```
pub async fn on_conflict<T, E, F, Fut>(attempts: u32, mut write: F) -> Result<T, E>
where
    E: Conflict + std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut tried = 1;
    loop {
        match write().await {
            Err(error) if tried < attempts && error.is_conflict() => {
                tracing::debug!(attempt = tried, %error, "write aborted by a conflict; retrying");
                tokio::time::sleep(pause(tried)).await;
                tried += 1;
            }
            result => return result,
        }
    }
}

/// A random pause in `[base / 2, base)`, `base` doubling per attempt.
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
        let result: Result<(), sqlx::Error> = on_conflict(5, || {
            calls.fetch_add(1, Ordering::Relaxed);
            async { Err(sqlx::Error::RowNotFound) }
        })
        .await;
        assert!(matches!(result, Err(sqlx::Error::RowNotFound)));
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }
}
