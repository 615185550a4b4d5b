//! What the tests need of each backend besides the toolkit: its pool (the
//! test fails in CI when the server is unreachable, see `common`), the
//! spelling of the naive per-item statements, and plain sqlx calls.

use crate::common;
use coalesce_sql::Dialect;
use sqlx::{AssertSqlSafe, FromRow, Pool, error::BoxDynError};
use std::future::Future;

/// The arguments of one statement.
pub type Args<DB> = <DB as sqlx::Database>::Arguments;

/// One backend as the naive path sees it.
pub trait Backend: Dialect {
    /// The `n`th (1-based) placeholder.
    fn placeholder(n: usize) -> String;

    /// `name` as one quoted identifier.
    fn quote(name: &str) -> String;

    /// The one-row upsert a user would write: insert `key` and `values`
    /// columns, on a conflict of the key set the values and `on_update`
    /// (`(column, expression)`).
    fn upsert_one(
        table: &str,
        key: &[String],
        values: &[String],
        on_update: Option<(&str, &str)>,
    ) -> String;

    /// `column`, of an integer type, read back as a 64-bit integer under
    /// its own name (sqlx decodes PostgreSQL's `INT` only as `i32`).
    fn as_bigint(column: &str) -> String;

    /// The test server (a fresh file for SQLite); `None` after a
    /// `SKIPPED:` line outside CI.
    fn connect() -> impl Future<Output = Option<Pool<Self>>> + Send;

    /// Run `sql` (DDL, several statements allowed) without arguments.
    fn run(pool: &Pool<Self>, sql: String) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Every row `sql` returns.
    fn fetch_all<R>(
        pool: &Pool<Self>,
        sql: String,
        args: Args<Self>,
    ) -> impl Future<Output = Result<Vec<R>, sqlx::Error>> + Send
    where
        R: for<'r> FromRow<'r, Self::Row> + Send + Unpin;

    /// Run `sql`; how many rows it affected.
    fn affected(
        pool: &Pool<Self>,
        sql: String,
        args: Args<Self>,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;
}

/// A value the naive statements bind as plain sqlx parameters (written
/// apart from the toolkit's own binding, so the oracle does not share its
/// code with what it checks).
pub trait Bind<DB: sqlx::Database> {
    /// Add the value (every field of a tuple, in order) to `args`.
    fn bind_into(&self, args: &mut Args<DB>) -> Result<(), BoxDynError>;
}

macro_rules! scalar_binds {
    ($($t:ty),*) => {$(
        impl<DB: sqlx::Database> Bind<DB> for $t
        where
            for<'q> $t: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        {
            fn bind_into(&self, args: &mut Args<DB>) -> Result<(), BoxDynError> {
                sqlx::Arguments::add(args, self.clone())
            }
        }
    )*};
}

scalar_binds!(
    i16,
    i32,
    i64,
    String,
    Option<String>,
    Option<i64>,
    uuid::Uuid,
    crate::rows::AccountId
);

impl<DB: sqlx::Database, A: Bind<DB>, B: Bind<DB>> Bind<DB> for (A, B) {
    fn bind_into(&self, args: &mut Args<DB>) -> Result<(), BoxDynError> {
        self.0.bind_into(args)?;
        self.1.bind_into(args)
    }
}

macro_rules! backend {
    ($db:ty, connect: $connect:path, placeholder: $placeholder:expr,
     quote: $quote:literal, bigint: $bigint:literal, upsert: $upsert:path,
     new_value: $new_value:path) => {
        impl Backend for $db {
            fn placeholder(n: usize) -> String {
                $placeholder(n)
            }

            fn quote(name: &str) -> String {
                let doubled = name.replace($quote, concat!($quote, $quote));
                format!("{}{doubled}{}", $quote, $quote)
            }

            fn upsert_one(
                table: &str,
                key: &[String],
                values: &[String],
                on_update: Option<(&str, &str)>,
            ) -> String {
                let columns: Vec<String> =
                    key.iter().chain(values).map(|c| Self::quote(c)).collect();
                let placeholders: Vec<String> =
                    (1..=columns.len()).map(Self::placeholder).collect();
                let key: Vec<String> = key.iter().map(|c| Self::quote(c)).collect();
                let mut set: Vec<String> = values
                    .iter()
                    .map(|c| {
                        let c = Self::quote(c);
                        format!("{c} = {}", $new_value(&c))
                    })
                    .collect();
                if let Some((column, expression)) = on_update {
                    set.push(format!("{} = {expression}", Self::quote(column)));
                }
                format!(
                    "INSERT INTO {table} ({}) VALUES ({}) {}",
                    columns.join(", "),
                    placeholders.join(", "),
                    $upsert(&key.join(", "), &set.join(", "))
                )
            }

            fn as_bigint(column: &str) -> String {
                format!("CAST({column} AS {}) AS {column}", $bigint)
            }

            async fn connect() -> Option<Pool<Self>> {
                $connect().await
            }

            async fn run(pool: &Pool<Self>, sql: String) -> Result<(), sqlx::Error> {
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(pool)
                    .await
                    .map(drop)
            }

            async fn fetch_all<R>(
                pool: &Pool<Self>,
                sql: String,
                args: Args<Self>,
            ) -> Result<Vec<R>, sqlx::Error>
            where
                R: for<'r> FromRow<'r, Self::Row> + Send + Unpin,
            {
                sqlx::query_as_with::<Self, R, _>(AssertSqlSafe(sql), args)
                    .fetch_all(pool)
                    .await
            }

            async fn affected(
                pool: &Pool<Self>,
                sql: String,
                args: Args<Self>,
            ) -> Result<u64, sqlx::Error> {
                let done = sqlx::query_with::<Self, _>(AssertSqlSafe(sql), args)
                    .execute(pool)
                    .await?;
                Ok(done.rows_affected())
            }
        }
    };
}

/// `ON CONFLICT (key) DO UPDATE SET ...` (PostgreSQL, SQLite).
fn on_conflict(key: &str, set: &str) -> String {
    format!("ON CONFLICT ({key}) DO UPDATE SET {set}")
}

/// The new row's value of column `c` in an `ON CONFLICT` update.
fn excluded(c: &str) -> String {
    format!("excluded.{c}")
}

/// `ON DUPLICATE KEY UPDATE ...` (MySQL/MariaDB: any unique key).
fn on_duplicate_key(_key: &str, set: &str) -> String {
    format!("ON DUPLICATE KEY UPDATE {set}")
}

/// The new row's value of column `c` in an `ON DUPLICATE KEY` update.
fn values(c: &str) -> String {
    format!("VALUES({c})")
}

backend!(sqlx::Postgres, connect: common::postgres, placeholder: |n| format!("${n}"),
    quote: '"', bigint: "BIGINT", upsert: on_conflict, new_value: excluded);
backend!(sqlx::MySql, connect: common::mysql, placeholder: |_| "?".to_owned(),
    quote: '`', bigint: "SIGNED", upsert: on_duplicate_key, new_value: values);
backend!(sqlx::Sqlite, connect: common::sqlite, placeholder: |_| "?".to_owned(),
    quote: '"', bigint: "INTEGER", upsert: on_conflict, new_value: excluded);
