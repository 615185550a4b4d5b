//! sqlx's migrator through a transaction pooler. It names its statements
//! (`sqlx_s_1`, ...) and takes a session-level advisory lock, and a
//! transaction pooler keeps neither from one transaction to the next: the
//! names collide with those another client left on the same server
//! session, and the lock could be taken on one server and released on
//! another. So its work runs inside one transaction, which keeps one server
//! session for its length, and leaves that session as it found it.

use futures::future::BoxFuture;
use sqlx::{Connection, PgConnection, PgPool, migrate::MigrateError};

/// The transaction-level advisory lock every pinned run holds (an
/// arbitrary constant, `coalesce` in ASCII).
const LOCK: &str = "SELECT pg_advisory_xact_lock(111767396091749)";

/// Run `work` on one server session through a transaction pooler: in a
/// transaction, with no named statement on the session before or after,
/// and no advisory lock held after it, whatever `work` did; committed if
/// `work` succeeded. Runs take turns, until their commit: the migrator's
/// own lock is released before it (and what it created is not visible
/// until then), so two migrators would both create its table. The client connection is closed afterwards: its
/// statement cache names statements no longer on any server.
pub(super) async fn pinned<T>(
    pool: &PgPool,
    work: impl for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, MigrateError>>,
) -> Result<T, MigrateError> {
    let mut connection = pool.acquire().await?;
    connection.close_on_drop();
    let mut transaction = connection.begin().await?;
    // Names another client of the pooler left on this server session
    // would collide with the migrator's.
    sqlx::raw_sql(LOCK).execute(&mut *transaction).await?;
    sqlx::raw_sql("DEALLOCATE ALL; SAVEPOINT coalesce_pinned")
        .execute(&mut *transaction)
        .await?;
    let outcome = work(&mut transaction).await;
    if outcome.is_err() {
        // A failed statement aborts the transaction; back to before the
        // work, so the clean-up below can run.
        sqlx::raw_sql("ROLLBACK TO SAVEPOINT coalesce_pinned")
            .execute(&mut *transaction)
            .await?;
    }
    // Neither prepared statements nor session-level locks end with the
    // transaction.
    sqlx::raw_sql("SELECT pg_advisory_unlock_all(); DEALLOCATE ALL")
        .execute(&mut *transaction)
        .await?;
    let value = outcome?;
    transaction.commit().await?;
    Ok(value)
}
