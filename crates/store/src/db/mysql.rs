//! MySQL/MariaDB statements: the shared `IN`-list dialect with
//! `ON DUPLICATE KEY UPDATE` upserts and MySQL's 65,535 bind limit, and a
//! delete for servers without `DELETE ... RETURNING` (Oracle MySQL).

use sqlx::MySqlPool;

/// Placeholders one statement may hold.
const MAX_BINDS: usize = 65_535;

const UPSERT_MEMORIES: &str =
    "ON DUPLICATE KEY UPDATE value = VALUES(value), updated_at = CURRENT_TIMESTAMP(6)";

const SAVE_PROFILE: &str = "INSERT INTO profiles (user_id, profile) VALUES (?, ?) \
     ON DUPLICATE KEY UPDATE profile = VALUES(profile), updated_at = CURRENT_TIMESTAMP(6)";

const SAVE_ONBOARDING: &str = "INSERT INTO onboarding (user_id, data, completed) VALUES (?, ?, ?) \
     ON DUPLICATE KEY UPDATE data = VALUES(data), completed = VALUES(completed), \
     updated_at = CURRENT_TIMESTAMP(6)";

/// MariaDB takes a list of row values as is: `(a, b) IN ((?, ?), ...)`.
const ROW_LIST: &str = "";

super::in_list::in_list_dialect!(sqlx::MySql);

/// Whether the server can `DELETE ... RETURNING`: MariaDB can (since 10.0),
/// Oracle MySQL cannot. Not counted as a statement: it runs once a pool.
pub(super) async fn deletes_return_rows(pool: &MySqlPool) -> Result<bool, sqlx::Error> {
    let version: String = sqlx::query_scalar("SELECT VERSION()")
        .fetch_one(pool)
        .await?;
    Ok(version.contains("MariaDB"))
}

/// [`delete_memory_pairs`] where `RETURNING` is missing: per chunk, the
/// pairs that exist are read and locked (`FOR UPDATE`), then deleted, all
/// in one transaction, so the rows read are exactly the rows deleted.
pub(super) async fn delete_memory_pairs_locking(
    pool: &MySqlPool,
    counters: &Counters,
    pairs: &[(String, String)],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let distinct = list::distinct(pairs);
    let per_chunk = MAX_BINDS / 2;
    counters.transaction();
    let mut tx = pool.begin().await?;
    let mut deleted = Vec::new();
    for chunk in distinct.chunks(per_chunk) {
        let padded = list::padded(chunk, per_chunk);
        let matching = memories_matching_pairs(padded.len());
        counters.statement();
        let select = format!("SELECT user_id, `key` {matching} FOR UPDATE");
        let found: Vec<(String, String)> = padded
            .iter()
            .fold(sqlx::query_as(AssertSqlSafe(select)), |q, pair| {
                q.bind(&pair.0).bind(&pair.1)
            })
            .fetch_all(&mut *tx)
            .await?;
        counters.statement();
        padded
            .iter()
            .fold(
                sqlx::query(AssertSqlSafe(format!("DELETE {matching}"))),
                |q, pair| q.bind(&pair.0).bind(&pair.1),
            )
            .execute(&mut *tx)
            .await?;
        deleted.extend(found);
    }
    tx.commit().await?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use crate::db::{Database, Pool};
    use crate::model::{Category, NewMemory};

    /// The MariaDB test server, or `None` outside CI when it is unreachable.
    async fn mariadb() -> Option<Database> {
        let url = std::env::var("COALESCE_TEST_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
        match Database::connect(&url, 2).await {
            Ok(db) => {
                db.migrate().await.expect("migrations apply");
                Some(db)
            }
            Err(error) if std::env::var_os("CI").is_some() => {
                panic!("MariaDB test database unreachable in CI: {error}")
            }
            Err(error) => {
                eprintln!("SKIPPED: MariaDB unreachable ({error}); set CI=1 to fail instead");
                None
            }
        }
    }

    /// Seed the same rows for `user` and return the pairs to delete: a key
    /// in two categories, a missing key, and a duplicate.
    async fn seeded(db: &Database, user: &str) -> Vec<(String, String)> {
        let rows = [
            (Category::Fact, "k1"),
            (Category::Interest, "k1"),
            (Category::Fact, "k2"),
            (Category::Goal, "kept"),
        ]
        .map(|(category, key)| NewMemory::new(user, category, key, "v"));
        db.save_memories(&rows, 100).await.unwrap();
        ["k1", "k3", "k1", "k2"]
            .map(|key| (user.to_owned(), key.to_owned()))
            .to_vec()
    }

    #[tokio::test]
    async fn locking_delete_matches_delete_returning() {
        let Some(db) = mariadb().await else {
            return;
        };
        let Pool::MySql(pool) = db.pool() else {
            unreachable!("a mysql:// URL opens a MySQL pool")
        };
        assert!(super::deletes_return_rows(pool).await.unwrap(), "MariaDB");
        let suffix = format!("{}-{:?}", std::process::id(), std::time::Instant::now());
        let (returning_user, locking_user) = (format!("ret-{suffix}"), format!("lock-{suffix}"));

        let pairs = seeded(&db, &returning_user).await;
        let mut by_returning = db.delete_memory_pairs(&pairs).await.unwrap();

        let pairs = seeded(&db, &locking_user).await;
        let before = db.statements();
        let mut by_locking = super::delete_memory_pairs_locking(pool, &db.counters, &pairs)
            .await
            .unwrap();
        assert_eq!(db.statements() - before, 2, "one SELECT, one DELETE");

        let keys = |pairs: &mut Vec<(String, String)>| {
            pairs.sort();
            pairs.iter().map(|(_, key)| key.clone()).collect::<Vec<_>>()
        };
        assert_eq!(keys(&mut by_returning), ["k1", "k1", "k2"]);
        assert_eq!(keys(&mut by_locking), keys(&mut by_returning));
        for user in [&returning_user, &locking_user] {
            assert_eq!(
                db.count_memories(user).await.unwrap(),
                1,
                "only `kept` is left"
            );
        }
    }
}
