//! Your own repository, coalesced: a `ShopRepo` trait with four per-item
//! methods (`get_customer`, `get_line`, `save_line`, `delete_line`) over two
//! tables of your own, implemented once with `coalesce_sql::repository!` on
//! `coalesce_sql::Rows` handles. Built with `Shop::coalesced(&db)`,
//! concurrent calls share statements; built with `Shop::per_item(&db)`,
//! each call sends its own, as a plain repository does.
//! The same code on SQLite, PostgreSQL and MariaDB/MySQL.
//!
//! ```text
//! cargo run --example orders                    # SQLite, a file under target/
//! cargo run --example orders -- postgres://postgres@127.0.0.1:5432/test
//! cargo run --example orders -- mysql://root@127.0.0.1:3306/test
//! ```
//!
//! It creates its two tables (`shop_customers`, `shop_order_lines`, dropped
//! first if they exist), runs the same concurrent calls through both
//! builds, prints each method's statements and whether the answers and the
//! final tables agree, and drops the tables. `tests/orders_example.rs`
//! runs it on all three backends.

use coalesce_sql::{Db, Dialect, Record, RowsError};
use futures::future::try_join_all;
use sqlx::{Executor, Pool};

// ---- What you have: rows and the trait your application calls ----

/// A customer, keyed by `id`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Record)]
#[record(table = "shop_customers", key(id))]
pub struct Customer {
    id: i64,
    name: String,
}

/// A line of an order, keyed by `(order_id, line_no)`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Record)]
#[record(table = "shop_order_lines", key(order_id, line_no))]
pub struct Line {
    order_id: i64,
    line_no: i32,
    sku: String,
    quantity: i32,
}

/// Your error type: one variant for a call through `Rows`.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The call failed (its own item, or the batch it was in).
    #[error(transparent)]
    Rows(#[from] RowsError),
    /// Connecting, or creating or dropping the example's tables, failed.
    #[error("database setup: {0}")]
    Setup(#[from] sqlx::Error),
}

/// The trait your application calls everywhere, one item per call.
pub trait ShopRepo: Send + Sync {
    /// The customer `id`, if it exists.
    fn get_customer(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<Customer>, RepoError>> + Send;
    /// Line `line_no` of order `order_id`, if it exists.
    fn get_line(
        &self,
        order_id: i64,
        line_no: i32,
    ) -> impl Future<Output = Result<Option<Line>, RepoError>> + Send;
    /// Insert or overwrite a line.
    fn save_line(&self, line: Line) -> impl Future<Output = Result<(), RepoError>> + Send;
    /// Delete a line; whether it existed.
    fn delete_line(
        &self,
        order_id: i64,
        line_no: i32,
    ) -> impl Future<Output = Result<bool, RepoError>> + Send;
}

// ---- The glue: the whole repository (docs/drop-in.md counts it) ----

coalesce_sql::repository! {
    /// `ShopRepo` on the two tables' handles: `Shop::coalesced(&db)` shares
    /// statements across concurrent calls, `Shop::per_item(&db)` sends each
    /// call's own, as a plain repository does.
    pub struct Shop { customers: Customer, lines: Line }
    impl ShopRepo for Shop {
        fn get_customer(&self, id: i64) -> Result<Option<Customer>, RepoError> { self.customers.get(id) }
        fn get_line(&self, order_id: i64, line_no: i32) -> Result<Option<Line>, RepoError> { self.lines.get((order_id, line_no)) }
        fn save_line(&self, line: Line) -> Result<(), RepoError> { self.lines.save(line) }
        fn delete_line(&self, order_id: i64, line_no: i32) -> Result<bool, RepoError> { self.lines.delete((order_id, line_no)) }
    }
}

// ---- The comparison ----

/// One method's calls through one build: the answers, in call order, and
/// the statements they took.
#[derive(Debug)]
pub struct PathRun<T> {
    /// What each call returned.
    pub answers: Vec<T>,
    /// Statements sent, as `Db::statements` counts them.
    pub statements: u64,
}

/// One method through both builds.
#[derive(Debug)]
pub struct Compared<T> {
    /// Through `Shop::per_item`.
    pub per_item: PathRun<T>,
    /// Through `Shop::coalesced`.
    pub coalesced: PathRun<T>,
}

impl<T: PartialEq> Compared<T> {
    fn summary(&self, method: &str) -> String {
        let same = if self.per_item.answers == self.coalesced.answers {
            "same answers"
        } else {
            "DIFFERENT answers"
        };
        format!(
            "{} concurrent {method} calls: {} statements per item, {} coalesced ({same})",
            self.per_item.answers.len(),
            self.per_item.statements,
            self.coalesced.statements,
        )
    }
}

/// What the scenario measured.
#[derive(Debug)]
pub struct Report {
    /// 100 `get_customer` calls ([`customer_ids`]).
    pub customers: Compared<Option<Customer>>,
    /// 100 `get_line` calls ([`line_keys`]).
    pub lines: Compared<Option<Line>>,
    /// 100 `save_line` calls ([`saved_lines`]).
    pub saves: Compared<()>,
    /// 100 `delete_line` calls ([`line_keys`] again: some twice).
    pub deletes: Compared<bool>,
    /// Every line left afterwards (by the keys ever used), per build.
    pub final_lines: (Vec<Option<Line>>, Vec<Option<Line>>),
}

/// 100 customer ids, a third of them missing (0 and past 200).
pub fn customer_ids() -> Vec<i64> {
    (0..100).map(|i| i * 3).collect()
}

/// 100 line keys, some missing, some named twice.
pub fn line_keys() -> Vec<(i64, i32)> {
    (0..100)
        .map(|i| (i64::from(i % 70) * 2, i % 4 + 1))
        .collect()
}

/// 100 lines to save: new ones and overwrites.
pub fn saved_lines() -> Vec<Line> {
    (0..100)
        .map(|i| line(i64::from(i) * 3, i % 3 + 1, 100 + i))
        .collect()
}

fn line(order_id: i64, line_no: i32, quantity: i32) -> Line {
    Line {
        order_id,
        line_no,
        sku: format!("sku-{order_id}-{line_no}"),
        quantity,
    }
}

/// Customers 1 to 200; order `n` has `n % 3 + 1` lines.
async fn seed(shop: &Shop) -> Result<(), RepoError> {
    let customers = (1..=200).map(|id| Customer {
        id,
        name: format!("customer {id}"),
    });
    let lines = (1..=200).flat_map(|n: i64| (1..=n % 3 + 1).map(move |no| line(n, no as i32, 1)));
    for saved in shop
        .customers
        .save_many(customers)
        .await
        .into_iter()
        .chain(shop.lines.save_many(lines).await)
    {
        saved?;
    }
    Ok(())
}

/// Run `calls` on `repo`, counting the statements `db` sends meanwhile.
async fn counted<DB: Dialect, T>(
    db: &Db<DB>,
    calls: impl Future<Output = Result<Vec<T>, RepoError>>,
) -> Result<PathRun<T>, RepoError> {
    let before = db.statements();
    let answers = calls.await?;
    Ok(PathRun {
        answers,
        statements: db.statements() - before,
    })
}

/// The four methods' calls, each made 100 at a time from one task (as a
/// GraphQL resolver or a fan-out over a list makes them), on fresh tables.
async fn calls<DB: Dialect>(db: &Db<DB>, shop: &Shop) -> Result<Runs, RepoError>
where
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
{
    recreate(db.pool()).await?;
    seed(shop).await?;
    let keys = line_keys();
    let customers = customer_ids().into_iter().map(|id| shop.get_customer(id));
    let customers = counted(db, try_join_all(customers)).await?;
    let lines = counted(
        db,
        try_join_all(keys.iter().map(|&(o, n)| shop.get_line(o, n))),
    )
    .await?;
    let saves = counted(
        db,
        try_join_all(saved_lines().into_iter().map(|l| shop.save_line(l))),
    )
    .await?;
    let deletes = counted(
        db,
        try_join_all(keys.iter().map(|&(o, n)| shop.delete_line(o, n))),
    )
    .await?;
    let every_key = (0..=300).flat_map(|order| (1..=4).map(move |no| (order, no)));
    let final_lines = shop.lines.get_many(every_key).await?;
    Ok(Runs {
        customers,
        lines,
        saves,
        deletes,
        final_lines,
    })
}

/// One build's runs.
struct Runs {
    customers: PathRun<Option<Customer>>,
    lines: PathRun<Option<Line>>,
    saves: PathRun<()>,
    deletes: PathRun<bool>,
    final_lines: Vec<Option<Line>>,
}

/// Drop (if there) and create the example's tables; portable DDL.
async fn recreate<DB: Dialect>(pool: &Pool<DB>) -> Result<(), sqlx::Error>
where
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
{
    drop_tables(pool).await?;
    pool.execute("CREATE TABLE shop_customers (id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL)")
        .await?;
    pool.execute(
        "CREATE TABLE shop_order_lines (order_id BIGINT NOT NULL, line_no INT NOT NULL, \
         sku VARCHAR(100) NOT NULL, quantity INT NOT NULL, PRIMARY KEY (order_id, line_no))",
    )
    .await?;
    Ok(())
}

async fn drop_tables<DB: Dialect>(pool: &Pool<DB>) -> Result<(), sqlx::Error>
where
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
{
    pool.execute("DROP TABLE IF EXISTS shop_order_lines")
        .await?;
    pool.execute("DROP TABLE IF EXISTS shop_customers").await?;
    Ok(())
}

/// The scenario through the per-item build, then the coalesced one, each
/// on fresh tables; the tables are dropped at the end, whatever happened.
pub async fn run<DB: Dialect>(pool: Pool<DB>) -> Result<Report, RepoError>
where
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
{
    let db = Db::new(pool);
    let runs = async {
        let per_item = calls(&db, &Shop::per_item(&db)).await?;
        let coalesced = calls(&db, &Shop::coalesced(&db)).await?;
        Ok::<_, RepoError>((per_item, coalesced))
    }
    .await;
    let dropped = drop_tables(db.pool()).await;
    let (per_item, coalesced) = runs?;
    dropped?;
    Ok(Report {
        customers: Compared {
            per_item: per_item.customers,
            coalesced: coalesced.customers,
        },
        lines: Compared {
            per_item: per_item.lines,
            coalesced: coalesced.lines,
        },
        saves: Compared {
            per_item: per_item.saves,
            coalesced: coalesced.saves,
        },
        deletes: Compared {
            per_item: per_item.deletes,
            coalesced: coalesced.deletes,
        },
        final_lines: (per_item.final_lines, coalesced.final_lines),
    })
}

#[tokio::main]
async fn main() -> Result<(), RepoError> {
    let url = std::env::args().nth(1).unwrap_or_else(default_sqlite_url);
    // Picking the pool type from the URL is the one place a backend is named.
    let report = match url.split_once("://").map(|(scheme, _)| scheme) {
        Some("postgres" | "postgresql") => run(sqlx::PgPool::connect(&url).await?).await?,
        Some("mysql" | "mariadb") => run(sqlx::MySqlPool::connect(&url).await?).await?,
        _ => run(sqlite(&url).await?).await?,
    };
    println!("{}", report.customers.summary("get_customer"));
    println!("{}", report.lines.summary("get_line"));
    println!("{}", report.saves.summary("save_line"));
    println!("{}", report.deletes.summary("delete_line"));
    let same = report.final_lines.0 == report.final_lines.1;
    println!(
        "final tables: {}",
        if same { "the same" } else { "DIFFERENT" }
    );
    Ok(())
}

/// A SQLite file under the workspace's `target/`.
fn default_sqlite_url() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/target");
    let _ = std::fs::create_dir_all(dir);
    format!("sqlite://{dir}/orders-example.db")
}

/// A pool on the SQLite file of `url`, created if missing, in WAL mode:
/// with SQLite's default rollback journal, concurrent writers on several
/// connections fail with "database is locked" instead of waiting.
pub async fn sqlite(url: &str) -> Result<sqlx::SqlitePool, sqlx::Error> {
    let options = url
        .parse::<sqlx::sqlite::SqliteConnectOptions>()?
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
    sqlx::SqlitePool::connect_with(options).await
}
