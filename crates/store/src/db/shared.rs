//! The store's own statements (those not on the toolkit, see `batched`),
//! written once for every backend: generic over the database, each text a
//! template spelled in the backend's dialect by the toolkit
//! ([`coalesce_sql::statement`]: `$n` placeholders on PostgreSQL, `?`
//! elsewhere; `"key"` in the dialect's quotes), and what differs between
//! the backends in [`StoreDialect`].
//!
//! [`Statements`] holds them: the per-item ("direct") reads and the
//! single-row upserts for every backend, and as defaults the list
//! statements of MySQL/MariaDB and SQLite (fixed texts: top-N per category
//! through `ROW_NUMBER()`, bulk upserts as a transaction of single-row
//! ones), which PostgreSQL overrides with its array forms (`postgres`).

use super::{Counters, MemoryRow, batched::Tables};
use crate::model::{Category, MemoryKey};
use coalesce_sql::{Dialect, SessionSettings};
use sqlx::{
    AssertSqlSafe, Encode, Executor, FromRow, IntoArguments, Pool, Type,
    database::HasStatementCache,
};

/// Run a sqlx query with one of its run methods (`fetch_all`, `execute`,
/// ...) on a [`coalesce_sql::Session`] of `pool` as `settings` say:
/// prepared as a named statement, or through a transaction pooler unnamed
/// and in a transaction. The one path every statement here takes. `unnamed`
/// at the end: never a named statement (planned anew on every call).
macro_rules! on_session {
    ($pool:expr, $settings:expr, $query:expr, $run:ident) => {
        on_session!($pool, $settings, $query, $run, named: true)
    };
    ($pool:expr, $settings:expr, $query:expr, $run:ident, unnamed) => {
        on_session!($pool, $settings, $query, $run, named: false)
    };
    ($pool:expr, $settings:expr, $query:expr, $run:ident, named: $named:expr) => {{
        let mut session = coalesce_sql::Session::begin($pool, $settings).await?;
        let done = $query
            .persistent($named && session.named_statements())
            .$run(&mut *session)
            .await?;
        session.finish().await?;
        Ok::<_, sqlx::Error>(done)
    }};
}
pub(super) use on_session;

/// What differs between the backends in the store's own SQL.
pub(crate) trait StoreDialect: Dialect {
    /// The current time as the `updated_at` columns store it.
    const NOW: &'static str;
    /// An onboarding state's `data` as JSON text (PostgreSQL stores `jsonb`).
    const ONBOARDING_DATA: &'static str = "data";
    /// The upsert of one profile, binding (user id, profile).
    const SAVE_PROFILE: &'static str;
    /// The upsert of one onboarding state, binding (user id, JSON text,
    /// completed).
    const SAVE_ONBOARDING: &'static str;
    /// The store's tables on this backend, described once per process.
    fn tables() -> &'static Tables;
}

/// A template in `DB`'s spelling, for sqlx.
fn spelled<DB: Dialect>(template: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(coalesce_sql::statement::<DB>(template))
}

/// The columns of a [`MemoryRow`], as a template.
const MEMORY_COLUMNS: &str = r#"category, "key", value"#;

/// The store's own statements on a backend's pool, each counted in
/// `counters`. The driver bounds are said once, here, rather than on every
/// function; callers name the backend (see `dispatch!`), which meets them.
pub(super) trait Statements: StoreDialect + HasStatementCache
where
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
    Self::Arguments: IntoArguments<Self>,
    for<'q> &'q str: Encode<'q, Self> + Type<Self>,
    for<'q> bool: Encode<'q, Self> + Type<Self>,
    for<'q> i64: Encode<'q, Self> + Type<Self>,
    (String,): for<'r> FromRow<'r, Self::Row>,
    (i64,): for<'r> FromRow<'r, Self::Row>,
    (String, bool): for<'r> FromRow<'r, Self::Row>,
    MemoryRow: for<'r> FromRow<'r, Self::Row>,
{
    async fn profile_direct(
        pool: &Pool<Self>,
        settings: &SessionSettings,
        counters: &Counters,
        user_id: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        counters.statement();
        on_session!(
            pool,
            settings,
            sqlx::query_scalar(spelled::<Self>(
                "SELECT profile FROM profiles WHERE user_id = ?",
            ))
            .bind(user_id),
            fetch_optional
        )
    }

    async fn save_profile(
        pool: &Pool<Self>,
        settings: &SessionSettings,
        counters: &Counters,
        user_id: &str,
        profile: &str,
    ) -> Result<(), sqlx::Error> {
        counters.statement();
        on_session!(
            pool,
            settings,
            sqlx::query(Self::SAVE_PROFILE).bind(user_id).bind(profile),
            execute
        )
        .map(drop)
    }

    async fn onboarding_direct(
        pool: &Pool<Self>,
        settings: &SessionSettings,
        counters: &Counters,
        user_id: &str,
    ) -> Result<Option<(String, bool)>, sqlx::Error> {
        counters.statement();
        let data = Self::ONBOARDING_DATA;
        on_session!(
            pool,
            settings,
            sqlx::query_as(spelled::<Self>(&format!(
                "SELECT {data}, completed FROM onboarding WHERE user_id = ?"
            )))
            .bind(user_id),
            fetch_optional
        )
    }

    async fn save_onboarding(
        pool: &Pool<Self>,
        settings: &SessionSettings,
        counters: &Counters,
        user_id: &str,
        data: &str,
        completed: bool,
    ) -> Result<(), sqlx::Error> {
        counters.statement();
        on_session!(
            pool,
            settings,
            sqlx::query(Self::SAVE_ONBOARDING)
                .bind(user_id)
                .bind(data)
                .bind(completed),
            execute
        )
        .map(drop)
    }

    async fn memory_direct(
        pool: &Pool<Self>,
        settings: &SessionSettings,
        counters: &Counters,
        key: &MemoryKey,
    ) -> Result<Option<String>, sqlx::Error> {
        counters.statement();
        on_session!(
            pool,
            settings,
            sqlx::query_scalar(spelled::<Self>(
                r#"SELECT value FROM memories WHERE user_id = ? AND category = ? AND "key" = ?"#,
            ))
            .bind(key.user_id.as_str())
            .bind(key.category.as_str())
            .bind(key.key.as_str()),
            fetch_optional
        )
    }

    async fn top_memories_direct(
        pool: &Pool<Self>,
        settings: &SessionSettings,
        counters: &Counters,
        user_id: &str,
        category: &str,
        limit: i64,
    ) -> Result<Vec<MemoryRow>, sqlx::Error> {
        counters.statement();
        on_session!(
            pool,
            settings,
            sqlx::query_as(spelled::<Self>(&format!(
                "SELECT {MEMORY_COLUMNS} FROM memories WHERE user_id = ? AND category = ? \
             ORDER BY updated_at DESC, id DESC LIMIT ?"
            )))
            .bind(user_id)
            .bind(category)
            .bind(limit),
            fetch_all
        )
    }

    async fn recent_memories(
        pool: &Pool<Self>,
        settings: &SessionSettings,
        counters: &Counters,
        user_id: &str,
        limit: i64,
    ) -> Result<Vec<MemoryRow>, sqlx::Error> {
        counters.statement();
        on_session!(
            pool,
            settings,
            sqlx::query_as(spelled::<Self>(&format!(
                "SELECT {MEMORY_COLUMNS} FROM memories WHERE user_id = ? \
             ORDER BY created_at DESC, id DESC LIMIT ?"
            )))
            .bind(user_id)
            .bind(limit),
            fetch_all
        )
    }

    async fn count_memories(
        pool: &Pool<Self>,
        settings: &SessionSettings,
        counters: &Counters,
        user_id: &str,
    ) -> Result<i64, sqlx::Error> {
        counters.statement();
        on_session!(
            pool,
            settings,
            sqlx::query_scalar(spelled::<Self>(
                "SELECT COUNT(*) FROM memories WHERE user_id = ?",
            ))
            .bind(user_id),
            fetch_one
        )
    }

    /// A user's memories, optionally of one category, ordered by category
    /// then key, at most `limit`.
    async fn memories(
        pool: &Pool<Self>,
        settings: &SessionSettings,
        counters: &Counters,
        user_id: &str,
        category: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Vec<MemoryRow>, sqlx::Error> {
        let template = format!(
            r#"SELECT {MEMORY_COLUMNS} FROM memories WHERE user_id = ?{} ORDER BY category, "key"{}"#,
            if category.is_some() {
                " AND category = ?"
            } else {
                ""
            },
            if limit.is_some() { " LIMIT ?" } else { "" }
        );
        let mut query = sqlx::query_as(spelled::<Self>(&template)).bind(user_id);
        if let Some(category) = category {
            query = query.bind(category);
        }
        if let Some(limit) = limit {
            query = query.bind(limit);
        }
        counters.statement();
        on_session!(pool, settings, query, fetch_all)
    }

    /// Each category's `limit` most recently updated memories. The
    /// categories (at most the five there are) are bound as exactly five,
    /// the first repeated: one statement text.
    async fn top_memories_per_category(
        pool: &Pool<Self>,
        settings: &SessionSettings,
        counters: &Counters,
        user_id: &str,
        categories: &[String],
        limit: i64,
    ) -> Result<Vec<MemoryRow>, sqlx::Error> {
        let template = format!(
            "SELECT {MEMORY_COLUMNS} FROM ( \
                 SELECT {MEMORY_COLUMNS}, ROW_NUMBER() OVER ( \
                     PARTITION BY category ORDER BY updated_at DESC, id DESC \
                 ) AS position \
                 FROM memories WHERE user_id = ? AND category IN (?, ?, ?, ?, ?) \
             ) ranked WHERE position <= ? ORDER BY category, position"
        );
        let mut query = sqlx::query_as(spelled::<Self>(&template)).bind(user_id);
        for i in 0..Category::ALL.len() {
            query = query.bind(categories.get(i).unwrap_or(&categories[0]).as_str());
        }
        counters.statement();
        on_session!(pool, settings, query.bind(limit), fetch_all)
    }

    /// Rows of (user id, profile) in one transaction, a statement each.
    async fn save_profiles(
        pool: &Pool<Self>,
        settings: &SessionSettings,
        counters: &Counters,
        rows: &[(String, String)],
    ) -> Result<(), sqlx::Error> {
        counters.transaction();
        let mut tx = coalesce_sql::Session::transaction(pool, settings).await?;
        for (user_id, profile) in rows {
            counters.statement();
            sqlx::query(Self::SAVE_PROFILE)
                .bind(user_id.as_str())
                .bind(profile.as_str())
                .persistent(tx.named_statements())
                .execute(&mut *tx)
                .await?;
        }
        tx.finish().await
    }

    /// Rows of (user id, JSON text, completed) in one transaction, a
    /// statement each.
    async fn save_onboardings(
        pool: &Pool<Self>,
        settings: &SessionSettings,
        counters: &Counters,
        rows: &[(String, String, bool)],
    ) -> Result<(), sqlx::Error> {
        counters.transaction();
        let mut tx = coalesce_sql::Session::transaction(pool, settings).await?;
        for (user_id, data, completed) in rows {
            counters.statement();
            sqlx::query(Self::SAVE_ONBOARDING)
                .bind(user_id.as_str())
                .bind(data.as_str())
                .bind(*completed)
                .persistent(tx.named_statements())
                .execute(&mut *tx)
                .await?;
        }
        tx.finish().await
    }
}
