//! Where a [`Rows`](super::Rows) handle's statements run: on one [`Db`],
//! or routed over a primary and its replicas (`replicated.rs`). The
//! batching above it (`coalesced.rs`, `per_item.rs`) is the same for both.

use super::{Build, Rows, RowsOptions, Stored, TableRow, build_at};
use crate::{Db, Dialect, Error, Table};
use coalesce::ConfigError;
use std::{collections::HashMap, future::Future};

/// The key of rows `R`.
pub(super) type KeyOf<R> = <R as TableRow>::Key;

/// A place that runs the toolkit's per-item-isolating calls for a handle.
pub(super) trait Place: Send + Sync + 'static {
    /// Its dialect.
    type Db: Dialect;

    /// The [`Db`] whose writes detach the handle's reads in flight (its
    /// [`Readers`](super::Readers)), and whose pool's size bounds the
    /// handle's batches in flight: the primary, where writes go.
    fn db(&self) -> &Db<Self::Db>;

    /// [`Db::fetch_each_in_order`].
    fn fetch_each_in_order<R: Stored<Self::Db>>(
        &self,
        table: &Table,
        keys: &[KeyOf<R>],
    ) -> impl Future<Output = Result<Vec<Option<Result<R, Error>>>, Error>> + Send;

    /// [`Db::upsert_each`].
    fn upsert_each<R: Stored<Self::Db>>(
        &self,
        table: &Table,
        rows: &[R],
    ) -> impl Future<Output = Result<Vec<Result<(), Error>>, Error>> + Send;

    /// [`Db::delete_each`].
    fn delete_each<R: Stored<Self::Db>>(
        &self,
        table: &Table,
        keys: &[KeyOf<R>],
    ) -> impl Future<Output = Result<HashMap<KeyOf<R>, Result<bool, Error>>, Error>> + Send;
}

impl<DB: Dialect> Place for Db<DB> {
    type Db = DB;

    fn db(&self) -> &Db<DB> {
        self
    }

    async fn fetch_each_in_order<R: Stored<DB>>(
        &self,
        table: &Table,
        keys: &[KeyOf<R>],
    ) -> Result<Vec<Option<Result<R, Error>>>, Error> {
        Db::fetch_each_in_order(self, table, keys).await
    }

    async fn upsert_each<R: Stored<DB>>(
        &self,
        table: &Table,
        rows: &[R],
    ) -> Result<Vec<Result<(), Error>>, Error> {
        Db::upsert_each(self, table, rows).await
    }

    async fn delete_each<R: Stored<DB>>(
        &self,
        table: &Table,
        keys: &[KeyOf<R>],
    ) -> Result<HashMap<KeyOf<R>, Result<bool, Error>>, Error> {
        Db::delete_each(self, table, keys).await
    }
}

/// A handle to build on a [`Db`] ([`Db::rows_with`]).
pub(crate) struct OnDb<'a, DB: Dialect> {
    pub(crate) db: &'a Db<DB>,
    pub(crate) options: RowsOptions,
}

impl<DB: Dialect> Build<DB> for OnDb<'_, DB> {
    fn build<R: Stored<DB>>(self) -> Result<Rows<R>, ConfigError> {
        build_at(self.db.clone(), self.options)
    }
}
