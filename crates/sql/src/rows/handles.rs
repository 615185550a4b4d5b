//! The handles [`Db::rows`](crate::Db::rows) shares: one per row type and
//! `Db` (with its clones) while any clone of it lives, so a handle taken
//! inline in each request still coalesces with the others.

use super::{Access, Rows, TableRow};
use parking_lot::Mutex;
use std::{
    any::{Any, TypeId},
    collections::HashMap,
    sync::{Arc, Weak},
};

/// By row type, a `Weak<dyn Access<R>>`: held weakly, since each handle
/// holds the `Db` (a strong map would keep the pool alive forever).
#[derive(Default)]
pub(crate) struct Handles(Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>);

impl std::fmt::Debug for Handles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handles").finish_non_exhaustive()
    }
}

impl Handles {
    /// The live handle of `R`, or the one `build` makes (kept for the next
    /// caller while it lives).
    pub(crate) fn get_or_build<R: TableRow>(&self, build: impl FnOnce() -> Rows<R>) -> Rows<R> {
        let mut handles = self.0.lock();
        let live = handles
            .get(&TypeId::of::<R>())
            .and_then(|handle| handle.downcast_ref::<Weak<dyn Access<R>>>())
            .and_then(Weak::upgrade);
        if let Some(access) = live {
            return Rows { access };
        }
        let rows = build();
        let weak: Weak<dyn Access<R>> = Arc::downgrade(&rows.access);
        handles.insert(TypeId::of::<R>(), Box::new(weak));
        rows
    }
}
