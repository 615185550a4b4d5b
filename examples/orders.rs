//! Wrapping a repository trait of your own: an `OrderRepository` whose
//! `get_order(id)` is called from many tasks becomes one query per tick.
//!
//! What you write: a batch method (`get_orders(&[id])`, one `IN` query), a
//! struct holding a `Loader`, and one line per per-item method. Call sites
//! do not change. Run with `cargo run --example orders`.

use coalesce::{LoadError, Loader, MethodSource, from_method};
use sqlx::SqlitePool;
use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct Order {
    id: i64,
    customer: String,
    total_cents: i64,
}

/// Your error type gains one variant: the batch's error, shared by every
/// caller of the batch.
#[derive(Debug, thiserror::Error)]
enum RepoError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Batch(#[from] LoadError<sqlx::Error>),
}

/// The trait your application already calls everywhere.
trait OrderRepository: Send + Sync {
    fn get_order(&self, id: i64) -> impl Future<Output = Result<Option<Order>, RepoError>> + Send;
}

/// The repository you already have, plus one batch method.
struct SqlOrders {
    pool: SqlitePool,
    queries: AtomicUsize,
}

impl SqlOrders {
    /// New: all the orders among `ids`, in ONE statement.
    async fn get_orders(&self, ids: &[i64]) -> Result<HashMap<i64, Order>, sqlx::Error> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let ids = serde_json::to_string(ids).map_err(|e| sqlx::Error::Encode(e.into()))?;
        let orders: Vec<Order> = sqlx::query_as(
            "SELECT id, customer, total_cents FROM orders WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(orders.into_iter().map(|o| (o.id, o)).collect())
    }
}

impl OrderRepository for SqlOrders {
    /// What you have today: one statement per call.
    async fn get_order(&self, id: i64) -> Result<Option<Order>, RepoError> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let order = sqlx::query_as("SELECT id, customer, total_cents FROM orders WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(order)
    }
}

/// The glue: a loader over the batch method, and the same trait on top.
struct BatchedOrders {
    orders: Loader<MethodSource<SqlOrders, i64, Order, sqlx::Error>>,
}

impl BatchedOrders {
    fn new(repo: Arc<SqlOrders>) -> Self {
        Self {
            orders: Loader::new(from_method(repo, |repo, ids| {
                Box::pin(repo.get_orders(ids))
            })),
        }
    }
}

impl OrderRepository for BatchedOrders {
    async fn get_order(&self, id: i64) -> Result<Option<Order>, RepoError> {
        Ok(self.orders.load(id).await?)
    }
}

/// A call site, unchanged: any `OrderRepository` works.
async fn order_totals(
    repo: Arc<impl OrderRepository + 'static>,
    ids: Vec<i64>,
) -> Result<i64, RepoError> {
    let tasks: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let repo = Arc::clone(&repo);
            tokio::spawn(async move { repo.get_order(id).await })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        let order = task
            .await
            .map_err(|e| sqlx::Error::Protocol(e.to_string()))??;
        total += order.map_or(0, |o| o.total_cents);
    }
    Ok(total)
}

#[tokio::main]
async fn main() -> Result<(), RepoError> {
    let pool = SqlitePool::connect("sqlite::memory:").await?;
    sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, total_cents INTEGER NOT NULL)")
        .execute(&pool)
        .await?;
    for id in 0..500_i64 {
        sqlx::query("INSERT INTO orders VALUES (?, ?, ?)")
            .bind(id)
            .bind(format!("customer {}", id % 37))
            .bind(id * 100)
            .execute(&pool)
            .await?;
    }
    let repo = Arc::new(SqlOrders {
        pool,
        queries: AtomicUsize::new(0),
    });
    let ids: Vec<i64> = (0..300).map(|i| i * 2).collect(); // some ids past 500 are missing

    let plain = order_totals(Arc::clone(&repo), ids.clone()).await?;
    let plain_queries = repo.queries.swap(0, Ordering::Relaxed);

    // The one-line change where the repository is built:
    let batched = Arc::new(BatchedOrders::new(Arc::clone(&repo)));
    let coalesced = order_totals(Arc::clone(&batched), ids).await?;
    let coalesced_queries = repo.queries.load(Ordering::Relaxed);

    assert_eq!(plain, coalesced);
    println!(
        "total {plain} cents: plain {plain_queries} queries, coalesced {coalesced_queries} queries"
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&batched.orders.stats()).unwrap_or_default()
    );
    Ok(())
}
