//! Pool settings the toolkit's own pools use, for yours as well.

use sqlx::{Connection, Database, pool::PoolOptions};
use std::time::Duration;

/// `options` that ping a connection before handing it out only when it has
/// sat idle at least `idle`: one the server ended meanwhile is replaced (the
/// ping fails, the pool drops it and hands out another), while a busy pool
/// pays no round trip per checkout, as sqlx's `test_before_acquire` (which
/// this turns off) would. `Duration::ZERO` pings on every checkout,
/// `Duration::MAX` never.
///
/// ```
/// use coalesce_sql::ping_after_idle;
/// use sqlx::pool::PoolOptions;
/// use std::time::Duration;
///
/// fn configure<DB: sqlx::Database>(options: PoolOptions<DB>) -> PoolOptions<DB> {
///     ping_after_idle(options.max_connections(10), Duration::from_secs(1))
/// }
/// ```
pub fn ping_after_idle<DB: Database>(options: PoolOptions<DB>, idle: Duration) -> PoolOptions<DB> {
    options
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= idle {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}
