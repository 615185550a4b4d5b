//! The statements MySQL/MariaDB and SQLite share: lists spelled out as
//! `IN (?, ...)` and multi-row `VALUES`, chunked under the dialect's bind
//! limit and padded to a few fixed lengths (see `list`), top-N per category
//! through `ROW_NUMBER()`. `key` is quoted with backticks, which both accept.
//!
//! Written once as a macro rather than as functions generic over
//! `sqlx::Database`, which would each need the same long list of executor,
//! encode and decode bounds; each dialect module invokes it with its
//! database type after defining `MAX_BINDS`, `UPSERT_MEMORIES` (the clause
//! after `VALUES`), `SAVE_PROFILE`, `SAVE_ONBOARDING` and `ROW_LIST` (what
//! opens a list of row values after `IN (`).

macro_rules! in_list_dialect {
    ($db:ty) => {
        use super::{Counters, MemoryRow, list};
        use crate::model::{MemoryKey, NewMemory};
        use sqlx::{AssertSqlSafe, Pool};

        type Db = $db;

        const MEMORY_COLUMNS: &str = "category, `key`, value";

        /// Run `<select> (?, ...)` over the distinct `user_ids`, in padded
        /// chunks under the bind limit.
        async fn select_in<R>(
            pool: &Pool<Db>,
            counters: &Counters,
            select: &str,
            user_ids: &[String],
        ) -> Result<Vec<R>, sqlx::Error>
        where
            R: for<'r> sqlx::FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin,
        {
            let distinct = list::distinct(user_ids);
            let mut out = Vec::new();
            for chunk in distinct.chunks(MAX_BINDS) {
                let padded = list::padded(chunk, MAX_BINDS);
                let sql = format!("{select} ({})", list::placeholders(padded.len(), 1));
                let query = padded
                    .into_iter()
                    .fold(sqlx::query_as(AssertSqlSafe(sql)), |q, id| q.bind(*id));
                counters.statement();
                out.extend(query.fetch_all(pool).await?);
            }
            Ok(out)
        }

        pub(super) async fn profiles(
            pool: &Pool<Db>,
            counters: &Counters,
            user_ids: &[String],
        ) -> Result<Vec<(String, String)>, sqlx::Error> {
            let select = "SELECT user_id, profile FROM profiles WHERE user_id IN";
            select_in(pool, counters, select, user_ids).await
        }

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

        pub(super) async fn onboardings(
            pool: &Pool<Db>,
            counters: &Counters,
            user_ids: &[String],
        ) -> Result<Vec<(String, String, bool)>, sqlx::Error> {
            let select = "SELECT user_id, data, completed FROM onboarding WHERE user_id IN";
            select_in(pool, counters, select, user_ids).await
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

        pub(super) async fn memories_by_key(
            pool: &Pool<Db>,
            counters: &Counters,
            keys: &[MemoryKey],
        ) -> Result<Vec<(String, String, String, String)>, sqlx::Error> {
            let distinct: Vec<&MemoryKey> = list::distinct(keys);
            let mut out = Vec::new();
            for chunk in distinct.chunks(MAX_BINDS / 3) {
                let padded = list::padded(chunk, MAX_BINDS / 3);
                let sql = format!(
                    "SELECT user_id, {MEMORY_COLUMNS} FROM memories WHERE {}",
                    list::repeated(
                        "(user_id = ? AND category = ? AND `key` = ?)",
                        padded.len(),
                        " OR "
                    )
                );
                let query = padded.into_iter().fold(
                    sqlx::query_as(AssertSqlSafe(sql)),
                    |q, key| q.bind(&key.user_id).bind(key.category.as_str()).bind(&key.key),
                );
                counters.statement();
                out.extend(query.fetch_all(pool).await?);
            }
            Ok(out)
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

        pub(super) async fn memories(
            pool: &Pool<Db>,
            counters: &Counters,
            user_id: &str,
            category: Option<&str>,
            keys: Option<&[String]>,
            limit: Option<i64>,
        ) -> Result<Vec<MemoryRow>, sqlx::Error> {
            let mut select =
                format!("SELECT {MEMORY_COLUMNS} FROM memories WHERE user_id = ?");
            if category.is_some() {
                select.push_str(" AND category = ?");
            }
            let order = format!(
                " ORDER BY category, `key`{}",
                if limit.is_some() { " LIMIT ?" } else { "" }
            );
            // Binds in order: user, category if any, the keys, limit if any.
            let statement = |list: &str,
                             keys: Vec<&&String>|
             -> sqlx::query::QueryAs<'static, Db, MemoryRow, <Db as sqlx::Database>::Arguments> {
                let mut q = sqlx::query_as(AssertSqlSafe(format!("{select}{list}{order}")))
                    .bind(user_id.to_owned());
                if let Some(category) = category {
                    q = q.bind(category.to_owned());
                }
                q = keys.into_iter().fold(q, |q, key| q.bind((*key).clone()));
                if let Some(limit) = limit {
                    q = q.bind(limit);
                }
                counters.statement();
                q
            };
            let Some(keys) = keys else {
                return statement("", Vec::new()).fetch_all(pool).await;
            };
            let distinct = list::distinct(keys);
            let per_chunk = MAX_BINDS - 3;
            let mut rows: Vec<MemoryRow> = Vec::new();
            for chunk in distinct.chunks(per_chunk) {
                let padded = list::padded(chunk, per_chunk);
                let in_list = format!(" AND `key` IN ({})", list::placeholders(padded.len(), 1));
                rows.extend(statement(&in_list, padded).fetch_all(pool).await?);
            }
            if distinct.len() > per_chunk {
                rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
                if let Some(limit) = limit {
                    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                }
            }
            Ok(rows)
        }

        pub(super) async fn top_memories_per_category(
            pool: &Pool<Db>,
            counters: &Counters,
            user_id: &str,
            categories: &[String],
            limit: i64,
        ) -> Result<Vec<MemoryRow>, sqlx::Error> {
            let distinct = list::distinct(categories);
            let padded = list::padded(&distinct, MAX_BINDS);
            let sql = format!(
                "SELECT {MEMORY_COLUMNS} FROM ( \
                     SELECT {MEMORY_COLUMNS}, ROW_NUMBER() OVER ( \
                         PARTITION BY category ORDER BY updated_at DESC, id DESC \
                     ) AS position \
                     FROM memories WHERE user_id = ? AND category IN ({}) \
                 ) ranked WHERE position <= ? ORDER BY category, position",
                list::placeholders(padded.len(), 1)
            );
            let query = padded
                .into_iter()
                .fold(sqlx::query_as(AssertSqlSafe(sql)).bind(user_id), |q, c| q.bind(*c))
                .bind(limit);
            counters.statement();
            query.fetch_all(pool).await
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

        pub(super) async fn save_memories(
            pool: &Pool<Db>,
            counters: &Counters,
            rows: &[NewMemory],
            rows_per_statement: usize,
        ) -> Result<(), sqlx::Error> {
            let per_chunk = rows_per_statement.min(MAX_BINDS / 4);
            let upsert = |chunk: &[NewMemory]| {
                let padded = list::padded(chunk, per_chunk);
                let sql = format!(
                    "INSERT INTO memories (user_id, category, `key`, value) VALUES {} {UPSERT_MEMORIES}",
                    list::placeholders(padded.len(), 4)
                );
                counters.statement();
                padded.into_iter().fold(sqlx::query(AssertSqlSafe(sql)), |q, m| {
                    q.bind(&m.user_id).bind(m.category.as_str()).bind(&m.key).bind(&m.value)
                })
            };
            if rows.len() <= per_chunk {
                return upsert(rows).execute(pool).await.map(drop);
            }
            counters.transaction();
            let mut tx = pool.begin().await?;
            for chunk in rows.chunks(per_chunk) {
                upsert(chunk).execute(&mut *tx).await?;
            }
            tx.commit().await
        }

        pub(super) async fn delete_memories(
            pool: &Pool<Db>,
            counters: &Counters,
            user_id: &str,
            keys: &[String],
        ) -> Result<u64, sqlx::Error> {
            let distinct = list::distinct(keys);
            let per_chunk = MAX_BINDS - 1;
            let delete = |chunk: &[&String]| {
                let padded = list::padded(chunk, per_chunk);
                let sql = format!(
                    "DELETE FROM memories WHERE user_id = ? AND `key` IN ({})",
                    list::placeholders(padded.len(), 1)
                );
                counters.statement();
                padded
                    .into_iter()
                    .fold(sqlx::query(AssertSqlSafe(sql)).bind(user_id), |q, key| q.bind(*key))
            };
            if distinct.len() <= per_chunk {
                return Ok(delete(&distinct).execute(pool).await?.rows_affected());
            }
            counters.transaction();
            let mut tx = pool.begin().await?;
            let mut deleted = 0;
            for chunk in distinct.chunks(per_chunk) {
                deleted += delete(chunk).execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
            Ok(deleted)
        }

        /// `FROM memories WHERE (user_id, key) IN (...)` for `pairs`
        /// (user, key) pairs.
        fn memories_matching_pairs(pairs: usize) -> String {
            format!(
                "FROM memories WHERE (user_id, `key`) IN ({ROW_LIST}{})",
                list::placeholders(pairs, 2)
            )
        }

        pub(super) async fn delete_memory_pairs(
            pool: &Pool<Db>,
            counters: &Counters,
            pairs: &[(String, String)],
        ) -> Result<Vec<(String, String)>, sqlx::Error> {
            let distinct = list::distinct(pairs);
            let per_chunk = MAX_BINDS / 2;
            let delete = |chunk: &[&(String, String)]| {
                let padded = list::padded(chunk, per_chunk);
                let sql = format!(
                    "DELETE {} RETURNING user_id, `key`",
                    memories_matching_pairs(padded.len())
                );
                counters.statement();
                padded.into_iter().fold(sqlx::query_as(AssertSqlSafe(sql)), |q, pair| {
                    // Owned binds: the borrow checker cannot tie a closure's
                    // nested input lifetime to its output.
                    q.bind(pair.0.clone()).bind(pair.1.clone())
                })
            };
            if distinct.len() <= per_chunk {
                return delete(&distinct).fetch_all(pool).await;
            }
            counters.transaction();
            let mut tx = pool.begin().await?;
            let mut deleted = Vec::new();
            for chunk in distinct.chunks(per_chunk) {
                deleted.extend(delete(chunk).fetch_all(&mut *tx).await?);
            }
            tx.commit().await?;
            Ok(deleted)
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

pub(super) use in_list_dialect;
