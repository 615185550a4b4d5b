//! Which connection pooler sits between the toolkit and PostgreSQL, as a
//! database URL says it (`?pooler=transaction`).

use std::fmt;

/// The URL query parameter naming the pooler.
const PARAMETER: &str = "pooler";

/// The connection pooler between the client and the server.
///
/// A **transaction pooler** (PgBouncer's `pool_mode = transaction`, and
/// the poolers that copy it) hands a server connection to a client for
/// one transaction, or for one statement outside a transaction, and then
/// to another client. What a server session keeps from one statement to
/// the next does not follow the client there: named prepared statements
/// (sqlx names and caches every statement by default: `sqlx_s_1`, ...) are
/// missing, or already taken by another client, and session settings land
/// on someone else's session. Through one, the toolkit prepares every
/// statement unnamed (sqlx's `persistent(false)`) and runs it inside a
/// transaction, since sqlx parses an unnamed statement and binds it in two
/// exchanges (`Sync`s), between which a pooler may switch servers outside a
/// transaction; the statement timeout is set per transaction (see
/// [`SessionSettings`](crate::SessionSettings)).
///
/// A direct connection, or one through a session pooler (PgBouncer's
/// `pool_mode = session`), keeps its server session: [`Pooler::None`].
///
/// ```
/// use coalesce_sql::Pooler;
///
/// let (pooler, url) = Pooler::from_url("postgres://app@db:6432/app?pooler=transaction&sslmode=require")?;
/// assert_eq!(pooler, Pooler::Transaction);
/// assert_eq!(url, "postgres://app@db:6432/app?sslmode=require");
/// assert!(!pooler.named_statements());
///
/// let (pooler, url) = Pooler::from_url("postgres://app@db/app")?;
/// assert_eq!((pooler, url.as_str()), (Pooler::None, "postgres://app@db/app"));
/// # Ok::<(), coalesce_sql::PoolerError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Pooler {
    /// A connection of its own to the server, or through a session pooler
    /// (`pooler=session`, or no `pooler` parameter).
    #[default]
    None,
    /// A transaction pooler (`pooler=transaction`).
    Transaction,
}

impl Pooler {
    /// The pooler `url`'s `pooler` query parameter names, and `url`
    /// without that parameter (sqlx does not know it). Without the
    /// parameter: [`Pooler::None`] and `url` as it is.
    pub fn from_url(url: &str) -> Result<(Pooler, String), PoolerError> {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((Pooler::None, url.to_owned()));
        };
        let mut pooler = Pooler::None;
        let mut kept = Vec::new();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some((PARAMETER, "transaction")) => pooler = Pooler::Transaction,
                Some((PARAMETER, "session")) => pooler = Pooler::None,
                Some((PARAMETER, other)) => {
                    return Err(PoolerError {
                        value: other.to_owned(),
                    });
                }
                _ => kept.push(pair),
            }
        }
        let url = match kept.as_slice() {
            [] => base.to_owned(),
            kept => format!("{base}?{}", kept.join("&")),
        };
        Ok((pooler, url))
    }

    /// Whether statements may be prepared as named statements cached per
    /// connection (sqlx's default, `persistent(true)`): not through a
    /// transaction pooler. Pass it to sqlx's `persistent` for statements of
    /// your own.
    ///
    /// ```
    /// use coalesce_sql::Pooler;
    /// assert!(Pooler::None.named_statements());
    /// assert!(!Pooler::Transaction.named_statements());
    /// ```
    pub fn named_statements(self) -> bool {
        self == Pooler::None
    }
}

impl fmt::Display for Pooler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pooler::None => "no pooler",
            Pooler::Transaction => "a transaction pooler",
        })
    }
}

/// A database URL's `pooler` parameter names no known pooler mode.
///
/// ```
/// use coalesce_sql::Pooler;
///
/// let error = Pooler::from_url("postgres://db/app?pooler=statement").unwrap_err();
/// assert_eq!(
///     error.to_string(),
///     r#"unknown pooler "statement" in the database URL: use pooler=transaction or pooler=session"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown pooler {value:?} in the database URL: use pooler=transaction or pooler=session")]
pub struct PoolerError {
    /// The value found.
    pub value: String,
}
