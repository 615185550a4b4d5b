//! The rows and keys the tests write and read back.

use crate::backend::{Args, Backend, Bind};
use coalesce_sql::{Dialect, Key, Record, Value};
use sqlx::error::BoxDynError;
use std::fmt::Debug;

/// A row keyed by one text column `k`: its value `v` and its hit counter
/// `n` (which an upsert with `on_update` increments).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
pub struct Text {
    pub k: String,
    pub v: String,
    pub n: i64,
}

/// A row keyed by an `INT` column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
pub struct Int4 {
    pub k: i32,
    pub v: String,
    pub n: i64,
}

/// A row keyed by a `BIGINT` column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
pub struct Int8 {
    pub k: i64,
    pub v: String,
    pub n: i64,
}

/// A row keyed by `(a, b)` under a unique index, `b` nullable.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
pub struct Pair {
    pub a: i64,
    pub b: Option<String>,
    pub v: String,
    pub n: i64,
}

/// A row keyed by a UUID.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
pub struct UuidKeyed {
    pub k: uuid::Uuid,
    pub v: String,
    pub n: i64,
}

/// A row whose key column is named `k.id`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
pub struct Dotted {
    #[sqlx(rename = "k.id")]
    pub k: i64,
    pub v: String,
    pub n: i64,
}

/// A user's id type: a newtype the driver encodes as its `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type)]
#[sqlx(transparent)]
pub struct AccountId(pub i64);

coalesce_sql::single_key!(AccountId);

/// A row the naive upsert binds as plain sqlx parameters: key columns,
/// then value columns.
pub trait Naive<DB: Backend>: Record<DB> + Clone + Debug + Send + Sync + 'static {
    /// Bind the key and the values, in column order.
    fn bind_all(&self, args: &mut Args<DB>) -> Result<(), BoxDynError>;
}

/// A row to upsert into a `(key, v, n)` table: its key and its `v`.
#[derive(Debug, Clone)]
pub struct Put<K> {
    pub key: K,
    pub v: String,
}

impl<DB: Dialect, K: Key<DB>> Record<DB> for Put<K>
where
    String: Value<DB>,
{
    type Key = K;
    type Values<'a>
        = (&'a String,)
    where
        K: 'a;
    fn key(&self) -> K {
        self.key.clone()
    }
    fn values(&self) -> Self::Values<'_> {
        (&self.v,)
    }
}

impl<DB: Backend, K: Key<DB> + Bind<DB> + Debug> Naive<DB> for Put<K>
where
    String: Value<DB> + Bind<DB>,
{
    fn bind_all(&self, args: &mut Args<DB>) -> Result<(), BoxDynError> {
        self.key.bind_into(args)?;
        self.v.bind_into(args)
    }
}

/// A row of the constrained table of the isolation tests: a `NOT NULL`
/// label of at most 16 characters, an `INT` quantity checked `>= 0`, a
/// parent that must exist, a code unique in the table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
pub struct Wide {
    pub k: i64,
    pub label: Option<String>,
    pub qty: i64,
    pub parent: i64,
    pub code: String,
}

impl<DB: Dialect> Record<DB> for Wide
where
    i64: Key<DB> + Value<DB>,
    String: Value<DB>,
    Option<String>: Value<DB>,
{
    type Key = i64;
    type Values<'a> = (&'a Option<String>, &'a i64, &'a i64, &'a String);
    fn key(&self) -> i64 {
        self.k
    }
    fn values(&self) -> Self::Values<'_> {
        (&self.label, &self.qty, &self.parent, &self.code)
    }
}

impl<DB: Backend> Naive<DB> for Wide
where
    i64: Key<DB> + Value<DB> + Bind<DB>,
    String: Value<DB> + Bind<DB>,
    Option<String>: Value<DB> + Bind<DB>,
{
    fn bind_all(&self, args: &mut Args<DB>) -> Result<(), BoxDynError> {
        self.k.bind_into(args)?;
        self.label.bind_into(args)?;
        self.qty.bind_into(args)?;
        self.parent.bind_into(args)?;
        self.code.bind_into(args)
    }
}
