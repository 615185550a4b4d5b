//! Wrapping a repository trait of your own: an `OrderRepository` whose
//! `get_order(id)` and `get_line(order_id, line_no)` are called from many
//! places answers each batch of concurrent calls with one statement, on
//! SQLite, PostgreSQL or MariaDB/MySQL.
//!
//! What you write: batch methods on the SQL toolkit (`coalesce_sql::Batch`:
//! no SQL of your own, no dialect branch; the repository is generic over
//! `DB: Dialect`), and the glue: a struct holding one loader per batch
//! method, your trait on it with one line per per-item method, and the
//! function that builds it (18 lines for this two-method trait, see
//! docs/drop-in.md). Call sites do not change.
//!
//! ```text
//! cargo run --example orders                    # SQLite, a file under target/
//! cargo run --example orders -- postgres://postgres@127.0.0.1:5432/test
//! cargo run --example orders -- mysql://root@127.0.0.1:3306/test
//! ```
//!
//! It creates two tables of its own (unique names), compares the per-item
//! path with the coalesced one, prints both statement counts and drops the
//! tables. `tests/orders_example.rs` runs the same scenario on all three
//! backends.

use coalesce::{LoadError, Loader, MethodSource, from_method};
use coalesce_sql::{Batch, Dialect, KeyPart, Record, Table, Value};
use futures::future::try_join_all;
use sqlx::{Executor, FromRow, Pool};
use std::{collections::HashMap, sync::Arc};

/// An order: the first table, keyed by `id`.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct Order {
    id: i64,
    customer: String,
    total_cents: i64,
}

/// A line of an order: the second table, keyed by `(order_id, line_no)`.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct OrderLine {
    order_id: i64,
    line_no: i32,
    sku: String,
    quantity: i32,
}

// How the toolkit writes your rows: the key, then the value columns in the
// order of `Table::columns`. Written once for every database.
impl<DB: Dialect> Record<DB> for Order
where
    i64: KeyPart<DB>,
    String: Value<DB>,
{
    type Key = i64;
    type Values<'a> = (&'a String, &'a i64);
    fn key(&self) -> i64 {
        self.id
    }
    fn values(&self) -> Self::Values<'_> {
        (&self.customer, &self.total_cents)
    }
}

/// The key of an order line: `(order_id, line_no)`.
pub type LineKey = (i64, i32);

impl<DB: Dialect> Record<DB> for OrderLine
where
    i64: KeyPart<DB>,
    i32: KeyPart<DB>,
    String: Value<DB>,
{
    type Key = LineKey;
    type Values<'a> = (&'a String, &'a i32);
    fn key(&self) -> LineKey {
        (self.order_id, self.line_no)
    }
    fn values(&self) -> Self::Values<'_> {
        (&self.sku, &self.quantity)
    }
}

/// Your error type gains one variant: the batch's error, shared by every
/// caller of the batch.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// A statement of the per-item path or of a write failed.
    #[error(transparent)]
    Sql(#[from] coalesce_sql::Error),
    /// The batch this call was in failed.
    #[error(transparent)]
    Batch(#[from] LoadError<coalesce_sql::Error>),
    /// Connecting, or creating or dropping the example's tables, failed.
    #[error("database setup: {0}")]
    Setup(#[from] sqlx::Error),
}

/// The trait your application already calls everywhere.
pub trait OrderRepository: Send + Sync {
    /// The order `id`, if it exists.
    fn get_order(&self, id: i64) -> impl Future<Output = Result<Option<Order>, RepoError>> + Send;

    /// Line `line_no` of order `order_id`, if it exists.
    fn get_line(
        &self,
        order_id: i64,
        line_no: i32,
    ) -> impl Future<Output = Result<Option<OrderLine>, RepoError>> + Send;
}

/// The repository you already have, on the toolkit: one `Batch` (a pool
/// that counts its statements) and the description of each table.
pub struct SqlOrders<DB: Dialect> {
    sql: Batch<DB>,
    orders: Table,
    lines: Table,
}

impl<DB: Dialect> SqlOrders<DB>
where
    i64: KeyPart<DB>,
    i32: KeyPart<DB>,
    String: Value<DB>,
    Order: for<'r> FromRow<'r, DB::Row>,
    OrderLine: for<'r> FromRow<'r, DB::Row>,
{
    /// The repository over `sql`, its tables named `{prefix}orders` and
    /// `{prefix}order_lines`.
    pub fn new(sql: Batch<DB>, prefix: &str) -> Self {
        Self {
            sql,
            orders: Table::new(format!("{prefix}orders"))
                .key(["id"])
                .columns(["customer", "total_cents"]),
            lines: Table::new(format!("{prefix}order_lines"))
                .key(["order_id", "line_no"])
                .columns(["sku", "quantity"]),
        }
    }

    /// Batch method: all the orders among `ids`, by id, in one statement
    /// (one per 1,000 distinct ids).
    pub async fn get_orders(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, Order>, coalesce_sql::Error> {
        self.sql.fetch(&self.orders, ids).await
    }

    /// Batch method: all the lines among `keys`, by `(order_id, line_no)`,
    /// in one statement (one per 1,000 distinct keys).
    pub async fn get_lines(
        &self,
        keys: &[LineKey],
    ) -> Result<HashMap<LineKey, OrderLine>, coalesce_sql::Error> {
        self.sql.fetch(&self.lines, keys).await
    }

    /// The coalescing wrapper: the one call that changes where the
    /// repository is built.
    pub fn coalesced(self: Arc<Self>) -> CoalescedOrders<DB> {
        CoalescedOrders {
            orders: Loader::new(from_method(self.clone(), |r, k| Box::pin(r.get_orders(k)))),
            lines: Loader::new(from_method(self, |r, k| Box::pin(r.get_lines(k)))),
        }
    }

    /// Write orders and their lines (last row of a key wins).
    pub async fn save(&self, orders: &[Order], lines: &[OrderLine]) -> Result<(), RepoError> {
        self.sql.upsert(&self.orders, orders).await?;
        Ok(self.sql.upsert(&self.lines, lines).await?)
    }
}

impl<DB: Dialect> OrderRepository for SqlOrders<DB>
where
    i64: KeyPart<DB>,
    i32: KeyPart<DB>,
    String: Value<DB>,
    Order: for<'r> FromRow<'r, DB::Row>,
    OrderLine: for<'r> FromRow<'r, DB::Row>,
{
    /// What you have today: one statement per call.
    async fn get_order(&self, id: i64) -> Result<Option<Order>, RepoError> {
        Ok(self.get_orders(&[id]).await?.remove(&id))
    }

    async fn get_line(&self, order_id: i64, line_no: i32) -> Result<Option<OrderLine>, RepoError> {
        let key = (order_id, line_no);
        Ok(self.get_lines(&[key]).await?.remove(&key))
    }
}

/// The glue: one loader per batch method, one line per per-item method.
pub struct CoalescedOrders<DB: Dialect> {
    orders: Loader<MethodSource<SqlOrders<DB>, i64, Order, coalesce_sql::Error>>,
    lines: Loader<MethodSource<SqlOrders<DB>, LineKey, OrderLine, coalesce_sql::Error>>,
}

impl<DB: Dialect> OrderRepository for CoalescedOrders<DB> {
    async fn get_order(&self, id: i64) -> Result<Option<Order>, RepoError> {
        Ok(self.orders.load(id).await?)
    }

    async fn get_line(&self, order_id: i64, line_no: i32) -> Result<Option<OrderLine>, RepoError> {
        Ok(self.lines.load((order_id, line_no)).await?)
    }
}

/// A call site, unchanged: many concurrent `get_order` calls (a GraphQL
/// resolver, a fan-out over a list), any `OrderRepository`.
async fn orders_of(
    repo: &impl OrderRepository,
    ids: &[i64],
) -> Result<Vec<Option<Order>>, RepoError> {
    try_join_all(ids.iter().map(|&id| repo.get_order(id))).await
}

/// Another call site: many concurrent `get_line` calls.
async fn lines_of(
    repo: &impl OrderRepository,
    keys: &[LineKey],
) -> Result<Vec<Option<OrderLine>>, RepoError> {
    try_join_all(keys.iter().map(|&(order, line)| repo.get_line(order, line))).await
}

/// One path's answers to the calls, in call order, and the statements it
/// issued.
#[derive(Debug)]
pub struct PathRun<T> {
    /// What each call returned, in call order.
    pub answers: Vec<Option<T>>,
    /// Statements issued, as counted by `Batch::statements`.
    pub statements: u64,
}

/// The per-item and the coalesced path, on the same calls.
#[derive(Debug)]
pub struct Compared<T> {
    /// Through `SqlOrders` itself.
    pub per_item: PathRun<T>,
    /// Through `CoalescedOrders`.
    pub coalesced: PathRun<T>,
}

impl<T: PartialEq> Compared<T> {
    fn summary(&self, method: &str) -> String {
        let same = if self.per_item.answers == self.coalesced.answers {
            "same results"
        } else {
            "DIFFERENT results"
        };
        format!(
            "{} concurrent {method} calls: {} statements per item, {} coalesced ({same}, {} found)",
            self.per_item.answers.len(),
            self.per_item.statements,
            self.coalesced.statements,
            self.coalesced.answers.iter().flatten().count(),
        )
    }
}

/// What the scenario measured for each per-item method.
#[derive(Debug)]
pub struct Report {
    /// 100 concurrent `get_order` calls ([`order_ids`]).
    pub orders: Compared<Order>,
    /// 100 concurrent `get_line` calls ([`line_keys`]).
    pub lines: Compared<OrderLine>,
}

/// Orders 1 to 200; order `n` has `n % 3 + 1` lines.
fn sample() -> (Vec<Order>, Vec<OrderLine>) {
    let orders: Vec<Order> = (1..=200)
        .map(|id| Order {
            id,
            customer: format!("customer {}", id % 37),
            total_cents: id * 150,
        })
        .collect();
    let lines = orders
        .iter()
        .flat_map(|order| {
            (1..=3)
                .filter(|&line_no| i64::from(line_no) <= order.id % 3 + 1)
                .map(move |line_no| OrderLine {
                    order_id: order.id,
                    line_no,
                    sku: format!("sku-{}-{line_no}", order.id),
                    quantity: line_no * 2,
                })
        })
        .collect();
    (orders, lines)
}

/// 100 order ids, a third of them missing (0 and past 200).
pub fn order_ids() -> Vec<i64> {
    (0..100).map(|i| i * 3).collect()
}

/// 100 line keys, some missing (order 0, line 4, lines past an order's last).
pub fn line_keys() -> Vec<LineKey> {
    (0..100).map(|i| (i64::from(i) * 2, i % 4 + 1)).collect()
}

/// Create the example's tables, run [`compare`], and drop the tables (also
/// when creating them or the comparison failed).
pub async fn run<DB: Dialect>(pool: Pool<DB>) -> Result<Report, RepoError>
where
    i64: KeyPart<DB>,
    i32: KeyPart<DB>,
    String: Value<DB>,
    Order: for<'r> FromRow<'r, DB::Row>,
    OrderLine: for<'r> FromRow<'r, DB::Row>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let prefix = unique_prefix();
    let orders = format!("{prefix}orders");
    let lines = format!("{prefix}order_lines");
    let compared = async {
        // Portable DDL: the same text on all three databases.
        for ddl in [
            format!(
                "CREATE TABLE {orders} (id BIGINT PRIMARY KEY, customer VARCHAR(100) NOT NULL, total_cents BIGINT NOT NULL)"
            ),
            format!(
                "CREATE TABLE {lines} (order_id BIGINT NOT NULL, line_no INT NOT NULL, sku VARCHAR(100) NOT NULL, quantity INT NOT NULL, PRIMARY KEY (order_id, line_no))"
            ),
        ] {
            pool.execute(sqlx::AssertSqlSafe(ddl)).await?;
        }
        compare(Arc::new(SqlOrders::new(Batch::new(pool.clone()), &prefix))).await
    }
    .await;
    // Drop both tables whatever happened; the comparison's error comes first.
    let mut dropped = Ok(());
    for table in [lines, orders] {
        let sql = sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}"));
        dropped = dropped.and(pool.execute(sql).await.map(drop));
    }
    let report = compared?;
    dropped?;
    Ok(report)
}

/// Fill the tables, then answer the same calls through the per-item
/// repository and through the coalescing one, counting statements.
pub async fn compare<DB: Dialect>(repo: Arc<SqlOrders<DB>>) -> Result<Report, RepoError>
where
    i64: KeyPart<DB>,
    i32: KeyPart<DB>,
    String: Value<DB>,
    Order: for<'r> FromRow<'r, DB::Row>,
    OrderLine: for<'r> FromRow<'r, DB::Row>,
{
    let (orders, lines) = sample();
    repo.save(&orders, &lines).await?;
    let (ids, keys) = (order_ids(), line_keys());
    // The one-line change where the repository is built:
    let coalesced = Arc::clone(&repo).coalesced();
    let sql = &repo.sql;
    Ok(Report {
        orders: Compared {
            per_item: counted(sql, orders_of(repo.as_ref(), &ids)).await?,
            coalesced: counted(sql, orders_of(&coalesced, &ids)).await?,
        },
        lines: Compared {
            per_item: counted(sql, lines_of(repo.as_ref(), &keys)).await?,
            coalesced: counted(sql, lines_of(&coalesced, &keys)).await?,
        },
    })
}

/// The answers of `calls`, and the statements `sql` issued meanwhile.
async fn counted<DB: Dialect, T>(
    sql: &Batch<DB>,
    calls: impl Future<Output = Result<Vec<Option<T>>, RepoError>>,
) -> Result<PathRun<T>, RepoError> {
    let before = sql.statements();
    let answers = calls.await?;
    Ok(PathRun {
        answers,
        statements: sql.statements() - before,
    })
}

/// A table-name prefix no other run uses.
fn unique_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("orders_example_{}_{nanos:x}_", std::process::id())
}

#[tokio::main]
async fn main() -> Result<(), RepoError> {
    let url = std::env::args().nth(1).unwrap_or_else(default_sqlite_url);
    // Picking the pool type from the URL is the one place a backend is named.
    let report = match url.split_once("://").map(|(scheme, _)| scheme) {
        Some("postgres" | "postgresql") => run(sqlx::PgPool::connect(&url).await?).await?,
        Some("mysql" | "mariadb") => run(sqlx::MySqlPool::connect(&url).await?).await?,
        _ => run(sqlx::SqlitePool::connect(&url).await?).await?,
    };
    println!("{}", report.orders.summary("get_order"));
    println!("{}", report.lines.summary("get_line"));
    Ok(())
}

/// A SQLite file under the workspace's `target/`, created if missing.
fn default_sqlite_url() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/target");
    let _ = std::fs::create_dir_all(dir);
    format!("sqlite://{dir}/orders-example.db?mode=rwc")
}
