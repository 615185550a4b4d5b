//! The toolkit against real servers: every test body runs on PostgreSQL,
//! MariaDB and SQLite (`mod postgres`, `mod mysql`, `mod sqlite`), and on
//! PostgreSQL through PgBouncer in transaction mode (`mod pgbouncer`), each
//! on tables of its own, created and dropped by the test.

mod common;

use coalesce_sql::{
    Db, Dialect, Error, KeyPart, Limit, Operation, Record, Session, Step, Table, Value,
};
use common::Stock;
use std::collections::HashMap;

/// A row with a single key.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct Item {
    id: i64,
    name: String,
}

impl<DB: Dialect> Record<DB> for Item
where
    i64: KeyPart<DB>,
    String: Value<DB>,
{
    type Key = i64;
    type Values<'a> = (&'a String,);
    fn key(&self) -> i64 {
        self.id
    }
    fn values(&self) -> Self::Values<'_> {
        (&self.name,)
    }
}

/// A row with a composite key.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct Line {
    order_id: i64,
    line_no: i64,
    sku: String,
}

impl<DB: Dialect> Record<DB> for Line
where
    i64: KeyPart<DB>,
    String: Value<DB>,
{
    type Key = (i64, i64);
    type Values<'a> = (&'a String,);
    fn key(&self) -> (i64, i64) {
        (self.order_id, self.line_no)
    }
    fn values(&self) -> Self::Values<'_> {
        (&self.sku,)
    }
}

/// A row keyed by text.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct Note {
    k: String,
    v: String,
}

impl<DB: Dialect> Record<DB> for Note
where
    String: KeyPart<DB>,
{
    type Key = String;
    type Values<'a> = (&'a String,);
    fn key(&self) -> String {
        self.k.clone()
    }
    fn values(&self) -> Self::Values<'_> {
        (&self.v,)
    }
}

/// The composite key of the `i`th line.
fn line_key(i: i64) -> (i64, i64) {
    (i / 7, i % 7)
}

/// Key counts every read test covers.
const COUNTS: [usize; 7] = [0, 1, 99, 100, 101, 1000, 70_000];

/// The same tests on each backend. `$int`, `$text`, `$key_text`: column
/// types; `$param`: the first placeholder; `$max_binds`: the engine's bind
/// limit, `$max_row_values`: the composite keys one list holds (statements
/// expected for huge chunks follow from them).
macro_rules! backend_tests {
    ($backend:ident, $db:ty, $pool:path, int: $int:literal, text: $text:literal,
     key_text: $key_text:literal, param: $param:literal, max_binds: $max_binds:expr,
     max_row_values: $max_row_values:expr, statements_per_delete: $statements_per_delete:literal,
     batch: $batch:path) => {
        mod $backend {
            use super::*;
            use sqlx::AssertSqlSafe;

            type Pool = sqlx::Pool<$db>;

            async fn exec(pool: &Pool, sql: String) {
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(pool).await.expect("DDL runs");
            }

            /// A fresh table `prefix_...` with the given column definitions.
            async fn table(pool: &Pool, prefix: &str, columns: &str) -> String {
                let name = common::unique(prefix);
                exec(pool, format!("CREATE TABLE {name} ({columns})")).await;
                name
            }

            /// A new table of [`Item`]s: its name, and its description.
            async fn items_table(pool: &Pool) -> (String, Table) {
                let columns = format!("id {} PRIMARY KEY, name {} NOT NULL", $int, $text);
                let name = table(pool, "items", &columns).await;
                let description = Table::new(&name).key(["id"]).values(["name"]);
                (name, description)
            }

            async fn lines_table(pool: &Pool) -> String {
                let columns = format!(
                    "order_id {int} NOT NULL, line_no {int} NOT NULL, sku {} NOT NULL, \
                     PRIMARY KEY (order_id, line_no)",
                    $text,
                    int = $int
                );
                table(pool, "lines", &columns).await
            }

            #[tokio::test]
            async fn single_key_reads_equal_the_naive_path_at_every_size() {
                let Some(pool) = common::$backend().await else { return };
                let (name, table) = items_table(&pool).await;
                let sql = $batch(pool.clone());
                let rows: Vec<Item> = (0..70_000)
                    .step_by(2)
                    .map(|id| Item { id, name: format!("n{id}") })
                    .collect();
                sql.upsert(&table, &rows).await.unwrap();
                let naive = format!("SELECT id, name FROM {name} WHERE id = {}", $param);
                for n in COUNTS {
                    let mut keys: Vec<i64> = (0..n as i64).collect();
                    keys.extend(keys.clone().into_iter().take(10)); // duplicates
                    let before = sql.statements();
                    let found: HashMap<i64, Item> = sql.fetch(&table, &keys).await.unwrap();
                    assert_eq!(sql.statements() - before, n.div_ceil(1000) as u64, "{n} keys");
                    let expected: HashMap<i64, Item> = rows
                        .iter()
                        .filter(|row| row.id < n as i64)
                        .map(|row| (row.id, row.clone()))
                        .collect();
                    assert_eq!(found, expected, "{n} keys");
                    if n <= 1000 {
                        let mut session = Session::begin(&pool, sql.session_settings()).await.unwrap();
                        for key in &keys {
                            let one: Option<Item> = sqlx::query_as(AssertSqlSafe(naive.clone()))
                                .bind(key)
                                .persistent(session.named_statements())
                                .fetch_optional(&mut *session)
                                .await
                                .unwrap();
                            assert_eq!(one.as_ref(), found.get(key), "key {key}");
                        }
                        session.finish().await.unwrap();
                    }
                }
                exec(&pool, format!("DROP TABLE {name}")).await;
            }

            #[tokio::test]
            async fn in_order_reads_answer_each_place_of_the_keys_in_one_statement() {
                let Some(pool) = common::$backend().await else { return };
                let (name, table) = items_table(&pool).await;
                let sql = $batch(pool.clone());
                let rows: Vec<Item> = (1..=5).map(|id| Item { id, name: format!("n{id}") }).collect();
                sql.upsert(&table, &rows).await.unwrap();
                // A missing key, a repeated one, and keys out of order.
                let keys = [3, 999, 3, 1, 5];
                let before = sql.statements();
                let found: Vec<Option<Result<Item, Error>>> =
                    sql.fetch_each_in_order(&table, &keys).await.unwrap();
                assert_eq!(sql.statements() - before, 1);
                let found: Vec<Option<Item>> =
                    found.into_iter().map(|answer| answer.map(Result::unwrap)).collect();
                let expected: Vec<Option<Item>> = keys
                    .iter()
                    .map(|&id| rows.iter().find(|row| row.id == id).cloned())
                    .collect();
                assert_eq!(found, expected);
                let none: Vec<Option<Result<Item, Error>>> =
                    sql.fetch_each_in_order(&table, &[] as &[i64]).await.unwrap();
                assert!(none.is_empty());
                exec(&pool, format!("DROP TABLE {name}")).await;
            }

            #[tokio::test]
            async fn composite_key_reads_equal_the_naive_path_at_every_size() {
                let Some(pool) = common::$backend().await else { return };
                let name = lines_table(&pool).await;
                let table = Table::new(&name).key(["order_id", "line_no"]).values(["sku"]);
                let sql = $batch(pool.clone());
                let rows: Vec<Line> = (0..70_000)
                    .step_by(2)
                    .map(|i| {
                        let (order_id, line_no) = line_key(i);
                        Line { order_id, line_no, sku: format!("sku-{i}") }
                    })
                    .collect();
                sql.upsert(&table, &rows).await.unwrap();
                let naive = format!(
                    "SELECT order_id, line_no, sku FROM {name} WHERE order_id = {} AND line_no = {}",
                    $param,
                    $param.replace('1', "2")
                );
                for n in COUNTS {
                    let mut keys: Vec<(i64, i64)> = (0..n as i64).map(line_key).collect();
                    keys.extend(keys.clone().into_iter().rev().take(10)); // duplicates
                    let before = sql.statements();
                    let found: HashMap<(i64, i64), Line> = sql.fetch(&table, &keys).await.unwrap();
                    let per_statement = 1000.min($max_row_values);
                    assert_eq!(sql.statements() - before, n.div_ceil(per_statement) as u64, "{n} keys");
                    assert_eq!(found.len(), n.div_ceil(2), "{n} keys: the even ones exist");
                    if n <= 1000 {
                        let mut session = Session::begin(&pool, sql.session_settings()).await.unwrap();
                        for key in &keys {
                            let one: Option<Line> = sqlx::query_as(AssertSqlSafe(naive.clone()))
                                .bind(key.0)
                                .bind(key.1)
                                .persistent(session.named_statements())
                                .fetch_optional(&mut *session)
                                .await
                                .unwrap();
                            assert_eq!(one.as_ref(), found.get(key), "key {key:?}");
                        }
                        session.finish().await.unwrap();
                    }
                }
                exec(&pool, format!("DROP TABLE {name}")).await;
            }

            /// The store's typical call: one leading value, many keys, on a
            /// table where another index also begins with the leading
            /// column. MariaDB's range optimizer is quadratic in the length
            /// of such a row-value list (1,000 keys: 0.3 s a statement), so
            /// its lists are capped; every backend still returns what the
            /// naive path does, and deletes follow the same chunks.
            #[tokio::test]
            async fn one_leading_value_with_many_keys_stays_in_short_lists() {
                let Some(pool) = common::$backend().await else { return };
                let columns = format!(
                    "a {int} NOT NULL, c {int} NOT NULL DEFAULT 0, b {int} NOT NULL, \
                     v {} NOT NULL, PRIMARY KEY (a, c, b), UNIQUE (a, b)",
                    $text,
                    int = $int
                );
                let name = table(&pool, "leading", &columns).await;
                let table = Table::new(&name).key(["a", "b"]).values(["v"]);
                let sql = $batch(pool.clone());
                let rows: Vec<Line> = (0..1000)
                    .step_by(3)
                    .map(|b| Line { order_id: 7, line_no: b, sku: "x".to_owned() })
                    .collect();
                let before = sql.statements();
                sql.upsert(&table, &rows).await.unwrap();
                assert_eq!(sql.statements() - before, 1, "an upsert's rows are no `IN` list");
                let keys: Vec<(i64, i64)> = (0..1000).map(|b| (7, b)).collect();
                let per_statement = 1000.min($max_row_values);
                let before = sql.statements();
                let found: HashMap<(i64, i64), (i64, i64, String)> = sql.fetch(&table, &keys).await.unwrap();
                assert_eq!(sql.statements() - before, 1000usize.div_ceil(per_statement) as u64);
                let expected: HashMap<(i64, i64), (i64, i64, String)> = (0..1000)
                    .step_by(3)
                    .map(|b| ((7, b), (7, b, "x".to_owned())))
                    .collect();
                assert_eq!(found, expected);
                let before = sql.statements();
                let mut existed = sql.delete(&table, &keys).await.unwrap();
                existed.sort_unstable();
                assert_eq!(
                    sql.statements() - before,
                    1000usize.div_ceil(per_statement) as u64 * $statements_per_delete
                );
                assert_eq!(existed.len(), expected.len());
                assert!(existed.iter().all(|key| expected.contains_key(key)));
                exec(&pool, format!("DROP TABLE {name}")).await;
            }

            #[tokio::test]
            async fn grouped_reads_return_every_row_of_a_non_unique_key() {
                let Some(pool) = common::$backend().await else { return };
                let name = lines_table(&pool).await;
                let lines = Table::new(&name).key(["order_id", "line_no"]).values(["sku"]);
                let by_order = Table::new(&name).key(["order_id"]).values(["line_no", "sku"]);
                let sql = $batch(pool.clone()).with_rows_per_statement(4);
                let rows: Vec<Line> = (0..70)
                    .map(|i| {
                        let (order_id, line_no) = line_key(i);
                        Line { order_id, line_no, sku: format!("sku-{i}") }
                    })
                    .collect();
                sql.upsert(&lines, &rows).await.unwrap();
                let orders: Vec<i64> = vec![0, 3, 9, 99, 3]; // 99: no lines; 3 twice
                let before = sql.statements();
                let mut found: HashMap<i64, Vec<Line>> = sql.fetch_grouped(&by_order, &orders).await.unwrap();
                assert_eq!(sql.statements() - before, 1, "4 distinct orders, 4 a statement");
                found.values_mut().for_each(|lines| lines.sort_by_key(|l| l.line_no));
                let expected: HashMap<i64, Vec<Line>> = [0, 3, 9]
                    .into_iter()
                    .map(|order| (order, rows.iter().filter(|r| r.order_id == order).cloned().collect()))
                    .collect();
                assert_eq!(found, expected);
                exec(&pool, format!("DROP TABLE {name}")).await;
            }

            #[tokio::test]
            async fn chunks_never_exceed_the_bind_limit() {
                let Some(pool) = common::$backend().await else { return };
                let name = lines_table(&pool).await;
                let table = Table::new(&name).key(["order_id", "line_no"]).values(["sku"]);
                let sql = $batch(pool.clone()).with_rows_per_statement(usize::MAX);
                let rows: Vec<Line> = (0..70_000)
                    .map(|i| {
                        let (order_id, line_no) = line_key(i);
                        Line { order_id, line_no, sku: String::new() }
                    })
                    .collect();
                // Three binds a row, two a key: split by the engine's bind limit only.
                sql.upsert(&table, &rows).await.unwrap();
                let keys: Vec<(i64, i64)> = (0..70_000).map(line_key).collect();
                let before = sql.statements();
                let found: HashMap<(i64, i64), Line> = sql.fetch(&table, &keys).await.unwrap();
                assert_eq!(found.len(), 70_000);
                let per_statement: usize = ($max_binds / 2).min($max_row_values);
                assert_eq!(sql.statements() - before, 70_000usize.div_ceil(per_statement) as u64);
                exec(&pool, format!("DROP TABLE {name}")).await;
            }

            #[tokio::test]
            async fn text_keys_keep_non_ascii_and_nul() {
                let Some(pool) = common::$backend().await else { return };
                let columns = format!("k {} PRIMARY KEY, v {} NOT NULL", $key_text, $text);
                let name = table(&pool, "notes", &columns).await;
                let table = Table::new(&name).key(["k"]).values(["v"]);
                let sql = $batch(pool.clone());
                let keys = ["plain", "héllo wörld", "日本語", "🎉 emoji", "trailing ", "TRAILING"];
                let mut notes: Vec<Note> = keys
                    .iter()
                    .map(|k| Note { k: (*k).to_owned(), v: format!("{k}|{k}") })
                    .collect();
                let nul = Note { k: "a\0b".to_owned(), v: "x\0y".to_owned() };
                match sql.upsert(&table, std::slice::from_ref(&nul)).await {
                    Ok(()) => notes.push(nul),
                    // PostgreSQL text cannot hold NUL: a typed error, nothing written.
                    Err(Error::Database { operation: Operation::Upsert, source, .. }) => {
                        assert_eq!(<$db as sqlx::Database>::NAME, "PostgreSQL", "{source}");
                    }
                    Err(other) => panic!("unexpected {other}"),
                }
                sql.upsert(&table, &notes).await.unwrap();
                let mut asked: Vec<String> = notes.iter().map(|n| n.k.clone()).collect();
                asked.push("absent".to_owned());
                asked.push("Plain".to_owned());
                let found: HashMap<String, Note> = sql.fetch(&table, &asked).await.unwrap();
                let expected: HashMap<String, Note> =
                    notes.iter().map(|n| (n.k.clone(), n.clone())).collect();
                assert_eq!(found, expected);
                exec(&pool, format!("DROP TABLE {name}")).await;
            }

            #[tokio::test]
            async fn the_last_write_of_a_key_wins_in_one_statement() {
                let Some(pool) = common::$backend().await else { return };
                let (name, table) = items_table(&pool).await;
                let sql = $batch(pool.clone());
                let rows = [(1, "a"), (2, "b"), (1, "c"), (3, "d"), (2, "e")]
                    .map(|(id, name)| Item { id, name: name.to_owned() });
                sql.upsert(&table, &rows).await.unwrap();
                // MySQL and SQLite apply a statement's rows in order;
                // PostgreSQL refuses a row touched twice (21000), and the
                // write is split in halves, in order, in one transaction.
                let one_statement = <$db as sqlx::Database>::NAME != "PostgreSQL";
                assert_eq!(sql.statements() == 1, one_statement, "{} statements", sql.statements());
                let found: HashMap<i64, Item> = sql.fetch(&table, &[1, 2, 3]).await.unwrap();
                let names: Vec<&str> = [1, 2, 3].iter().map(|id| found[id].name.as_str()).collect();
                assert_eq!(names, ["c", "e", "d"]);
                exec(&pool, format!("DROP TABLE {name}")).await;
            }

            #[tokio::test]
            async fn a_failure_in_a_later_chunk_writes_nothing() {
                let Some(pool) = common::$backend().await else { return };
                let columns = format!("id {int} PRIMARY KEY, qty {int} NOT NULL CHECK (qty >= 0)", int = $int);
                let name = table(&pool, "stock", &columns).await;
                let table = Table::new(&name).key(["id"]).values(["qty"]);
                let sql = $batch(pool.clone()).with_rows_per_statement(10);
                sql.upsert(&table, &[Stock { id: 0, qty: 100 }]).await.unwrap();
                let mut rows: Vec<Stock> = (0..35).map(|id| Stock { id, qty: 5 }).collect();
                rows[25].qty = -1;
                let (statements, transactions) = (sql.statements(), sql.transactions());
                let error = sql.upsert(&table, &rows).await.unwrap_err();
                assert!(
                    matches!(error, Error::Database { step: Step::Chunk { index: 3, of: 4 }, .. }),
                    "{error}"
                );
                assert!(!error.may_have_committed());
                assert_eq!(sql.statements() - statements, 3, "chunks 1 to 3");
                assert_eq!(sql.transactions() - transactions, 1);
                let ids: Vec<i64> = (0..35).collect();
                let found: HashMap<i64, Stock> = sql.fetch(&table, &ids).await.unwrap();
                assert_eq!(found, HashMap::from([(0, Stock { id: 0, qty: 100 })]), "rolled back");
                exec(&pool, format!("DROP TABLE {name}")).await;
            }

            #[tokio::test]
            async fn deletes_return_the_keys_that_existed() {
                let Some(pool) = common::$backend().await else { return };
                let name = lines_table(&pool).await;
                let table = Table::new(&name).key(["order_id", "line_no"]).values(["sku"]);
                let sql = $batch(pool.clone()).with_rows_per_statement(16);
                let rows: Vec<Line> = (0..50)
                    .step_by(2)
                    .map(|i| {
                        let (order_id, line_no) = line_key(i);
                        Line { order_id, line_no, sku: "s".to_owned() }
                    })
                    .collect();
                sql.upsert(&table, &rows).await.unwrap();
                let mut keys: Vec<(i64, i64)> = (0..60).map(line_key).collect();
                keys.extend((0..10).map(line_key)); // duplicates
                let (statements, transactions) = (sql.statements(), sql.transactions());
                let mut existed = sql.delete(&table, &keys).await.unwrap();
                existed.sort();
                let mut expected: Vec<(i64, i64)> = rows.iter().map(|r| (r.order_id, r.line_no)).collect();
                expected.sort();
                assert_eq!(existed, expected);
                assert_eq!(
                    sql.statements() - statements,
                    4 * $statements_per_delete,
                    "60 keys in chunks of 16 (MySQL, SQLite: SELECT, then DELETE)"
                );
                assert_eq!(sql.transactions() - transactions, 1);
                let left: HashMap<(i64, i64), Line> = sql.fetch(&table, &keys).await.unwrap();
                assert!(left.is_empty());
                assert_eq!(sql.delete(&table, &keys[..1]).await.unwrap(), []);
                let none: [(i64, i64); 0] = [];
                let before = sql.statements();
                assert_eq!(sql.delete(&table, &none).await.unwrap(), []);
                assert_eq!(sql.statements(), before, "nothing to delete: no statement");
                exec(&pool, format!("DROP TABLE {name}")).await;
            }

            #[tokio::test]
            async fn big_values_are_split_by_bytes_and_never_padded_over_the_limit() {
                let Some(pool) = common::$backend().await else { return };
                let (name, table) = items_table(&pool).await;
                let sql = $batch(pool.clone());
                // 20 values of 1 MB: 20 MB, over MariaDB's 16 MiB packet.
                let big: Vec<Item> = (0..20)
                    .map(|id| Item { id, name: char::from(b'a' + id as u8).to_string().repeat(1 << 20) })
                    .collect();
                sql.upsert(&table, &big).await.unwrap();
                // 33 rows whose last is 1,000,000 characters: padding must not repeat it.
                let mut rows: Vec<Item> = (100..133).map(|id| Item { id, name: "s".to_owned() }).collect();
                rows[32].name = "z".repeat(1_000_000);
                sql.upsert(&table, &rows).await.unwrap();
                let ids: Vec<i64> = (0..20).chain(100..133).collect();
                let found: HashMap<i64, Item> = sql.fetch(&table, &ids).await.unwrap();
                assert_eq!(found.len(), 53);
                for row in big.iter().chain(&rows) {
                    assert!(found[&row.id] == *row, "row {} read back", row.id);
                }
                exec(&pool, format!("DROP TABLE {name}")).await;
            }

            #[tokio::test]
            async fn a_bad_description_is_refused_before_any_statement() {
                let Some(pool) = common::$backend().await else { return };
                let sql = $batch(pool);
                let no_key = Table::new("t").values(["name"]);
                let error = sql.fetch::<i64, Item>(&no_key, &[1]).await.unwrap_err();
                assert!(matches!(error, Error::BadTable { .. }), "{error}");
                let wrong_arity = Table::new("t").key(["id"]).values(["a", "b"]);
                let error = sql.upsert(&wrong_arity, &[Item { id: 1, name: String::new() }]).await.unwrap_err();
                assert!(matches!(error, Error::BadTable { .. }), "{error}");
                assert_eq!(sql.statements(), 0);
            }
        }
    };
}

backend_tests!(postgres, sqlx::Postgres, sqlx::PgPool, int: "BIGINT", text: "TEXT",
    key_text: "TEXT", param: "$1", max_binds: usize::MAX, max_row_values: usize::MAX, statements_per_delete: 1,
    batch: Db::new);
// PostgreSQL again, through PgBouncer in transaction mode.
backend_tests!(pgbouncer, sqlx::Postgres, sqlx::PgPool, int: "BIGINT", text: "TEXT",
    key_text: "TEXT", param: "$1", max_binds: usize::MAX, max_row_values: usize::MAX, statements_per_delete: 1,
    batch: common::pgbouncer_batch);
backend_tests!(mysql, sqlx::MySql, sqlx::MySqlPool, int: "BIGINT", text: "LONGTEXT",
    key_text: "VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", param: "?", max_binds: 65_535,
    max_row_values: 64, statements_per_delete: 2, batch: Db::new);
backend_tests!(sqlite, sqlx::Sqlite, sqlx::SqlitePool, int: "INTEGER", text: "TEXT",
    key_text: "TEXT", param: "?", max_binds: 32_766, max_row_values: usize::MAX,
    statements_per_delete: 2, batch: Db::new);

/// MariaDB: a single row larger than `max_allowed_packet` gets a typed
/// error naming the limit, and nothing is sent.
#[tokio::test]
async fn mysql_a_row_over_the_packet_limit_is_refused() {
    let Some(pool) = common::mysql().await else {
        return;
    };
    let sql = Db::new(pool);
    let table = Table::new("never_created").key(["id"]).values(["name"]);
    let huge = Item {
        id: 1,
        name: "x".repeat(17 << 20),
    };
    let error = sql.upsert(&table, &[huge]).await.unwrap_err();
    match error {
        Error::TooLarge {
            size,
            limit: Limit::Bytes(max),
            ..
        } => {
            assert!(size > 17 << 20 && max < 16 << 20, "{size} > {max}");
        }
        other => panic!("expected TooLarge, got {other}"),
    }
    assert_eq!(sql.statements(), 0);
}
