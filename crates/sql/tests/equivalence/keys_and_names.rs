//! Defect 7: keys and names. A single-column `Uuid` key (the toolkit's
//! `uuid` feature) and a `#[sqlx(transparent)]` newtype id (declared with
//! `coalesce_sql::single_key!`) are keys, as a tuple holding one already
//! was; a column named `k.id` is one identifier.

use crate::backend::Backend;
use crate::defects::{checked, on_twins};
use crate::kinds::{BIGINT_KEY, Kind};
use crate::rows::{AccountId, Dotted, Int8, Naive, Put, UuidKeyed};
use crate::twins::{TestKey, TestRow, Twins, Via};
use sqlx::{MySql, Postgres, Sqlite};
use uuid::Uuid;

/// Upsert two of `keys`, read one alone, all in a batch and through a
/// Loader, delete the last two; each equal to the naive path.
async fn checks<DB, K, R>(twins: &Twins<DB>, keys: Vec<K>) -> Vec<Result<(), String>>
where
    DB: Backend,
    K: TestKey<DB>,
    Put<K>: Naive<DB, Key = K>,
    R: TestRow<DB>,
{
    let rows: Vec<Put<K>> = keys[..2]
        .iter()
        .map(|key| Put {
            key: key.clone(),
            v: "stored".to_owned(),
        })
        .collect();
    vec![
        twins.upsert::<_, R>(&rows, false, Via::Direct).await,
        twins.read::<_, R>(&keys[..1], Via::Direct).await,
        twins.read::<_, R>(&keys, Via::Direct).await,
        twins.read::<_, R>(&keys, Via::Engine).await,
        twins.delete::<_, R>(&keys[1..], Via::Direct).await,
    ]
}

/// Run the checks on fresh twin tables of `kind`.
macro_rules! probe {
    ($db:ty, $key:ty, $row:ty, $kind:expr, $keys:expr) => {
        on_twins::<$db>($kind, async |twins| {
            checks::<$db, $key, $row>(twins, $keys).await
        })
        .await
    };
}

fn uuids() -> Vec<Uuid> {
    (1..=3).map(Uuid::from_u128).collect()
}

fn account_ids() -> Vec<AccountId> {
    vec![AccountId(1), AccountId(2), AccountId(3)]
}

const PG_UUID: Kind = Kind {
    prefix: "eq_uuid",
    setup: None,
    columns: "k UUID PRIMARY KEY, v VARCHAR(16) NOT NULL, n BIGINT NOT NULL DEFAULT 0",
    key: &["k"],
    select: "k, v, n",
};

/// sqlx sends a `Uuid` to MariaDB as its 16 bytes.
const MY_UUID: Kind = Kind {
    columns: "k BINARY(16) PRIMARY KEY, v VARCHAR(16) NOT NULL, n BIGINT NOT NULL DEFAULT 0",
    ..PG_UUID
};

const LITE_UUID: Kind = Kind {
    columns: "k BLOB PRIMARY KEY, v VARCHAR(16) NOT NULL, n BIGINT NOT NULL DEFAULT 0",
    ..PG_UUID
};

#[tokio::test]
async fn postgres_uuid_key() {
    probe!(Postgres, Uuid, UuidKeyed, &PG_UUID, uuids());
}

#[tokio::test]
async fn mysql_uuid_key() {
    probe!(MySql, Uuid, UuidKeyed, &MY_UUID, uuids());
}

#[tokio::test]
async fn sqlite_uuid_key() {
    probe!(Sqlite, Uuid, UuidKeyed, &LITE_UUID, uuids());
}

#[tokio::test]
async fn postgres_newtype_key() {
    probe!(Postgres, AccountId, Int8, &BIGINT_KEY, account_ids());
}

#[tokio::test]
async fn mysql_newtype_key() {
    probe!(MySql, AccountId, Int8, &BIGINT_KEY, account_ids());
}

#[tokio::test]
async fn sqlite_newtype_key() {
    probe!(Sqlite, AccountId, Int8, &BIGINT_KEY, account_ids());
}

/// A tuple holding a `Uuid`, a key before single-column ones were.
#[tokio::test]
async fn postgres_tuple_with_a_uuid_is_a_key() {
    let pairs = Kind {
        prefix: "eq_uuid_pair",
        columns: "a BIGINT NOT NULL, b UUID NOT NULL, v VARCHAR(16) NOT NULL, \
                  n BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (a, b)",
        key: &["a", "b"],
        select: "a, b, v, n",
        ..PG_UUID
    };
    let keys: Vec<(i64, Uuid)> = uuids().into_iter().map(|u| (7, u)).collect();
    probe!(Postgres, (i64, Uuid), UuidPair, &pairs, keys);
}

/// A row keyed by `(a BIGINT, b UUID)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
struct UuidPair {
    a: i64,
    b: Uuid,
    v: String,
    n: i64,
}

/// A key column named `k.id`: one identifier, quoted whole.
async fn dotted_column_name<DB: Backend>()
where
    i64: TestKey<DB>,
    Put<i64>: Naive<DB, Key = i64>,
    Dotted: TestRow<DB>,
{
    let Some(pool) = DB::connect().await else {
        return;
    };
    let key = DB::quote("k.id");
    let columns =
        format!("{key} BIGINT PRIMARY KEY, v VARCHAR(16) NOT NULL, n BIGINT NOT NULL DEFAULT 0");
    let select = format!("{key}, v, n");
    let twins = Twins::<DB>::create(&pool, "eq_dotted", &columns, &["k.id"], &["v"], &select).await;
    let rows = vec![
        Put {
            key: 1,
            v: "a".to_owned(),
        },
        Put {
            key: 2,
            v: "b".to_owned(),
        },
    ];
    checked(twins, async |twins| {
        vec![
            twins.upsert::<_, Dotted>(&rows, false, Via::Direct).await,
            twins.read::<i64, Dotted>(&[1], Via::Direct).await,
            twins.read::<i64, Dotted>(&[1, 2, 3], Via::Direct).await,
            twins.delete::<i64, Dotted>(&[2, 3], Via::Direct).await,
        ]
    })
    .await;
}

#[tokio::test]
async fn postgres_column_named_k_dot_id() {
    dotted_column_name::<Postgres>().await;
}

#[tokio::test]
async fn mysql_column_named_k_dot_id() {
    dotted_column_name::<MySql>().await;
}

#[tokio::test]
async fn sqlite_column_named_k_dot_id() {
    dotted_column_name::<Sqlite>().await;
}
