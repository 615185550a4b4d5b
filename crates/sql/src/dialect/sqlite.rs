//! SQLite: padded `IN` lists, `(a, b) IN (VALUES ...)`, `ON CONFLICT`,
//! `RETURNING`; 32,766 binds per statement and no packet to fill.

use super::internal::{Internal, Lists, Server, Syntax, Upsert};
use crate::value::{Arguments, Value};
use sqlx::{Encode, Pool, Sqlite, Type, error::BoxDynError};

/// `SQLITE_MAX_VARIABLE_NUMBER` of the SQLite sqlx bundles.
const MAX_BINDS: usize = 32_766;

impl Internal for Sqlite {
    const SYNTAX: Syntax = Syntax {
        quote: '"',
        lists: Lists::Rows {
            row_values: "VALUES ",
            max_row_values: usize::MAX,
        },
        upsert: Upsert::OnConflict,
    };

    async fn server(_: &Pool<Self>) -> Result<Server, sqlx::Error> {
        Ok(Server {
            max_binds: MAX_BINDS,
            max_bytes: usize::MAX,
            delete_returning: true,
        })
    }

    super::driver_calls!();
}

impl<T> Value<Sqlite> for T
where
    T: for<'q> Encode<'q, Sqlite> + Type<Sqlite> + Send + Sync,
{
    /// Values are handed to SQLite in memory: no packet limit to count against.
    fn encoded_size(&self) -> usize {
        0
    }

    fn bind(&self, arguments: &mut Arguments<Sqlite>) -> Result<(), BoxDynError> {
        sqlx::Arguments::add(arguments, self)
    }

    fn bind_list(values: &[&Self], arguments: &mut Arguments<Sqlite>) -> Result<(), BoxDynError> {
        values.iter().try_for_each(|value| value.bind(arguments))
    }
}
