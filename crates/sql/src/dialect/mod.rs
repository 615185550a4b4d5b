//! What differs between PostgreSQL, MySQL/MariaDB and SQLite: quoting,
//! the list form, the upsert clause, the limits a statement must respect,
//! and the driver calls (which generic code could only make through long
//! `Executor` bounds every caller would have to repeat).
//!
//! # The list form chosen per dialect
//!
//! Keys are matched to rows by the database, never in Rust: a read joins
//! the table to a derived table of (position, key) rows, table column on
//! the left (`t.k = keys.k`, so the column's collation, padding and type
//! rules apply as in `WHERE k = $1`), and each row comes back with the
//! position of the key that found it.
//!
//! - **PostgreSQL: arrays.** A key list is one array parameter per key
//!   column (`UNNEST($1, $2) WITH ORDINALITY`), so one statement text
//!   serves every batch size and there is no bind limit to split under.
//! - **MySQL/MariaDB: a derived table `(SELECT 1 AS position, ? AS key_0
//!   UNION ALL ...)` joined to the table**, padded to a few lengths; where
//!   the server refuses it next to a column of another character set, one
//!   `SELECT ..., p FROM t WHERE k = ?` per key joined by `UNION ALL` (see
//!   [`KeyRows`]). A list of composite keys holds at most 64 of them
//!   (README).
//! - **SQLite: `(VALUES (1, ?), ...)` joined to the table**, padded to a
//!   few lengths. Padding binds `NULL`, which matches nothing.
//!
//! [`KeyRows`]: internal::KeyRows

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

use crate::session::{SessionSettings, SetUpFuture};
use sqlx::{Connection, Database, Pool};
use std::future::Future;

/// A database the toolkit speaks: implemented for `sqlx::Postgres`,
/// `sqlx::MySql` and `sqlx::Sqlite` when their features are enabled.
/// Sealed: the toolkit knows each dialect's SQL and limits.
///
/// Code generic over `DB: Dialect` contains no dialect branch:
///
/// ```
/// use coalesce_sql::{Db, Dialect, Error, Table};
/// use std::collections::HashMap;
///
/// async fn names<DB: Dialect>(sql: &Db<DB>, ids: &[i64]) -> Result<HashMap<i64, (i64, String)>, Error>
/// where
///     i64: coalesce_sql::Key<DB>,
///     (i64, String): for<'r> sqlx::FromRow<'r, DB::Row>,
/// {
///     sql.fetch(&Table::new("users").key(["id"]).values(["name"]), ids).await
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
        /// One array parameter per column, `$n` placeholders; a key list
        /// is `UNNEST($1, ...) WITH ORDINALITY`.
        Arrays,
        /// One `?` per value; a key list is a derived table of
        /// (position, key) rows spelled as `keys`, holding at most
        /// `max_row_values` keys of a composite key.
        Rows {
            keys: KeyRows,
            max_row_values: usize,
        },
    }

    /// How a list of keys with their positions is spelled where values
    /// are bound one by one.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum KeyRows {
        /// `(SELECT 1 AS position, ? AS key_0 UNION ALL SELECT 2, ? ...)`
        /// joined to the table (MariaDB refuses placeholders in a `VALUES`
        /// table, whose first row names its columns). Its columns are
        /// `utf8mb4` and no constants: next to a column of another
        /// character set a non-ASCII key fails with "Illegal mix of
        /// collations", where `k = ?` converts the constant; such a
        /// statement is sent again as [`KeyRows::Branches`].
        Derived,
        /// No table of keys: one `SELECT ..., p FROM t WHERE k = ?` per key,
        /// joined by `UNION ALL`; exactly `k = ?`, but each branch is
        /// planned on its own (about 4x slower at 100 keys on MariaDB).
        Branches,
        /// `(VALUES (1, ?), (2, ?), ...)` joined to the table, columns
        /// `column1`, `column2`, ...
        Values,
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
    }

    pub trait Internal: Database {
        /// This dialect's SQL spelling.
        const SYNTAX: Syntax;

        /// The statement opening a write's transaction.
        const BEGIN_WRITE: &'static str = "BEGIN";

        /// Build `R`'s [`Rows`](crate::Rows) as `build` says (on a `Db`,
        /// or over replicas) through `R`'s impl for this dialect (see
        /// [`TableRow`](crate::TableRow)).
        fn rows<R: crate::TableRow, B: crate::rows::Build<Self>>(
            build: B,
        ) -> Result<crate::Rows<R>, coalesce::ConfigError>
        where
            Self: crate::Dialect;
        /// The statement opening a transaction on a connection used as
        /// `settings` say (through a transaction pooler, it also sets the
        /// statement timeout for the transaction where the dialect can).
        fn begin_statement(_settings: &SessionSettings) -> String {
            Self::BEGIN_WRITE.to_owned()
        }

        /// sqlx's connect options for `url`, as `settings` say.
        fn connect_options(
            url: &str,
            settings: &SessionSettings,
        ) -> Result<<Self::Connection as Connection>::Options, sqlx::Error>;

        /// What a new connection runs before its first statement.
        fn set_up(
            _connection: &mut Self::Connection,
            _settings: SessionSettings,
        ) -> SetUpFuture<'_> {
            Box::pin(async { Ok(()) })
        }

        /// Ask the server for its limits (not counted as a statement).
        fn server(pool: &Pool<Self>) -> impl Future<Output = Result<Server, sqlx::Error>> + Send;

        /// Run a statement and collect its rows; prepared as a named
        /// statement cached on the connection if `named`.
        fn fetch_rows<'c>(
            connection: &'c mut Self::Connection,
            sql: std::sync::Arc<str>,
            arguments: Self::Arguments,
            named: bool,
        ) -> impl Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send + 'c;

        /// Run a statement that returns no rows; the rows it affected.
        /// Prepared as [`fetch_rows`](Self::fetch_rows) says.
        fn execute<'c>(
            connection: &'c mut Self::Connection,
            sql: std::sync::Arc<str>,
            arguments: Self::Arguments,
            named: bool,
        ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send + 'c;

        /// Run a statement without preparing it (`SAVEPOINT ...`).
        fn execute_unprepared<'c>(
            connection: &'c mut Self::Connection,
            sql: &'static str,
        ) -> impl Future<Output = Result<(), sqlx::Error>> + Send + 'c;

        /// The last column of `row`: the 1-based position of the key that
        /// found it.
        fn position(row: &Self::Row) -> Result<usize, sqlx::Error>;

        /// Whether the database refused a statement because of the data it
        /// carries (a constraint, a value out of range or of a wrong
        /// form), so the same statement without the offending rows can
        /// succeed: SQLSTATE classes 22 and 23 on PostgreSQL and
        /// MySQL/MariaDB, `SQLITE_CONSTRAINT`, `SQLITE_MISMATCH` and
        /// `SQLITE_TOOBIG` on SQLite.
        fn is_data_error(error: &sqlx::Error) -> bool;

        /// Whether the database refused to compare a key column with a
        /// table of keys (MySQL's "Illegal mix of collations"), so the
        /// statement must be sent as [`KeyRows::Branches`].
        fn is_collation_mix(_error: &sqlx::Error) -> bool {
            false
        }
    }
}

/// A timeout in whole milliseconds, at least 1 (0 turns PostgreSQL's and
/// MySQL's timeouts off).
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn millis(timeout: std::time::Duration) -> u128 {
    timeout.as_millis().max(1)
}

/// Whether `error` is a database error whose SQLSTATE is of one of
/// `classes` (its first two characters).
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn sqlstate_class(error: &sqlx::Error, classes: &[&str]) -> bool {
    match error {
        sqlx::Error::Database(error) => error
            .code()
            .is_some_and(|code| classes.iter().any(|class| code.starts_with(class))),
        _ => false,
    }
}

/// Implement the driver calls of [`internal::Internal`] for one driver.
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
macro_rules! driver_calls {
    () => {
        fn fetch_rows<'c>(
            connection: &'c mut Self::Connection,
            sql: std::sync::Arc<str>,
            arguments: Self::Arguments,
            named: bool,
        ) -> impl std::future::Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send + 'c {
            sqlx::query_with(sqlx::AssertSqlSafe(sql), arguments)
                .persistent(named)
                .fetch_all(connection)
        }

        fn execute<'c>(
            connection: &'c mut Self::Connection,
            sql: std::sync::Arc<str>,
            arguments: Self::Arguments,
            named: bool,
        ) -> impl std::future::Future<Output = Result<u64, sqlx::Error>> + Send + 'c {
            let query = sqlx::query_with(sqlx::AssertSqlSafe(sql), arguments).persistent(named);
            async move { Ok(query.execute(connection).await?.rows_affected()) }
        }

        fn execute_unprepared<'c>(
            connection: &'c mut Self::Connection,
            sql: &'static str,
        ) -> impl std::future::Future<Output = Result<(), sqlx::Error>> + Send + 'c {
            let statement = sqlx::raw_sql(sqlx::AssertSqlSafe(sql));
            async move { statement.execute(connection).await.map(drop) }
        }

        fn position(row: &Self::Row) -> Result<usize, sqlx::Error> {
            let last = sqlx::Row::len(row).saturating_sub(1);
            let position: i64 = sqlx::Row::try_get(row, last)?;
            usize::try_from(position).map_err(|e| sqlx::Error::Decode(Box::new(e)))
        }
    };
}
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
use driver_calls;
