//! Batched statements for your own tables on PostgreSQL, MySQL/MariaDB and
//! SQLite through sqlx: a keyed read of many keys, a bulk upsert and a
//! bulk delete, correct at every size.
//!
//! You describe the table ([`Table`]), your key type implements [`Key`]
//! (scalars and tuples of 2 to 4 do already), your row type is a
//! [`sqlx::FromRow`] for reads and a [`Record`] for upserts. The toolkit
//! picks each dialect's form (see [`dialect`](Dialect)), de-duplicates,
//! splits by bind count and by bytes so no statement exceeds an engine
//! limit (SQLite's 32,766 binds, MySQL's 65,535 binds and
//! `max_allowed_packet`), pads lists to a few lengths so few statement
//! texts are prepared, runs multi-statement writes in one transaction,
//! retries writes aborted by deadlocks ([`retry`]) and counts what it sends.
//!
//! Every call answers as the per-item statements run one by one in order
//! would (`SELECT ... WHERE k = $1`, one upsert per row, `DELETE ... WHERE
//! k = $1`), under the database's own comparison rules: the database
//! matches rows to requested keys, never Rust. [`Db::fetch_each`],
//! [`Db::upsert_each`] and [`Db::delete_each`] give a result per key
//! or row, so one bad item fails alone. See the crate's README, "What it guarantees".
//!
//! ```no_run
//! use coalesce_sql::{Db, Dialect, KeyPart, Record, Table, Value};
//! use std::collections::HashMap;
//!
//! #[derive(sqlx::FromRow)]
//! struct Order { id: i64, customer: String, total_cents: i64 }
//!
//! impl<DB: Dialect> Record<DB> for Order
//! where
//!     i64: KeyPart<DB>,
//!     String: Value<DB>,
//! {
//!     type Key = i64;
//!     type Values<'a> = (&'a String, &'a i64);
//!     fn key(&self) -> i64 { self.id }
//!     fn values(&self) -> Self::Values<'_> { (&self.customer, &self.total_cents) }
//! }
//!
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = sqlx::PgPool::connect("postgres://localhost/shop").await?;
//! let sql = Db::new(pool);
//! let orders = Table::new("orders").key(["id"]).values(["customer", "total_cents"]);
//! sql.upsert(&orders, &[Order { id: 1, customer: "ada".into(), total_cents: 500 }]).await?;
//! let found: HashMap<i64, Order> = sql.fetch(&orders, &[1, 2]).await?;
//! let existed: Vec<i64> = sql.delete(&orders, &[1, 2]).await?;
//! assert_eq!((found.len(), existed), (1, vec![1]));
//! assert_eq!(sql.statements(), 3);
//! # Ok(()) }
//! ```
//!
//! Features: `postgres`, `mysql`, `sqlite`, one per driver; enable only
//! those you use.

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
mod value;

/// `#[derive(Record)]`: a row type's table and key in one attribute. See
/// [`TableRow`] and [`Rows`].
pub use coalesce_sql_derive::Record;
pub use db::{DEFAULT_ROWS_PER_STATEMENT, Db};
pub use dialect::{Dialect, statement};
pub use error::{Error, Limit, Operation, ServerMessage, Step};
pub use pool::ping_after_idle;
pub use pooler::{Pooler, PoolerError};
pub use rows::{Rows, RowsError, RowsOptions, TableRow};
pub use session::{Session, SessionSettings, SetUpFuture};
pub use table::Table;
pub use value::{Arguments, Columns, Key, KeyPart, Record, Value};

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
