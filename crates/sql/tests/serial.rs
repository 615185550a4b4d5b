//! Serial equivalence, defect by defect (issue 19): each batched call must
//! answer, and leave the table, as the per-item statements run one by one
//! in order would (`SELECT ... WHERE k = ?`, one upsert per row, `DELETE
//! ... WHERE k = ?`), under the database's own comparison rules. Each test
//! runs the batched call and the one-by-one statements on twin tables (or
//! asks the one-by-one query for each key) and compares.

mod common;

use coalesce_sql::{Db, Dialect, Error, KeyPart, Limit, Record, Table, statement};
use std::collections::HashMap;

/// A row of the test tables `(k, v)`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hit {
    k: String,
    v: i64,
}

impl<DB: Dialect> Record<DB> for Hit
where
    String: KeyPart<DB>,
    i64: KeyPart<DB>,
{
    type Key = String;
    type Values<'a> = (&'a i64,);
    fn key(&self) -> String {
        self.k.clone()
    }
    fn values(&self) -> Self::Values<'_> {
        (&self.v,)
    }
}

/// A row keyed `(a, b)` where `b` may be `NULL`.
struct Nullable {
    a: i64,
    b: Option<i64>,
    v: i64,
}

impl<DB: Dialect> Record<DB> for Nullable
where
    i64: KeyPart<DB>,
    Option<i64>: KeyPart<DB>,
{
    type Key = (i64, Option<i64>);
    type Values<'a> = (&'a i64,);
    fn key(&self) -> (i64, Option<i64>) {
        (self.a, self.b)
    }
    fn values(&self) -> Self::Values<'_> {
        (&self.v,)
    }
}

/// A `#[sqlx(transparent)]` newtype as a single-column key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(transparent)]
struct Sku(String);

coalesce_sql::single_key!(Sku);

fn hits(pairs: &[(&str, i64)]) -> Vec<Hit> {
    pairs
        .iter()
        .map(|&(k, v)| Hit { k: k.to_owned(), v })
        .collect()
}

macro_rules! serial_tests {
    ($backend:ident, $db:ty, read_key: $read_key:literal, merged_key: $merged_key:literal,
     int_column: $int_column:literal, schema: $schema:literal, setup: $setup:literal,
     check: $check:literal) => {
        mod $backend {
            use super::*;
            use sqlx::AssertSqlSafe;

            type Pool = sqlx::Pool<$db>;

            async fn exec(pool: &Pool, sql: String) {
                sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                    .execute(pool)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }

            /// A fresh table with these columns; its name.
            async fn table(pool: &Pool, prefix: &str, columns: &str) -> String {
                if !$setup.is_empty() {
                    exec(pool, $setup.to_owned()).await;
                }
                let name = common::unique(prefix);
                exec(pool, format!("CREATE TABLE {name} ({columns})")).await;
                name
            }

            async fn drop_tables(pool: &Pool, names: &[&str]) {
                for name in names {
                    exec(pool, format!("DROP TABLE {name}")).await;
                }
            }

            /// The naive read of one key: `SELECT k, v ... WHERE k = ?`.
            async fn naive_read(pool: &Pool, name: &str, key: &str) -> Vec<(String, i64)> {
                let sql = statement::<$db>(&format!(r#"SELECT k, v FROM {name} WHERE "k" = ?"#));
                sqlx::query_as(AssertSqlSafe(sql))
                    .bind(key)
                    .fetch_all(pool)
                    .await
                    .unwrap()
            }

            /// Every row `(k, v)`, ordered.
            async fn contents(pool: &Pool, name: &str) -> Vec<(String, i64)> {
                let sql = format!("SELECT k, v FROM {name} ORDER BY k, v");
                sqlx::query_as(AssertSqlSafe(sql))
                    .fetch_all(pool)
                    .await
                    .unwrap()
            }

            /// Defect 1: rows found under the column's collation, trailing
            /// spaces or CHAR(n) padding are found by a batched read as by
            /// `WHERE k = ?`, for a lone key and in a batch, and two keys
            /// that match one row both get it.
            #[tokio::test]
            async fn reads_find_what_the_per_key_query_finds() {
                let Some(pool) = common::$backend().await else {
                    return;
                };
                let columns = format!("k {} PRIMARY KEY, v BIGINT NOT NULL", $read_key);
                let name = table(&pool, "serial_read", &columns).await;
                exec(
                    &pool,
                    format!("INSERT INTO {name} (k, v) VALUES ('ABC', 1), ('abc2  ', 2)"),
                )
                .await;
                let table = Table::new(&name).key(["k"]).values(["v"]);
                let sql = Db::new(pool.clone());
                let keys: Vec<String> = ["abc", "ABC", "abc2", "abc2  ", "nope"]
                    .map(str::to_owned)
                    .to_vec();
                let batched: HashMap<String, (String, i64)> =
                    sql.fetch(&table, &keys).await.unwrap();
                let mut found_by_naive = 0;
                for key in &keys {
                    let naive = naive_read(&pool, &name, key).await;
                    let alone: HashMap<String, (String, i64)> =
                        sql.fetch(&table, std::slice::from_ref(key)).await.unwrap();
                    assert_eq!(batched.get(key), naive.first(), "batched, key {key:?}");
                    assert_eq!(alone.get(key), naive.first(), "alone, key {key:?}");
                    found_by_naive += naive.len();
                }
                assert!(
                    found_by_naive >= 2,
                    "the column's rules find more than byte equality"
                );
                let grouped: HashMap<String, Vec<(String, i64)>> =
                    sql.fetch_grouped(&table, &keys).await.unwrap();
                for key in &keys {
                    let naive = naive_read(&pool, &name, key).await;
                    assert_eq!(
                        grouped.get(key).cloned().unwrap_or_default(),
                        naive,
                        "{key:?}"
                    );
                }
                // What a loader's reads run (`Rows`, `load_in_order`).
                let in_order: Vec<Option<Result<(String, i64), coalesce_sql::Error>>> =
                    sql.fetch_each_in_order(&table, &keys).await.unwrap();
                for (key, answer) in keys.iter().zip(in_order) {
                    let naive = naive_read(&pool, &name, key).await;
                    let answer = answer.map(Result::unwrap);
                    assert_eq!(answer.as_ref(), naive.first(), "in order, key {key:?}");
                }
                drop_tables(&pool, &[&name]).await;
            }

            /// Defect 2: a key type narrower or wider than its integer
            /// column reads (and deletes) as `WHERE id = ?` does.
            #[tokio::test]
            async fn integer_keys_of_any_width_read_like_the_per_key_query() {
                let Some(pool) = common::$backend().await else {
                    return;
                };
                let columns = format!("id {} PRIMARY KEY, v BIGINT NOT NULL", $int_column);
                let name = table(&pool, "serial_int", &columns).await;
                exec(
                    &pool,
                    format!("INSERT INTO {name} (id, v) VALUES (1, 10), (2, 20), (3, 30)"),
                )
                .await;
                let table = Table::new(&name).key(["id"]).values(["v"]);
                let sql = Db::new(pool.clone());
                let wide: HashMap<i64, (i32, i64)> =
                    sql.fetch(&table, &[1_i64, 2, 9]).await.unwrap();
                assert_eq!(wide, HashMap::from([(1, (1, 10)), (2, (2, 20))]));
                let narrow: HashMap<i16, (i32, i64)> = sql.fetch(&table, &[3_i16]).await.unwrap();
                assert_eq!(narrow, HashMap::from([(3, (3, 30))]));
                let narrow: HashMap<i16, (i32, i64)> =
                    sql.fetch(&table, &[3_i16, 1]).await.unwrap();
                assert_eq!(narrow.len(), 2);
                assert_eq!(sql.delete(&table, &[3_i64, 4, 1]).await.unwrap(), [3, 1]);
                drop_tables(&pool, &[&name]).await;
            }

            /// Upsert `rows` one by one into `twin` (the oracle), and with
            /// one batched call into `name`; compare the tables.
            async fn upserts_equal_one_by_one(
                pool: &Pool,
                table: &Table,
                twin: &Table,
                rows: &[Hit],
            ) {
                let sql = Db::new(pool.clone());
                sql.upsert(table, rows).await.unwrap();
                for row in rows {
                    sql.upsert(twin, std::slice::from_ref(row)).await.unwrap();
                }
                assert_eq!(
                    contents(pool, table.name()).await,
                    contents(pool, twin.name()).await,
                    "batched upsert of {rows:?}"
                );
            }

            /// Defects 3 and 4: no row is written twice by padding (an
            /// `on_update` counter moves once per row), and rows whose keys
            /// the column merges (`a`/`A` under a case-insensitive column,
            /// `citext` on PostgreSQL) end as one by one: the last wins.
            #[tokio::test]
            async fn upserts_end_as_one_by_one() {
                let Some(pool) = common::$backend().await else {
                    return;
                };
                let columns = format!(
                    "k {} PRIMARY KEY, v BIGINT NOT NULL, n BIGINT NOT NULL DEFAULT 0",
                    $merged_key
                );
                let name = table(&pool, "serial_up", &columns).await;
                let twin_name = table(&pool, "serial_up_twin", &columns).await;
                // Qualified: PostgreSQL would not know `n` from `excluded.n`.
                let counted = |name: &str| {
                    let increment = format!("{name}.n + 1");
                    Table::new(name)
                        .key(["k"])
                        .values(["v"])
                        .on_update("n", increment)
                };
                let (table, twin) = (counted(&name), counted(&twin_name));
                // Three rows (a list padded to four before): each counter once.
                let three = hits(&[("x", 1), ("y", 2), ("z", 3)]);
                upserts_equal_one_by_one(&pool, &table, &twin, &three).await;
                upserts_equal_one_by_one(&pool, &table, &twin, &three).await;
                let counters: Vec<i64> =
                    sqlx::query_scalar(AssertSqlSafe(format!("SELECT n FROM {name} ORDER BY k")))
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                assert_eq!(counters, [1, 1, 1], "one update per row, none from padding");
                // Keys the column merges: the last write wins.
                let merged = hits(&[("a", 1), ("A", 2), ("b", 3), ("c", 4), ("B", 5), ("d", 6)]);
                upserts_equal_one_by_one(&pool, &table, &twin, &merged).await;
                let values: HashMap<String, i64> =
                    contents(&pool, &name).await.into_iter().collect();
                assert_eq!((values["a"], values["b"]), (2, 5));
                drop_tables(&pool, &[&name, &twin_name]).await;
            }

            /// Defect 5: keys with a `NULL` part are never merged: two rows
            /// `(5, NULL)` write two rows, as one by one.
            #[tokio::test]
            async fn keys_with_a_null_part_are_not_merged() {
                let Some(pool) = common::$backend().await else {
                    return;
                };
                let name = table(
                    &pool,
                    "serial_null",
                    "a BIGINT NOT NULL, b BIGINT NULL, v BIGINT NOT NULL, UNIQUE (a, b)",
                )
                .await;
                let table = Table::new(&name).key(["a", "b"]).values(["v"]);
                let sql = Db::new(pool.clone());
                let rows = [
                    Nullable {
                        a: 5,
                        b: None,
                        v: 1,
                    },
                    Nullable {
                        a: 5,
                        b: None,
                        v: 2,
                    },
                    Nullable {
                        a: 5,
                        b: Some(1),
                        v: 3,
                    },
                    Nullable {
                        a: 5,
                        b: Some(1),
                        v: 4,
                    },
                ];
                sql.upsert(&table, &rows).await.unwrap();
                let sql_text = format!("SELECT a, b, v FROM {name} ORDER BY v");
                let written: Vec<(i64, Option<i64>, i64)> = sqlx::query_as(AssertSqlSafe(sql_text))
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                assert_eq!(written, [(5, None, 1), (5, None, 2), (5, Some(1), 4)]);
                // A NULL key matches nothing, as `WHERE b = NULL`.
                let found: HashMap<(i64, Option<i64>), (i64, Option<i64>, i64)> =
                    sql.fetch(&table, &[(5, None), (5, Some(1))]).await.unwrap();
                assert_eq!(found.len(), 1);
                drop_tables(&pool, &[&name]).await;
            }

            /// Deletes report, for each requested key, whether deleting key
            /// by key in order would have deleted a row: a row matched by
            /// two requested keys counts for the first.
            #[tokio::test]
            async fn deletes_credit_the_first_key_matching_a_row() {
                let Some(pool) = common::$backend().await else {
                    return;
                };
                let columns = format!("k {} PRIMARY KEY, v BIGINT NOT NULL", $merged_key);
                let name = table(&pool, "serial_del", &columns).await;
                let twin = table(&pool, "serial_del_twin", &columns).await;
                for t in [&name, &twin] {
                    exec(
                        &pool,
                        format!("INSERT INTO {t} (k, v) VALUES ('ABC', 1), ('x', 2), ('y', 3)"),
                    )
                    .await;
                }
                let sql = Db::new(pool.clone());
                let keys: Vec<String> =
                    ["abc", "ABC", "x", "nope", "y"].map(str::to_owned).to_vec();
                let deleted = sql
                    .delete(&Table::new(&name).key(["k"]), &keys)
                    .await
                    .unwrap();
                let mut one_by_one = Vec::new();
                for key in &keys {
                    let done = sql
                        .delete(&Table::new(&twin).key(["k"]), std::slice::from_ref(key))
                        .await
                        .unwrap();
                    one_by_one.extend(done);
                }
                assert_eq!(deleted, one_by_one);
                assert_eq!(contents(&pool, &name).await, contents(&pool, &twin).await);
                drop_tables(&pool, &[&name, &twin]).await;
            }

            /// Defect 6: a row failing on its data fails alone; the 99
            /// others are written, it is not.
            #[tokio::test]
            async fn one_bad_row_fails_alone() {
                let Some(pool) = common::$backend().await else {
                    return;
                };
                let columns = format!("k VARCHAR(20) PRIMARY KEY, v BIGINT NOT NULL {}", $check);
                let name = table(&pool, "serial_iso", &columns).await;
                let table = Table::new(&name).key(["k"]).values(["v"]);
                let sql = Db::new(pool.clone());
                let mut rows: Vec<Hit> = (0..100)
                    .map(|i| Hit {
                        k: format!("k{i}"),
                        v: i,
                    })
                    .collect();
                rows[37].v = -1;
                let results = sql.upsert_each(&table, &rows).await.unwrap();
                // The failed statement, then halves down to the bad row (6
                // levels for row 37 of 100): per level a SAVEPOINT and a
                // statement for each half, a ROLLBACK TO SAVEPOINT for the
                // bad one.
                assert_eq!(sql.statements(), 1 + 6 * 5);
                assert_eq!(sql.transactions(), 1);
                let failed: Vec<usize> = (0..100).filter(|&i| results[i].is_err()).collect();
                assert_eq!(failed, [37]);
                let written = contents(&pool, &name).await;
                assert_eq!(written.len(), 99);
                assert!(written.iter().all(|(k, v)| k != "k37" && *v >= 0));
                // All good: one statement, nothing extra.
                let before = sql.statements();
                let good = hits(&[("g1", 1), ("g2", 2)]);
                let results = sql.upsert_each(&table, &good).await.unwrap();
                assert!(results.iter().all(Result::is_ok));
                assert_eq!(sql.statements() - before, 1);
                drop_tables(&pool, &[&name]).await;
            }

            /// Defect 6 for deletes: a key whose row is still referenced
            /// by a foreign key fails alone; the others are deleted.
            #[tokio::test]
            async fn a_referenced_row_fails_its_delete_alone() {
                let Some(pool) = common::$backend().await else {
                    return;
                };
                let parent = table(&pool, "serial_parent", "id BIGINT PRIMARY KEY").await;
                let child = table(
                    &pool,
                    "serial_child",
                    &format!(
                        "id BIGINT PRIMARY KEY, parent BIGINT NOT NULL REFERENCES {parent} (id)"
                    ),
                )
                .await;
                exec(
                    &pool,
                    format!("INSERT INTO {parent} (id) VALUES (1), (2), (3), (4)"),
                )
                .await;
                exec(
                    &pool,
                    format!("INSERT INTO {child} (id, parent) VALUES (10, 2)"),
                )
                .await;
                let table = Table::new(&parent).key(["id"]);
                let sql = Db::new(pool.clone());
                let results = sql.delete_each(&table, &[1_i64, 2, 3, 9]).await.unwrap();
                assert!(matches!(results[&1], Ok(true)));
                assert!(results[&2].is_err());
                assert!(matches!(results[&3], Ok(true)));
                assert!(matches!(results[&9], Ok(false)));
                let left: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
                    "SELECT id FROM {parent} ORDER BY id"
                )))
                .fetch_all(&pool)
                .await
                .unwrap();
                assert_eq!(left, [2, 4]);
                drop_tables(&pool, &[&child, &parent]).await;
            }

            /// Defect 7: a column named `k.id` is one identifier, a schema
            /// is named explicitly, and a transparent newtype is a key.
            #[tokio::test]
            async fn names_are_identifiers_and_newtypes_are_keys() {
                let Some(pool) = common::$backend().await else {
                    return;
                };
                let quote = if stringify!($backend) == "mysql" {
                    '`'
                } else {
                    '"'
                };
                let columns =
                    format!("{quote}k.id{quote} VARCHAR(20) PRIMARY KEY, v BIGINT NOT NULL");
                let name = table(&pool, "serial_names", &columns).await;
                let table = Table::new(&name)
                    .schema($schema)
                    .key(["k.id"])
                    .values(["v"]);
                let sql = Db::new(pool.clone());
                struct Priced(Sku, i64);
                impl Record<$db> for Priced {
                    type Key = Sku;
                    type Values<'a> = (&'a i64,);
                    fn key(&self) -> Sku {
                        self.0.clone()
                    }
                    fn values(&self) -> Self::Values<'_> {
                        (&self.1,)
                    }
                }
                let rows = [Priced(Sku("a".into()), 1), Priced(Sku("b".into()), 2)];
                sql.upsert(&table, &rows).await.unwrap();
                let keys = [Sku("a".into()), Sku("b".into()), Sku("c".into())];
                let found: HashMap<Sku, (String, i64)> = sql.fetch(&table, &keys).await.unwrap();
                assert_eq!(found.len(), 2);
                assert_eq!(found[&keys[1]], ("b".to_owned(), 2));
                assert_eq!(sql.delete(&table, &keys).await.unwrap(), keys[..2]);
                drop_tables(&pool, &[&name]).await;
            }
        }
    };
}

serial_tests!(postgres, sqlx::Postgres, read_key: "CHAR(8)", merged_key: "CITEXT",
    int_column: "INT", schema: "public", setup: "CREATE EXTENSION IF NOT EXISTS citext",
    check: "CHECK (v >= 0)");
serial_tests!(mysql, sqlx::MySql,
    read_key: "VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
    merged_key: "VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
    int_column: "INT", schema: "test", setup: "", check: "CHECK (v >= 0)");
serial_tests!(sqlite, sqlx::Sqlite, read_key: "TEXT COLLATE NOCASE", merged_key: "TEXT COLLATE NOCASE",
    int_column: "INTEGER", schema: "main", setup: "", check: "CHECK (v >= 0)");

/// Defect 6 on PostgreSQL: a key with a NUL byte fails alone in a
/// per-key read; the other keys get their rows.
#[tokio::test]
async fn postgres_a_nul_key_fails_alone() {
    let Some(pool) = common::postgres().await else {
        return;
    };
    let name = common::unique("serial_nul");
    let ddl = format!("CREATE TABLE {name} (k TEXT PRIMARY KEY, v BIGINT NOT NULL)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
        .execute(&pool)
        .await
        .unwrap();
    let table = Table::new(&name).key(["k"]).values(["v"]);
    let sql = Db::new(pool.clone());
    sql.upsert(&table, &hits(&[("good", 1), ("fine", 2)]))
        .await
        .unwrap();
    let keys: Vec<String> = ["good", "a\0b", "fine", "missing"]
        .map(str::to_owned)
        .to_vec();
    let found: HashMap<String, Result<(String, i64), Error>> =
        sql.fetch_each(&table, &keys).await.unwrap();
    assert_eq!(found.len(), 3, "missing is absent");
    assert_eq!(found["good"].as_ref().unwrap(), &("good".to_owned(), 1));
    assert_eq!(found["fine"].as_ref().unwrap(), &("fine".to_owned(), 2));
    assert!(matches!(found["a\0b"], Err(Error::Refused { .. })));
    assert_eq!(
        sql.statements(),
        2,
        "the upsert, one read: the NUL key is never sent"
    );
    let results = sql
        .upsert_each(&table, &hits(&[("new", 3), ("b\0d", 4)]))
        .await
        .unwrap();
    assert!(results[0].is_ok() && matches!(results[1], Err(Error::Refused { .. })));
    assert_eq!(sql.statements(), 3);
    let drop = format!("DROP TABLE {name}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(&pool)
        .await
        .unwrap();
}

/// Defect 6 on MariaDB: a row larger than the packet fails alone, before
/// any statement; the small row beside it is written.
#[tokio::test]
async fn mysql_an_oversized_row_fails_alone() {
    let Some(pool) = common::mysql().await else {
        return;
    };
    let name = common::unique("serial_big");
    let ddl = format!("CREATE TABLE {name} (k VARCHAR(20) PRIMARY KEY, v LONGTEXT NOT NULL)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
        .execute(&pool)
        .await
        .unwrap();
    struct Blob(String, String);
    impl Record<sqlx::MySql> for Blob {
        type Key = String;
        type Values<'a> = (&'a String,);
        fn key(&self) -> String {
            self.0.clone()
        }
        fn values(&self) -> Self::Values<'_> {
            (&self.1,)
        }
    }
    let table = Table::new(&name).key(["k"]).values(["v"]);
    let sql = Db::new(pool.clone());
    let rows = [
        Blob("small".into(), "x".into()),
        Blob("huge".into(), "x".repeat(20 << 20)),
    ];
    let results = sql.upsert_each(&table, &rows).await.unwrap();
    assert!(results[0].is_ok());
    assert!(matches!(
        results[1],
        Err(Error::TooLarge {
            limit: Limit::Bytes(_),
            ..
        })
    ));
    assert_eq!(sql.statements(), 1, "only the small row was sent");
    let count: i64 =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {name}")))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(count, 1);
    let drop = format!("DROP TABLE {name}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(&pool)
        .await
        .unwrap();
}

/// MariaDB: next to a `latin1` column a table of `utf8mb4` keys cannot be
/// compared for a non-ASCII key ("Illegal mix of collations"), where `k = ?`
/// converts the constant; the read and the delete are sent again as one
/// `WHERE k = ?` branch per key and answer as the per-key queries.
#[tokio::test]
async fn mysql_keys_beside_a_latin1_column_read_and_delete_as_per_key() {
    let Some(pool) = common::mysql().await else {
        return;
    };
    let name = common::unique("serial_latin1");
    let ddl = format!(
        "CREATE TABLE {name} (k VARCHAR(20) PRIMARY KEY, v BIGINT NOT NULL) DEFAULT CHARSET=latin1; \
         INSERT INTO {name} VALUES ('ABC', 1), ('\u{e9}t\u{e9}', 2)"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
        .execute(&pool)
        .await
        .unwrap();
    let table = Table::new(&name).key(["k"]).values(["v"]);
    let sql = Db::new(pool.clone());
    let keys: Vec<String> = ["abc", "\u{c9}T\u{c9}", "\u{20ac}", "x"]
        .map(str::to_owned)
        .to_vec();
    let found: HashMap<String, (String, i64)> = sql.fetch(&table, &keys).await.unwrap();
    assert_eq!(
        sql.statements(),
        2,
        "the refused statement, then the branches"
    );
    for key in &keys {
        let naive: Option<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT k, v FROM {name} WHERE k = ?"
        )))
        .bind(key)
        .fetch_optional(&pool)
        .await
        .unwrap();
        assert_eq!(found.get(key), naive.as_ref(), "{key:?}");
    }
    assert_eq!(found.len(), 2);
    assert_eq!(sql.delete(&table, &keys).await.unwrap(), keys[..2]);
    let drop = format!("DROP TABLE {name}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(&pool)
        .await
        .unwrap();
}

/// Defect 7: with the `uuid` feature a `Uuid` alone is a key (run with
/// `--all-features`).
#[cfg(feature = "uuid")]
#[tokio::test]
async fn postgres_a_uuid_is_a_single_column_key() {
    use sqlx::types::Uuid;
    let Some(pool) = common::postgres().await else {
        return;
    };
    let name = common::unique("serial_uuid");
    let ddl = format!("CREATE TABLE {name} (id UUID PRIMARY KEY, v BIGINT NOT NULL)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
        .execute(&pool)
        .await
        .unwrap();
    struct Row(Uuid, i64);
    impl Record<sqlx::Postgres> for Row {
        type Key = Uuid;
        type Values<'a> = (&'a i64,);
        fn key(&self) -> Uuid {
            self.0
        }
        fn values(&self) -> Self::Values<'_> {
            (&self.1,)
        }
    }
    let ids = [Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3)];
    let table = Table::new(&name).key(["id"]).values(["v"]);
    let sql = Db::new(pool.clone());
    sql.upsert(&table, &[Row(ids[0], 1), Row(ids[1], 2)])
        .await
        .unwrap();
    let found: HashMap<Uuid, (Uuid, i64)> = sql.fetch(&table, &ids).await.unwrap();
    assert_eq!(found[&ids[1]], (ids[1], 2));
    assert_eq!(found.len(), 2);
    assert_eq!(sql.delete(&table, &ids).await.unwrap(), ids[..2]);
    let drop = format!("DROP TABLE {name}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(&pool)
        .await
        .unwrap();
}
