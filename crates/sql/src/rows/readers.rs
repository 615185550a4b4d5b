//! Read-your-writes across every reader of one [`Db`](crate::Db): which
//! loaders read which table, so that a write can detach their reads in
//! flight.

use crate::Table;
use coalesce::{BatchSource, Loader, WeakLoader};
use parking_lot::Mutex;
use std::collections::HashMap;

/// Detach a reader's reads in flight; `false` once the reader is gone.
type Detach = Box<dyn Fn() -> bool + Send + Sync>;

/// The readers of each table, shared by a `Db` and its clones.
#[derive(Default)]
pub(crate) struct Readers {
    /// By the table's quoted, schema-qualified name.
    tables: Mutex<HashMap<String, Vec<Detach>>>,
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
    /// Count `loader` among `table`'s readers for as long as it lives.
    pub(crate) fn register<S: BatchSource>(&self, table: &Table, loader: &Loader<S>) {
        let weak: WeakLoader<S> = loader.downgrade();
        let detach: Detach =
            Box::new(move || weak.upgrade().map(|loader| loader.clear_all()).is_some());
        self.tables
            .lock()
            .entry(table_id(table))
            .or_default()
            .push(detach);
    }

    /// `table` was written: keep its readers' reads already sent (and
    /// their caches) from callers that start from now on; forget readers
    /// that are gone.
    pub(crate) fn written(&self, table: &Table) {
        if let Some(readers) = self.tables.lock().get_mut(&table_id(table)) {
            readers.retain(|detach| detach());
        }
    }
}
