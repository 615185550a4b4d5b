//! What differs between PostgreSQL, MySQL/MariaDB and SQLite: quoting,
//! the list form, the upsert clause, the limits a statement must respect,
//! and the driver calls (which generic code could only make through long
//! `Executor` bounds every caller would have to repeat).
//!
//! # The list form chosen per dialect
//!
//! - **PostgreSQL: arrays.** A key list is one array parameter per key
//!   column (`= ANY($1)`, `UNNEST($1, $2)`), so one statement text serves
//!   every batch size and there is no bind limit to split under.
//! - **MySQL/MariaDB and SQLite: `IN` lists padded to a few lengths**
//!   (`k IN (?, ...)`; `(a, b) IN ((?, ?), ...)` on MySQL,
//!   `(a, b) IN (VALUES (?, ?), ...)` on SQLite), chosen over the
//!   one-parameter JSON forms (`JSON_TABLE(?)`, `json_each(?)`) after
//!   measuring both: see the crate's README for the numbers and
//!   `benches/forms.rs` for the command. On MySQL a list of composite keys
//!   holds at most 64 of them: MariaDB's range optimizer is quadratic in
//!   the length of a row-value list (README, `scripts/mariadb-row-lists.py`).

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

use sqlx::{Database, Decode, Pool, Type};
use std::future::Future;

/// A database the toolkit speaks: implemented for [`sqlx::Postgres`],
/// [`sqlx::MySql`] and [`sqlx::Sqlite`] when their features are enabled.
/// Sealed: the toolkit knows each dialect's SQL and limits.
///
/// Code generic over `DB: Dialect` contains no dialect branch:
///
/// ```
/// use coalesce_sql::{Batch, Dialect, Error, Table};
/// use std::collections::HashMap;
///
/// async fn names<DB: Dialect>(sql: &Batch<DB>, ids: &[i64]) -> Result<HashMap<i64, (i64, String)>, Error>
/// where
///     i64: coalesce_sql::Key<DB>,
///     (i64, String): for<'r> sqlx::FromRow<'r, DB::Row>,
/// {
///     sql.fetch(&Table::new("users").key(["id"]).columns(["name"]), ids).await
/// }
/// ```
pub trait Dialect: Database + internal::Internal {}

impl<DB: Database + internal::Internal> Dialect for DB {}

/// A statement of your own written once for every dialect, in `DB`'s
/// spelling: each `?` becomes `DB`'s placeholder (`$1`, `$2`, ... on
/// PostgreSQL, `?` elsewhere) and each `"name"` a name in `DB`'s quotes
/// (backticks on MySQL/MariaDB, a dotted name quoted part by part); string
/// literals (`'...'`) are left as they are. Run it with sqlx
/// (`sqlx::query(sqlx::AssertSqlSafe(text))`).
///
/// ```
/// # #[cfg(all(feature = "postgres", feature = "mysql"))] {
/// use coalesce_sql::statement;
///
/// let template = r#"SELECT value FROM memories WHERE user_id = ? AND "key" = ?"#;
/// assert_eq!(
///     statement::<sqlx::Postgres>(template),
///     r#"SELECT value FROM memories WHERE user_id = $1 AND "key" = $2"#
/// );
/// assert_eq!(
///     statement::<sqlx::MySql>(template),
///     "SELECT value FROM memories WHERE user_id = ? AND `key` = ?"
/// );
/// # }
/// ```
pub fn statement<DB: Dialect>(template: &str) -> String {
    crate::sql::spelled(&DB::SYNTAX, template)
}

/// The crate-private half of [`Dialect`]; a private module makes it
/// unnameable (sealed) outside the crate.
pub(crate) mod internal {
    use super::*;

    /// How lists of keys or rows are sent.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Lists {
        /// One array parameter per column, `$n` placeholders.
        Arrays,
        /// One `?` per value; `row_values` opens a list of row values
        /// after `IN (` (`VALUES ` on SQLite, nothing on MySQL), and one
        /// `IN` list holds at most `max_row_values` of them.
        Rows {
            row_values: &'static str,
            max_row_values: usize,
        },
    }

    /// How an upsert says "update on a key conflict".
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Upsert {
        /// `ON CONFLICT (key) DO UPDATE SET c = excluded.c`.
        OnConflict,
        /// `ON DUPLICATE KEY UPDATE c = VALUES(c)`.
        OnDuplicateKey,
    }

    /// The SQL spelling of a dialect.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Syntax {
        /// The identifier quote.
        pub quote: char,
        /// The list form.
        pub lists: Lists,
        /// The upsert clause.
        pub upsert: Upsert,
    }

    /// What a server allows, read once per pool.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Server {
        /// Bind parameters per statement.
        pub max_binds: usize,
        /// Bytes of parameters per statement (`usize::MAX` if unlimited).
        pub max_bytes: usize,
        /// Whether `DELETE ... RETURNING` works (not on Oracle MySQL).
        pub delete_returning: bool,
    }

    pub trait Internal: Database {
        /// This dialect's SQL spelling.
        const SYNTAX: Syntax;

        /// Ask the server for its limits (not counted as a statement).
        fn server(pool: &Pool<Self>) -> impl Future<Output = Result<Server, sqlx::Error>> + Send;

        /// Run a statement and collect its rows.
        fn fetch_rows<'c>(
            connection: &'c mut Self::Connection,
            sql: String,
            arguments: Self::Arguments,
        ) -> impl Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send + 'c;

        /// Run a statement that returns no rows.
        fn execute<'c>(
            connection: &'c mut Self::Connection,
            sql: String,
            arguments: Self::Arguments,
        ) -> impl Future<Output = Result<(), sqlx::Error>> + Send + 'c;

        /// The column named `name` of `row`.
        fn decode_column<T>(row: &Self::Row, name: &str) -> Result<T, sqlx::Error>
        where
            T: for<'r> Decode<'r, Self> + Type<Self>;
    }
}

/// Implement the driver calls of [`internal::Internal`] for one driver.
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
macro_rules! driver_calls {
    () => {
        fn fetch_rows<'c>(
            connection: &'c mut Self::Connection,
            sql: String,
            arguments: Self::Arguments,
        ) -> impl std::future::Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send + 'c {
            sqlx::query_with(sqlx::AssertSqlSafe(sql), arguments).fetch_all(connection)
        }

        fn execute<'c>(
            connection: &'c mut Self::Connection,
            sql: String,
            arguments: Self::Arguments,
        ) -> impl std::future::Future<Output = Result<(), sqlx::Error>> + Send + 'c {
            let query = sqlx::query_with(sqlx::AssertSqlSafe(sql), arguments);
            async move { query.execute(connection).await.map(drop) }
        }

        fn decode_column<T>(row: &Self::Row, name: &str) -> Result<T, sqlx::Error>
        where
            T: for<'r> sqlx::Decode<'r, Self> + sqlx::Type<Self>,
        {
            sqlx::Row::try_get(row, name)
        }
    };
}
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
use driver_calls;
