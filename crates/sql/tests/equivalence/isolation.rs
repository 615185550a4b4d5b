//! Defect 6: one bad item fails only its own caller. One bad caller among
//! good ones (99 per error class; 1 in the issue's own scenarios), all at
//! once through a `coalesce::Writer` (upserts, deletes) or a
//! `coalesce::Loader` (reads) over the per-item calls of `assumed_api`.
//! Every good caller must get exactly its per-item result, the bad one an
//! error, and nothing of the bad one's operation may be written. The
//! serial twin is the oracle: one by one, exactly the bad item fails (the
//! test checks that first, so a class that is no error on a backend is not
//! counted as isolated).

use crate::assumed_api::{self, Outcome};
use crate::backend::Backend;
use crate::common;
use crate::rows::{Int8, Naive, Put, Text, Wide};
use crate::twins::{TestKey, TestRow, Twins, Via, coalesced};
use coalesce::{LoadError, Loader, WriteSink, Writer, from_fn};
use coalesce_sql::{Db, Dialect, Error, Key, Record, Table};
use futures::future::join_all;
use sqlx::{MySql, Postgres, Sqlite};
use std::{collections::HashMap, fmt::Debug, marker::PhantomData};

/// Good callers beside the bad one in the per-class tests.
const GOOD: usize = 99;

/// The parent every good row of the constrained table references.
const PARENT: i64 = 1;

/// Why the bad row of an upsert fails.
#[derive(Debug, Clone, Copy)]
enum Class {
    /// NULL into a `NOT NULL` column.
    NotNull,
    /// 17 characters into `VARCHAR(16)` (PostgreSQL 22001, MariaDB 1406).
    TooLong,
    /// A NUL character in PostgreSQL text (22021), knowable before sending.
    Nul,
    /// 2^40 into an `INT` column (PostgreSQL 22003, MariaDB 1264).
    OutOfRange,
    /// A `CHECK (qty >= 0)` violation.
    Check,
    /// A parent that does not exist.
    ForeignKey,
    /// A value taken in another unique column (on MariaDB `ON DUPLICATE
    /// KEY UPDATE` updates that row instead: no error, not tested there).
    UniqueElsewhere,
    /// A row larger than MariaDB's `max_allowed_packet`, knowable before
    /// sending.
    TooLarge,
}

impl Class {
    fn spoil(self, row: &mut Wide) {
        match self {
            Self::NotNull => row.label = None,
            Self::TooLong => row.label = Some("x".repeat(17)),
            Self::Nul => row.label = Some("a\0b".to_owned()),
            Self::OutOfRange => row.qty = 1 << 40,
            Self::Check => row.qty = -1,
            Self::ForeignKey => row.parent = PARENT + 1,
            Self::UniqueElsewhere => row.code = "taken".to_owned(),
            Self::TooLarge => row.label = Some("x".repeat(17 << 20)),
        }
    }
}

/// The `i`th good row.
fn good_row(k: i64) -> Wide {
    Wide {
        k,
        label: Some(format!("l{k}")),
        qty: k,
        parent: PARENT,
        code: format!("c{k}"),
    }
}

/// A `WriteSink` over [`assumed_api::upsert_each`]: each caller its own outcome.
struct EachUpsert<DB: Dialect, W> {
    sql: Db<DB>,
    table: Table,
    _rows: PhantomData<fn(W)>,
}

impl<DB: Dialect, W: Record<DB> + 'static> WriteSink for EachUpsert<DB, W> {
    type Op = W;
    type Output = Outcome<()>;
    type Error = Error;

    async fn write(&self, rows: Vec<W>) -> Result<Vec<Outcome<()>>, Error> {
        assumed_api::upsert_each(&self.sql, &self.table, &rows).await
    }
}

/// A `WriteSink` over [`assumed_api::delete_each`].
struct EachDelete<DB: Dialect, K> {
    sql: Db<DB>,
    table: Table,
    _keys: PhantomData<fn(K)>,
}

impl<DB: Dialect, K: Key<DB>> WriteSink for EachDelete<DB, K> {
    type Op = K;
    type Output = Outcome<bool>;
    type Error = Error;

    async fn write(&self, keys: Vec<K>) -> Result<Vec<Outcome<bool>>, Error> {
        assumed_api::delete_each(&self.sql, &self.table, &keys).await
    }
}

/// A writer's caller's result, whether its item or its whole batch failed.
fn written<T>(result: Result<Outcome<T>, LoadError<Error>>) -> Result<T, String> {
    match result {
        Ok(outcome) => outcome.map_err(|e| e.to_string()),
        Err(batch) => Err(batch.to_string()),
    }
}

/// Compare each caller's batched result with its serial one: equal
/// values, or errors on both sides; the serial run must fail exactly at
/// `bad`.
fn verdict<T: PartialEq + Debug>(
    what: &str,
    bad: usize,
    batched: &[Result<T, String>],
    serial: &[Result<T, String>],
) -> Result<(), String> {
    let failing: Vec<usize> = (0..serial.len()).filter(|&i| serial[i].is_err()).collect();
    if failing != [bad] {
        return Err(format!(
            "{what}: one by one, callers {failing:?} fail, not only the bad one ({bad}): {serial:?}"
        ));
    }
    let wrong: Vec<String> = batched
        .iter()
        .zip(serial)
        .enumerate()
        .filter(|(_, (batched, serial))| match (batched, serial) {
            (Ok(batched), Ok(serial)) => batched != serial,
            (batched, serial) => batched.is_ok() != serial.is_ok(),
        })
        .map(|(i, (batched, serial))| {
            let role = if i == bad { "bad" } else { "good" };
            format!("{role} caller {i}: batched {batched:?}, one by one {serial:?}")
        })
        .collect();
    if wrong.is_empty() {
        return Ok(());
    }
    let shown = wrong
        .iter()
        .take(3)
        .cloned()
        .collect::<Vec<_>>()
        .join("\n  ");
    Err(format!(
        "{what}: {} of {} callers differ:\n  {shown}",
        wrong.len(),
        batched.len()
    ))
}

/// Messages can hold a 17 MB value: keep the start.
fn shortened(message: String) -> String {
    if message.len() <= 2_000 {
        return message;
    }
    let end = (0..=2_000)
        .rev()
        .find(|&i| message.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}... ({} bytes)", &message[..end], message.len())
}

/// `good` good upserts and one bad one of `class` through a Writer.
async fn upserts<DB: Backend>(class: Class, good: usize)
where
    Wide: Naive<DB, Key = i64> + TestRow<DB>,
{
    let Some(pool) = DB::connect().await else {
        return;
    };
    let parents = common::unique("iso_parent");
    let ddl = format!(
        "CREATE TABLE {parents} (id BIGINT PRIMARY KEY); INSERT INTO {parents} (id) VALUES ({PARENT})"
    );
    DB::run(&pool, ddl).await.expect("parents");
    let columns = format!(
        "k BIGINT PRIMARY KEY, label VARCHAR(16) NOT NULL, qty INT NOT NULL, \
         parent BIGINT NOT NULL, code VARCHAR(16) NOT NULL UNIQUE, CHECK (qty >= 0), \
         FOREIGN KEY (parent) REFERENCES {parents} (id)"
    );
    let select = format!("k, label, {}, parent, code", DB::as_bigint("qty"));
    let values = ["label", "qty", "parent", "code"];
    let twins = Twins::<DB>::create(&pool, "iso", &columns, &["k"], &values, &select).await;
    let taken = Wide {
        code: "taken".to_owned(),
        ..good_row(1_000)
    };
    let seeded = twins
        .upsert::<Wide, Wide>(&[taken], false, Via::Direct)
        .await;

    let bad = good / 3;
    let mut rows: Vec<Wide> = (0..=good as i64).map(good_row).collect();
    class.spoil(&mut rows[bad]);
    let writer = Writer::new(EachUpsert {
        sql: twins.sql.clone(),
        table: twins.table(false),
        _rows: PhantomData,
    });
    let writes = join_all(rows.iter().cloned().map(|row| writer.write(row))).await;
    let batched: Vec<Result<(), String>> = writes.into_iter().map(written).collect();
    let mut serial = Vec::new();
    for row in &rows {
        serial.push(
            twins
                .naive_upsert(row, false)
                .await
                .map_err(|e| e.to_string()),
        );
    }
    let what = format!("{} upsert, {class:?}", DB::NAME);
    let outcome = seeded
        .and_then(|()| coalesced(&writer.stats(), rows.len()))
        .and_then(|()| verdict(&what, bad, &batched, &serial));
    let contents = twins.same_contents::<Wide>().await;
    twins.drop().await;
    DB::run(&pool, format!("DROP TABLE {parents}"))
        .await
        .expect("dropped");
    outcome.and(contents).map_err(shortened).unwrap();
}

/// `good` good deletes and one of a row another table references.
async fn deletes<DB: Backend>(good: usize)
where
    i64: TestKey<DB>,
    Put<i64>: Naive<DB, Key = i64>,
    Int8: TestRow<DB>,
{
    let Some(pool) = DB::connect().await else {
        return;
    };
    let columns = "k BIGINT PRIMARY KEY, v VARCHAR(16) NOT NULL, n BIGINT NOT NULL DEFAULT 0";
    let twins = Twins::<DB>::create(&pool, "iso_del", columns, &["k"], &["v"], "k, v, n").await;
    let keys: Vec<i64> = (0..=good as i64).collect();
    let rows: Vec<Put<i64>> = keys
        .iter()
        .map(|&key| Put {
            key,
            v: "v".to_owned(),
        })
        .collect();
    let seeded = twins.upsert::<_, Int8>(&rows, false, Via::Direct).await;
    let bad = good / 3;
    let children = [common::unique("iso_child"), common::unique("iso_child")];
    for (child, parent) in children.iter().zip([&twins.batched, &twins.serial]) {
        let ddl = format!(
            "CREATE TABLE {child} (id BIGINT PRIMARY KEY, parent BIGINT NOT NULL, \
             FOREIGN KEY (parent) REFERENCES {parent} (k)); \
             INSERT INTO {child} (id, parent) VALUES (1, {bad})"
        );
        DB::run(&pool, ddl).await.expect("children");
    }

    let writer = Writer::new(EachDelete {
        sql: twins.sql.clone(),
        table: twins.table(false),
        _keys: PhantomData,
    });
    let deletes = join_all(keys.iter().map(|&key| writer.write(key))).await;
    let batched: Vec<Result<bool, String>> = deletes.into_iter().map(written).collect();
    let mut serial = Vec::new();
    for key in &keys {
        serial.push(twins.naive_delete(key).await.map_err(|e| e.to_string()));
    }
    let what = format!("{} delete of a referenced row", DB::NAME);
    let outcome = seeded
        .and_then(|()| coalesced(&writer.stats(), keys.len()))
        .and_then(|()| verdict(&what, bad, &batched, &serial));
    let contents = twins.same_contents::<Int8>().await;
    for child in &children {
        DB::run(&pool, format!("DROP TABLE {child}"))
            .await
            .expect("dropped");
    }
    twins.drop().await;
    outcome.and(contents).unwrap();
}

/// `good` good reads (half of them of existing rows) and one of
/// `bad_key` through a Loader.
async fn reads<DB: Backend>(bad_key: String, good: usize)
where
    String: TestKey<DB>,
    Put<String>: Naive<DB, Key = String>,
    Text: TestRow<DB>,
{
    let Some(pool) = DB::connect().await else {
        return;
    };
    let columns = "k VARCHAR(64) PRIMARY KEY, v VARCHAR(16) NOT NULL, n BIGINT NOT NULL DEFAULT 0";
    let twins = Twins::<DB>::create(&pool, "iso_read", columns, &["k"], &["v"], "k, v, n").await;
    let mut keys: Vec<String> = (0..=good).map(|i| format!("k{i}")).collect();
    let rows: Vec<Put<String>> = keys
        .iter()
        .step_by(2)
        .map(|key| Put {
            key: key.clone(),
            v: "v".to_owned(),
        })
        .collect();
    let seeded = twins.upsert::<_, Text>(&rows, false, Via::Direct).await;
    let bad = good / 3;
    keys[bad] = bad_key;

    let (sql, table) = (twins.sql.clone(), twins.table(false));
    let loader = Loader::new(from_fn(move |keys: Vec<String>| {
        let (sql, table) = (sql.clone(), table.clone());
        async move {
            let outcomes = assumed_api::fetch_each::<DB, String, Text>(&sql, &table, &keys).await?;
            let found: HashMap<String, Outcome<Text>> = keys
                .into_iter()
                .zip(outcomes)
                .filter_map(|(key, outcome)| Some((key, outcome.transpose()?)))
                .collect();
            Ok::<_, Error>(found)
        }
    }));
    let loads = join_all(keys.iter().cloned().map(|key| loader.load(key))).await;
    let batched: Vec<Result<Option<Text>, String>> = loads
        .into_iter()
        .map(|load| match load {
            Ok(found) => found.transpose().map_err(|e| e.to_string()),
            Err(batch) => Err(batch.to_string()),
        })
        .collect();
    let mut serial = Vec::new();
    for key in &keys {
        serial.push(
            twins
                .naive_read::<String, Text>(key)
                .await
                .map_err(|e| e.to_string()),
        );
    }
    let what = format!("{} read", DB::NAME);
    let outcome = seeded
        .and_then(|()| coalesced(&loader.stats(), keys.len()))
        .and_then(|()| verdict(&what, bad, &batched, &serial));
    twins.drop().await;
    outcome.map_err(shortened).unwrap();
}

macro_rules! upsert_classes {
    ($($name:ident: $db:ty, $class:ident;)*) => {$(
        #[tokio::test]
        async fn $name() {
            upserts::<$db>(Class::$class, GOOD).await;
        }
    )*};
}

upsert_classes! {
    postgres_not_null: Postgres, NotNull;
    postgres_too_long: Postgres, TooLong;
    postgres_nul_in_text: Postgres, Nul;
    postgres_out_of_range: Postgres, OutOfRange;
    postgres_check: Postgres, Check;
    postgres_foreign_key: Postgres, ForeignKey;
    postgres_unique_elsewhere: Postgres, UniqueElsewhere;
    mysql_not_null: MySql, NotNull;
    mysql_too_long: MySql, TooLong;
    mysql_out_of_range: MySql, OutOfRange;
    mysql_check: MySql, Check;
    mysql_foreign_key: MySql, ForeignKey;
    mysql_over_max_allowed_packet: MySql, TooLarge;
    sqlite_not_null: Sqlite, NotNull;
    sqlite_check: Sqlite, Check;
    sqlite_foreign_key: Sqlite, ForeignKey;
    sqlite_unique_elsewhere: Sqlite, UniqueElsewhere;
}

#[tokio::test]
async fn postgres_delete_of_a_referenced_row() {
    deletes::<Postgres>(GOOD).await;
}

#[tokio::test]
async fn mysql_delete_of_a_referenced_row() {
    deletes::<MySql>(GOOD).await;
}

#[tokio::test]
async fn sqlite_delete_of_a_referenced_row() {
    deletes::<Sqlite>(GOOD).await;
}

#[tokio::test]
async fn postgres_read_of_a_key_with_nul() {
    reads::<Postgres>("a\0b".to_owned(), GOOD).await;
}

#[tokio::test]
async fn mysql_read_of_a_key_over_max_allowed_packet() {
    reads::<MySql>("x".repeat(17 << 20), GOOD).await;
}

/// The issue's scenario: a Loader with `load("good")` and `load("a\0b")`.
#[tokio::test]
async fn issue_postgres_loader_good_beside_nul() {
    reads::<Postgres>("a\0b".to_owned(), 1).await;
}

/// The issue's scenario: a Writer saving a small row beside one larger
/// than `max_allowed_packet`.
#[tokio::test]
async fn issue_mysql_writer_small_row_beside_oversized_row() {
    upserts::<MySql>(Class::TooLarge, 1).await;
}

/// The issue's scenario: a constraint violation in a coalesced write,
/// one good row beside it.
#[tokio::test]
async fn issue_constraint_violation_beside_one_good_row() {
    upserts::<Postgres>(Class::Check, 1).await;
    upserts::<MySql>(Class::ForeignKey, 1).await;
    upserts::<Sqlite>(Class::NotNull, 1).await;
}
