//! Position tokens at the store level: what a [`Database`](super::Database)
//! on a primary and replicas hands out after its writes, and what another
//! handle (in this process or another) presents so its reads see them.
//!
//! A token is the toolkit's [`Position`] (a PostgreSQL WAL location or a
//! MariaDB GTID list) under the store's own name and error type, so the
//! two kinds of token are interchangeable: `wal:16/B374D848`,
//! `gtid:0-1-42`.

use super::Backend;
use coalesce_sql::replicas::{Position, PositionError};
use std::{fmt, str::FromStr};

/// A point in the primary's history: reads presenting it (see
/// [`Database::with_token`](super::Database::with_token)) see every write
/// committed before it, wherever they were made.
///
/// It prints as a short string to carry between processes (in a web
/// session or a header, say) and parses back with [`str::parse`]:
///
/// ```
/// use coalesce_store::db::Token;
///
/// let token: Token = "wal:16/B374D848".parse()?;
/// assert_eq!(token.to_string(), "wal:16/B374D848");
/// assert!("16/B374D848".parse::<Token>().is_err());
/// # Ok::<(), coalesce_store::db::TokenError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token(Position);

/// A token that cannot be used.
///
/// ```
/// use coalesce_store::db::{Token, TokenError};
///
/// let error = "lsn:0/1".parse::<Token>().unwrap_err();
/// assert!(matches!(error, TokenError::Malformed { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The text is not a token (`wal:…` or `gtid:…`).
    #[error("not a position token: {token:?}: {source}")]
    Malformed {
        /// The text given.
        token: String,
        /// What is wrong with it.
        #[source]
        source: PositionError,
    },
    /// The token names a position of another kind of database (a
    /// PostgreSQL WAL location given to MariaDB, say, or any token given to
    /// SQLite, which has none): it came from another database.
    #[error("position token {token} is not of a {backend} database")]
    OtherBackend {
        /// The token.
        token: String,
        /// The backend of the database it was given to.
        backend: Backend,
    },
}

impl Token {
    /// The toolkit's position underneath, for a
    /// [`Replicated`](coalesce_sql::replicas::Replicated) handle of your own.
    ///
    /// ```
    /// use coalesce_sql::replicas::{Lsn, Position};
    /// use coalesce_store::db::Token;
    ///
    /// let token: Token = "wal:0/10".parse()?;
    /// assert_eq!(token.position(), &Position::Wal(Lsn(0x10)));
    /// # Ok::<(), coalesce_store::db::TokenError>(())
    /// ```
    pub fn position(&self) -> &Position {
        &self.0
    }

    /// Whether a server that has replayed `self` has replayed `other` too
    /// (tokens of different backends never cover each other).
    ///
    /// ```
    /// use coalesce_store::db::Token;
    ///
    /// let (early, late): (Token, Token) = ("gtid:0-1-5".parse()?, "gtid:0-1-9".parse()?);
    /// assert!(late.covers(&early));
    /// assert!(!early.covers(&late));
    /// # Ok::<(), coalesce_store::db::TokenError>(())
    /// ```
    pub fn covers(&self, other: &Token) -> bool {
        self.0.covers(&other.0)
    }

    /// The token, if it is of `backend`'s kind.
    pub(super) fn of(&self, backend: Backend) -> Result<&Position, TokenError> {
        let own = matches!(
            (&self.0, backend),
            (Position::Wal(_), Backend::Postgres) | (Position::Gtid(_), Backend::MySql)
        );
        if own {
            Ok(&self.0)
        } else {
            Err(TokenError::OtherBackend {
                token: self.to_string(),
                backend,
            })
        }
    }
}

/// A toolkit write's position as a store token.
///
/// ```
/// use coalesce_sql::replicas::{Lsn, Position};
/// use coalesce_store::db::Token;
///
/// let token = Token::from(Position::Wal(Lsn(0x10)));
/// assert_eq!(token.to_string(), "wal:0/10");
/// ```
impl From<Position> for Token {
    fn from(position: Position) -> Self {
        Token(position)
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Token {
    type Err = TokenError;

    fn from_str(token: &str) -> Result<Self, Self::Err> {
        token
            .parse()
            .map(Token)
            .map_err(|source| TokenError::Malformed {
                token: token.to_owned(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_through_strings() {
        for text in ["wal:0/0", "wal:16/B374D848", "gtid:0-1-42,1-2-7"] {
            let token: Token = text.parse().unwrap();
            assert_eq!(token.to_string(), text);
        }
    }

    #[test]
    fn a_token_is_checked_against_the_backend() {
        let wal: Token = "wal:0/10".parse().unwrap();
        let gtid: Token = "gtid:0-1-1".parse().unwrap();
        assert!(wal.of(Backend::Postgres).is_ok());
        assert!(gtid.of(Backend::MySql).is_ok());
        for (token, backend) in [
            (&wal, Backend::MySql),
            (&gtid, Backend::Postgres),
            (&wal, Backend::Sqlite),
        ] {
            let error = token.of(backend).unwrap_err();
            assert!(
                matches!(error, TokenError::OtherBackend { backend: b, .. } if b == backend),
                "{error:?}"
            );
        }
    }
}
