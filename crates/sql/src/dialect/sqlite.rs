//! SQLite: keys as a padded `(VALUES (1, ?), ...)` joined to the table,
//! `ON CONFLICT`; 32,766 binds per statement and no packet to fill.

use super::internal::{Internal, KeyRows, Lists, Server, Syntax, Upsert};
use crate::SessionSettings;
use crate::value::{Arguments, Encoding, Value};
use sqlx::{Encode, Pool, Sqlite, Type, error::BoxDynError, sqlite::SqliteConnectOptions};
use std::str::FromStr;

/// Primary result codes of errors caused by a statement's data.
const SQLITE_TOOBIG: i32 = 18;
const SQLITE_CONSTRAINT: i32 = 19;
const SQLITE_MISMATCH: i32 = 20;

/// `SQLITE_MAX_VARIABLE_NUMBER` of the SQLite sqlx bundles.
const MAX_BINDS: usize = 32_766;

impl Internal for Sqlite {
    const SYNTAX: Syntax = Syntax {
        quote: '"',
        lists: Lists::Rows {
            keys: KeyRows::Values,
            max_row_values: usize::MAX,
        },
        upsert: Upsert::OnConflict,
    };

    /// A write's transaction takes the write lock at once, waiting out
    /// the busy timeout: a deferred one that reads first (a delete's
    /// `SELECT`) fails with `SQLITE_BUSY` at its first write when another
    /// writer went ahead, without waiting.
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";

    fn rows<R: crate::TableRow, B: crate::rows::Build<Self>>(
        build: B,
    ) -> Result<crate::Rows<R>, coalesce::ConfigError> {
        R::__sqlite(build)
    }

    async fn server(_: &Pool<Self>) -> Result<Server, sqlx::Error> {
        Ok(Server {
            max_binds: MAX_BINDS,
            max_bytes: usize::MAX,
        })
    }

    /// SQLite runs statements in the caller's process: the statement
    /// timeout bounds how long one waits for another connection's lock.
    fn connect_options(
        url: &str,
        settings: &SessionSettings,
    ) -> Result<SqliteConnectOptions, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?;
        Ok(match settings.statement_timeout {
            Some(timeout) => options.busy_timeout(timeout),
            None => options,
        })
    }

    fn is_data_error(error: &sqlx::Error) -> bool {
        // The extended result code; its low byte is the primary code.
        let primary = match error {
            sqlx::Error::Database(error) => error
                .code()
                .and_then(|code| code.parse::<i32>().ok())
                .map(|code| code & 0xff),
            _ => None,
        };
        matches!(
            primary,
            Some(SQLITE_TOOBIG | SQLITE_CONSTRAINT | SQLITE_MISMATCH)
        )
    }

    super::driver_calls!();
}

impl<T> Value<Sqlite> for T
where
    T: for<'q> Encode<'q, Sqlite> + Type<Sqlite> + Send + Sync,
{
    /// Values are handed to SQLite in memory: no packet limit to count
    /// against, and nothing known to be refused.
    fn encoding(&self) -> Encoding {
        Encoding::default()
    }

    fn bind(&self, arguments: &mut Arguments<Sqlite>) -> Result<(), BoxDynError> {
        sqlx::Arguments::add(arguments, self)
    }

    fn bind_null(arguments: &mut Arguments<Sqlite>) -> Result<(), BoxDynError> {
        sqlx::Arguments::add(arguments, None::<&Self>)
    }

    fn bind_list(
        values: &[Option<&Self>],
        arguments: &mut Arguments<Sqlite>,
    ) -> Result<(), BoxDynError> {
        values.iter().try_for_each(|value| match value {
            Some(value) => value.bind(arguments),
            None => Self::bind_null(arguments),
        })
    }
}
