//! PostgreSQL statements: lists travel as one array bind (`= ANY($1)`,
//! `UNNEST`), so one prepared statement serves every batch size and there is
//! no bind limit to chunk under.

use super::{Counters, MemoryRow};
use crate::model::{MemoryKey, NewMemory};
use sqlx::PgPool;

const MEMORY_ORDER: &str = r#"category COLLATE "C", key COLLATE "C""#;

pub(super) async fn profiles(
    pool: &PgPool,
    counters: &Counters,
    user_ids: &[String],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    counters.statement();
    sqlx::query_as("SELECT user_id, profile FROM profiles WHERE user_id = ANY($1)")
        .bind(user_ids)
        .fetch_all(pool)
        .await
}

pub(super) async fn profile_direct(
    pool: &PgPool,
    counters: &Counters,
    user_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    counters.statement();
    sqlx::query_scalar("SELECT profile FROM profiles WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(pool)
        .await
}

pub(super) async fn save_profile(
    pool: &PgPool,
    counters: &Counters,
    user_id: &str,
    profile: &str,
) -> Result<(), sqlx::Error> {
    counters.statement();
    sqlx::query(
        "INSERT INTO profiles (user_id, profile) VALUES ($1, $2) \
         ON CONFLICT (user_id) DO UPDATE SET profile = EXCLUDED.profile, updated_at = now()",
    )
    .bind(user_id)
    .bind(profile)
    .execute(pool)
    .await
    .map(drop)
}

pub(super) async fn onboardings(
    pool: &PgPool,
    counters: &Counters,
    user_ids: &[String],
) -> Result<Vec<(String, String, bool)>, sqlx::Error> {
    counters.statement();
    sqlx::query_as("SELECT user_id, data::text, completed FROM onboarding WHERE user_id = ANY($1)")
        .bind(user_ids)
        .fetch_all(pool)
        .await
}

pub(super) async fn onboarding_direct(
    pool: &PgPool,
    counters: &Counters,
    user_id: &str,
) -> Result<Option<(String, bool)>, sqlx::Error> {
    counters.statement();
    sqlx::query_as("SELECT data::text, completed FROM onboarding WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(pool)
        .await
}

pub(super) async fn save_onboarding(
    pool: &PgPool,
    counters: &Counters,
    user_id: &str,
    data: &str,
    completed: bool,
) -> Result<(), sqlx::Error> {
    counters.statement();
    sqlx::query(
        "INSERT INTO onboarding (user_id, data, completed) VALUES ($1, $2::jsonb, $3) \
         ON CONFLICT (user_id) DO UPDATE \
         SET data = EXCLUDED.data, completed = EXCLUDED.completed, updated_at = now()",
    )
    .bind(user_id)
    .bind(data)
    .bind(completed)
    .execute(pool)
    .await
    .map(drop)
}

pub(super) async fn memories_by_key(
    pool: &PgPool,
    counters: &Counters,
    keys: &[MemoryKey],
) -> Result<Vec<(String, String, String, String)>, sqlx::Error> {
    let user_ids: Vec<&str> = keys.iter().map(|k| k.user_id.as_str()).collect();
    let categories: Vec<&str> = keys.iter().map(|k| k.category.as_str()).collect();
    let names: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
    counters.statement();
    sqlx::query_as(
        "SELECT m.user_id, m.category, m.key, m.value FROM memories m \
         JOIN UNNEST($1::text[], $2::text[], $3::text[]) AS k(user_id, category, key) \
         ON m.user_id = k.user_id AND m.category = k.category AND m.key = k.key",
    )
    .bind(user_ids)
    .bind(categories)
    .bind(names)
    .fetch_all(pool)
    .await
}

pub(super) async fn memory_direct(
    pool: &PgPool,
    counters: &Counters,
    key: &MemoryKey,
) -> Result<Option<String>, sqlx::Error> {
    counters.statement();
    sqlx::query_scalar(
        "SELECT value FROM memories WHERE user_id = $1 AND category = $2 AND key = $3",
    )
    .bind(&key.user_id)
    .bind(key.category.as_str())
    .bind(&key.key)
    .fetch_optional(pool)
    .await
}

pub(super) async fn memories(
    pool: &PgPool,
    counters: &Counters,
    user_id: &str,
    category: Option<&str>,
    keys: Option<&[String]>,
    limit: Option<i64>,
) -> Result<Vec<MemoryRow>, sqlx::Error> {
    counters.statement();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT category, key, value FROM memories \
         WHERE user_id = $1 AND ($2::text IS NULL OR category = $2) \
         AND ($3::text[] IS NULL OR key = ANY($3)) \
         ORDER BY {MEMORY_ORDER} LIMIT $4"
    )))
    .bind(user_id)
    .bind(category)
    .bind(keys)
    .bind(limit)
    // Planned with its values on every call, never from a cached plan: after
    // five executions of a prepared statement PostgreSQL may switch to a
    // generic plan, which cannot use the optional filters above as index
    // conditions and sizes every user as the average one, so it reads all
    // the memories of the user (35,000 rows to return 100: 0.3 ms became
    // 42 ms, issue 9 item 10). Re-planning costs about 0.1 ms and a round trip.
    .persistent(false)
    .fetch_all(pool)
    .await
}

pub(super) async fn top_memories_per_category(
    pool: &PgPool,
    counters: &Counters,
    user_id: &str,
    categories: &[String],
    limit: i64,
) -> Result<Vec<MemoryRow>, sqlx::Error> {
    counters.statement();
    sqlx::query_as(
        "SELECT c.category, m.key, m.value \
         FROM UNNEST($2::text[]) WITH ORDINALITY AS c(category, position) \
         CROSS JOIN LATERAL ( \
             SELECT key, value, updated_at, id FROM memories \
             WHERE user_id = $1 AND category = c.category \
             ORDER BY updated_at DESC, id DESC LIMIT $3 \
         ) m \
         ORDER BY c.position, m.updated_at DESC, m.id DESC",
    )
    .bind(user_id)
    .bind(categories)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub(super) async fn top_memories_direct(
    pool: &PgPool,
    counters: &Counters,
    user_id: &str,
    category: &str,
    limit: i64,
) -> Result<Vec<MemoryRow>, sqlx::Error> {
    counters.statement();
    sqlx::query_as(
        "SELECT category, key, value FROM memories WHERE user_id = $1 AND category = $2 \
         ORDER BY updated_at DESC, id DESC LIMIT $3",
    )
    .bind(user_id)
    .bind(category)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub(super) async fn recent_memories(
    pool: &PgPool,
    counters: &Counters,
    user_id: &str,
    limit: i64,
) -> Result<Vec<MemoryRow>, sqlx::Error> {
    counters.statement();
    sqlx::query_as(
        "SELECT category, key, value FROM memories WHERE user_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub(super) async fn count_memories(
    pool: &PgPool,
    counters: &Counters,
    user_id: &str,
) -> Result<i64, sqlx::Error> {
    counters.statement();
    sqlx::query_scalar("SELECT COUNT(*) FROM memories WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(pool)
        .await
}

const UPSERT_MEMORIES: &str = "INSERT INTO memories (user_id, category, key, value) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) \
     ON CONFLICT (user_id, category, key) DO UPDATE \
     SET value = EXCLUDED.value, updated_at = now()";

pub(super) async fn save_memories(
    pool: &PgPool,
    counters: &Counters,
    rows: &[NewMemory],
    rows_per_statement: usize,
) -> Result<(), sqlx::Error> {
    let upsert = |chunk: &[NewMemory]| {
        let column = |f: fn(&NewMemory) -> &str| chunk.iter().map(f).collect::<Vec<&str>>();
        counters.statement();
        sqlx::query(UPSERT_MEMORIES)
            .bind(column(|m| &m.user_id))
            .bind(column(|m| m.category.as_str()))
            .bind(column(|m| &m.key))
            .bind(column(|m| &m.value))
    };
    if rows.len() <= rows_per_statement {
        return upsert(rows).execute(pool).await.map(drop);
    }
    counters.transaction();
    let mut tx = pool.begin().await?;
    for chunk in rows.chunks(rows_per_statement) {
        upsert(chunk).execute(&mut *tx).await?;
    }
    tx.commit().await
}

pub(super) async fn delete_memories(
    pool: &PgPool,
    counters: &Counters,
    user_id: &str,
    keys: &[String],
) -> Result<u64, sqlx::Error> {
    counters.statement();
    let done = sqlx::query("DELETE FROM memories WHERE user_id = $1 AND key = ANY($2)")
        .bind(user_id)
        .bind(keys)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

pub(super) async fn delete_memory_pairs(
    pool: &PgPool,
    counters: &Counters,
    pairs: &[(String, String)],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let (user_ids, keys): (Vec<&str>, Vec<&str>) = pairs
        .iter()
        .map(|(user_id, key)| (user_id.as_str(), key.as_str()))
        .unzip();
    counters.statement();
    sqlx::query_as(
        "DELETE FROM memories m USING UNNEST($1::text[], $2::text[]) AS d(user_id, key) \
         WHERE m.user_id = d.user_id AND m.key = d.key RETURNING m.user_id, m.key",
    )
    .bind(user_ids)
    .bind(keys)
    .fetch_all(pool)
    .await
}

pub(super) async fn save_profiles(
    pool: &PgPool,
    counters: &Counters,
    rows: &[(String, String)],
) -> Result<(), sqlx::Error> {
    let (user_ids, profiles): (Vec<&str>, Vec<&str>) = rows
        .iter()
        .map(|(user_id, profile)| (user_id.as_str(), profile.as_str()))
        .unzip();
    counters.statement();
    sqlx::query(
        "INSERT INTO profiles (user_id, profile) SELECT * FROM UNNEST($1::text[], $2::text[]) \
         ON CONFLICT (user_id) DO UPDATE SET profile = EXCLUDED.profile, updated_at = now()",
    )
    .bind(user_ids)
    .bind(profiles)
    .execute(pool)
    .await
    .map(drop)
}

pub(super) async fn save_onboardings(
    pool: &PgPool,
    counters: &Counters,
    rows: &[(String, String, bool)],
) -> Result<(), sqlx::Error> {
    let user_ids: Vec<&str> = rows.iter().map(|row| row.0.as_str()).collect();
    let data: Vec<&str> = rows.iter().map(|row| row.1.as_str()).collect();
    let completed: Vec<bool> = rows.iter().map(|row| row.2).collect();
    counters.statement();
    sqlx::query(
        "INSERT INTO onboarding (user_id, data, completed) \
         SELECT u, d::jsonb, c FROM UNNEST($1::text[], $2::text[], $3::bool[]) AS t(u, d, c) \
         ON CONFLICT (user_id) DO UPDATE \
         SET data = EXCLUDED.data, completed = EXCLUDED.completed, updated_at = now()",
    )
    .bind(user_ids)
    .bind(data)
    .bind(completed)
    .execute(pool)
    .await
    .map(drop)
}
