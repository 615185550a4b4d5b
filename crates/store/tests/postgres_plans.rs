//! How PostgreSQL plans the store's reads.
//!
//! sqlx prepares a statement once per connection and reuses it; after five
//! executions PostgreSQL may switch a prepared statement to a generic plan,
//! one made without the bound values. For a read by keys that plan sizes
//! every user as the average one and cannot use the optional filters as
//! index conditions, so for a user with many memories it reads all of them
//! (issue 9 item 10: 100 keys of a user with 35,000 rows went from 0.3 ms to
//! 42 ms at the sixth call). The test checks the mechanism, not the time.

mod common;

use coalesce_store::db::Pool;
use common::Target;
use sqlx::PgConnection;

/// One user with this many memories, among many users with few.
const BIG_USER_MEMORIES: usize = 10_000;

/// Keys read per call: enough that a custom plan costs more, on paper, than
/// the generic one, so PostgreSQL switches to the latter when it may; and
/// more than the store's `max_batch_size` (100), so the call is a batch of
/// its own and takes the store's statement by user. (Calls of fewer keys
/// go through a loader to the toolkit's `UNNEST` join, whose generic plan
/// looks each key up in the index: `crates/sql/tests/postgres_plans.rs`.)
const KEYS_PER_READ: usize = 101;

/// A session-local `memories` table (a temporary table shadows the real one
/// in this connection only) holding a skewed distribution, with statistics:
/// the situation of a bulk-loaded database after auto-analyze.
fn skewed_memories() -> String {
    format!(
        "CREATE TEMP TABLE memories (LIKE public.memories INCLUDING ALL); \
         INSERT INTO memories (user_id, category, key, value) \
         SELECT 'big', 'FACT', 'k' || i, 'v' FROM generate_series(1, {BIG_USER_MEMORIES}) i; \
         INSERT INTO memories (user_id, category, key, value) \
         SELECT 'u' || u, 'FACT', 'k' || i, 'v' \
         FROM generate_series(1, 500) u, generate_series(1, 20) i; \
         ANALYZE memories"
    )
}

/// Each statement prepared in this session: its name and how many times it
/// ran with a generic plan.
async fn prepared_statements(conn: &mut PgConnection) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT name, generic_plans FROM pg_prepared_statements")
        .persistent(false)
        .fetch_all(conn)
        .await
        .expect("list prepared statements")
}

#[tokio::test]
async fn reads_by_keys_are_never_served_by_a_generic_plan() {
    let url = common::url(Target::Postgres);
    // One connection: the reads run in the session the test inspects.
    let Some(store) = common::store_with_pool(Target::Postgres, &url, 1).await else {
        return;
    };
    let Pool::Postgres(pool) = store.database().pool().clone() else {
        panic!("a PostgreSQL URL gave another backend");
    };
    let mut conn = pool.acquire().await.expect("connection");
    sqlx::raw_sql(sqlx::AssertSqlSafe(skewed_memories()))
        .execute(&mut *conn)
        .await
        .expect("skewed memories");
    let before = prepared_statements(&mut conn).await;
    drop(conn);

    let step = BIG_USER_MEMORIES / KEYS_PER_READ;
    let keys: Vec<String> = (1..=KEYS_PER_READ)
        .map(|i| format!("k{}", i * step))
        .collect();
    for call in 1..=8 {
        let found = store
            .batch_get_memories("big", None, Some(&keys), None)
            .await
            .expect("read by keys");
        assert_eq!(found.len(), keys.len(), "call {call}");
    }

    let mut conn = pool.acquire().await.expect("connection");
    let generic: Vec<(String, i64)> = prepared_statements(&mut conn)
        .await
        .into_iter()
        .filter(|(name, plans)| *plans > 0 && !before.iter().any(|(old, _)| old == name))
        .collect();
    // The temporary table goes with the connection.
    conn.close().await.expect("close the test session");
    assert!(
        generic.is_empty(),
        "reads by keys ran on generic plans (statement, executions): {generic:?}"
    );
}
