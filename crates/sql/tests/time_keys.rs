//! Dates and times as single-column keys (features `chrono` and `time`):
//! each batched read, upsert and delete answers as the per-key statement
//! does, on all three backends.

mod common;

use coalesce_sql::{Db, Dialect, Key, KeyPart, Record, Table, statement};
use sqlx::{Executor, MySql, Pool, Postgres, Sqlite};
use std::{collections::HashMap, fmt::Debug, hash::Hash};

/// A row `(k, v)` keyed by a date or time type `K`.
#[derive(Debug, Clone, PartialEq)]
struct Dated<K> {
    k: K,
    v: i64,
}

impl<DB: Dialect, K> Record<DB> for Dated<K>
where
    K: Key<DB> + Clone + Sync,
    i64: KeyPart<DB>,
{
    type Key = K;
    type Values<'a>
        = (&'a i64,)
    where
        K: 'a;
    fn key(&self) -> K {
        self.k.clone()
    }
    fn values(&self) -> Self::Values<'_> {
        (&self.v,)
    }
}

/// Upsert `keys[..2]`, read all of `keys` batched and one by one, delete
/// them batched: the answers agree, and the deleted keys are the two
/// written.
async fn round_trip<DB, K>(pool: Pool<DB>, column_type: &str, keys: [K; 3])
where
    DB: Dialect,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    K: Key<DB> + KeyPart<DB> + Clone + Sync + Debug + Eq + Hash + Unpin,
    K: for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    i64: KeyPart<DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'r> (K, i64): sqlx::FromRow<'r, DB::Row>,
    usize: sqlx::ColumnIndex<DB::Row>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
{
    let name = common::unique("time_keys");
    let ddl = format!("CREATE TABLE {name} (k {column_type} PRIMARY KEY, v BIGINT NOT NULL)");
    pool.execute(sqlx::AssertSqlSafe(ddl)).await.unwrap();
    let table = Table::new(&name).key(["k"]).values(["v"]);
    let db = Db::new(pool.clone());

    let rows = [0, 1].map(|i| Dated {
        k: keys[i].clone(),
        v: i as i64 + 1,
    });
    db.upsert(&table, &rows).await.unwrap();

    let batched: HashMap<K, (K, i64)> = db.fetch(&table, &keys).await.unwrap();
    let one_by_one = statement::<DB>(&format!("SELECT v FROM {name} WHERE k = ?"));
    for key in &keys {
        let alone: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(one_by_one.clone()))
            .bind(key.clone())
            .fetch_optional(&pool)
            .await
            .unwrap();
        assert_eq!(batched.get(key).map(|row| row.1), alone, "{key:?}");
    }
    assert_eq!(batched.len(), 2);

    assert_eq!(db.delete(&table, &keys).await.unwrap(), keys[..2]);
    let drop = format!("DROP TABLE {name}");
    pool.execute(sqlx::AssertSqlSafe(drop)).await.unwrap();
}

use sqlx::types::{chrono, time};

fn chrono_dates() -> [chrono::NaiveDate; 3] {
    [(2024, 2, 29), (1999, 12, 31), (2038, 1, 19)]
        .map(|(y, m, d)| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap())
}

fn chrono_date_times() -> [chrono::NaiveDateTime; 3] {
    chrono_dates().map(|date| date.and_hms_opt(23, 59, 58).unwrap())
}

fn time_dates() -> [time::Date; 3] {
    // The same days as `chrono_dates`, by day of the year.
    [(2024, 60), (1999, 365), (2038, 19)]
        .map(|(year, day)| time::Date::from_ordinal_date(year, day).unwrap())
}

fn time_date_times() -> [time::PrimitiveDateTime; 3] {
    time_dates().map(|date| date.with_hms(23, 59, 58).unwrap())
}

macro_rules! time_key_tests {
    ($backend:ident, $db:ty, $pool:path, date_time: $date_time:literal) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn chrono_date() {
                let Some(pool) = $pool().await else { return };
                round_trip::<$db, _>(pool, "DATE", chrono_dates()).await;
            }

            #[tokio::test]
            async fn chrono_date_time() {
                let Some(pool) = $pool().await else { return };
                round_trip::<$db, _>(pool, $date_time, chrono_date_times()).await;
            }

            #[tokio::test]
            async fn time_date() {
                let Some(pool) = $pool().await else { return };
                round_trip::<$db, _>(pool, "DATE", time_dates()).await;
            }

            #[tokio::test]
            async fn time_date_time() {
                let Some(pool) = $pool().await else { return };
                round_trip::<$db, _>(pool, $date_time, time_date_times()).await;
            }
        }
    };
}

time_key_tests!(postgres, Postgres, common::postgres, date_time: "TIMESTAMP");
time_key_tests!(mysql, MySql, common::mysql, date_time: "DATETIME");
time_key_tests!(sqlite, Sqlite, common::sqlite, date_time: "TEXT");
