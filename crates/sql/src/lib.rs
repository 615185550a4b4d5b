//! Batched statements for your own tables on PostgreSQL, MySQL/MariaDB and
//! SQLite through sqlx, and per-item calls coalesced into them.
//!
//! Declare a row once; [`Db::rows`] gives its table's [`Rows`] handle,
//! whose `get`, `save` and `delete` calls made concurrently share one
//! statement each, and answer exactly as their own statements would:
//!
//! ```no_run
//! use coalesce_sql::{Db, Record, Rows};
//!
//! #[derive(Clone, sqlx::FromRow, Record)]
//! #[record(table = "orders", key(id))]
//! struct Order { id: i64, customer: String, total_cents: i64 }
//!
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let db = Db::new(sqlx::PgPool::connect("postgres://localhost/shop").await?);
//! let orders: Rows<Order> = db.rows();
//! orders.save(Order { id: 1, customer: "ada".into(), total_cents: 500 }).await?;
//! let (a, b) = tokio::join!(orders.get(1), orders.get(2)); // one statement
//! assert!(a?.is_some() && b?.is_none());
//! assert!(orders.delete(1).await?);
//! # Ok(()) }
//! ```
//!
//! [`repository!`] implements a per-item repository trait of your own on
//! such handles. Underneath, [`Db`] runs the batched statements
//! themselves ([`Db::fetch`], [`Db::upsert`], [`Db::delete`] and their
//! per-item forms [`Db::fetch_each`] (also [`Db::fetch_each_in_order`]),
//! [`Db::upsert_each`], [`Db::delete_each`]) for a [`Table`] you
//! describe, with a [`Key`] and a [`Record`]: it picks each dialect's form
//! (see [`dialect`](Dialect)),
//! splits by bind count and by bytes so no statement exceeds an engine
//! limit (SQLite's 32,766 binds, MySQL's 65,535 binds and
//! `max_allowed_packet`), pads key lists to a few lengths so few statement
//! texts are prepared, runs multi-statement writes in one transaction,
//! retries writes aborted by deadlocks ([`retry`]) and counts what it sends.
//!
//! Every call answers as the per-item statements run one by one in order
//! would (`SELECT ... WHERE k = $1`, one upsert per row, `DELETE ... WHERE
//! k = $1`), under the database's own comparison rules: the database
//! matches rows to requested keys, never Rust; the per-item forms give a
//! result per key or row, so one bad item fails alone. See the crate's
//! README, "What it guarantees".
//!
//! Features: `postgres`, `mysql`, `sqlite`, one per driver; enable only
//! those you use. `uuid`, `chrono`, `time`: those crates' types as
//! single-column keys.

mod chunk;
mod db;
mod dialect;
mod error;
mod pool;
mod pooler;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub mod replicas;
pub mod retry;
mod rows;
mod session;
mod sql;
mod table;
mod texts;
mod value;

/// `#[derive(Record)]`: a row type's table and key in one attribute. See
/// [`TableRow`] and [`Rows`].
pub use coalesce_sql_derive::Record;
pub use db::{DEFAULT_ROWS_PER_STATEMENT, Db};
pub use dialect::{Dialect, statement};
pub use error::{Error, Limit, Operation, ServerMessage, Step};
pub use pool::ping_after_idle;
pub use pooler::{Pooler, PoolerError};
pub use rows::{Rows, RowsError, RowsOptions, RowsSource, TableRow};
pub use session::{Session, SessionSettings, SetUpFuture};
pub use table::Table;
pub use value::{Arguments, Columns, Encoding, Key, KeyPart, Record, Value};

/// The toolkit's database handle under its name before 0.2.
#[deprecated(
    since = "0.2.0",
    note = "renamed to `Db` (a database handle, not a batch)"
)]
pub type Batch<DB> = Db<DB>;

/// What [`single_key!`] expands to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::rows::Build as BuildRows;
    pub use crate::value::{padded_list, type_name};
    pub use coalesce::ConfigError;
    pub use sqlx::error::BoxDynError;
}
