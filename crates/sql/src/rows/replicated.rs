//! [`Rows`] over a primary and its replicas ([`Replicated::rows`]): each
//! batch read through [`Replicated::read`] with its keys' ids (and the
//! handle's token, if it was built with one: [`Replicated::after`]), each
//! batch written through [`Replicated::write`].

use super::place::{KeyOf, Place};
use super::{Build, Rows, RowsOptions, Stored, TableRow, build_at};
use crate::replicas::{KeyId, Position, ReplicaError, Replicated, Replication};
use crate::{Db, Error, Record, Table};
use coalesce::ConfigError;
use std::{collections::HashMap, sync::Arc};

/// A routed call's error, as a [`Rows`] caller gets it.
fn routed(error: ReplicaError) -> Error {
    Error::Replica(Box::new(error))
}

/// The read-your-writes identities of rows `R`'s `keys` in `table`.
fn ids_of<R: TableRow>(table: &Table, keys: &[KeyOf<R>]) -> Vec<KeyId> {
    keys.iter()
        .flat_map(|key| R::replica_ids(table, key))
        .collect()
}

/// The servers a handle's batches run on, and the token its reads present.
pub(crate) struct OnServers<DB: Replication> {
    servers: Arc<Replicated<DB>>,
    token: Option<Position>,
}

impl<DB: Replication> Place for OnServers<DB> {
    type Db = DB;

    fn db(&self) -> &Db<DB> {
        self.servers.primary()
    }

    async fn fetch_each_in_order<R: Stored<DB>>(
        &self,
        table: &Table,
        keys: &[KeyOf<R>],
    ) -> Result<Vec<Option<Result<R, Error>>>, Error> {
        let ids = ids_of::<R>(table, keys);
        let token = self.token.as_ref();
        self.servers
            .read(&ids, token, |db| async move {
                Ok(db.fetch_each_in_order(table, keys).await?)
            })
            .await
            .map_err(routed)
    }

    async fn upsert_each<R: Stored<DB>>(
        &self,
        table: &Table,
        rows: &[R],
    ) -> Result<Vec<Result<(), Error>>, Error> {
        let keys: Vec<KeyOf<R>> = rows.iter().map(Record::key).collect();
        let written = self
            .servers
            .write(&ids_of::<R>(table, &keys), |db| async move {
                Ok(db.upsert_each(table, rows).await?)
            })
            .await;
        // The write detached the table's reads as it committed, but a read
        // sent between then and the recording of its position (above) may
        // have been routed without it: detach those too.
        self.servers
            .primary()
            .readers()
            .written_keys(table, keys.iter());
        written.map(|written| written.value).map_err(routed)
    }

    async fn delete_each<R: Stored<DB>>(
        &self,
        table: &Table,
        keys: &[KeyOf<R>],
    ) -> Result<HashMap<KeyOf<R>, Result<bool, Error>>, Error> {
        let written = self
            .servers
            .write(&ids_of::<R>(table, keys), |db| async move {
                Ok(db.delete_each(table, keys).await?)
            })
            .await;
        // As for upserts.
        self.servers
            .primary()
            .readers()
            .written_keys(table, keys.iter());
        written.map(|written| written.value).map_err(routed)
    }
}

/// A handle to build over replicas ([`Replicated::rows_with`]), its reads
/// presenting `token` ([`Replicated::after`]).
pub(crate) struct OnReplicas<'a, DB: Replication> {
    pub(crate) replicated: &'a Arc<Replicated<DB>>,
    pub(crate) token: Option<&'a Position>,
    pub(crate) options: RowsOptions,
}

impl<DB: Replication> Build<DB> for OnReplicas<'_, DB> {
    fn build<R: Stored<DB>>(self) -> Result<Rows<R>, ConfigError> {
        let place = OnServers {
            servers: Arc::clone(self.replicated),
            token: self.token.cloned(),
        };
        build_at(place, self.options)
    }
}
