//! What this process wrote, and at which position: the memory that lets a
//! read of a key written here wait for (or avoid) a replica that has not
//! replayed it yet.

use super::position::{Position, PositionError, join_into};
use std::{
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Mutex, PoisonError},
};

/// A key's identity for read-your-writes: a hash of a scope (the table, say)
/// and the key's value.
///
/// Two keys may share an id (a hash collision); the only effect is that a
/// read of one waits for the other's write as well. A read is never sent to
/// a replica that lacks a write because of it.
///
/// ```
/// use coalesce_sql::replicas::KeyId;
///
/// assert_eq!(KeyId::new("orders", &42), KeyId::new("orders", &42));
/// assert_ne!(KeyId::new("orders", &42), KeyId::new("lines", &42));
/// assert_ne!(KeyId::new("lines", &(42, 1)), KeyId::new("lines", &(42, 2)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(u64);

impl KeyId {
    /// The id of `key` within `scope`.
    pub fn new<K: Hash + ?Sized>(scope: &str, key: &K) -> KeyId {
        // DefaultHasher::new() has fixed keys: ids are stable within a build,
        // which is all they need (they never leave the process).
        let mut hasher = DefaultHasher::new();
        scope.hash(&mut hasher);
        key.hash(&mut hasher);
        KeyId(hasher.finish())
    }
}

/// The positions this process's writes committed at, kept in a fixed number
/// of slots: a key's slot holds the latest position of every write to any key
/// hashed there.
///
/// Memory is bounded (the slots are allocated once) and nothing is ever
/// forgotten: a slot only moves forward, so a key written here keeps
/// requiring its write's position for the life of the handle. That costs a
/// read nothing once its replica is known to be past it (see
/// `Server::known_to_cover`), and a position check until then.
#[derive(Debug)]
pub(crate) struct WrittenPositions {
    slots: Mutex<Vec<Option<Position>>>,
    /// A position covering every write recorded: the token to hand on.
    latest: Mutex<Option<Position>>,
}

impl WrittenPositions {
    /// Memory for `slots` slots (at least one).
    pub(crate) fn new(slots: usize) -> Self {
        WrittenPositions {
            slots: Mutex::new(vec![None; slots.max(1)]),
            latest: Mutex::new(None),
        }
    }

    /// Remember that `keys` were written at `position`.
    pub(crate) fn record(&self, keys: &[KeyId], position: &Position) -> Result<(), PositionError> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let count = slots.len();
        for key in keys {
            join_into(&mut slots[slot_of(*key, count)], position)?;
        }
        drop(slots);
        join_into(
            &mut self.latest.lock().unwrap_or_else(PoisonError::into_inner),
            position,
        )
    }

    /// A position covering every write recorded so far; `None` before the
    /// first.
    pub(crate) fn latest(&self) -> Option<Position> {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The position a read of `keys` must wait for, joined with the caller's
    /// `token`; `None` when none of them was written through this memory and
    /// there is no token.
    pub(crate) fn required(
        &self,
        keys: &[KeyId],
        token: Option<&Position>,
    ) -> Result<Option<Position>, PositionError> {
        let mut required = token.cloned();
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        for key in keys {
            if let Some(position) = &slots[slot_of(*key, slots.len())] {
                join_into(&mut required, position)?;
            }
        }
        Ok(required)
    }
}

fn slot_of(key: KeyId, slots: usize) -> usize {
    // The remainder is below `slots`, a usize, so the cast cannot truncate.
    (key.0 % slots as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(token: &str) -> Position {
        token.parse().expect("test token parses")
    }

    #[test]
    fn unwritten_keys_need_no_position() {
        let memory = WrittenPositions::new(1024);
        memory
            .record(&[KeyId::new("t", "written")], &pos("wal:0/10"))
            .unwrap();
        let required = memory.required(&[KeyId::new("t", "other")], None).unwrap();
        // 1 in 1024 that the two share a slot; the test keys do not.
        assert_eq!(required, None);
    }

    #[test]
    fn a_batch_needs_the_latest_position_of_its_keys_and_token() {
        let memory = WrittenPositions::new(1024);
        let (a, b) = (KeyId::new("t", "a"), KeyId::new("t", "b"));
        memory.record(&[a], &pos("wal:0/10")).unwrap();
        memory.record(&[b], &pos("wal:0/30")).unwrap();
        memory.record(&[a], &pos("wal:0/20")).unwrap();
        assert_eq!(memory.required(&[a], None).unwrap(), Some(pos("wal:0/20")));
        assert_eq!(
            memory.required(&[a, b], None).unwrap(),
            Some(pos("wal:0/30"))
        );
        let token = pos("wal:0/40");
        assert_eq!(memory.required(&[a], Some(&token)).unwrap(), Some(token));
    }

    #[test]
    fn the_latest_position_covers_every_write_recorded() {
        let memory = WrittenPositions::new(1024);
        assert_eq!(memory.latest(), None);
        memory
            .record(&[KeyId::new("t", "a")], &pos("wal:0/30"))
            .unwrap();
        memory
            .record(&[KeyId::new("u", "b")], &pos("wal:0/20"))
            .unwrap();
        assert_eq!(memory.latest(), Some(pos("wal:0/30")));
    }

    #[test]
    fn a_shared_slot_only_makes_reads_more_careful() {
        let memory = WrittenPositions::new(1);
        memory
            .record(&[KeyId::new("t", "written")], &pos("gtid:0-1-5"))
            .unwrap();
        let required = memory.required(&[KeyId::new("t", "other")], None).unwrap();
        assert_eq!(required, Some(pos("gtid:0-1-5")));
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_slot_is_32_bytes_as_documented() {
        assert_eq!(std::mem::size_of::<Option<Position>>(), 32);
    }

    #[test]
    fn a_token_of_the_other_backend_is_an_error() {
        let memory = WrittenPositions::new(4);
        let key = KeyId::new("t", "k");
        memory.record(&[key], &pos("gtid:0-1-5")).unwrap();
        let token = pos("wal:0/1");
        assert!(matches!(
            memory.required(&[key], Some(&token)),
            Err(PositionError::KindMismatch { .. })
        ));
    }
}
