//! Statement texts kept per table: each is built once for its form,
//! dialect, key type and length, then reused by every later call.
//!
//! Why: building a text quotes and joins every name of the table. For a
//! lone read that was about 14,000 instructions, a quarter of the whole
//! read's CPU on the client (callgrind, `coalesce bench --concurrency 1`).

use crate::{Dialect, Key, sql::Delete};
use parking_lot::Mutex;
use std::{
    any::TypeId,
    collections::HashMap,
    fmt,
    sync::{Arc, OnceLock},
};

/// How many texts of one kind a table keeps. Past that, texts are built
/// for each call: MySQL and SQLite upserts have a text per row count, up
/// to `rows_per_statement`, and a thousand rows' text is kilobytes.
const KEPT: usize = 256;

/// A table's statement texts so far, and the result of checking its names.
/// Shared by the table's clones; not part of the table's identity.
#[derive(Default)]
pub(crate) struct Texts {
    reads: Memo<Arc<str>>,
    upserts: Memo<Arc<str>>,
    deletes: Memo<Delete>,
    names_checked: OnceLock<Result<(), String>>,
}

/// What a text depends on besides the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Shape {
    dialect: TypeId,
    key: TypeId,
    /// The form for a statement whose table of keys the server refused to
    /// compare (see `db::branches`).
    fallback: bool,
    /// Keys or rows, or 2 for "several" where the text does not depend on
    /// how many (arrays).
    len: usize,
}

impl Shape {
    fn of<DB: Dialect, K: Key<DB>>(len: usize, fallback: bool) -> Self {
        Self {
            dialect: TypeId::of::<DB>(),
            key: TypeId::of::<K>(),
            fallback,
            len: crate::sql::text_len(&DB::SYNTAX, len),
        }
    }
}

struct Memo<V>(Mutex<HashMap<Shape, V>>);

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<V: Clone> Memo<V> {
    fn get_or_build(&self, shape: Shape, build: impl FnOnce() -> V) -> V {
        if let Some(text) = self.0.lock().get(&shape) {
            return text.clone();
        }
        // Built outside the lock: another call may build the same text
        // meanwhile, and either copy serves.
        let text = build();
        let mut texts = self.0.lock();
        if texts.len() < KEPT {
            texts.entry(shape).or_insert_with(|| text.clone());
        }
        text
    }
}

impl Texts {
    /// The read of `len` keys of type `K`.
    pub(crate) fn read<DB: Dialect, K: Key<DB>>(
        &self,
        len: usize,
        fallback: bool,
        build: impl FnOnce() -> String,
    ) -> Arc<str> {
        let shape = Shape::of::<DB, K>(len, fallback);
        self.reads.get_or_build(shape, || build().into())
    }

    /// The upsert of `len` rows keyed by `K`.
    pub(crate) fn upsert<DB: Dialect, K: Key<DB>>(
        &self,
        len: usize,
        build: impl FnOnce() -> String,
    ) -> Arc<str> {
        let shape = Shape::of::<DB, K>(len, false);
        self.upserts.get_or_build(shape, || build().into())
    }

    /// The delete of `len` keys of type `K`.
    pub(crate) fn delete<DB: Dialect, K: Key<DB>>(
        &self,
        len: usize,
        fallback: bool,
        build: impl FnOnce() -> Delete,
    ) -> Delete {
        self.deletes
            .get_or_build(Shape::of::<DB, K>(len, fallback), build)
    }

    /// The table's names checked once (`check` says what is wrong).
    pub(crate) fn check_names(
        &self,
        check: impl FnOnce() -> Result<(), String>,
    ) -> Result<(), String> {
        self.names_checked.get_or_init(check).clone()
    }
}

impl fmt::Debug for Texts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Texts").finish_non_exhaustive()
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use crate::Table;
    use sqlx::Sqlite;

    fn read(table: &Table, build: &str) -> String {
        let text = table.texts().read::<Sqlite, i64>(3, false, || build.into());
        text.to_string()
    }

    #[test]
    fn a_text_is_built_once_and_shared_by_clones() {
        let table = Table::new("t").key(["k"]);
        assert_eq!(read(&table, "first"), "first");
        assert_eq!(read(&table, "second"), "first", "kept");
        assert_eq!(read(&table.clone(), "third"), "first", "shared by a clone");
        let other_key = table
            .texts()
            .read::<Sqlite, String>(3, false, || "text".into());
        assert_eq!(&*other_key, "text", "a key of another type has its own");
        let longer = table
            .texts()
            .read::<Sqlite, i64>(4, false, || "four".into());
        assert_eq!(&*longer, "four", "so has another length");
    }

    #[test]
    fn a_changed_table_builds_its_texts_anew() {
        let table = Table::new("t").key(["k"]);
        assert_eq!(read(&table, "old"), "old");
        let changed = [
            table.clone().renamed("u"),
            table.clone().schema("app"),
            table.clone().key(["j"]),
            table.clone().values(["v"]),
            table.clone().select("k"),
            table.clone().on_update("at", "now()"),
        ];
        for table in &changed {
            assert_eq!(read(table, "new"), "new", "{table:?}");
        }
        assert_eq!(read(&table, "again"), "old", "the original keeps its own");
        let alone = table.values(["v"]);
        assert_eq!(read(&alone, "new"), "new", "changed without a clone");
    }
}
