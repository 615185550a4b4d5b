//! Read-your-writes across every [`Rows`](super::Rows) of one
//! [`Db`](crate::Db): which handles read which table, so that a write can
//! detach their reads in flight.

use crate::Table;
use parking_lot::Mutex;
use std::{
    collections::HashMap,
    sync::{Arc, Weak},
};

/// Something holding reads of a table in flight.
pub(crate) trait Detach: Send + Sync {
    /// Keep reads already sent (and any cached value) from callers that
    /// start from now on.
    fn detach_reads(&self);
}

/// The readers of each table, shared by a `Db` and its clones.
#[derive(Default)]
pub(crate) struct Readers {
    /// By the table's quoted, schema-qualified name; dropped handles are
    /// pruned on the next registration.
    tables: Mutex<HashMap<String, Vec<Weak<dyn Detach>>>>,
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
    /// Count `reader` among `table`'s readers for as long as it lives.
    pub(crate) fn register(&self, table: &Table, reader: Weak<dyn Detach>) {
        let mut tables = self.tables.lock();
        let readers = tables.entry(table_id(table)).or_default();
        readers.retain(|reader| reader.strong_count() > 0);
        readers.push(reader);
    }

    /// `table` was written: detach its readers' reads in flight.
    pub(crate) fn written(&self, table: &Table) {
        let readers: Vec<Arc<dyn Detach>> = match self.tables.lock().get(&table_id(table)) {
            Some(readers) => readers.iter().filter_map(Weak::upgrade).collect(),
            None => return,
        };
        for reader in readers {
            reader.detach_reads();
        }
    }
}
