//! The store's tables as `coalesce-sql` [`Rows`]: the rows the coalescing
//! repository reads and writes one by one, coalesced by the toolkit (with
//! its read-your-writes, write ordering and per-item results), and how each
//! backend builds their handles.

use super::{Database, batched::Batches, shared::StoreDialect};
use crate::model::{Category, NewMemory, Onboarding};
use coalesce::ConfigError;
use coalesce_sql::{Dialect, KeyPart, Record, Rows, RowsOptions, Table, TableRow, replicas::KeyId};
use sqlx::{ColumnIndex, Decode, FromRow, MySql, Postgres, Row, Sqlite, Type};
use std::any::Any;

/// A row of one of the store's tables, described per backend where the
/// SQL differs.
pub(crate) trait StoreRow: TableRow {
    /// The table on backend `DB`, if not the one the row declares.
    fn table_on<DB: StoreDialect>() -> Option<Table> {
        None
    }
}

/// A user's profile.
#[derive(Clone, sqlx::FromRow, coalesce_sql::Record)]
#[record(table = "profiles", key(user_id))]
pub(crate) struct ProfileRow {
    pub(crate) user_id: String,
    pub(crate) profile: String,
}

impl StoreRow for ProfileRow {}

/// A user's onboarding state, its data as JSON text.
#[derive(Clone, sqlx::FromRow, coalesce_sql::Record)]
#[record(table = "onboarding", key(user_id))]
pub(crate) struct OnboardingRow {
    pub(crate) user_id: String,
    pub(crate) data: String,
    pub(crate) completed: bool,
}

impl OnboardingRow {
    /// The state it holds.
    pub(crate) fn state(&self) -> Result<Onboarding, sqlx::Error> {
        super::onboarding(&self.data, self.completed)
    }
}

impl StoreRow for OnboardingRow {
    fn table_on<DB: StoreDialect>() -> Option<Table> {
        Some(DB::tables().onboardings.clone())
    }
}

/// The read-your-writes identities of a user's memory `key` (in any
/// category): the ones the store's own writes mark and its reads and
/// queries check.
fn memory_ids(user_id: &String, key: &String) -> Vec<KeyId> {
    super::memory_writes(std::iter::once((user_id, key)))
}

/// A memory is a row of `memories`, keyed by (user, category, key).
impl TableRow for NewMemory {
    type Key = (String, String, String);

    fn table() -> Table {
        Table::new("memories")
            .key(["user_id", "category", "key"])
            .values(["value"])
    }

    fn replica_ids(_: &Table, (user_id, _, key): &Self::Key) -> Vec<KeyId> {
        memory_ids(user_id, key)
    }

    /// A delete by (user, key) covers the key in every category.
    fn keys_written_by(key: &dyn Any) -> Option<Vec<Self::Key>> {
        let (user_id, key) = key.downcast_ref::<(String, String)>()?;
        let in_category = |category: Category| {
            let category = category.as_str().to_owned();
            (user_id.clone(), category, key.clone())
        };
        Some(Category::ALL.map(in_category).to_vec())
    }

    coalesce_sql::table_row_backends!();
}

impl StoreRow for NewMemory {
    fn table_on<DB: StoreDialect>() -> Option<Table> {
        Some(DB::tables().memories.clone())
    }
}

impl<'r, R: Row> FromRow<'r, R> for NewMemory
where
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        let category: String = row.try_get("category")?;
        Ok(NewMemory {
            user_id: row.try_get("user_id")?,
            category: super::category_of(&category)?,
            key: row.try_get("key")?,
            value: row.try_get("value")?,
        })
    }
}

/// A user's memories of one key, in every category: what a delete by
/// (user, key) removes.
#[derive(Clone, sqlx::FromRow)]
pub(crate) struct MemoryPair {
    user_id: String,
    key: String,
}

impl TableRow for MemoryPair {
    type Key = (String, String);

    fn table() -> Table {
        Table::new("memories").key(["user_id", "key"])
    }

    fn replica_ids(_: &Table, (user_id, key): &Self::Key) -> Vec<KeyId> {
        memory_ids(user_id, key)
    }

    coalesce_sql::table_row_backends!();
}

impl StoreRow for MemoryPair {}

impl<DB: Dialect> Record<DB> for MemoryPair
where
    String: KeyPart<DB>,
{
    type Key = (String, String);
    type Values<'a> = ();

    fn key(&self) -> (String, String) {
        (self.user_id.clone(), self.key.clone())
    }

    fn values(&self) {}
}

impl Batches {
    /// The coalesced handle of rows `R` on these handles, as `options` say:
    /// on a primary and replicas, reading after the handle's token.
    fn rows<R: StoreRow>(&self, options: RowsOptions) -> Result<Rows<R>, ConfigError> {
        fn on<DB: StoreDialect, R: StoreRow>(options: RowsOptions) -> RowsOptions {
            RowsOptions {
                table: R::table_on::<DB>(),
                ..options
            }
        }
        match self {
            Self::Postgres(db) => db.rows_with(on::<Postgres, R>(options)),
            Self::MySql(db) => db.rows_with(on::<MySql, R>(options)),
            Self::Sqlite(db) => db.rows_with(on::<Sqlite, R>(options)),
            Self::ReplicatedPostgres(routed) => routed.rows_with(on::<Postgres, R>(options)),
            Self::ReplicatedMySql(routed) => routed.rows_with(on::<MySql, R>(options)),
        }
    }
}

impl Batches {
    /// SQL of the store's own wrote rows of `R`'s table: detach the reads
    /// in flight of its `Rows` handles.
    fn wrote<R: StoreRow>(&self) {
        let table = R::table();
        match self {
            Self::Postgres(db) => db.wrote(&table),
            Self::MySql(db) => db.wrote(&table),
            Self::Sqlite(db) => db.wrote(&table),
            Self::ReplicatedPostgres(routed) => routed.primary().wrote(&table),
            Self::ReplicatedMySql(routed) => routed.primary().wrote(&table),
        }
    }
}

impl Database {
    /// SQL of the store's own wrote rows of `R`'s table (see
    /// [`Batches::wrote`]).
    pub(super) fn wrote<R: StoreRow>(&self) {
        self.batches.wrote::<R>();
    }

    /// The coalesced handle of the store's rows `R`, as `options` say.
    pub(crate) fn rows<R: StoreRow>(&self, options: RowsOptions) -> Result<Rows<R>, ConfigError> {
        self.batches.rows(options)
    }
}
