//! Failing-first tests for defects 1 to 5 of issue 19, each the issue's
//! own scenario checked against the naive path on twin tables (see
//! `twins`). A test runs all its checks and reports every one that fails.
//! Defect 6 is in `isolation`, defect 7 in `keys_and_names`.

use crate::backend::Backend;
use crate::kinds::*;
use crate::rows::{Int4, Int8, Naive, Pair, Put, Text};
use crate::twins::{TestKey, TestRow, Twins, Via};
use sqlx::{MySql, Postgres, Sqlite};

/// Run `checks` on fresh twin tables of `kind`, drop them, and fail with
/// every check that failed.
pub async fn on_twins<DB: Backend>(
    kind: &Kind,
    checks: impl AsyncFnOnce(&Twins<DB>) -> Vec<Result<(), String>>,
) {
    let Some(pool) = DB::connect().await else {
        return;
    };
    checked(kind.create(&pool).await, checks).await;
}

/// Run `checks` on `twins`, drop them, and fail with every check that
/// failed.
pub async fn checked<DB: Backend>(
    twins: Twins<DB>,
    checks: impl AsyncFnOnce(&Twins<DB>) -> Vec<Result<(), String>>,
) {
    let results = checks(&twins).await;
    twins.drop().await;
    let failed: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(
        failed.is_empty(),
        "{} check(s) failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// Rows `(key, value)`.
fn puts<K: Clone>(rows: &[(K, &str)]) -> Vec<Put<K>> {
    rows.iter()
        .map(|(key, v)| Put {
            key: key.clone(),
            v: (*v).to_owned(),
        })
        .collect()
}

fn owned(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| (*k).to_owned()).collect()
}

// Defect 1: reads answer `None` for rows the naive query finds.

/// Store `stored`, then read `asked` (each equal to a stored key under the
/// column's comparison, not under Rust's `==`) alone, in a batch with a
/// missing key, through a Loader, and delete the first of them.
async fn reads_find_what_the_naive_query_finds<DB: Backend>(
    kind: &Kind,
    stored: &[&str],
    asked: &[&str],
) where
    String: TestKey<DB>,
    Put<String>: Naive<DB, Key = String>,
    Text: TestRow<DB>,
{
    let rows: Vec<(String, &str)> = owned(stored).into_iter().map(|k| (k, "stored")).collect();
    let asked = owned(asked);
    let mut batch = asked.clone();
    batch.push("missing".to_owned());
    on_twins::<DB>(kind, async |twins| {
        vec![
            twins
                .upsert::<_, Text>(&puts(&rows), false, Via::Direct)
                .await,
            twins.read::<_, Text>(&asked[..1], Via::Direct).await,
            twins.read::<_, Text>(&batch, Via::Direct).await,
            twins.read::<_, Text>(&batch, Via::Engine).await,
            twins.delete::<_, Text>(&asked[..1], Via::Direct).await,
        ]
    })
    .await;
}

/// `abc` finds `ABC`, `abc2` finds `abc2  ` (PAD SPACE).
#[tokio::test]
async fn mysql_general_ci_reads_find_case_and_pad_variants() {
    reads_find_what_the_naive_query_finds::<MySql>(&MY_CI, &["ABC", "abc2  "], &["abc", "abc2"])
        .await;
}

/// `utf8mb4_bin` is PAD SPACE too: `abc2` finds `abc2  `.
#[tokio::test]
async fn mysql_bin_reads_find_pad_variants() {
    reads_find_what_the_naive_query_finds::<MySql>(&MY_BIN, &["abc2  "], &["abc2"]).await;
}

#[tokio::test]
async fn sqlite_nocase_reads_find_case_variants() {
    reads_find_what_the_naive_query_finds::<Sqlite>(&LITE_NOCASE, &["ABC"], &["abc"]).await;
}

/// A `CHAR(8)` row reads back padded (`abc     `); the naive query finds
/// it by `abc`.
#[tokio::test]
async fn postgres_char_n_reads_find_padded_rows() {
    reads_find_what_the_naive_query_finds::<Postgres>(&PG_CHAR, &["abc", "abc2"], &["abc", "abc2"])
        .await;
}

/// Not a defect today, a guard for the new forms: sqlx binds a `String`
/// as `text`, and `citext = text` compares as `text` (case-sensitively), so
/// the naive query does not find `ABC` by `abc`; nor may the batched read.
#[tokio::test]
async fn postgres_citext_reads_by_a_text_parameter_are_case_sensitive() {
    reads_find_what_the_naive_query_finds::<Postgres>(&PG_CITEXT, &["ABC"], &["abc"]).await;
}

// Defect 2: PostgreSQL integer widths.

/// Upsert the first three of `keys`, read all four and one alone, delete
/// the second and the fourth (which need not exist).
async fn integer_widths<K, R>(kind: &Kind, keys: [K; 4])
where
    K: TestKey<Postgres>,
    Put<K>: Naive<Postgres, Key = K>,
    R: TestRow<Postgres>,
{
    let rows: Vec<(K, &str)> = keys[..3].iter().map(|k| (k.clone(), "stored")).collect();
    let deleted = [keys[1].clone(), keys[3].clone()];
    on_twins::<Postgres>(kind, async |twins| {
        vec![
            twins.upsert::<_, R>(&puts(&rows), false, Via::Direct).await,
            twins.read::<_, R>(&keys[..1], Via::Direct).await,
            twins.read::<_, R>(&keys, Via::Direct).await,
            twins.delete::<_, R>(&deleted, Via::Direct).await,
        ]
    })
    .await;
}

/// Reads and deletes also ask for 2^40, which no `INT` holds: the naive
/// query answers "no row".
#[tokio::test]
async fn postgres_i64_keys_on_an_int_column() {
    integer_widths::<i64, Int4>(&INT_KEY, [1, 2, i64::from(i32::MAX), 1 << 40]).await;
}

#[tokio::test]
async fn postgres_i32_keys_on_a_bigint_column() {
    integer_widths::<i32, Int8>(&BIGINT_KEY, [1, 2, i32::MIN, 4]).await;
}

#[tokio::test]
async fn postgres_i16_keys_on_an_int_column() {
    integer_widths::<i16, Int4>(&INT_KEY, [1, 2, i16::MAX, 4]).await;
}

// Defect 3: upsert padding repeats a row.

/// Upserts with the hit counter `n = t.n + 1`: one by one, each upsert of
/// an existing key counts 1.
async fn the_counter_counts_each_upsert_once<DB: Backend>()
where
    i64: TestKey<DB>,
    Put<i64>: Naive<DB, Key = i64>,
    Int8: TestRow<DB>,
{
    let rows = puts(&[(1, "a"), (2, "b")]);
    on_twins::<DB>(&BIGINT_KEY, async |twins| {
        vec![
            twins.upsert::<_, Int8>(&rows, true, Via::Direct).await,
            twins.upsert::<_, Int8>(&rows, true, Via::Direct).await,
            twins.upsert::<_, Int8>(&rows[..1], true, Via::Direct).await,
            twins.upsert::<_, Int8>(&rows, true, Via::Engine).await,
        ]
    })
    .await;
}

#[tokio::test]
async fn postgres_the_counter_counts_each_upsert_once() {
    the_counter_counts_each_upsert_once::<Postgres>().await;
}

#[tokio::test]
async fn mysql_the_counter_counts_each_upsert_once() {
    the_counter_counts_each_upsert_once::<MySql>().await;
}

#[tokio::test]
async fn sqlite_the_counter_counts_each_upsert_once() {
    the_counter_counts_each_upsert_once::<Sqlite>().await;
}

/// `pairs` pairs of keys equal under a case-insensitive comparison
/// (`a`, `A`, `b`, `B`, ...), then `n` rows of distinct keys `k0`, `k1`,
/// ...; each row its own value, the first row the smallest (the one
/// padding repeats today).
fn colliding_rows(pairs: u8, n: usize) -> Vec<Put<String>> {
    let pairs = (b'a'..b'a' + pairs).flat_map(|c| [char::from(c), c.to_ascii_uppercase().into()]);
    let keys = pairs
        .map(String::from)
        .chain((0..n).map(|i| format!("k{i}")));
    keys.enumerate()
        .map(|(i, key)| Put {
            key,
            v: i.to_string(),
        })
        .collect()
}

/// Under a case-insensitive collation the last write of a key wins: six
/// rows `a -> 1, A -> 2, ...`; `A, a, A`; 999 rows with 10 colliding pairs
/// (padded today); 1,000 rows with 10 pairs (no padding needed).
async fn the_last_write_wins_under_a_case_insensitive_key<DB: Backend>(kind: &Kind)
where
    String: TestKey<DB>,
    Put<String>: Naive<DB, Key = String>,
    Text: TestRow<DB>,
{
    let six = puts(
        &owned(&["a", "A", "b", "B", "c", "C"])
            .into_iter()
            .zip(["1", "2", "3", "4", "5", "6"])
            .collect::<Vec<_>>(),
    );
    // A key repeated around a variant equal to it: one by one, the row
    // keeps the first spelling and takes the last value.
    let around = puts(&[
        ("A".to_owned(), "1"),
        ("a".to_owned(), "2"),
        ("A".to_owned(), "3"),
    ]);
    on_twins::<DB>(kind, async |twins| {
        let mut checks = vec![twins.upsert::<_, Text>(&six, false, Via::Direct).await];
        twins.clear().await;
        checks.push(twins.upsert::<_, Text>(&around, false, Via::Direct).await);
        for rows in [colliding_rows(10, 979), colliding_rows(10, 980)] {
            twins.clear().await;
            let check = twins.upsert::<_, Text>(&rows, false, Via::Direct).await;
            checks.push(check.map_err(|e| format!("{} rows: {e}", rows.len())));
        }
        checks
    })
    .await;
}

#[tokio::test]
async fn mysql_general_ci_the_last_write_wins() {
    the_last_write_wins_under_a_case_insensitive_key::<MySql>(&MY_CI).await;
}

#[tokio::test]
async fn sqlite_nocase_the_last_write_wins() {
    the_last_write_wins_under_a_case_insensitive_key::<Sqlite>(&LITE_NOCASE).await;
}

// Defect 4: keys equal under the column's equality in one upsert
// (PostgreSQL SQLSTATE 21000).

#[tokio::test]
async fn postgres_citext_a_and_upper_a_in_one_upsert() {
    the_last_write_wins_under_a_case_insensitive_key::<Postgres>(&PG_CITEXT).await;
}

#[tokio::test]
async fn postgres_char_n_pad_variants_in_one_upsert() {
    let rows = puts(&[("x".to_owned(), "1"), ("x ".to_owned(), "2")]);
    on_twins::<Postgres>(&PG_CHAR, async |twins| {
        vec![twins.upsert::<_, Text>(&rows, false, Via::Direct).await]
    })
    .await;
}

// Defect 5: `Option` key parts merged in Rust.

/// Two rows keyed `(5, NULL)` are two rows (NULLs are distinct in a
/// unique index); `(5, NULL)` reads and deletes nothing (`b = NULL` is
/// never true).
async fn null_key_parts_stay_distinct<DB: Backend>()
where
    (i64, Option<String>): TestKey<DB>,
    Put<(i64, Option<String>)>: Naive<DB, Key = (i64, Option<String>)>,
    Pair: TestRow<DB>,
{
    let rows = puts(&[
        ((5, None), "p"),
        ((5, None), "q"),
        ((5, Some("x".to_owned())), "r"),
    ]);
    let keys = [(5, None), (5, Some("x".to_owned()))];
    on_twins::<DB>(&PAIRS, async |twins| {
        vec![
            twins.upsert::<_, Pair>(&rows, false, Via::Direct).await,
            twins.upsert::<_, Pair>(&rows, false, Via::Engine).await,
            twins.read::<_, Pair>(&keys, Via::Direct).await,
            twins.read::<_, Pair>(&keys[..1], Via::Direct).await,
            twins.delete::<_, Pair>(&keys, Via::Direct).await,
        ]
    })
    .await;
}

#[tokio::test]
async fn postgres_null_key_parts_stay_distinct() {
    null_key_parts_stay_distinct::<Postgres>().await;
}

#[tokio::test]
async fn mysql_null_key_parts_stay_distinct() {
    null_key_parts_stay_distinct::<MySql>().await;
}

#[tokio::test]
async fn sqlite_null_key_parts_stay_distinct() {
    null_key_parts_stay_distinct::<Sqlite>().await;
}
