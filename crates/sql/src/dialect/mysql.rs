//! MySQL/MariaDB: padded `IN` lists, `(a, b) IN ((?, ?), ...)`,
//! `ON DUPLICATE KEY UPDATE`; 65,535 binds and `max_allowed_packet` bytes
//! per statement; `DELETE ... RETURNING` on MariaDB only.

use super::internal::{Internal, Lists, Server, Syntax, Upsert};
use crate::value::{Arguments, Value};
use sqlx::{Encode, MySql, Pool, Type, error::BoxDynError};

/// Placeholders one statement may hold.
const MAX_BINDS: usize = 65_535;

/// Row values `(a, b)` one `IN` list holds. MariaDB's range optimizer
/// takes time quadratic in a row-value list's length when another index
/// of the table begins with the key's leading column (10.11, one leading
/// value: 64 rows 1.4 ms, 256 rows 19 ms, 1,000 rows 290 ms; see the
/// crate's README); at 64 a key costs about what it costs alone.
const MAX_ROW_VALUES: usize = 64;

/// Room in a packet for everything but the parameters' values: the
/// `COM_STMT_EXECUTE` header, the NULL bitmap and the type list.
const PACKET_OVERHEAD: usize = 1024;

impl Internal for MySql {
    const SYNTAX: Syntax = Syntax {
        quote: '`',
        lists: Lists::Rows {
            row_values: "",
            max_row_values: MAX_ROW_VALUES,
        },
        upsert: Upsert::OnDuplicateKey,
    };

    async fn server(pool: &Pool<Self>) -> Result<Server, sqlx::Error> {
        let (version, packet): (String, u64) =
            sqlx::query_as("SELECT VERSION(), @@max_allowed_packet")
                .fetch_one(pool)
                .await?;
        let packet = usize::try_from(packet).unwrap_or(usize::MAX);
        Ok(Server {
            max_binds: MAX_BINDS,
            max_bytes: packet.saturating_sub(PACKET_OVERHEAD),
            delete_returning: version.contains("MariaDB"),
        })
    }

    super::driver_calls!();
}

impl<T> Value<MySql> for T
where
    T: for<'q> Encode<'q, MySql> + Type<MySql> + Send + Sync,
{
    /// The encoded value (length prefix included) plus its 2-byte type.
    fn encoded_size(&self) -> usize {
        let mut buffer = Vec::new();
        // An unencodable value fails again, with its error, when bound.
        let _ = self.encode_by_ref(&mut buffer);
        buffer.len() + 2
    }

    fn bind(&self, arguments: &mut Arguments<MySql>) -> Result<(), BoxDynError> {
        sqlx::Arguments::add(arguments, self)
    }

    fn bind_list(values: &[&Self], arguments: &mut Arguments<MySql>) -> Result<(), BoxDynError> {
        values.iter().try_for_each(|value| value.bind(arguments))
    }
}
