//! MySQL/MariaDB: keys as a padded derived table `(SELECT 1 AS position, ?
//! AS key_0 UNION ALL ...)` joined to the table (or `UNION ALL`s of
//! `SELECT ..., p FROM t WHERE k = ?` where the server refuses to compare
//! it), `ON DUPLICATE KEY UPDATE`; 65,535 binds and `max_allowed_packet`
//! bytes per statement.

use super::internal::{Internal, KeyRows, Lists, Server, Syntax, Upsert};
use crate::session::{SessionSettings, SetUpFuture};
use crate::value::{Arguments, Encoding, Value};
use sqlx::{
    AssertSqlSafe, Encode, MySql, Pool, Type,
    error::BoxDynError,
    mysql::{MySqlConnectOptions, MySqlConnection, MySqlDatabaseError},
};
use std::{str::FromStr, time::Duration};

/// Placeholders one statement may hold.
const MAX_BINDS: usize = 65_535;

/// Composite keys one statement reads or deletes. MariaDB's range
/// optimizer took time quadratic in the length of a row-value `IN` list
/// when another index of the table begins with the key's leading column
/// (see the crate's README); deletes still send such a list.
const MAX_ROW_VALUES: usize = 64;

/// Room in a packet for everything but the parameters' values: the
/// `COM_STMT_EXECUTE` header, the NULL bitmap and the type list.
const PACKET_OVERHEAD: usize = 1024;

impl Internal for MySql {
    const SYNTAX: Syntax = Syntax {
        quote: '`',
        lists: Lists::Rows {
            keys: KeyRows::Derived,
            max_row_values: MAX_ROW_VALUES,
        },
        upsert: Upsert::OnDuplicateKey,
    };

    fn rows<R: crate::TableRow, B: crate::rows::Build<Self>>(
        build: B,
    ) -> Result<crate::Rows<R>, coalesce::ConfigError> {
        R::__mysql(build)
    }

    async fn server(pool: &Pool<Self>) -> Result<Server, sqlx::Error> {
        let packet: u64 = sqlx::query_scalar("SELECT @@max_allowed_packet")
            .fetch_one(pool)
            .await?;
        let packet = usize::try_from(packet).unwrap_or(usize::MAX);
        Ok(Server {
            max_binds: MAX_BINDS,
            max_bytes: packet.saturating_sub(PACKET_OVERHEAD),
        })
    }

    fn is_data_error(error: &sqlx::Error) -> bool {
        super::sqlstate_class(error, &["22", "23"])
    }

    fn connect_options(
        url: &str,
        _settings: &SessionSettings,
    ) -> Result<MySqlConnectOptions, sqlx::Error> {
        MySqlConnectOptions::from_str(url)
    }

    fn set_up(connection: &mut MySqlConnection, settings: SessionSettings) -> SetUpFuture<'_> {
        Box::pin(async move {
            match settings.statement_timeout {
                Some(timeout) => limit_statements(connection, timeout).await,
                None => Ok(()),
            }
        })
    }

    fn is_collation_mix(error: &sqlx::Error) -> bool {
        // ER_CANT_AGGREGATE_2COLLATIONS, _3COLLATIONS, _NCOLLATIONS.
        match error {
            sqlx::Error::Database(error) => error
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .is_some_and(|error| matches!(error.number(), 1267 | 1270 | 1271)),
            _ => false,
        }
    }

    super::driver_calls!();
}

/// Bound the run time of every statement on the connection: MariaDB's
/// `max_statement_time` (seconds), or, on Oracle MySQL, which lacks it
/// (error 1193, unknown variable), `max_execution_time` (ms; it covers
/// `SELECT`s only).
async fn limit_statements(
    connection: &mut MySqlConnection,
    timeout: Duration,
) -> Result<(), sqlx::Error> {
    let mariadb = format!("SET SESSION max_statement_time = {}", timeout.as_secs_f64());
    match sqlx::query(AssertSqlSafe(mariadb))
        .execute(&mut *connection)
        .await
    {
        Err(sqlx::Error::Database(error))
            if error
                .try_downcast_ref::<MySqlDatabaseError>()
                .is_some_and(|e| e.number() == 1193) =>
        {
            let mysql = format!(
                "SET SESSION max_execution_time = {}",
                super::millis(timeout)
            );
            let set = sqlx::query(AssertSqlSafe(mysql)).execute(connection).await;
            set.map(drop)
        }
        result => result.map(drop),
    }
}

impl<T> Value<MySql> for T
where
    T: for<'q> Encode<'q, MySql> + Type<MySql> + Send + Sync,
{
    /// The encoded value (length prefix included) plus its 2-byte type.
    fn encoding(&self) -> Encoding {
        let mut buffer = Vec::new();
        // An unencodable value fails again, with its error, when bound.
        let _ = self.encode_by_ref(&mut buffer);
        Encoding {
            size: buffer.len() + 2,
            refusal: None,
        }
    }

    fn bind(&self, arguments: &mut Arguments<MySql>) -> Result<(), BoxDynError> {
        sqlx::Arguments::add(arguments, self)
    }

    fn bind_null(arguments: &mut Arguments<MySql>) -> Result<(), BoxDynError> {
        sqlx::Arguments::add(arguments, None::<&Self>)
    }

    fn bind_list(
        values: &[Option<&Self>],
        arguments: &mut Arguments<MySql>,
    ) -> Result<(), BoxDynError> {
        values.iter().try_for_each(|value| match value {
            Some(value) => value.bind(arguments),
            None => Self::bind_null(arguments),
        })
    }
}
