//! Read-your-writes across every store and repository over one
//! [`Database`](super::Database): the loaders reading each kind of row, and
//! the keys each write touched.
//!
//! By key, not by table: the store's key columns compare as bytes on every
//! backend (`utf8mb4_nopad_bin` on MySQL/MariaDB, the default elsewhere),
//! so Rust's equality is the database's, and a write detaches only the
//! reads of its own keys (the other reads keep sharing batches in flight).

use crate::model::{Category, MemoryKey};
use coalesce::{BatchSource, Loader, WeakLoader};
use parking_lot::Mutex;

/// A loader of keys `K`, held without keeping it alive.
trait Reader<K>: Send + Sync {
    /// Whether the loader still exists.
    fn alive(&self) -> bool;
    /// Detach `keys` from the loader's reads in flight (and its cache);
    /// `false` once the loader is gone.
    fn written(&self, keys: &[K]) -> bool;
}

impl<S: BatchSource> Reader<S::Key> for WeakLoader<S> {
    fn alive(&self) -> bool {
        self.upgrade().is_some()
    }

    fn written(&self, keys: &[S::Key]) -> bool {
        let Some(loader) = self.upgrade() else {
            return false;
        };
        for key in keys {
            loader.clear(key);
        }
        true
    }
}

/// The loaders of one kind of key.
pub(crate) struct Readers<K>(Mutex<Vec<Box<dyn Reader<K>>>>);

impl<K> Default for Readers<K> {
    fn default() -> Self {
        Self(Mutex::default())
    }
}

impl<K: 'static> Readers<K> {
    /// Count `loader` among the readers while it lives (forgetting those
    /// gone, so stores made per request do not pile up).
    pub(crate) fn register<S: BatchSource<Key = K>>(&self, loader: &Loader<S>) {
        let mut readers = self.0.lock();
        readers.retain(|reader| reader.alive());
        readers.push(Box::new(loader.downgrade()));
    }

    /// `keys` were written: no read of them already sent answers a load
    /// that starts from now on.
    pub(crate) fn written(&self, keys: &[K]) {
        if !keys.is_empty() {
            self.0.lock().retain(|reader| reader.written(keys));
        }
    }
}

/// Every reader over one database, by what it reads.
#[derive(Default)]
pub(crate) struct StoreReaders {
    pub(crate) profiles: Readers<String>,
    pub(crate) onboardings: Readers<String>,
    pub(crate) memories: Readers<MemoryKey>,
    /// Every category's memory of a (user, key) pair.
    pub(crate) memory_groups: Readers<(String, String)>,
}

impl std::fmt::Debug for StoreReaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreReaders").finish_non_exhaustive()
    }
}

impl StoreReaders {
    /// Memories of `keys` were written (saved).
    pub(crate) fn memories_written<'k>(&self, keys: impl Iterator<Item = &'k MemoryKey>) {
        let keys: Vec<MemoryKey> = keys.cloned().collect();
        let pairs: Vec<(String, String)> = keys
            .iter()
            .map(|key| (key.user_id.clone(), key.key.clone()))
            .collect();
        self.memories.written(&keys);
        self.memory_groups.written(&pairs);
    }

    /// Memories of (user, key) `pairs` were deleted, in every category.
    pub(crate) fn pairs_deleted(&self, pairs: &[(String, String)]) {
        let keys: Vec<MemoryKey> = pairs
            .iter()
            .flat_map(|(user_id, key)| {
                Category::ALL
                    .map(|category| MemoryKey::new(user_id.as_str(), category, key.as_str()))
            })
            .collect();
        self.memories.written(&keys);
        self.memory_groups.written(pairs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coalesce::from_fn;
    use std::{collections::HashMap, convert::Infallible};

    fn loader() -> Loader<impl BatchSource<Key = String, Value = u8>> {
        Loader::new(from_fn(|_: Vec<String>| async {
            Ok::<_, Infallible>(HashMap::<String, u8>::new())
        }))
    }

    #[test]
    fn readers_gone_are_forgotten() {
        let readers = Readers::default();
        let kept = loader();
        readers.register(&kept);
        for _ in 0..3 {
            readers.register(&loader());
        }
        assert_eq!(readers.0.lock().len(), 2, "the kept one and the last");
        readers.written(&["k".to_owned()]);
        assert_eq!(readers.0.lock().len(), 1);
    }
}
