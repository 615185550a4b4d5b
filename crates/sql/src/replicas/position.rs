//! Positions in the primary's history: the point a write committed at, which
//! a replica must have replayed before it may answer a read of that write.

use std::{collections::BTreeMap, fmt, str::FromStr};

/// A point in the primary's replication stream.
///
/// PostgreSQL positions are WAL locations (LSNs); MariaDB positions are GTID
/// lists, one `domain-server-sequence` per replication domain. A position
/// prints as a token a caller can carry to another process (in a web
/// session, say) and parse back there:
///
/// ```
/// use coalesce_sql::replicas::Position;
///
/// let wal: Position = "wal:16/B374D848".parse()?;
/// assert_eq!(wal.to_string(), "wal:16/B374D848");
///
/// let gtid: Position = "gtid:0-1-42,1-2-7".parse()?;
/// assert!(gtid.covers(&"gtid:0-1-40".parse()?));
/// assert!(!gtid.covers(&"gtid:2-1-1".parse()?));
/// # Ok::<(), coalesce_sql::replicas::PositionError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// A PostgreSQL write-ahead-log location.
    Wal(Lsn),
    /// A MariaDB GTID position: the last sequence number per domain.
    Gtid(GtidPosition),
}

/// A PostgreSQL WAL location, as `pg_lsn` prints it (`16/B374D848`).
///
/// ```
/// use coalesce_sql::replicas::Lsn;
///
/// let lsn: Lsn = "16/B374D848".parse()?;
/// assert_eq!(lsn.0, 0x16_B374_D848);
/// # Ok::<(), coalesce_sql::replicas::PositionError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

/// A MariaDB GTID list: for each replication domain, the last transaction
/// (`domain-server-sequence`) it covers.
///
/// ```
/// use coalesce_sql::replicas::GtidPosition;
///
/// let pos: GtidPosition = "0-1-42".parse()?;
/// assert_eq!(pos.to_string(), "0-1-42");
/// assert!(GtidPosition::default().to_string().is_empty());
/// # Ok::<(), coalesce_sql::replicas::PositionError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidPosition {
    /// domain id → (server id, sequence number) of the domain's last GTID.
    domains: BTreeMap<u32, (u32, u64)>,
}

/// A position or token that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    /// The text is not a WAL location like `16/B374D848`.
    #[error("not a WAL location (expected like 16/B374D848): {0:?}")]
    BadLsn(String),
    /// The text is not a GTID list like `0-1-42,1-2-7`.
    #[error("not a GTID list (expected like 0-1-42,1-2-7): {0:?}")]
    BadGtid(String),
    /// The token has neither the `wal:` nor the `gtid:` prefix.
    #[error("not a position token (expected wal:… or gtid:…): {0:?}")]
    BadToken(String),
    /// A WAL location and a GTID list met: a token from the other backend.
    #[error("positions of different backends cannot be combined: {have} and {given}")]
    KindMismatch {
        /// The position already held.
        have: String,
        /// The position of the other kind.
        given: String,
    },
}

impl Position {
    /// Whether a server that has replayed `self` has also replayed `other`.
    ///
    /// Positions of different kinds (a WAL location and a GTID list) never
    /// cover each other: a token from another backend is never taken as
    /// satisfied.
    ///
    /// ```
    /// use coalesce_sql::replicas::{Lsn, Position};
    ///
    /// assert!(Position::Wal(Lsn(20)).covers(&Position::Wal(Lsn(10))));
    /// assert!(!Position::Wal(Lsn(10)).covers(&Position::Wal(Lsn(20))));
    /// ```
    pub fn covers(&self, other: &Position) -> bool {
        match (self, other) {
            (Position::Wal(mine), Position::Wal(theirs)) => mine >= theirs,
            (Position::Gtid(mine), Position::Gtid(theirs)) => mine.covers(theirs),
            _ => false,
        }
    }

    /// Raise `self` to the least position that covers both: what a read of
    /// data written at either must wait for.
    ///
    /// ```
    /// use coalesce_sql::replicas::{Position, PositionError};
    ///
    /// let mut pos: Position = "gtid:0-1-5".parse()?;
    /// pos.join(&"gtid:0-1-9,1-2-3".parse()?)?;
    /// assert_eq!(pos.to_string(), "gtid:0-1-9,1-2-3");
    ///
    /// // A PostgreSQL token shown to a MariaDB handle, say.
    /// let err = pos.join(&"wal:0/10".parse()?).unwrap_err();
    /// assert!(matches!(err, PositionError::KindMismatch { .. }));
    /// # Ok::<(), PositionError>(())
    /// ```
    pub fn join(&mut self, other: &Position) -> Result<(), PositionError> {
        match (self, other) {
            (Position::Wal(mine), Position::Wal(theirs)) => *mine = (*mine).max(*theirs),
            (Position::Gtid(mine), Position::Gtid(theirs)) => mine.join(theirs),
            (mine, theirs) => {
                return Err(PositionError::KindMismatch {
                    have: mine.to_string(),
                    given: theirs.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// Join an optional position with another (the first one seen is taken).
pub(crate) fn join_into(
    target: &mut Option<Position>,
    other: &Position,
) -> Result<(), PositionError> {
    match target {
        Some(position) => position.join(other),
        None => {
            *target = Some(other.clone());
            Ok(())
        }
    }
}

impl GtidPosition {
    /// Whether every domain of `other` is at or before this position.
    pub fn covers(&self, other: &GtidPosition) -> bool {
        other.domains.iter().all(|(domain, &(_, theirs))| {
            self.domains
                .get(domain)
                .is_some_and(|&(_, mine)| mine >= theirs)
        })
    }

    /// Take, per domain, the later of the two GTIDs.
    pub fn join(&mut self, other: &GtidPosition) {
        for (&domain, &(server, seq)) in &other.domains {
            let entry = self.domains.entry(domain).or_insert((server, seq));
            if seq > entry.1 {
                *entry = (server, seq);
            }
        }
    }

    /// Whether the position names no transaction (MariaDB's empty string).
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl FromStr for Lsn {
    type Err = PositionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || PositionError::BadLsn(text.to_owned());
        let (high, low) = text.split_once('/').ok_or_else(bad)?;
        let high = u32::from_str_radix(high, 16).map_err(|_| bad())?;
        let low = u32::from_str_radix(low, 16).map_err(|_| bad())?;
        Ok(Lsn((u64::from(high) << 32) | u64::from(low)))
    }
}

impl fmt::Display for GtidPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (domain, (server, seq))) in self.domains.iter().enumerate() {
            let separator = if i == 0 { "" } else { "," };
            write!(f, "{separator}{domain}-{server}-{seq}")?;
        }
        Ok(())
    }
}

impl FromStr for GtidPosition {
    type Err = PositionError;

    /// Parses MariaDB's own form (`@@last_gtid`, `@@gtid_slave_pos`):
    /// comma-separated, possibly with whitespace, empty for "nothing".
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || PositionError::BadGtid(text.to_owned());
        let mut position = GtidPosition::default();
        for gtid in text.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            let mut parts = gtid.split('-');
            let (Some(domain), Some(server), Some(seq), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            let parsed = (domain.parse(), server.parse(), seq.parse());
            let (Ok(domain), Ok(server), Ok(seq)) = parsed else {
                return Err(bad());
            };
            position.join(&GtidPosition {
                domains: BTreeMap::from([(domain, (server, seq))]),
            });
        }
        Ok(position)
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Wal(lsn) => write!(f, "wal:{lsn}"),
            Position::Gtid(gtid) => write!(f, "gtid:{gtid}"),
        }
    }
}

impl FromStr for Position {
    type Err = PositionError;

    fn from_str(token: &str) -> Result<Self, Self::Err> {
        if let Some(lsn) = token.strip_prefix("wal:") {
            Ok(Position::Wal(lsn.parse()?))
        } else if let Some(gtid) = token.strip_prefix("gtid:") {
            Ok(Position::Gtid(gtid.parse()?))
        } else {
            Err(PositionError::BadToken(token.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(token: &str) -> Position {
        token.parse().expect("test token parses")
    }

    #[test]
    fn tokens_round_trip() {
        for token in [
            "wal:0/0",
            "wal:FFFFFFFF/FFFFFFFF",
            "gtid:",
            "gtid:0-1-1,7-3-99",
        ] {
            assert_eq!(pos(token).to_string(), token);
        }
    }

    #[test]
    fn malformed_tokens_are_typed_errors() {
        assert!(matches!(
            "wal:16".parse::<Position>(),
            Err(PositionError::BadLsn(_))
        ));
        assert!(matches!(
            "wal:1/G".parse::<Position>(),
            Err(PositionError::BadLsn(_))
        ));
        assert!(matches!(
            "gtid:0-1".parse::<Position>(),
            Err(PositionError::BadGtid(_))
        ));
        assert!(matches!(
            "gtid:0-1-2-3".parse::<Position>(),
            Err(PositionError::BadGtid(_))
        ));
        assert!(matches!(
            "lsn:0/1".parse::<Position>(),
            Err(PositionError::BadToken(_))
        ));
    }

    #[test]
    fn wal_covers_by_order() {
        assert!(pos("wal:1/0").covers(&pos("wal:0/FFFFFFFF")));
        assert!(pos("wal:1/0").covers(&pos("wal:1/0")));
        assert!(!pos("wal:0/FFFFFFFF").covers(&pos("wal:1/0")));
    }

    #[test]
    fn gtid_covers_each_domain_by_sequence() {
        let replica = pos("gtid:0-1-10,1-2-5");
        assert!(replica.covers(&pos("gtid:0-1-10")));
        assert!(replica.covers(&pos("gtid:0-9-3,1-2-5")));
        assert!(!replica.covers(&pos("gtid:0-1-11")));
        assert!(!replica.covers(&pos("gtid:2-1-1")));
        assert!(replica.covers(&pos("gtid:")));
    }

    #[test]
    fn join_is_the_least_common_cover() {
        let mut joined = pos("gtid:0-1-5,1-2-9");
        joined.join(&pos("gtid:0-3-7,2-1-1")).unwrap();
        assert_eq!(joined, pos("gtid:0-3-7,1-2-9,2-1-1"));
        let mut wal = pos("wal:0/10");
        wal.join(&pos("wal:0/5")).unwrap();
        assert_eq!(wal, pos("wal:0/10"));
    }

    #[test]
    fn kinds_never_cover_each_other() {
        assert!(!pos("wal:FFFFFFFF/FFFFFFFF").covers(&pos("gtid:")));
        assert!(!pos("gtid:0-1-99").covers(&pos("wal:0/0")));
        let mut wal = pos("wal:0/1");
        assert!(wal.join(&pos("gtid:0-1-1")).is_err());
        assert_eq!(wal, pos("wal:0/1"));
    }
}
