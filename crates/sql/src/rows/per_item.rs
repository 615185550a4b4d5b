//! A [`Rows`](super::Rows) that does not coalesce: each call its own
//! statement, as a plain repository would send it (the baseline to
//! compare with, or a switch to turn coalescing off).

use super::{Access, Place, RowsError, Stored, TableRow};
use crate::{Error, Table};
use coalesce::{LoadError, Stats, StatsSnapshot};
use futures::future::BoxFuture;
use std::{marker::PhantomData, sync::Arc};

/// Each call alone, through the toolkit's per-item calls with one item,
/// at `P`.
pub(super) struct PerItem<P, R> {
    place: P,
    table: Table,
    stats: Stats,
    rows: PhantomData<fn() -> R>,
}

impl<P: Place, R: Stored<P::Db>> PerItem<P, R> {
    pub(super) fn new(place: P, table: Table) -> Self {
        Self {
            place,
            table,
            stats: Stats::new(1),
            rows: PhantomData,
        }
    }

    /// Count one call, sent alone.
    fn counted(&self) {
        self.stats.record_requests(1);
        self.stats.record_batch(1);
    }
}

/// A call's error, as [`Rows`](super::Rows) reports it.
fn failed(error: Error) -> RowsError {
    LoadError::Source {
        source: Arc::new(error),
        batch_size: 1,
    }
}

impl<P: Place, R: Stored<P::Db>> Access<R> for PerItem<P, R> {
    fn get(&self, key: <R as TableRow>::Key) -> BoxFuture<'_, Result<Option<R>, RowsError>> {
        Box::pin(async move {
            self.counted();
            let found = self
                .place
                .fetch_each_in_order::<R>(&self.table, std::slice::from_ref(&key))
                .await
                .map_err(failed)?;
            found
                .into_iter()
                .next()
                .flatten()
                .transpose()
                .map_err(failed)
        })
    }

    fn save(&self, row: R) -> BoxFuture<'_, Result<(), RowsError>> {
        Box::pin(async move {
            self.counted();
            let results = self
                .place
                .upsert_each(&self.table, &[row])
                .await
                .map_err(failed)?;
            results.into_iter().next().unwrap_or(Ok(())).map_err(failed)
        })
    }

    fn delete(&self, key: <R as TableRow>::Key) -> BoxFuture<'_, Result<bool, RowsError>> {
        Box::pin(async move {
            self.counted();
            let mut results = self
                .place
                .delete_each::<R>(&self.table, std::slice::from_ref(&key))
                .await
                .map_err(failed)?;
            results.remove(&key).unwrap_or(Ok(false)).map_err(failed)
        })
    }

    fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }
}
