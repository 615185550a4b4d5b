//! The loader's registry of keys pending or in flight: where each waits.
//!
//! Each key is stored once, in its batch; the registry keeps only its
//! seat (batch, index) and hash, and compares a looked-up key with the one
//! its batch holds. So registering a key moves it into its batch without a
//! clone, and a finished batch removes its seats by identity without
//! comparing keys.

use crate::{BatchSource, batch::Batch};
use hashbrown::HashTable;
use std::{hash::BuildHasher, sync::Arc};

/// How keys are hashed: foldhash, seeded at random per process, as the
/// cache's `lru` map does. SipHash, the standard map's hasher, cost a third
/// of each load's registration (docs/BENCHMARKS.md, "The key registry, and
/// the fetch's boxed future");
/// its stronger resistance to keys crafted to collide buys little here,
/// where the registry holds only the keys of batches open or in flight.
type KeyHasher = foldhash::fast::RandomState;

/// Where a key waits: its batch, and its index among the batch's keys.
pub(crate) struct Seat<S: BatchSource> {
    pub(crate) batch: Arc<Batch<S>>,
    pub(crate) index: usize,
    hash: u64,
}

impl<S: BatchSource> Clone for Seat<S> {
    fn clone(&self) -> Self {
        Self {
            batch: Arc::clone(&self.batch),
            index: self.index,
            hash: self.hash,
        }
    }
}

/// Seats by key.
pub(crate) struct Registry<S: BatchSource> {
    seats: HashTable<Seat<S>>,
    hasher: KeyHasher,
}

impl<S: BatchSource> Default for Registry<S> {
    fn default() -> Self {
        Self {
            seats: HashTable::new(),
            hasher: KeyHasher::default(),
        }
    }
}

impl<S: BatchSource> Registry<S> {
    /// The hash a key is registered under.
    pub(crate) fn hash(&self, key: &S::Key) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The seat of `key` (hashing to `hash`), if it is registered.
    pub(crate) fn find(&self, hash: u64, key: &S::Key) -> Option<&Seat<S>> {
        self.seats
            .find(hash, |seat| seat.batch.holds(seat.index, key))
    }

    /// Register the key its batch holds at `index`, which hashes to `hash`
    /// and is not registered yet.
    pub(crate) fn insert(&mut self, hash: u64, batch: Arc<Batch<S>>, index: usize) -> Seat<S> {
        let seat = Seat { batch, index, hash };
        self.seats
            .insert_unique(hash, seat.clone(), |seat| seat.hash);
        seat
    }

    /// Remove the seat at `index` of `batch`, if the key there (hashing to
    /// `hash`) is still registered to it.
    pub(crate) fn remove_seat(
        &mut self,
        hash: u64,
        batch: &Arc<Batch<S>>,
        index: usize,
    ) -> Option<Seat<S>> {
        let entry = self.seats.find_entry(hash, |seat| {
            seat.index == index && Arc::ptr_eq(&seat.batch, batch)
        });
        entry.ok().map(|entry| entry.remove().0)
    }

    /// Remove the seat of `key` if `unless` does not hold for it.
    pub(crate) fn remove_unless(
        &mut self,
        hash: u64,
        key: &S::Key,
        unless: impl FnOnce(&Seat<S>) -> bool,
    ) {
        let entry = self
            .seats
            .find_entry(hash, |seat| seat.batch.holds(seat.index, key));
        if let Ok(entry) = entry
            && !unless(entry.get())
        {
            entry.remove();
        }
    }

    /// Keep only the seats for which `keep` holds.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Seat<S>) -> bool) {
        self.seats.retain(|seat| keep(seat));
    }

    /// Keys registered.
    pub(crate) fn len(&self) -> usize {
        self.seats.len()
    }
}
