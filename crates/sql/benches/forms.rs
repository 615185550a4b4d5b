//! Which list form to send on MariaDB and SQLite: the toolkit's padded
//! `IN` lists against a one-parameter JSON form (`JSON_TABLE(?)` on
//! MariaDB, `json_each(?)` on SQLite), for keyed reads of 1, 10, 100 and
//! 1,000 keys by a single and by a composite key, over 100,000 rows.
//!
//! ```text
//! cargo bench --features mysql,sqlite --bench forms
//! ```
//!
//! Prints the median time per call: through the toolkit (its current
//! forms: rows returned with the position of the key that found them,
//! answers keyed in a `HashMap`), and raw sqlx calls of the previous
//! padded `IN` form and of JSON statements (rows in a `Vec`). Needs the MariaDB test
//! server (`COALESCE_TEST_MYSQL_URL`, default `mysql://root@127.0.0.1:3306/test`);
//! SQLite runs on a temporary file.

use coalesce_sql::{Db, Table};
use sqlx::{AssertSqlSafe, MySql, Pool, Sqlite};
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

const ROWS: i64 = 100_000;
const SIZES: [usize; 4] = [1, 10, 100, 1000];

type ItemRow = (i64, String);
type LineRow = (i64, i64, String);

/// Keys spread over the table, different on every call.
fn keys(call: usize, n: usize) -> Vec<i64> {
    (0..n)
        .map(|i| ((call * 7919 + i * 104_729) as i64) % ROWS)
        .collect()
}

/// The median of `calls` runs of `f`.
async fn median<F, Fut>(calls: usize, mut f: F) -> Duration
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    for call in 0..10 {
        f(call).await;
    }
    let mut times = Vec::with_capacity(calls);
    for call in 0..calls {
        let start = Instant::now();
        let found = f(call + 10).await;
        times.push(start.elapsed());
        assert!(found > 0, "the keys exist");
    }
    times.sort();
    times[calls / 2]
}

fn json_array(keys: &[i64]) -> String {
    format!(
        "[{}]",
        keys.iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    )
}

fn json_pairs(keys: &[i64]) -> String {
    let pairs: Vec<String> = keys
        .iter()
        .map(|k| format!("[{},{}]", k / 10, k % 10))
        .collect();
    format!("[{}]", pairs.join(","))
}

/// `keys` padded to the toolkit's lengths (1, 4, 16, 64, 256, 1000) by
/// repeating the first, as the toolkit pads with the smallest key.
fn padded_keys(mut keys: Vec<i64>) -> Vec<i64> {
    let len = [1, 4, 16, 64, 256, 1000]
        .into_iter()
        .find(|&l| l >= keys.len())
        .unwrap_or(1000);
    keys.resize(len, keys[0]);
    keys
}

fn report(dialect: &str, key: &str, n: usize, toolkit: Duration, raw_in: Duration, json: Duration) {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{dialect:8} {key:9} {n:5} keys: toolkit {:8.1} us   raw padded IN {:8.1} us   raw JSON {:8.1} us",
        us(toolkit),
        us(raw_in),
        us(json)
    );
}

/// Both forms on one pool; `json_single`/`json_composite` are the JSON
/// statements of the dialect (one `?`), `row_values` what opens its list of
/// row values (see the toolkit's `Lists::Rows`).
macro_rules! compare {
    ($dialect:literal, $row_values:literal, $pool:expr, $items:expr, $lines:expr, $json_single:expr, $json_composite:expr) => {{
        let pool = $pool;
        let sql = Db::new(pool.clone());
        let (items, lines): (&Table, &Table) = (&$items, &$lines);
        compare_keys!(
            $dialect,
            "single",
            (pool, sql, items),
            ItemRow,
            |k: i64| k,
            json_array,
            $json_single,
            format!("SELECT id, name FROM {} WHERE id IN (", items.name()),
            "?",
            |query, k: &i64| query.bind(*k)
        );
        compare_keys!(
            $dialect,
            "composite",
            (pool, sql, lines),
            LineRow,
            |k: i64| (k / 10, k % 10),
            json_pairs,
            $json_composite,
            format!(
                "SELECT order_id, line_no, sku FROM {} WHERE (order_id, line_no) IN ({}",
                lines.name(),
                $row_values
            ),
            "(?, ?)",
            |query, k: &i64| query.bind(k / 10).bind(k % 10)
        );
    }};
}

/// The three ways of reading `n` keys of one kind, at each size: through
/// the toolkit (`$key` makes the key of the `k`th row), the JSON statement
/// (`$json` encodes the keys) and the padded `IN` list the toolkit sends
/// (`$select`, then `$placeholders` per key, each bound by `$bind`).
macro_rules! compare_keys {
    ($dialect:literal, $kind:literal, ($pool:expr, $sql:expr, $table:expr), $row:ty, $key:expr, $json:expr, $json_statement:expr, $select:expr, $placeholders:literal, $bind:expr) => {{
        let json_statement: String = $json_statement;
        let select: String = $select;
        for n in SIZES {
            let calls = if n == 1000 { 100 } else { 400 };
            let toolkit = median(calls, |call| {
                let sql = $sql.clone();
                async move {
                    let keys: Vec<_> = keys(call, n).into_iter().map($key).collect();
                    let found: HashMap<_, $row> = sql.fetch($table, &keys).await.unwrap();
                    found.len()
                }
            })
            .await;
            let json = median(calls, |call| {
                let (pool, statement) = ($pool.clone(), json_statement.clone());
                async move {
                    let rows: Vec<$row> = sqlx::query_as(AssertSqlSafe(statement))
                        .bind($json(&keys(call, n)))
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                    rows.len()
                }
            })
            .await;
            let raw_in = median(calls, |call| {
                let pool = $pool.clone();
                let keys = padded_keys(keys(call, n));
                let list = vec![$placeholders; keys.len()].join(", ");
                let statement = format!("{select}{list})");
                async move {
                    let query = keys
                        .iter()
                        .fold(sqlx::query_as(AssertSqlSafe(statement)), $bind);
                    let rows: Vec<$row> = query.fetch_all(&pool).await.unwrap();
                    rows.len()
                }
            })
            .await;
            report($dialect, $kind, n, toolkit, raw_in, json);
        }
    }};
}

/// Create and fill `items` (id) and `lines` (order_id, line_no).
async fn seed<DB: coalesce_sql::Dialect>(
    pool: &Pool<DB>,
    items: &str,
    lines: &str,
    int: &str,
    text: &str,
) where
    for<'c> &'c Pool<DB>: sqlx::Executor<'c, Database = DB>,
{
    for ddl in [
        format!("CREATE TABLE {items} (id {int} PRIMARY KEY, name {text} NOT NULL)"),
        format!(
            "CREATE TABLE {lines} (order_id {int} NOT NULL, line_no {int} NOT NULL, \
             sku {text} NOT NULL, PRIMARY KEY (order_id, line_no))"
        ),
    ] {
        sqlx::raw_sql(AssertSqlSafe(ddl))
            .execute(pool)
            .await
            .unwrap();
    }
    for start in (0..ROWS).step_by(5000) {
        let ids: Vec<String> = (start..start + 5000)
            .map(|i| format!("({i}, 'name {i}')"))
            .collect();
        let sql = format!("INSERT INTO {items} (id, name) VALUES {}", ids.join(","));
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(pool)
            .await
            .unwrap();
        let lines_values: Vec<String> = (start..start + 5000)
            .map(|i| format!("({}, {}, 'sku {i}')", i / 10, i % 10))
            .collect();
        let sql = format!(
            "INSERT INTO {lines} (order_id, line_no, sku) VALUES {}",
            lines_values.join(",")
        );
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(pool)
            .await
            .unwrap();
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let suffix = std::process::id();
    let (items, lines) = (
        format!("bench_items_{suffix}"),
        format!("bench_lines_{suffix}"),
    );
    let item_table = Table::new(&items).key(["id"]).values(["name"]);
    let line_table = Table::new(&lines)
        .key(["order_id", "line_no"])
        .values(["sku"]);

    let file = std::env::temp_dir().join(format!("coalesce_sql_forms_{suffix}.db"));
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&file)
        .create_if_missing(true);
    let sqlite: Pool<Sqlite> = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    seed(&sqlite, &items, &lines, "INTEGER", "TEXT").await;
    compare!(
        "SQLite",
        "VALUES ",
        sqlite.clone(),
        item_table,
        line_table,
        format!("SELECT id, name FROM {items} WHERE id IN (SELECT value FROM json_each(?))"),
        format!(
            "SELECT order_id, line_no, sku FROM {lines} \
             WHERE (order_id, line_no) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?))"
        )
    );
    sqlite.close().await;
    let _ = std::fs::remove_file(&file);

    let url = std::env::var("COALESCE_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
    let mysql: Pool<MySql> = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    seed(&mysql, &items, &lines, "BIGINT", "VARCHAR(64)").await;
    compare!(
        "MariaDB",
        "",
        mysql.clone(),
        item_table,
        line_table,
        format!(
            "SELECT t.id, t.name FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) k \
             JOIN {items} t ON t.id = k.id"
        ),
        format!(
            "SELECT t.order_id, t.line_no, t.sku FROM JSON_TABLE(?, '$[*]' COLUMNS \
             (o BIGINT PATH '$[0]', l BIGINT PATH '$[1]')) k \
             JOIN {lines} t ON t.order_id = k.o AND t.line_no = k.l"
        )
    );
    for table in [&items, &lines] {
        sqlx::raw_sql(AssertSqlSafe(format!("DROP TABLE {table}")))
            .execute(&mysql)
            .await
            .unwrap();
    }
}
