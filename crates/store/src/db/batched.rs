//! The memory store's batched statements on the `coalesce-sql` toolkit:
//! each table described once, memories as records, one function per
//! operation written once for every backend. The toolkit chooses each
//! dialect's list form, splits by bind count and bytes, pads, and runs
//! multi-statement writes in one transaction.

use super::{
    MemoryPair, OnboardingRow, Pool, ProfileRow, category_of, replicated::Routed,
    shared::StoreDialect,
};
use crate::model::{Category, Memory, MemoryKey, NewMemory};
use coalesce_sql::{
    Db, Dialect, KeyPart, Record, SessionSettings, Table, TableRow,
    replicas::{KeyId, Position, ReplicaError, ServerStats},
};
use sqlx::{FromRow, MySql, Postgres, Sqlite};
use std::collections::HashMap;

/// A toolkit handle on the pool of each backend, or on a primary and its
/// replicas; clones share counters.
#[derive(Debug, Clone)]
pub(super) enum Batches {
    Postgres(Db<Postgres>),
    MySql(Db<MySql>),
    Sqlite(Db<Sqlite>),
    ReplicatedPostgres(Routed<Postgres>),
    ReplicatedMySql(Routed<MySql>),
}

/// Call the same generic function with the backend's toolkit handle; on a
/// primary and replicas, as a `read` or `write` (`$route`) of the keys
/// `$keys` evaluates to (evaluated there only: a single server pays nothing
/// for naming them).
///
/// Each backend's future is boxed: inline, the caller's future would be as
/// large as the largest of the five (19 KB for a one-row save), copied
/// whenever it is made or moved, by every caller of every method, reads
/// included when one future holds both; boxed, it is a few words, and one
/// allocation of the backend's size per call.
macro_rules! batched {
    ($batches:expr, $route:ident($keys:expr), $function:ident ( $($arg:expr),* )) => {
        match $batches {
            Batches::Postgres(batch) => Box::pin(batched::$function(batch, $($arg),*)).await,
            Batches::MySql(batch) => Box::pin(batched::$function(batch, $($arg),*)).await,
            Batches::Sqlite(batch) => Box::pin(batched::$function(batch, $($arg),*)).await,
            Batches::ReplicatedPostgres(routed) => {
                Box::pin(routed.$route(&$keys, |batch| async move {
                    batched::$function(&batch, $($arg),*).await
                }))
                .await
            }
            Batches::ReplicatedMySql(routed) => {
                Box::pin(routed.$route(&$keys, |batch| async move {
                    batched::$function(&batch, $($arg),*).await
                }))
                .await
            }
        }
    };
}
pub(super) use batched;

impl Batches {
    /// Handles on `pool`, trying each write `write_attempts` times.
    pub(super) fn new(pool: &Pool, write_attempts: u32) -> Self {
        match pool {
            Pool::Postgres(pool) => {
                Self::Postgres(Db::new(pool.clone()).with_write_attempts(write_attempts))
            }
            Pool::MySql(pool) => {
                Self::MySql(Db::new(pool.clone()).with_write_attempts(write_attempts))
            }
            Pool::Sqlite(pool) => {
                Self::Sqlite(Db::new(pool.clone()).with_write_attempts(write_attempts))
            }
        }
    }

    /// The same handles, trying each write `attempts` times.
    pub(super) fn with_write_attempts(self, attempts: u32) -> Self {
        match self {
            Self::Postgres(batch) => Self::Postgres(batch.with_write_attempts(attempts)),
            Self::MySql(batch) => Self::MySql(batch.with_write_attempts(attempts)),
            Self::Sqlite(batch) => Self::Sqlite(batch.with_write_attempts(attempts)),
            Self::ReplicatedPostgres(routed) => {
                Self::ReplicatedPostgres(routed.with_write_attempts(attempts))
            }
            Self::ReplicatedMySql(routed) => {
                Self::ReplicatedMySql(routed.with_write_attempts(attempts))
            }
        }
    }

    /// The same handles, running statements as `settings` say (a database
    /// opened with replicas sets its servers' settings at connection).
    pub(super) fn with_session_settings(self, settings: SessionSettings) -> Self {
        match self {
            Self::Postgres(batch) => Self::Postgres(batch.with_session_settings(settings)),
            Self::MySql(batch) => Self::MySql(batch.with_session_settings(settings)),
            Self::Sqlite(batch) => Self::Sqlite(batch.with_session_settings(settings)),
            replicated @ (Self::ReplicatedPostgres(_) | Self::ReplicatedMySql(_)) => replicated,
        }
    }

    /// Statements and transactions the toolkit sent.
    pub(super) fn counts(&self) -> (u64, u64) {
        match self {
            Self::Postgres(batch) => (batch.statements(), batch.transactions()),
            Self::MySql(batch) => (batch.statements(), batch.transactions()),
            Self::Sqlite(batch) => (batch.statements(), batch.transactions()),
            Self::ReplicatedPostgres(routed) => routed.counts(),
            Self::ReplicatedMySql(routed) => routed.counts(),
        }
    }

    /// Run `write`, a statement of the store's own on the primary's pool;
    /// on a primary with replicas, remember the position after it for the
    /// keys `keys` returns.
    pub(super) async fn remember<T>(
        &self,
        keys: impl FnOnce() -> Vec<KeyId>,
        write: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, sqlx::Error> {
        match self {
            Self::ReplicatedPostgres(routed) => routed.write(&keys(), |_| write).await,
            Self::ReplicatedMySql(routed) => routed.write(&keys(), |_| write).await,
            Self::Postgres(_) | Self::MySql(_) | Self::Sqlite(_) => write.await,
        }
    }

    /// The same handles, every routed read also seeing what `token` covers
    /// (a single server has nothing to wait for).
    pub(super) fn with_token(self, token: &Position) -> Result<Self, ReplicaError> {
        Ok(match self {
            Self::ReplicatedPostgres(routed) => Self::ReplicatedPostgres(routed.with_token(token)?),
            Self::ReplicatedMySql(routed) => Self::ReplicatedMySql(routed.with_token(token)?),
            single @ (Self::Postgres(_) | Self::MySql(_) | Self::Sqlite(_)) => single,
        })
    }

    /// A position covering every write that returned; `None` before the
    /// first, and on a single server.
    pub(super) fn last_written(&self) -> Option<Position> {
        match self {
            Self::ReplicatedPostgres(routed) => routed.last_written(),
            Self::ReplicatedMySql(routed) => routed.last_written(),
            Self::Postgres(_) | Self::MySql(_) | Self::Sqlite(_) => None,
        }
    }

    /// Statements per server, the primary first; `None` on a single server.
    pub(super) fn server_stats(&self) -> Option<Vec<ServerStats>> {
        match self {
            Self::ReplicatedPostgres(routed) => Some(routed.stats()),
            Self::ReplicatedMySql(routed) => Some(routed.stats()),
            Self::Postgres(_) | Self::MySql(_) | Self::Sqlite(_) => None,
        }
    }
}

/// The store's tables as the toolkit describes them on one backend. Each
/// backend describes them once per process ([`StoreDialect::tables`]): a
/// `Table` keeps the statement texts built from it, which a description
/// made per call would build again on every call.
pub(crate) struct Tables {
    /// Memories by (user, category, key); upserts set `updated_at`.
    pub(super) memories: Table,
    /// Memories by (user, key), with their category and value.
    memory_groups: Table,
    /// Memories by (user, key), for deletes.
    memory_pairs: Table,
    profiles: Table,
    /// Onboarding states, their data read as JSON text.
    pub(super) onboardings: Table,
}

impl Tables {
    /// The tables on `DB`: the rows' own, as `DB` reads and writes them.
    pub(crate) fn of<DB: StoreDialect>() -> Self {
        Self {
            memories: NewMemory::table().on_update("updated_at", DB::NOW),
            memory_groups: Table::new("memories")
                .key(["user_id", "key"])
                .values(["category", "value"]),
            memory_pairs: MemoryPair::table(),
            profiles: ProfileRow::table(),
            onboardings: OnboardingRow::table()
                .select(format!("user_id, {}, completed", DB::ONBOARDING_DATA)),
        }
    }
}

/// The toolkit's error as the driver error the store's API carries: a
/// database error as is; the others (a value over the packet limit, an
/// ambiguous commit) boxed inside, where `downcast_ref` finds them (see
/// [`may_have_committed`]).
fn driver_error(error: coalesce_sql::Error) -> sqlx::Error {
    match error {
        coalesce_sql::Error::Database { source, .. } => source,
        ambiguous @ coalesce_sql::Error::CommitOutcomeUnknown { .. } => {
            sqlx::Error::Io(std::io::Error::other(ambiguous))
        }
        other => sqlx::Error::Encode(Box::new(other)),
    }
}

/// Whether a write's driver error says the connection failed after the
/// write was sent in a form that commits, so its rows may be written.
pub(crate) fn may_have_committed(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<coalesce_sql::Error>())
            .is_some_and(coalesce_sql::Error::may_have_committed),
        _ => false,
    }
}

/// A memory row as read: (user, category, key, value).
type MemoryRow = (String, String, String, String);

/// A memory's key as the toolkit binds it: (user, category, key).
type MemoryTriple = (String, String, String);

pub(crate) fn triple(key: &MemoryKey) -> MemoryTriple {
    (
        key.user_id.clone(),
        key.category.as_str().to_owned(),
        key.key.clone(),
    )
}

impl<DB: Dialect> Record<DB> for NewMemory
where
    String: KeyPart<DB>,
{
    type Key = MemoryTriple;
    type Values<'a> = (&'a String,);

    fn key(&self) -> MemoryTriple {
        (
            self.user_id.clone(),
            self.category.as_str().to_owned(),
            self.key.clone(),
        )
    }

    fn values(&self) -> Self::Values<'_> {
        (&self.value,)
    }
}

/// The values of the memories found among `keys`, by key.
pub(super) async fn memories_by_key<DB: StoreDialect>(
    batch: &Db<DB>,
    keys: &[MemoryKey],
) -> Result<HashMap<MemoryKey, String>, sqlx::Error>
where
    String: KeyPart<DB>,
    MemoryRow: for<'r> FromRow<'r, DB::Row>,
{
    let triples: Vec<MemoryTriple> = keys.iter().map(triple).collect();
    let rows: HashMap<MemoryTriple, MemoryRow> = batch
        .fetch(&DB::tables().memories, &triples)
        .await
        .map_err(driver_error)?;
    rows.into_values()
        .map(|(user_id, category, key, value)| {
            let category = category_of(&category)?;
            Ok((
                MemoryKey {
                    user_id,
                    category,
                    key,
                },
                value,
            ))
        })
        .collect()
}

/// Every memory of each (user, key) pair found, in any category, by pair:
/// one statement per chunk (the toolkit binds the user with every key).
pub(super) async fn memory_groups<DB: StoreDialect>(
    batch: &Db<DB>,
    pairs: &[(String, String)],
) -> Result<HashMap<(String, String), Vec<Memory>>, sqlx::Error>
where
    String: KeyPart<DB>,
    MemoryRow: for<'r> FromRow<'r, DB::Row>,
{
    let rows: HashMap<(String, String), Vec<MemoryRow>> = batch
        .fetch_grouped(&DB::tables().memory_groups, pairs)
        .await
        .map_err(driver_error)?;
    rows.into_iter()
        .map(|(pair, rows)| {
            let memories = rows
                .into_iter()
                .map(|(_, key, category, value)| {
                    Ok(Memory {
                        category: category_of(&category)?,
                        key,
                        value,
                    })
                })
                .collect::<Result<Vec<Memory>, sqlx::Error>>()?;
            Ok((pair, memories))
        })
        .collect()
}

/// A user's memories among `keys`, of `category` or of any, ordered by
/// category then key (bytewise), at most `limit`, in statements split by
/// the bind limit only.
pub(super) async fn memories_among<DB: StoreDialect>(
    batch: &Db<DB>,
    user_id: &str,
    category: Option<Category>,
    keys: &[String],
    limit: Option<i64>,
) -> Result<Vec<Memory>, sqlx::Error>
where
    String: KeyPart<DB>,
    MemoryRow: for<'r> FromRow<'r, DB::Row>,
{
    let pairs: Vec<(String, String)> = keys
        .iter()
        .map(|key| (user_id.to_owned(), key.clone()))
        .collect();
    let batch = batch.clone().with_rows_per_statement(usize::MAX);
    let groups = memory_groups(&batch, &pairs).await?;
    Ok(Memory::select(
        groups.into_values().flatten(),
        category,
        limit,
    ))
}

/// Profiles by user id, of the users found among `user_ids`.
pub(super) async fn profiles<DB: StoreDialect>(
    batch: &Db<DB>,
    user_ids: &[String],
) -> Result<HashMap<String, String>, sqlx::Error>
where
    String: KeyPart<DB>,
    (String, String): for<'r> FromRow<'r, DB::Row>,
{
    let rows: HashMap<String, (String, String)> = batch
        .fetch(&DB::tables().profiles, user_ids)
        .await
        .map_err(driver_error)?;
    Ok(rows
        .into_iter()
        .map(|(user_id, (_, profile))| (user_id, profile))
        .collect())
}

/// Onboarding rows (user, JSON text, completed) by user id.
pub(super) async fn onboardings<DB: StoreDialect>(
    batch: &Db<DB>,
    user_ids: &[String],
) -> Result<HashMap<String, (String, bool)>, sqlx::Error>
where
    String: KeyPart<DB>,
    (String, String, bool): for<'r> FromRow<'r, DB::Row>,
{
    let rows: HashMap<String, (String, String, bool)> = batch
        .fetch(&DB::tables().onboardings, user_ids)
        .await
        .map_err(driver_error)?;
    Ok(rows
        .into_iter()
        .map(|(user_id, (_, data, completed))| (user_id, (data, completed)))
        .collect())
}

/// Upsert memories, at most `rows_per_statement` a statement; several
/// statements run in one transaction.
pub(super) async fn save_memories<DB: StoreDialect>(
    batch: &Db<DB>,
    rows: &[NewMemory],
    rows_per_statement: usize,
) -> Result<(), sqlx::Error>
where
    String: KeyPart<DB>,
{
    let batch = batch.clone().with_rows_per_statement(rows_per_statement);
    batch
        .upsert(&DB::tables().memories, rows)
        .await
        .map_err(driver_error)
}

/// Delete memories by (user, key) pairs, in every category; the pair of
/// each row deleted.
pub(super) async fn delete_memory_pairs<DB: StoreDialect>(
    batch: &Db<DB>,
    pairs: &[(String, String)],
) -> Result<Vec<(String, String)>, sqlx::Error>
where
    String: KeyPart<DB>,
{
    batch
        .delete(&DB::tables().memory_pairs, pairs)
        .await
        .map_err(driver_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreError;
    use coalesce::LoadError;
    use coalesce_sql::{Operation, Step};
    use std::sync::Arc;

    fn lost_at(step: Step) -> sqlx::Error {
        let source = sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into());
        let table = "memories".to_owned();
        driver_error(match step {
            Step::Commit => coalesce_sql::Error::CommitOutcomeUnknown {
                operation: Operation::Upsert,
                table,
                step,
                source,
            },
            step => coalesce_sql::Error::Database {
                operation: Operation::Upsert,
                table,
                step,
                source,
            },
        })
    }

    #[test]
    fn an_ambiguous_commit_is_told_apart_from_a_failed_write() {
        let direct = StoreError::db("batch_save_memories")(lost_at(Step::Commit));
        assert!(direct.may_have_committed(), "{direct:?}");
        assert!(
            direct
                .to_string()
                .contains("may or may not have been applied")
        );

        let shared = LoadError::Source {
            source: Arc::new(lost_at(Step::Commit)),
            batch_size: 2,
        };
        let coalesced = StoreError::batch("save_memory")(shared);
        assert!(coalesced.may_have_committed(), "{coalesced:?}");

        let failed = StoreError::db("batch_save_memories")(lost_at(Step::Begin));
        assert!(matches!(failed, StoreError::Database { .. }), "{failed:?}");
        assert!(!failed.may_have_committed());
    }
}
