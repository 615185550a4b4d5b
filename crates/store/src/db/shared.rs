//! The statements MySQL/MariaDB and SQLite share, each a fixed text (lists
//! of keys and rows go through the `coalesce-sql` toolkit, see `batched`):
//! single-row reads and upserts, top-N per category through `ROW_NUMBER()`.
//! `key` is quoted with backticks, which both accept.
//!
//! Written once as a macro rather than as functions generic over
//! `sqlx::Database`, which would each need the same long list of executor,
//! encode and decode bounds; each dialect module invokes it with its
//! database type after defining `SAVE_PROFILE` and `SAVE_ONBOARDING`.

macro_rules! shared_dialect {
    ($db:ty) => {
        use super::{Counters, MemoryRow};
        use crate::model::{Category, MemoryKey};
        use sqlx::{AssertSqlSafe, Pool};

        type Db = $db;

        const MEMORY_COLUMNS: &str = "category, `key`, value";

        pub(super) async fn profile_direct(
            pool: &Pool<Db>,
            counters: &Counters,
            user_id: &str,
        ) -> Result<Option<String>, sqlx::Error> {
            counters.statement();
            sqlx::query_scalar("SELECT profile FROM profiles WHERE user_id = ?")
                .bind(user_id)
                .fetch_optional(pool)
                .await
        }

        pub(super) async fn save_profile(
            pool: &Pool<Db>,
            counters: &Counters,
            user_id: &str,
            profile: &str,
        ) -> Result<(), sqlx::Error> {
            counters.statement();
            sqlx::query(SAVE_PROFILE)
                .bind(user_id)
                .bind(profile)
                .execute(pool)
                .await
                .map(drop)
        }

        pub(super) async fn onboarding_direct(
            pool: &Pool<Db>,
            counters: &Counters,
            user_id: &str,
        ) -> Result<Option<(String, bool)>, sqlx::Error> {
            counters.statement();
            sqlx::query_as("SELECT data, completed FROM onboarding WHERE user_id = ?")
                .bind(user_id)
                .fetch_optional(pool)
                .await
        }

        pub(super) async fn save_onboarding(
            pool: &Pool<Db>,
            counters: &Counters,
            user_id: &str,
            data: &str,
            completed: bool,
        ) -> Result<(), sqlx::Error> {
            counters.statement();
            sqlx::query(SAVE_ONBOARDING)
                .bind(user_id)
                .bind(data)
                .bind(completed)
                .execute(pool)
                .await
                .map(drop)
        }

        pub(super) async fn memory_direct(
            pool: &Pool<Db>,
            counters: &Counters,
            key: &MemoryKey,
        ) -> Result<Option<String>, sqlx::Error> {
            counters.statement();
            sqlx::query_scalar(
                "SELECT value FROM memories WHERE user_id = ? AND category = ? AND `key` = ?",
            )
            .bind(&key.user_id)
            .bind(key.category.as_str())
            .bind(&key.key)
            .fetch_optional(pool)
            .await
        }

/// A user's memories, optionally of one category, ordered by
        /// category then key, at most `limit`.
        pub(super) async fn memories(
            pool: &Pool<Db>,
            counters: &Counters,
            user_id: &str,
            category: Option<&str>,
            limit: Option<i64>,
        ) -> Result<Vec<MemoryRow>, sqlx::Error> {
            let sql = format!(
                "SELECT {MEMORY_COLUMNS} FROM memories WHERE user_id = ?{} ORDER BY category, `key`{}",
                if category.is_some() { " AND category = ?" } else { "" },
                if limit.is_some() { " LIMIT ?" } else { "" }
            );
            let mut query = sqlx::query_as(AssertSqlSafe(sql)).bind(user_id);
            if let Some(category) = category {
                query = query.bind(category);
            }
            if let Some(limit) = limit {
                query = query.bind(limit);
            }
            counters.statement();
            query.fetch_all(pool).await
        }

        /// Each category's `limit` most recently updated memories. The
        /// categories (at most the five there are) are bound as exactly five,
        /// the first repeated: one statement text.
        pub(super) async fn top_memories_per_category(
            pool: &Pool<Db>,
            counters: &Counters,
            user_id: &str,
            categories: &[String],
            limit: i64,
        ) -> Result<Vec<MemoryRow>, sqlx::Error> {
            let sql = format!(
                "SELECT {MEMORY_COLUMNS} FROM ( \
                     SELECT {MEMORY_COLUMNS}, ROW_NUMBER() OVER ( \
                         PARTITION BY category ORDER BY updated_at DESC, id DESC \
                     ) AS position \
                     FROM memories WHERE user_id = ? AND category IN (?, ?, ?, ?, ?) \
                 ) ranked WHERE position <= ? ORDER BY category, position"
            );
            let mut query = sqlx::query_as(AssertSqlSafe(sql)).bind(user_id);
            for i in 0..Category::ALL.len() {
                query = query.bind(categories.get(i).unwrap_or(&categories[0]).clone());
            }
            counters.statement();
            query.bind(limit).fetch_all(pool).await
        }

        pub(super) async fn top_memories_direct(
            pool: &Pool<Db>,
            counters: &Counters,
            user_id: &str,
            category: &str,
            limit: i64,
        ) -> Result<Vec<MemoryRow>, sqlx::Error> {
            counters.statement();
            sqlx::query_as(
                "SELECT category, `key`, value FROM memories WHERE user_id = ? AND category = ? \
                 ORDER BY updated_at DESC, id DESC LIMIT ?",
            )
            .bind(user_id)
            .bind(category)
            .bind(limit)
            .fetch_all(pool)
            .await
        }

        pub(super) async fn recent_memories(
            pool: &Pool<Db>,
            counters: &Counters,
            user_id: &str,
            limit: i64,
        ) -> Result<Vec<MemoryRow>, sqlx::Error> {
            counters.statement();
            sqlx::query_as(
                "SELECT category, `key`, value FROM memories WHERE user_id = ? \
                 ORDER BY created_at DESC, id DESC LIMIT ?",
            )
            .bind(user_id)
            .bind(limit)
            .fetch_all(pool)
            .await
        }

        pub(super) async fn count_memories(
            pool: &Pool<Db>,
            counters: &Counters,
            user_id: &str,
        ) -> Result<i64, sqlx::Error> {
            counters.statement();
            sqlx::query_scalar("SELECT COUNT(*) FROM memories WHERE user_id = ?")
                .bind(user_id)
                .fetch_one(pool)
                .await
        }

        /// Rows of (user id, profile) in one transaction, a statement each.
        pub(super) async fn save_profiles(
            pool: &Pool<Db>,
            counters: &Counters,
            rows: &[(String, String)],
        ) -> Result<(), sqlx::Error> {
            counters.transaction();
            let mut tx = pool.begin().await?;
            for (user_id, profile) in rows {
                counters.statement();
                sqlx::query(SAVE_PROFILE)
                    .bind(user_id)
                    .bind(profile)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }

        /// Rows of (user id, JSON text, completed) in one transaction, a
        /// statement each.
        pub(super) async fn save_onboardings(
            pool: &Pool<Db>,
            counters: &Counters,
            rows: &[(String, String, bool)],
        ) -> Result<(), sqlx::Error> {
            counters.transaction();
            let mut tx = pool.begin().await?;
            for (user_id, data, completed) in rows {
                counters.statement();
                sqlx::query(SAVE_ONBOARDING)
                    .bind(user_id)
                    .bind(data)
                    .bind(completed)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }
    };
}

pub(super) use shared_dialect;
