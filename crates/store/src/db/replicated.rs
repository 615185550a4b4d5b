//! The store's batched statements on a primary and its read replicas: reads
//! through [`Replicated::read`] with the keys they read, writes through
//! [`Replicated::write`] with the keys they wrote, so a key written through
//! this [`Database`](super::Database) is read where its write is replayed.
//!
//! Keys are named per table and user: a memory by (user, key), in whatever
//! category, since reads by (user, key) pair span the categories; profiles
//! and onboarding states by user. The queries of a user's memories (by
//! category, top-N, recent, counts) read rows no key list names, so every
//! write of a user's memories also marks the user's slot, [`memories_of`],
//! which those queries read.

use coalesce::ConfigError;
use coalesce_sql::{
    Db, Rows, RowsOptions, TableRow,
    replicas::{
        AfterToken, Fault, KeyId, Position, ReplicaError, Replicated, Replication, ServerName,
        ServerStats,
    },
};
use std::{io, sync::Arc};

/// The identity a read or write of memory (`user_id`, `key`) carries.
pub(crate) fn memory(user_id: &str, key: &str) -> KeyId {
    KeyId::new("memories", &(user_id, key))
}

/// The identity of all of a user's memories: what a query over them reads,
/// and what every write of one of them also writes.
pub(crate) fn memories_of(user_id: &str) -> KeyId {
    KeyId::new("memories_of", user_id)
}

/// The identity of a user's profile.
pub(super) fn profile(user_id: &str) -> KeyId {
    KeyId::new("profiles", user_id)
}

/// The identity of a user's onboarding state.
pub(super) fn onboarding(user_id: &str) -> KeyId {
    KeyId::new("onboarding", user_id)
}

/// A primary and its replicas, how many times a write is tried, and the
/// position every read must see; clones share the servers and what was
/// written.
#[derive(Debug)]
pub(super) struct Routed<DB: Replication> {
    servers: Arc<Replicated<DB>>,
    write_attempts: u32,
    /// The servers as this handle's reads see them: after its token, if it
    /// has one (see `Database::with_token`).
    token: Option<AfterToken<DB>>,
}

impl<DB: Replication> Clone for Routed<DB> {
    fn clone(&self) -> Self {
        Routed {
            servers: Arc::clone(&self.servers),
            write_attempts: self.write_attempts,
            token: self.token.clone(),
        }
    }
}

impl<DB: Replication> Routed<DB> {
    /// Route over `servers`, trying each write `write_attempts` times.
    pub(super) fn new(servers: Replicated<DB>, write_attempts: u32) -> Self {
        Routed {
            servers: Arc::new(servers),
            write_attempts,
            token: None,
        }
    }

    /// The same servers, every read also seeing what `token` covers (and
    /// the token held already, if any): an error if the two do not combine,
    /// or if the token is of the other backend.
    pub(super) fn with_token(self, token: &Position) -> Result<Self, ReplicaError> {
        let mut joined = token.clone();
        if let Some(held) = &self.token {
            joined
                .join(held.token())
                .map_err(|source| ReplicaError::Position {
                    server: ServerName::Primary,
                    source,
                })?;
        }
        Ok(Routed {
            token: Some(self.servers.after(&joined)?),
            ..self
        })
    }

    /// The primary's toolkit handle.
    pub(super) fn primary(&self) -> &Db<DB> {
        self.servers.primary()
    }

    /// The coalesced handle of rows `R` on these servers, reading after
    /// this handle's token if it has one.
    pub(super) fn rows_with<R: TableRow>(
        &self,
        options: RowsOptions,
    ) -> Result<Rows<R>, ConfigError> {
        match &self.token {
            Some(after) => after.rows_with(options),
            None => self.servers.rows_with(options),
        }
    }

    /// A position covering every write through this handle and its clones
    /// that has returned; `None` before the first.
    pub(super) fn last_written(&self) -> Option<Position> {
        self.servers.last_written()
    }

    /// The same servers, trying each write `attempts` times.
    pub(super) fn with_write_attempts(self, attempts: u32) -> Self {
        Routed {
            write_attempts: attempts,
            ..self
        }
    }

    /// Statements per server, the primary first.
    pub(super) fn stats(&self) -> Vec<ServerStats> {
        self.servers.stats()
    }

    /// Statements sent to every server (position checks included), and
    /// transactions begun on the primary.
    pub(super) fn counts(&self) -> (u64, u64) {
        let stats = self.stats();
        let statements = stats.iter().map(ServerStats::statements).sum();
        (statements, self.servers.primary().transactions())
    }

    /// Run `read` on a replica that has replayed this handle's writes to
    /// `keys` and its token, else on the primary.
    pub(super) async fn read<T, F, Fut>(
        &self,
        keys: &[KeyId],
        mut read: F,
    ) -> Result<T, sqlx::Error>
    where
        F: FnMut(Db<DB>) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        self.servers
            .read(keys, self.token.as_ref().map(AfterToken::token), |batch| {
                let read = read(batch);
                async move { Ok::<T, Fault>(read.await?) }
            })
            .await
            .map_err(driver_error)
    }

    /// Run `write` on the primary's handle, then remember the primary's
    /// position for `keys`, the keys it wrote (and as the last written).
    pub(super) async fn write<T, F, Fut>(&self, keys: &[KeyId], write: F) -> Result<T, sqlx::Error>
    where
        F: FnOnce(Db<DB>) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let attempts = self.write_attempts;
        let written = self
            .servers
            .write(keys, |batch| {
                let write = write(batch.with_write_attempts(attempts));
                async move { Ok::<T, Fault>(write.await?) }
            })
            .await
            .map_err(driver_error)?;
        Ok(written.value)
    }
}

/// A routed statement's error as the driver error the store's API carries:
/// a statement's own error as is; the others (a position that could not be
/// read or parsed, so the write is not guaranteed to be seen by replicas)
/// boxed inside, with the server they happened on.
fn driver_error(error: ReplicaError) -> sqlx::Error {
    match error {
        ReplicaError::Database { source, .. } => source,
        other => sqlx::Error::Io(io::Error::other(other)),
    }
}
