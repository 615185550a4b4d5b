//! Opening a [`Database`]: the URL's scheme picks the backend, and each
//! backend's pool is opened with the store's options.

use super::{Database, Pool};
use sqlx::{
    migrate::MigrateError,
    mysql::MySqlPoolOptions,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions},
};
use std::{str::FromStr, time::Duration};

/// The database family, chosen from a connection URL's scheme.
///
/// ```
/// use coalesce_store::db::Backend;
///
/// assert_eq!(Backend::from_url("postgresql://localhost/db").unwrap(), Backend::Postgres);
/// assert_eq!(Backend::from_url("mariadb://root@localhost/db").unwrap(), Backend::MySql);
/// assert_eq!(Backend::from_url("sqlite://data.db").unwrap(), Backend::Sqlite);
/// assert!(Backend::from_url("mssql://localhost").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// PostgreSQL: `postgres://` or `postgresql://`.
    Postgres,
    /// MySQL or MariaDB: `mysql://` or `mariadb://`.
    MySql,
    /// SQLite: `sqlite://path` (the file is created on first use) or `sqlite::memory:`.
    Sqlite,
}

impl Backend {
    /// The backend a URL names, or [`ConnectError::UnsupportedUrl`].
    pub fn from_url(url: &str) -> Result<Self, ConnectError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Ok(Self::Postgres),
            "mysql" | "mariadb" => Ok(Self::MySql),
            "sqlite" => Ok(Self::Sqlite),
            _ => Err(ConnectError::UnsupportedUrl {
                scheme: scheme.to_owned(),
            }),
        }
    }
}

/// Why a [`Database`] could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL's scheme names no supported database.
    #[error(
        "unsupported database URL scheme {scheme:?}: use postgres://, mysql://, mariadb:// or sqlite://"
    )]
    UnsupportedUrl {
        /// The scheme found (the URL itself may hold a password, so it is not kept).
        scheme: String,
    },
    /// A pool of zero connections was asked for.
    #[error("pool size must be at least 1")]
    ZeroPoolSize,
    /// The database refused or did not answer.
    #[error("could not connect to {backend:?}: {source}")]
    Connect {
        /// The backend the URL named.
        backend: Backend,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Applying the migrations failed.
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] MigrateError),
}

impl Database {
    /// Open a pool of `pool_size` connections to the database `url` names.
    /// A SQLite file is created if missing (WAL journal, 5 s busy timeout);
    /// note that each connection to `sqlite::memory:` is its own database.
    pub async fn connect(url: &str, pool_size: u32) -> Result<Self, ConnectError> {
        if pool_size == 0 {
            return Err(ConnectError::ZeroPoolSize);
        }
        let backend = Backend::from_url(url)?;
        let failed = |source| ConnectError::Connect { backend, source };
        let pool = match backend {
            Backend::Postgres => Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(pool_size)
                    .connect(url)
                    .await
                    .map_err(failed)?,
            ),
            Backend::MySql => {
                let url = match url.split_once("://") {
                    Some((_, rest)) => format!("mysql://{rest}"),
                    None => url.to_owned(),
                };
                Pool::MySql(
                    MySqlPoolOptions::new()
                        .max_connections(pool_size)
                        .connect(&url)
                        .await
                        .map_err(failed)?,
                )
            }
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(failed)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(5));
                Pool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(pool_size)
                        .connect_with(options)
                        .await
                        .map_err(failed)?,
                )
            }
        };
        Ok(Self::new(pool))
    }
}
