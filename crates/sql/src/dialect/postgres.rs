//! PostgreSQL: arrays (`= ANY($1)`, `UNNEST`), `ON CONFLICT`, `RETURNING`.

use super::internal::{Internal, Lists, Server, Syntax, Upsert};
use crate::value::{Arguments, Value};
use sqlx::{Encode, Pool, Postgres, Type, error::BoxDynError, postgres::PgHasArrayType};

/// PostgreSQL refuses a message over 1 GiB; the margin covers the
/// statement's framing.
const MAX_MESSAGE: usize = (1 << 30) - (1 << 20);

impl Internal for Postgres {
    const SYNTAX: Syntax = Syntax {
        quote: '"',
        lists: Lists::Arrays,
        upsert: Upsert::OnConflict,
    };

    async fn server(_: &Pool<Self>) -> Result<Server, sqlx::Error> {
        Ok(Server {
            max_binds: usize::from(u16::MAX),
            max_bytes: MAX_MESSAGE,
            delete_returning: true,
        })
    }

    super::driver_calls!();
}

impl<T> Value<Postgres> for T
where
    T: for<'q> Encode<'q, Postgres> + Type<Postgres> + PgHasArrayType + Send + Sync,
{
    fn encoded_size(&self) -> usize {
        let mut buffer = sqlx::postgres::PgArgumentBuffer::default();
        // An unencodable value fails again, with its error, when bound.
        let _ = self.encode_by_ref(&mut buffer);
        // Each array element carries a 4-byte length.
        buffer.len() + 4
    }

    fn bind(&self, arguments: &mut Arguments<Postgres>) -> Result<(), BoxDynError> {
        sqlx::Arguments::add(arguments, self)
    }

    fn bind_list(values: &[&Self], arguments: &mut Arguments<Postgres>) -> Result<(), BoxDynError> {
        sqlx::Arguments::add(arguments, values)
    }
}
