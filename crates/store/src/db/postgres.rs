//! PostgreSQL: what its statements differ in, and its list statements:
//! lists travel as one array bind (`= ANY($1)`, `UNNEST`), so one prepared
//! statement serves every batch size and there is no bind limit to chunk
//! under. The per-item statements are shared (`shared`).

use super::batched::Tables;
use super::shared::{Statements, StoreDialect, on_session};
use super::{Counters, MemoryRow};
use coalesce_sql::SessionSettings;
use sqlx::{PgPool, Postgres};
use std::sync::LazyLock;

const MEMORY_ORDER: &str = r#"category COLLATE "C", key COLLATE "C""#;

impl StoreDialect for Postgres {
    const NOW: &'static str = "now()";
    const ONBOARDING_DATA: &'static str = "data::text AS data";
    const SAVE_PROFILE: &'static str = "INSERT INTO profiles (user_id, profile) VALUES ($1, $2) \
         ON CONFLICT (user_id) DO UPDATE SET profile = EXCLUDED.profile, updated_at = now()";
    const SAVE_ONBOARDING: &'static str = "INSERT INTO onboarding (user_id, data, completed) \
         VALUES ($1, $2::jsonb, $3) \
         ON CONFLICT (user_id) DO UPDATE \
         SET data = EXCLUDED.data, completed = EXCLUDED.completed, updated_at = now()";

    fn tables() -> &'static Tables {
        static TABLES: LazyLock<Tables> = LazyLock::new(Tables::of::<Postgres>);
        &TABLES
    }
}

impl Statements for Postgres {
    async fn memories(
        pool: &PgPool,
        settings: &SessionSettings,
        counters: &Counters,
        user_id: &str,
        category: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Vec<MemoryRow>, sqlx::Error> {
        memories(pool, settings, counters, user_id, category, None, limit).await
    }

    async fn top_memories_per_category(
        pool: &PgPool,
        settings: &SessionSettings,
        counters: &Counters,
        user_id: &str,
        categories: &[String],
        limit: i64,
    ) -> Result<Vec<MemoryRow>, sqlx::Error> {
        counters.statement();
        on_session!(
            pool,
            settings,
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
            .bind(limit),
            fetch_all
        )
    }

    async fn save_profiles(
        pool: &PgPool,
        settings: &SessionSettings,
        counters: &Counters,
        rows: &[(String, String)],
    ) -> Result<(), sqlx::Error> {
        let (user_ids, profiles): (Vec<&str>, Vec<&str>) = rows
            .iter()
            .map(|(user_id, profile)| (user_id.as_str(), profile.as_str()))
            .unzip();
        counters.statement();
        on_session!(
        pool,
        settings,
        sqlx::query(
            "INSERT INTO profiles (user_id, profile) SELECT * FROM UNNEST($1::text[], $2::text[]) \
             ON CONFLICT (user_id) DO UPDATE SET profile = EXCLUDED.profile, updated_at = now()",
        )
        .bind(user_ids)
        .bind(profiles),
        execute
    )
        .map(drop)
    }

    async fn save_onboardings(
        pool: &PgPool,
        settings: &SessionSettings,
        counters: &Counters,
        rows: &[(String, String, bool)],
    ) -> Result<(), sqlx::Error> {
        let user_ids: Vec<&str> = rows.iter().map(|row| row.0.as_str()).collect();
        let data: Vec<&str> = rows.iter().map(|row| row.1.as_str()).collect();
        let completed: Vec<bool> = rows.iter().map(|row| row.2).collect();
        counters.statement();
        on_session!(
            pool,
            settings,
            sqlx::query(
                "INSERT INTO onboarding (user_id, data, completed) \
             SELECT u, d::jsonb, c FROM UNNEST($1::text[], $2::text[], $3::bool[]) AS t(u, d, c) \
             ON CONFLICT (user_id) DO UPDATE \
             SET data = EXCLUDED.data, completed = EXCLUDED.completed, updated_at = now()",
            )
            .bind(user_ids)
            .bind(data)
            .bind(completed),
            execute
        )
        .map(drop)
    }
}

/// A user's memories, optionally of one category and among `keys`,
/// ordered by category then key (bytewise), at most `limit`.
pub(super) async fn memories(
    pool: &PgPool,
    settings: &SessionSettings,
    counters: &Counters,
    user_id: &str,
    category: Option<&str>,
    keys: Option<&[String]>,
    limit: Option<i64>,
) -> Result<Vec<MemoryRow>, sqlx::Error> {
    counters.statement();
    on_session!(
        pool,
        settings,
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT category, key, value FROM memories \
         WHERE user_id = $1 AND ($2::text IS NULL OR category = $2) \
         AND ($3::text[] IS NULL OR key = ANY($3)) \
         ORDER BY {MEMORY_ORDER} LIMIT $4"
        )))
        .bind(user_id)
        .bind(category)
        .bind(keys)
        .bind(limit),
        // Planned with its values on every call, never from a cached plan: after
        // five executions of a prepared statement PostgreSQL may switch to a
        // generic plan, which cannot use the optional filters above as index
        // conditions and sizes every user as the average one, so it reads all
        // the memories of the user (35,000 rows to return 100: 0.3 ms became
        // 42 ms, issue 9 item 10). Re-planning costs about 0.1 ms and a round trip.
        fetch_all,
        unnamed
    )
}
