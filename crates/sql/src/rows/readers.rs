//! Read-your-writes across every reader of one [`Db`](crate::Db): which
//! loaders read which table, so that a write can detach their reads in
//! flight.

use crate::Table;
use coalesce::{BatchSource, Loader, WeakLoader};
use parking_lot::Mutex;
use std::{any::Any, collections::HashMap};

/// A loader reading a table, held without keeping it alive.
trait Reader: Send + Sync {
    /// Whether the loader still exists.
    fn alive(&self) -> bool;
    /// Detach the loader's reads in flight; `false` once it is gone.
    fn detach(&self) -> bool;
    /// Detach the loader's reads in flight of the rows of `keys` (all of
    /// them, unless it reads by these keys and they compare exactly);
    /// `false` once it is gone.
    fn detach_keys(&self, keys: &[&dyn Any]) -> bool {
        let _ = keys;
        self.detach()
    }
}

impl<S: BatchSource> Reader for WeakLoader<S> {
    fn alive(&self) -> bool {
        self.upgrade().is_some()
    }

    fn detach(&self) -> bool {
        self.upgrade().map(|loader| loader.clear_all()).is_some()
    }
}

/// The keys of a loader that a written key of another type covers, if
/// they can be listed (see `TableRow::keys_written_by`).
pub(crate) type Covered<K> = fn(&dyn Any) -> Option<Vec<K>>;

/// A loader whose keys compare in the database exactly as in Rust: a
/// write of some keys detaches only their reads.
struct ExactKeys<S: BatchSource> {
    loader: WeakLoader<S>,
    covered: Covered<S::Key>,
}

impl<S: BatchSource> Reader for ExactKeys<S> {
    fn alive(&self) -> bool {
        self.loader.alive()
    }

    fn detach(&self) -> bool {
        self.loader.detach()
    }

    fn detach_keys(&self, keys: &[&dyn Any]) -> bool {
        let Some(loader) = self.loader.upgrade() else {
            return false;
        };
        for key in keys {
            if let Some(own) = key.downcast_ref::<S::Key>() {
                loader.clear(own);
            } else if let Some(covered) = (self.covered)(*key) {
                covered.iter().for_each(|own| loader.clear(own));
            } else {
                // A key of another shape whose rows cannot be listed:
                // which of this loader's keys it covers, only the database
                // knows.
                loader.clear_all();
                break;
            }
        }
        true
    }
}

/// The readers of each table, shared by a `Db` and its clones.
#[derive(Default)]
pub(crate) struct Readers {
    /// By the table's quoted, schema-qualified name.
    tables: Mutex<HashMap<String, Vec<Box<dyn Reader>>>>,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers").finish_non_exhaustive()
    }
}

/// A table's identity among readers.
fn table_id(table: &Table) -> String {
    table.quoted_name('"')
}

impl Readers {
    /// Count `loader` among `table`'s readers for as long as it lives
    /// (readers gone are forgotten here and on each write, so handles made
    /// and dropped per request do not pile up).
    /// With `exact_keys`, a write of known keys detaches only their reads
    /// (see [`written_keys`](Self::written_keys)), and a write by keys of
    /// another type those it covers.
    pub(crate) fn register<S: BatchSource>(
        &self,
        table: &Table,
        loader: &Loader<S>,
        exact_keys: Option<Covered<S::Key>>,
    ) {
        let reader: Box<dyn Reader> = match exact_keys {
            Some(covered) => Box::new(ExactKeys {
                loader: loader.downgrade(),
                covered,
            }),
            None => Box::new(loader.downgrade()),
        };
        let mut tables = self.tables.lock();
        let readers = tables.entry(table_id(table)).or_default();
        readers.retain(|reader| reader.alive());
        readers.push(reader);
    }

    /// `table` was written: keep its readers' reads already sent (and
    /// their caches) from callers that start from now on; forget readers
    /// that are gone.
    pub(crate) fn written(&self, table: &Table) {
        if let Some(readers) = self.tables.lock().get_mut(&table_id(table)) {
            readers.retain(|reader| reader.detach());
        }
    }

    /// The rows of `keys` in `table` were written: as
    /// [`written`](Self::written), but readers registered with exact keys
    /// of this type detach only these keys' reads.
    pub(crate) fn written_keys<'k, K: Send + Sync + 'static>(
        &self,
        table: &Table,
        keys: impl Iterator<Item = &'k K>,
    ) {
        if let Some(readers) = self.tables.lock().get_mut(&table_id(table)) {
            let keys: Vec<&dyn Any> = keys.map(|key| key as &dyn Any).collect();
            readers.retain(|reader| reader.detach_keys(&keys));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coalesce::from_fn;
    use std::convert::Infallible;

    fn loader() -> Loader<impl BatchSource<Key = u8, Value = u8>> {
        Loader::new(from_fn(|_: Vec<u8>| async {
            Ok::<_, Infallible>(HashMap::<u8, u8>::new())
        }))
    }

    fn count(readers: &Readers, table: &Table) -> usize {
        readers
            .tables
            .lock()
            .get(&table_id(table))
            .map_or(0, Vec::len)
    }

    #[test]
    fn readers_gone_are_forgotten_on_registration_and_on_writes() {
        let readers = Readers::default();
        let table = Table::new("t");
        let kept = loader();
        readers.register(&table, &kept, None);
        for _ in 0..3 {
            readers.register(&table, &loader(), Some(|_| None));
        }
        assert_eq!(count(&readers, &table), 2, "the kept one and the last");
        readers.written(&table);
        assert_eq!(count(&readers, &table), 1);
        readers.written(&Table::new("other"));
        assert_eq!(count(&readers, &table), 1);
    }
}
