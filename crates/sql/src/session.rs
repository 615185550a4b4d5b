//! How a pool's connections run statements: [`SessionSettings`] (the
//! pooler in between, the statement timeout), and [`Session`], a
//! connection taken from a pool as they say.

use crate::{Dialect, Pooler};
use sqlx::{AssertSqlSafe, Connection, Pool, Transaction, pool::PoolConnection};
use std::{
    future::Future,
    ops::{Deref, DerefMut},
    pin::Pin,
    time::Duration,
};

/// A boxed future borrowing a connection, as sqlx's `after_connect` takes
/// (see [`SessionSettings::set_up`]).
///
/// ```
/// fn nothing(_: &mut sqlx::PgConnection) -> coalesce_sql::SetUpFuture<'_> {
///     Box::pin(async { Ok(()) })
/// }
/// ```
pub type SetUpFuture<'c> = Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + 'c>>;

/// What every connection of a pool is opened and used with: the pooler
/// between client and server (see [`Pooler`]), and how long the server
/// lets one statement run.
///
/// The statement timeout is set where the server keeps it: for the
/// connection's life where a connection is a server session of its own
/// (PostgreSQL's startup `options`; MariaDB's `max_statement_time`, MySQL's
/// `max_execution_time`, set on connecting; SQLite's busy timeout), and for
/// each transaction through a transaction pooler (`SET LOCAL
/// statement_timeout` in the statement that begins it, on PostgreSQL: the
/// only backend a transaction pooler is supported for).
///
/// ```
/// use coalesce_sql::{Pooler, SessionSettings};
/// use std::time::Duration;
///
/// let settings = SessionSettings {
///     pooler: Pooler::Transaction,
///     statement_timeout: Some(Duration::from_secs(30)),
/// };
/// # #[cfg(feature = "postgres")] {
/// let options = settings.connect_options::<sqlx::Postgres>("postgres://app@127.0.0.1:6432/app")?;
/// // No startup parameters a pooler refuses: the timeout goes per transaction.
/// assert_eq!(options.get_options(), None);
/// # }
/// # Ok::<(), sqlx::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionSettings {
    /// The pooler between client and server.
    pub pooler: Pooler,
    /// How long the server lets one statement run; `None`: the server's
    /// own setting.
    pub statement_timeout: Option<Duration>,
}

impl SessionSettings {
    /// sqlx's connect options for `url` (a URL without the `pooler`
    /// parameter: see [`Pooler::from_url`]), with the statement timeout
    /// where it is set on connecting, and through a transaction pooler
    /// without the startup parameters poolers refuse (sqlx's
    /// `extra_float_digits` on PostgreSQL: its value is PostgreSQL's
    /// default since version 12).
    pub fn connect_options<DB: Dialect>(
        &self,
        url: &str,
    ) -> Result<<DB::Connection as Connection>::Options, sqlx::Error> {
        DB::connect_options(url, self)
    }

    /// What a new connection runs before its first statement (a pool's
    /// `after_connect`): the statement timeout where it is a session
    /// setting (MySQL-family), else nothing.
    ///
    /// ```no_run
    /// use coalesce_sql::SessionSettings;
    /// use std::time::Duration;
    ///
    /// # async fn f() -> Result<(), sqlx::Error> {
    /// let settings = SessionSettings { statement_timeout: Some(Duration::from_secs(5)), ..Default::default() };
    /// let pool = sqlx::mysql::MySqlPoolOptions::new()
    ///     .after_connect(move |conn, _| settings.set_up::<sqlx::MySql>(conn))
    ///     .connect_with(settings.connect_options::<sqlx::MySql>("mysql://root@127.0.0.1/app")?)
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn set_up<'c, DB: Dialect>(&self, connection: &'c mut DB::Connection) -> SetUpFuture<'c> {
        DB::set_up(connection, *self)
    }
}

/// A connection taken from a pool for statements, as [`SessionSettings`]
/// say: the pool's connection itself, or through a transaction pooler a
/// transaction on it, begun with the statement timeout. Dereferences to
/// the driver's connection, for sqlx's executors; end it with
/// [`finish`](Self::finish) (dropped, a transaction rolls back).
///
/// Statements of your own on it must be prepared as
/// [`named_statements`](Self::named_statements) says:
///
/// ```no_run
/// use coalesce_sql::{Pooler, Session, SessionSettings};
///
/// # async fn f(pool: sqlx::PgPool) -> Result<(), sqlx::Error> {
/// let settings = SessionSettings { pooler: Pooler::Transaction, ..Default::default() };
/// let mut session = Session::begin(&pool, &settings).await?;
/// let name: String = sqlx::query_scalar("SELECT name FROM users WHERE id = $1")
///     .bind(7_i64)
///     .persistent(session.named_statements())
///     .fetch_one(&mut *session)
///     .await?;
/// session.finish().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Session<DB: Dialect> {
    held: Held<DB>,
    named_statements: bool,
}

#[derive(Debug)]
enum Held<DB: Dialect> {
    Connection(PoolConnection<DB>),
    Transaction(Transaction<'static, DB>),
}

impl<DB: Dialect> Session<DB> {
    /// A connection from `pool`; through a transaction pooler, a
    /// transaction on it.
    pub async fn begin(pool: &Pool<DB>, settings: &SessionSettings) -> Result<Self, sqlx::Error> {
        match settings.pooler {
            Pooler::None => Ok(Session {
                held: Held::Connection(pool.acquire().await?),
                named_statements: true,
            }),
            Pooler::Transaction => Self::transaction(pool, settings).await,
        }
    }

    /// A transaction on a connection from `pool`, whatever the pooler
    /// (as [`begin`](Self::begin) opens through a transaction pooler):
    /// statements that must commit together.
    ///
    /// ```no_run
    /// use coalesce_sql::{Session, SessionSettings};
    ///
    /// # async fn f(pool: sqlx::PgPool) -> Result<(), sqlx::Error> {
    /// let mut tx = Session::transaction(&pool, &SessionSettings::default()).await?;
    /// for sql in ["UPDATE a SET n = n - 1", "UPDATE b SET n = n + 1"] {
    ///     sqlx::query(sql).persistent(tx.named_statements()).execute(&mut *tx).await?;
    /// }
    /// tx.finish().await?; // COMMIT
    /// # Ok(()) }
    /// ```
    pub async fn transaction(
        pool: &Pool<DB>,
        settings: &SessionSettings,
    ) -> Result<Self, sqlx::Error> {
        let begin = AssertSqlSafe(DB::begin_statement(settings));
        Ok(Session {
            held: Held::Transaction(pool.begin_with(begin).await?),
            named_statements: settings.pooler.named_statements(),
        })
    }

    /// Whether statements on it may be named prepared statements (pass it
    /// to sqlx's `persistent`): not through a transaction pooler.
    pub fn named_statements(&self) -> bool {
        self.named_statements
    }

    /// Whether it is a transaction (statements commit together, at
    /// [`finish`](Self::finish)).
    pub fn in_transaction(&self) -> bool {
        matches!(self.held, Held::Transaction(_))
    }

    /// Commit the transaction, if it is one; return the connection to the
    /// pool.
    pub async fn finish(self) -> Result<(), sqlx::Error> {
        match self.held {
            Held::Connection(_) => Ok(()),
            Held::Transaction(transaction) => transaction.commit().await,
        }
    }

    /// As [`finish`](Self::finish), for a batch's statements: a plain
    /// connection of `pool` goes back once the worker's ready tasks have
    /// run, if the pool has idle connections (so no caller waits for it).
    ///
    /// Why: sqlx pings every connection it takes back, in a task spawned
    /// when the connection is dropped (a `Sync` and its answer). Dropped
    /// at the end of a batch, that task is queued ahead of the next
    /// batch's leader, which yields for its window: the ping went out
    /// before the next batch's statement, and a lone call in a loop paid
    /// for it (docs/BENCHMARKS.md, "The connection's return, after the
    /// next statement"). Deferred, it goes out after it.
    pub(crate) async fn finish_batch(self, pool: &Pool<DB>) -> Result<(), sqlx::Error> {
        match self.held {
            Held::Connection(connection) => {
                if pool.num_idle() > 0 {
                    return_later(connection);
                }
                Ok(())
            }
            Held::Transaction(transaction) => transaction.commit().await,
        }
    }
}

/// Drop `connection` (sqlx then returns it to its pool) once the worker
/// has run its ready tasks; at once outside a Tokio runtime.
fn return_later<DB: Dialect>(connection: PoolConnection<DB>) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            tokio::task::yield_now().await;
            drop(connection);
        });
    }
}

impl<DB: Dialect> Deref for Session<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        match &self.held {
            Held::Connection(connection) => connection,
            Held::Transaction(transaction) => transaction,
        }
    }
}

impl<DB: Dialect> DerefMut for Session<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        match &mut self.held {
            Held::Connection(connection) => connection,
            Held::Transaction(transaction) => transaction,
        }
    }
}
