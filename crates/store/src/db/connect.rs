//! Opening a [`Database`]: the URL's scheme picks the backend, and each
//! backend's pool is opened with the store's options — a bounded wait for
//! the server, a server-side limit on every statement's run time — and
//! errors that say which server or file failed and why.

use super::{Database, Pool, batched::Batches, replicated::Routed};
use coalesce_sql::{
    Pooler, PoolerError, ServerMessage, SessionSettings,
    replicas::{ReplicaError, ReplicaSettings, Replicated},
};
use sqlx::{
    ConnectOptions as _, Connection, MySql, Postgres, Sqlite, migrate::MigrateError,
    pool::PoolOptions, sqlite::SqliteJournalMode,
};
use std::{
    fmt, io,
    path::{Path, PathBuf},
    time::Duration,
};

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

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Postgres => "PostgreSQL",
            Self::MySql => "MySQL/MariaDB",
            Self::Sqlite => "SQLite",
        })
    }
}

/// Why a [`Database`] could not be opened or migrated.
///
/// ```
/// use coalesce_store::db::{Backend, ConnectError};
///
/// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
/// let err = ConnectError::Unreachable {
///     backend: Backend::Postgres,
///     server: "127.0.0.1:5999".into(),
///     source: refused,
/// };
/// assert_eq!(
///     err.to_string(),
///     "could not connect to PostgreSQL at 127.0.0.1:5999: connection refused"
/// );
/// ```
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
    /// A `sqlite:` URL without a file path (SQLite would open a private
    /// temporary database, gone with its connection).
    #[error(
        "the SQLite URL names no file: use sqlite://path/to/file.db, or sqlite::memory: for a database that lives as long as its connection"
    )]
    EmptySqlitePath,
    /// The URL's `pooler` parameter names no known pooler mode.
    #[error(transparent)]
    Pooler(#[from] PoolerError),
    /// A transaction pooler was named for a backend other than PostgreSQL.
    #[error("pooler=transaction is supported on PostgreSQL only, not on {backend}")]
    PoolerUnsupported {
        /// The backend the URL named.
        backend: Backend,
    },
    /// A pool of zero connections was asked for.
    #[error("pool size must be at least 1")]
    ZeroPoolSize,
    /// A timeout of zero was asked for.
    #[error("{setting} must be longer than zero")]
    ZeroTimeout {
        /// The setting, e.g. `"statement_timeout"`.
        setting: &'static str,
    },
    /// The server's address could not be reached: nothing listens there
    /// (`connection refused`), no route, or its name does not resolve.
    #[error("could not connect to {backend} at {server}: {}", OsMessage(source))]
    Unreachable {
        /// The backend the URL named.
        backend: Backend,
        /// `host:port`, or the Unix socket's path.
        server: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The server accepted no connection, or did not finish setting one
    /// up, within [`ConnectOptions::connect_timeout`].
    #[error("could not connect to {backend} at {server}: no answer within {after:?}")]
    TimedOut {
        /// The backend the URL named.
        backend: Backend,
        /// `host:port`, or the Unix socket's path.
        server: String,
        /// The connect timeout that ran out.
        after: Duration,
    },
    /// The SQLite file could not be opened or created.
    #[error("could not open the SQLite database {}: {}", path.display(), OsMessage(source))]
    SqliteFile {
        /// The file's path, as the URL gives it.
        path: PathBuf,
        /// Why: the operating system's error opening that path (a
        /// directory, a missing directory, no permission), or SQLite's own
        /// message where the path itself opens.
        #[source]
        source: io::Error,
    },
    /// The server refused the connection (unknown database or user, bad
    /// password, ...), or the URL is malformed.
    #[error("could not connect to {backend}: {}", ServerMessage(source))]
    Connect {
        /// The backend the URL named.
        backend: Backend,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Read replicas were asked for on a backend without them (SQLite).
    #[error("{backend} has no read replicas: use postgres:// or mysql:// URLs")]
    NoReplicas {
        /// The primary's backend.
        backend: Backend,
    },
    /// A replica's URL names another backend than the primary's.
    #[error("a replica of a {primary} primary must be {primary} too, not {replica}")]
    MixedReplicaBackend {
        /// The primary's backend.
        primary: Backend,
        /// The replica's.
        replica: Backend,
    },
    /// Opening the routed pools to the primary and its replicas failed.
    #[error("could not connect to the primary for routed statements: {source}")]
    Replicas {
        /// Why (boxed: it is large, and rare).
        #[source]
        source: Box<ReplicaError>,
    },
    /// Applying the migrations failed.
    #[error("migrating the database failed: {}", MigrateMessage(.0))]
    Migrate(#[from] MigrateError),
}

/// A migration error with a failed statement's [`ServerMessage`].
struct MigrateMessage<'a>(&'a MigrateError);

impl fmt::Display for MigrateMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            MigrateError::Execute(error) => {
                write!(f, "while executing migrations: {}", ServerMessage(error))
            }
            MigrateError::ExecuteMigration(error, version) => {
                write!(f, "migration {version}: {}", ServerMessage(error))
            }
            other => other.fmt(f),
        }
    }
}

/// An OS error as the command-line tools people know print it: lower case,
/// without Rust's ` (os error N)` (`connection refused`).
struct OsMessage<'a>(&'a io::Error);

impl fmt::Display for OsMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = self.0.to_string();
        let text = match self.0.raw_os_error() {
            Some(code) => full
                .strip_suffix(&format!(" (os error {code})"))
                .unwrap_or(&full),
            None => &full,
        };
        let mut chars = text.chars();
        match chars.next() {
            Some(first) => write!(f, "{}{}", first.to_lowercase(), chars.as_str()),
            None => Ok(()),
        }
    }
}

/// How [`Database::connect_with`] opens its pool.
///
/// ```
/// use coalesce_store::db::ConnectOptions;
/// use std::time::Duration;
///
/// let options = ConnectOptions::new(8)
///     .with_connect_timeout(Duration::from_secs(2))
///     .with_statement_timeout(Duration::from_secs(10));
/// assert_eq!(options.pool_size(), 8);
/// assert_eq!(options.statement_timeout(), Duration::from_secs(10));
/// assert_eq!(ConnectOptions::new(8).connect_timeout(), ConnectOptions::DEFAULT_CONNECT_TIMEOUT);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectOptions {
    pool_size: u32,
    connect_timeout: Duration,
    statement_timeout: Duration,
    ping_after_idle: Duration,
}

impl ConnectOptions {
    /// How long opening the first connection may take by default: a
    /// server on the same network answers in milliseconds, and a person or
    /// an agent waiting on a server that is down should know in seconds.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

    /// How long one statement may run by default: hundreds of times what
    /// the store's batched statements take, so it never stops real work,
    /// and short enough that a statement its caller gave up on stops within
    /// half a minute instead of running on for minutes.
    pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

    /// How long a connection may sit idle in the pool before it is pinged
    /// on its way out, by default. sqlx pings on every checkout (its
    /// `test_before_acquire`): a round trip before every lone query, which
    /// doubles a lone load's latency over a network. A connection used
    /// within the last second is almost surely alive (HikariCP skips its
    /// check the same way, for 500 ms); one idle longer, which a server or
    /// firewall may have dropped, is still checked and replaced if dead.
    pub const DEFAULT_PING_AFTER_IDLE: Duration = Duration::from_secs(1);

    /// A pool of at most `pool_size` connections, default timeouts.
    pub fn new(pool_size: u32) -> Self {
        Self {
            pool_size,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            statement_timeout: Self::DEFAULT_STATEMENT_TIMEOUT,
            ping_after_idle: Self::DEFAULT_PING_AFTER_IDLE,
        }
    }

    /// How long [`Database::connect_with`] waits for the server to accept
    /// and set up its first connection. A refused connection fails at once
    /// whatever this is.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long the server lets one statement run before cancelling it
    /// with an error: PostgreSQL's `statement_timeout`, MariaDB's
    /// `max_statement_time` (Oracle MySQL's `max_execution_time`, which
    /// covers `SELECT`s only). On SQLite, which runs statements in the
    /// caller's process, it is the busy timeout: how long a statement
    /// waits for another connection's lock. It applies to migrations too,
    /// and to the routed pools of a database opened with replicas. Through
    /// a transaction pooler it is set in each transaction (`SET LOCAL`).
    pub fn with_statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// Ping a connection that has been idle in the pool at least this long
    /// before handing it out, and replace it if the ping fails (default
    /// [`DEFAULT_PING_AFTER_IDLE`](Self::DEFAULT_PING_AFTER_IDLE)).
    /// `Duration::ZERO` pings on every checkout, as sqlx does by default;
    /// `Duration::MAX` never pings, so a dropped connection surfaces as the
    /// next statement's error.
    ///
    /// ```
    /// use coalesce_store::db::ConnectOptions;
    /// use std::time::Duration;
    /// let always = ConnectOptions::new(10).with_ping_after_idle(Duration::ZERO);
    /// assert_eq!(always.ping_after_idle(), Duration::ZERO);
    /// assert_eq!(ConnectOptions::new(10).ping_after_idle(), Duration::from_secs(1));
    /// ```
    pub fn with_ping_after_idle(mut self, idle: Duration) -> Self {
        self.ping_after_idle = idle;
        self
    }

    /// See [`with_ping_after_idle`](Self::with_ping_after_idle).
    pub fn ping_after_idle(&self) -> Duration {
        self.ping_after_idle
    }

    /// The most connections the pool opens.
    pub fn pool_size(&self) -> u32 {
        self.pool_size
    }

    /// See [`with_connect_timeout`](Self::with_connect_timeout).
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// See [`with_statement_timeout`](Self::with_statement_timeout).
    pub fn statement_timeout(&self) -> Duration {
        self.statement_timeout
    }

    fn check(&self) -> Result<(), ConnectError> {
        if self.pool_size == 0 {
            return Err(ConnectError::ZeroPoolSize);
        }
        for (setting, timeout) in [
            ("connect_timeout", self.connect_timeout),
            ("statement_timeout", self.statement_timeout),
        ] {
            if timeout.is_zero() {
                return Err(ConnectError::ZeroTimeout { setting });
            }
        }
        Ok(())
    }
}

impl Database {
    /// Open a pool of `pool_size` connections to the database `url` names,
    /// with the default [`ConnectOptions`]. A SQLite file is created if
    /// missing (WAL journal); note that each connection to
    /// `sqlite::memory:` is its own database.
    ///
    /// ```no_run
    /// use coalesce_store::db::Database;
    ///
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = Database::connect("mariadb://root@localhost/app", 8).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str, pool_size: u32) -> Result<Self, ConnectError> {
        Self::connect_with(url, &ConnectOptions::new(pool_size)).await
    }

    /// Open a pool to the database `url` names, as `options` say. The
    /// first connection is opened before this returns, so an unreachable
    /// server, a refused login or an unopenable file is reported here. A
    /// PostgreSQL URL ending in `?pooler=transaction` names a transaction
    /// pooler (PgBouncer's `pool_mode = transaction`) in front of the
    /// server: no statement is then a named prepared statement, each runs
    /// in a transaction that sets the statement timeout, and no startup
    /// parameter a pooler refuses is sent (docs/scale-out.md, "Poolers").
    ///
    /// ```no_run
    /// use coalesce_store::db::{ConnectOptions, Database};
    /// use std::time::Duration;
    ///
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let options = ConnectOptions::new(8).with_statement_timeout(Duration::from_secs(5));
    /// let db = Database::connect_with("postgres://localhost/app", &options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_with(url: &str, options: &ConnectOptions) -> Result<Self, ConnectError> {
        options.check()?;
        let backend = Backend::from_url(url)?;
        let failed = |source| ConnectError::Connect { backend, source };
        let (pooler, url) = Pooler::from_url(url)?;
        if pooler != Pooler::None && backend != Backend::Postgres {
            return Err(ConnectError::PoolerUnsupported { backend });
        }
        let session = SessionSettings {
            pooler,
            statement_timeout: Some(options.statement_timeout),
        };
        let pool = match backend {
            Backend::Postgres => {
                let connect = session.connect_options::<Postgres>(&url).map_err(failed)?;
                let server = server(connect.get_socket(), connect.get_host(), connect.get_port());
                Pool::Postgres(open(backend, &server, connect, session, options).await?)
            }
            Backend::MySql => {
                let connect = session.connect_options::<MySql>(&mysql_url(&url));
                let connect = connect.map_err(failed)?;
                let server = server(connect.get_socket(), connect.get_host(), connect.get_port());
                Pool::MySql(open(backend, &server, connect, session, options).await?)
            }
            Backend::Sqlite => {
                let connect = session.connect_options::<Sqlite>(&url).map_err(failed)?;
                let connect = connect
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal);
                let path = connect.get_filename().to_owned();
                if path.as_os_str().is_empty() {
                    return Err(ConnectError::EmptySqlitePath);
                }
                let file = path.display().to_string();
                let opened = open(backend, &file, connect, session, options).await;
                Pool::Sqlite(opened.map_err(|error| sqlite_file_error(&path, error))?)
            }
        };
        Ok(Self::new(pool).with_session_settings(session))
    }
}

impl Database {
    /// Open the store on a primary and its read replicas (PostgreSQL
    /// streaming or MariaDB GTID replicas): batched reads and the queries
    /// of a user's memories go to the replicas, unless they read a key (or,
    /// for a query, a user's memories) written through this database, or
    /// covered by its [token](Database::with_token), that no replica has
    /// replayed in time; everything else goes to the primary. See
    /// [`server_stats`](Database::server_stats) for where statements went.
    ///
    /// The primary is reached through two pools: the store's own, as
    /// [`connect_with`](Self::connect_with) opens it with `options` (an
    /// unreachable primary is reported here), and the routed one, opened
    /// with the replicas' as `replicas` says (pool size, how long a read
    /// waits for replay, when a lagging or failed replica is skipped). The
    /// replicas are connected to lazily: one that is down is skipped until
    /// it is up.
    ///
    /// ```no_run
    /// use coalesce_store::db::{ConnectOptions, Database, ReplicaSettings};
    ///
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = Database::connect_replicated(
    ///     "postgres://postgres@127.0.0.1:55432/test",
    ///     &["postgres://postgres@127.0.0.1:55433/test"],
    ///     &ConnectOptions::new(8),
    ///     ReplicaSettings::default(),
    /// )
    /// .await?;
    /// let stats = db.server_stats().unwrap_or_default();
    /// assert_eq!(stats.len(), 2); // the primary, then the replica
    /// # Ok(()) }
    /// ```
    pub async fn connect_replicated(
        primary_url: &str,
        replica_urls: &[&str],
        options: &ConnectOptions,
        replicas: ReplicaSettings,
    ) -> Result<Self, ConnectError> {
        let backend = Backend::from_url(primary_url)?;
        if backend == Backend::Sqlite {
            return Err(ConnectError::NoReplicas { backend });
        }
        for url in replica_urls {
            let replica = Backend::from_url(url)?;
            if replica != backend {
                return Err(ConnectError::MixedReplicaBackend {
                    primary: backend,
                    replica,
                });
            }
        }
        let db = Self::connect_with(primary_url, options).await?;
        let failed = |source| ConnectError::Replicas {
            source: Box::new(source),
        };
        let attempts = db.write_attempts;
        // The routed pools are opened with the same timeouts as the store's.
        let replicas = ReplicaSettings {
            connect_timeout: options.connect_timeout,
            statement_timeout: Some(options.statement_timeout),
            ..replicas
        };
        let batches = if backend == Backend::Postgres {
            let servers = Replicated::connect(primary_url, replica_urls, replicas).await;
            Batches::ReplicatedPostgres(Routed::new(servers.map_err(failed)?, attempts))
        } else {
            let replica_urls: Vec<String> = replica_urls.iter().map(|url| mysql_url(url)).collect();
            let replica_urls: Vec<&str> = replica_urls.iter().map(String::as_str).collect();
            let primary_url = mysql_url(primary_url);
            let servers = Replicated::connect(&primary_url, &replica_urls, replicas).await;
            Batches::ReplicatedMySql(Routed::new(servers.map_err(failed)?, attempts))
        };
        Ok(Database { batches, ..db })
    }
}

/// A pool whose first connection is open, each connection set up as
/// `session` says. One connection is opened on its own first: the pool
/// retries a refused connection, or a failing set-up, until its acquire
/// timeout (30 s) and then reports only that it timed out, where opening
/// one ourselves gives the real error at once.
async fn open<DB: coalesce_sql::Dialect>(
    backend: Backend,
    server: &str,
    connect: <DB::Connection as Connection>::Options,
    session: SessionSettings,
    options: &ConnectOptions,
) -> Result<sqlx::Pool<DB>, ConnectError> {
    let pool = coalesce_sql::ping_after_idle(
        PoolOptions::<DB>::new().max_connections(options.pool_size),
        options.ping_after_idle,
    )
    .after_connect(move |conn, _| session.set_up::<DB>(conn));
    let opening = async {
        let mut first = connect.connect().await?;
        session.set_up::<DB>(&mut first).await?;
        first.close().await?;
        pool.connect_with(connect).await
    };
    match tokio::time::timeout(options.connect_timeout, opening).await {
        Ok(Ok(pool)) => Ok(pool),
        Ok(Err(sqlx::Error::Io(source))) => Err(ConnectError::Unreachable {
            backend,
            server: server.to_owned(),
            source,
        }),
        Ok(Err(source)) => Err(ConnectError::Connect { backend, source }),
        Err(_) => Err(ConnectError::TimedOut {
            backend,
            server: server.to_owned(),
            after: options.connect_timeout,
        }),
    }
}

/// Where a server is: its Unix socket, or `host:port`.
fn server(socket: Option<&PathBuf>, host: &str, port: u16) -> String {
    match socket {
        Some(path) => path.display().to_string(),
        None if host.contains(':') => format!("[{host}]:{port}"),
        None => format!("{host}:{port}"),
    }
}

/// The URL with `mariadb://` spelled `mysql://`, which the driver reads.
fn mysql_url(url: &str) -> String {
    match url.split_once("://") {
        Some((_, rest)) => format!("mysql://{rest}"),
        None => url.to_owned(),
    }
}

/// SQLite's "unable to open database file" (code 14) names neither the
/// file nor the cause: ask the operating system why the path does not open
/// for reading and writing (a directory, a missing directory, no
/// permission), or keep SQLite's message when it does.
fn sqlite_file_error(path: &Path, error: ConnectError) -> ConnectError {
    let source = match error {
        ConnectError::Connect { source, .. } => source,
        ConnectError::Unreachable { source, .. } => {
            return ConnectError::SqliteFile {
                path: path.to_owned(),
                source,
            };
        }
        other => return other,
    };
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path);
    let source = match opened {
        Err(cause) => cause,
        Ok(_) => io::Error::other(ServerMessage(&source).to_string()),
    };
    ConnectError::SqliteFile {
        path: path.to_owned(),
        source,
    }
}
