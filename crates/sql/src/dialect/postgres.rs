//! PostgreSQL: arrays (`UNNEST(...) WITH ORDINALITY` joined to the table),
//! `ON CONFLICT`, `RETURNING`.

use super::internal::{Internal, Lists, Server, Syntax, Upsert};
use crate::value::{Arguments, Encoding, Value};
use crate::{Pooler, SessionSettings};
use sqlx::{
    Encode, Pool, Postgres, Type,
    encode::IsNull,
    error::BoxDynError,
    postgres::{PgConnectOptions, PgHasArrayType},
};
use std::str::FromStr;

/// PostgreSQL refuses a message over 1 GiB; the margin covers the
/// statement's framing.
const MAX_MESSAGE: usize = (1 << 30) - (1 << 20);

impl Internal for Postgres {
    const SYNTAX: Syntax = Syntax {
        quote: '"',
        lists: Lists::Arrays,
        upsert: Upsert::OnConflict,
    };

    fn rows<R: crate::TableRow, B: crate::rows::Build<Self>>(
        build: B,
    ) -> Result<crate::Rows<R>, coalesce::ConfigError> {
        R::__postgres(build)
    }

    async fn server(_: &Pool<Self>) -> Result<Server, sqlx::Error> {
        Ok(Server {
            max_binds: usize::from(u16::MAX),
            max_bytes: MAX_MESSAGE,
        })
    }

    fn is_data_error(error: &sqlx::Error) -> bool {
        super::sqlstate_class(error, &["22", "23"])
    }

    /// Through a transaction pooler, `SET LOCAL` in the statement that
    /// begins the transaction: one round trip, and gone with the
    /// transaction, so it never reaches another client's.
    fn begin_statement(settings: &SessionSettings) -> String {
        match (settings.pooler, settings.statement_timeout) {
            (Pooler::Transaction, Some(timeout)) => format!(
                "BEGIN; SET LOCAL statement_timeout = {}",
                super::millis(timeout)
            ),
            _ => Self::BEGIN_WRITE.to_owned(),
        }
    }

    /// Directly, the statement timeout as a startup option (no round trip);
    /// through a transaction pooler, no startup option at all: PgBouncer
    /// refuses `options` and sqlx's `extra_float_digits` ("unsupported
    /// startup parameter") unless told to ignore them, and a session
    /// setting would not follow the client from one server to the next.
    fn connect_options(
        url: &str,
        settings: &SessionSettings,
    ) -> Result<PgConnectOptions, sqlx::Error> {
        let options = PgConnectOptions::from_str(url)?;
        Ok(match (settings.pooler, settings.statement_timeout) {
            (Pooler::Transaction, _) => options.extra_float_digits(None),
            (Pooler::None, Some(timeout)) => {
                options.options([("statement_timeout", super::millis(timeout))])
            }
            (Pooler::None, None) => options,
        })
    }

    super::driver_calls!();
}

impl<T> Value<Postgres> for T
where
    T: for<'q> Encode<'q, Postgres> + Type<Postgres> + PgHasArrayType + Send + Sync,
{
    fn encoding(&self) -> Encoding {
        let mut buffer = sqlx::postgres::PgArgumentBuffer::default();
        // An unencodable value fails again, with its error, when bound.
        let encoded = self.encode_by_ref(&mut buffer);
        let info = <T as Type<Postgres>>::type_info();
        let text = matches!(
            sqlx::TypeInfo::name(&info),
            "TEXT" | "VARCHAR" | "CHAR" | "NAME"
        );
        let nul = text && matches!(encoded, Ok(IsNull::No)) && buffer.contains(&0);
        Encoding {
            // Each array element carries a 4-byte length.
            size: buffer.len() + 4,
            refusal: nul.then_some("a NUL byte in text, which PostgreSQL refuses (SQLSTATE 22021)"),
        }
    }

    fn bind(&self, arguments: &mut Arguments<Postgres>) -> Result<(), BoxDynError> {
        sqlx::Arguments::add(arguments, self)
    }

    fn bind_null(arguments: &mut Arguments<Postgres>) -> Result<(), BoxDynError> {
        sqlx::Arguments::add(arguments, None::<&Self>)
    }

    fn bind_list(
        values: &[Option<&Self>],
        arguments: &mut Arguments<Postgres>,
    ) -> Result<(), BoxDynError> {
        sqlx::Arguments::add(arguments, values)
    }
}
