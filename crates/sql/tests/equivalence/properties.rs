//! Random batches of reads, upserts (with and without a hit counter in
//! `on_update`) and deletes over keys drawn to collide under the column's
//! comparison, run batched and one by one on twin tables (see `twins`):
//! every caller's result and both tables must be equal after every batch.
//!
//! Each case starts from empty tables with an upsert, then runs 1 to 5
//! batches of 1 to 9 items. The one limit of serial equivalence the
//! properties respect: an upsert with the counter never holds the same
//! key twice (Rust-equal; the toolkit keeps a key's last row, so the
//! counter counts it once, where one by one counts it twice). Keys equal
//! only under the column's comparison (`a` and `A` under `_ci`) are kept.

use crate::backend::Backend;
use crate::kinds::*;
use crate::rows::{Int4, Int8, Naive, Pair, Put, Text};
use crate::twins::{TestKey, TestRow, Via};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sqlx::{MySql, Postgres, Sqlite};
use std::collections::HashSet;

/// Cases per property: enough to draw every collision class many times,
/// few enough that the binary runs in well under a minute per backend.
/// `PROPTEST_CASES` sets another count, for a longer soak.
const CASES: u32 = 40;

/// [`CASES`], unless `PROPTEST_CASES` says otherwise.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(CASES)
}

/// One batch of the toolkit: its items in batch order.
#[derive(Debug, Clone)]
enum Step<K> {
    Read(Vec<K>),
    /// Rows (key, value number), and whether the hit counter is on.
    Upsert(Vec<(K, u8)>, bool),
    Delete(Vec<K>),
}

/// Text keys that collide under case-insensitive, accent-insensitive and
/// PAD SPACE comparisons: 4 stems (one accented), 3 casings, 0-2
/// trailing spaces (36 keys, at most 5 characters).
pub fn text_key() -> impl Strategy<Value = String> + Clone {
    cased_and_padded(&["a", "ab", "e", "é"])
}

/// Keys that Unicode collations equate across lengths: `ß` and `ss`
/// (`ß` upper-cases to `SS`), `æ` and `ae`; cased and padded as
/// [`text_key`].
pub fn expanding_key() -> impl Strategy<Value = String> + Clone {
    cased_and_padded(&["ss", "ß", "ae", "æ"])
}

/// [`text_key`]'s accents and [`expanding_key`]'s expansions together,
/// for the collations that equate both.
pub fn unicode_key() -> impl Strategy<Value = String> + Clone {
    cased_and_padded(&["e", "é", "ss", "ß", "ae", "æ"])
}

/// Each of `stems` as is, upper-cased or title-cased, with 0-2 trailing
/// spaces.
fn cased_and_padded(stems: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    (0..stems.len(), 0..3usize, 0..3usize).prop_map(move |(stem, case, pad)| {
        let stem = stems[stem];
        let cased = match case {
            0 => stem.to_owned(),
            1 => stem.to_uppercase(),
            _ => {
                let mut chars = stem.chars();
                let first = chars.next().map(|c| c.to_uppercase().to_string());
                first.unwrap_or_default() + chars.as_str()
            }
        };
        cased + &" ".repeat(pad)
    })
}

/// Composite keys `(a, b)` whose `b` is often NULL.
pub fn pair_key() -> impl Strategy<Value = (i64, Option<String>)> + Clone {
    let b = prop_oneof![
        Just(None),
        Just(Some("x".to_owned())),
        Just(Some("y".to_owned()))
    ];
    (0..3i64, b)
}

/// Whether upserts may carry the hit counter `n = t.n + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Never: the value columns only.
    Never,
    /// In about half of the upserts.
    Sometimes,
}

fn steps<K: std::fmt::Debug + Clone>(
    any_key: impl Strategy<Value = K> + Clone,
    writable: impl Strategy<Value = K> + Clone,
    counter: Counter,
) -> impl Strategy<Value = (Vec<(K, u8)>, Vec<Step<K>>)> {
    let keys = prop::collection::vec(any_key, 1..10);
    let rows = prop::collection::vec((writable, 0..4u8), 1..10);
    let counting = any::<bool>().prop_map(move |on| on && counter == Counter::Sometimes);
    let step = prop_oneof![
        2 => keys.clone().prop_map(Step::Read),
        3 => (rows.clone(), counting).prop_map(|(rows, counting)| Step::Upsert(rows, counting)),
        1 => keys.prop_map(Step::Delete),
    ];
    (rows, prop::collection::vec(step, 1..6))
}

/// Rows to upsert; with the counter, a key's later repeats are dropped
/// (the documented limit, see the module docs).
fn puts<K: Clone + Eq + std::hash::Hash>(rows: &[(K, u8)], counting: bool) -> Vec<Put<K>> {
    let mut seen = HashSet::new();
    rows.iter()
        .filter(|(key, _)| !counting || seen.insert(key.clone()))
        .map(|(key, v)| Put {
            key: key.clone(),
            v: format!("v{v}"),
        })
        .collect()
}

/// Run the property for one table kind on backend `DB`.
pub fn property<DB, K, R>(
    kind: &Kind,
    any_key: impl Strategy<Value = K> + Clone,
    writable: impl Strategy<Value = K> + Clone,
    via: Via,
    counter: Counter,
) where
    DB: Backend,
    K: TestKey<DB>,
    Put<K>: Naive<DB, Key = K>,
    R: TestRow<DB>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let Some(pool) = runtime.block_on(DB::connect()) else {
        return;
    };
    let twins = runtime.block_on(kind.create(&pool));
    let config = Config {
        cases: cases(),
        max_shrink_iters: 64,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let outcome = runner.run(&steps(any_key, writable, counter), |(seed, steps)| {
        runtime
            .block_on(async {
                twins.clear().await;
                twins
                    .upsert::<_, R>(&puts(&seed, false), false, via)
                    .await?;
                for step in steps {
                    match step {
                        Step::Read(keys) => twins.read::<K, R>(&keys, via).await?,
                        Step::Upsert(rows, counting) => {
                            let rows = puts(&rows, counting);
                            twins.upsert::<_, R>(&rows, counting, via).await?;
                        }
                        Step::Delete(keys) => twins.delete::<K, R>(&keys, via).await?,
                    }
                }
                Ok::<(), String>(())
            })
            .map_err(TestCaseError::fail)
    });
    runtime.block_on(twins.drop());
    if let Err(failure) = outcome {
        panic!(
            "{} {} ({via:?}, counter {counter:?}): {failure}",
            DB::NAME,
            kind.prefix
        );
    }
}

/// `i64` keys on an `INT` column; reads and deletes also ask for keys
/// outside its range (the naive query answers "no row").
fn i64_keys_on_int<DB>()
where
    DB: Backend,
    i64: TestKey<DB>,
    Put<i64>: Naive<DB, Key = i64>,
    Int4: TestRow<DB>,
{
    let edge = i64::from(i32::MAX);
    let any = prop_oneof![-3i64..5, Just(edge), Just(edge + 1), Just(i64::MIN)];
    let writable = prop_oneof![-3i64..5, Just(edge), Just(-edge)];
    property::<DB, i64, Int4>(&INT_KEY, any, writable, Via::Direct, Counter::Sometimes);
}

/// `i32` keys on a `BIGINT` column.
fn i32_keys_on_bigint<DB>()
where
    DB: Backend,
    i32: TestKey<DB>,
    Put<i32>: Naive<DB, Key = i32>,
    Int8: TestRow<DB>,
{
    let keys = prop_oneof![-3i32..5, Just(i32::MAX), Just(i32::MIN)];
    property::<DB, i32, Int8>(
        &BIGINT_KEY,
        keys.clone(),
        keys,
        Via::Direct,
        Counter::Sometimes,
    );
}

/// `i16` keys on an `INT` column.
fn i16_keys_on_int<DB>()
where
    DB: Backend,
    i16: TestKey<DB>,
    Put<i16>: Naive<DB, Key = i16>,
    Int4: TestRow<DB>,
{
    let keys = prop_oneof![-3i16..5, Just(i16::MAX), Just(i16::MIN)];
    property::<DB, i16, Int4>(
        &INT_KEY,
        keys.clone(),
        keys,
        Via::Direct,
        Counter::Sometimes,
    );
}

#[test]
fn postgres_citext() {
    property::<Postgres, String, Text>(
        &PG_CITEXT,
        text_key(),
        text_key(),
        Via::Direct,
        Counter::Sometimes,
    );
}

#[test]
fn postgres_citext_through_the_engine() {
    property::<Postgres, String, Text>(
        &PG_CITEXT,
        text_key(),
        text_key(),
        Via::Engine,
        Counter::Sometimes,
    );
}

#[test]
fn postgres_char_n() {
    property::<Postgres, String, Text>(
        &PG_CHAR,
        text_key(),
        text_key(),
        Via::Direct,
        Counter::Sometimes,
    );
}

/// A nondeterministic ICU collation: `e`, `E` and `é` are one key.
#[test]
fn postgres_icu_case_and_accent_insensitive() {
    property::<Postgres, String, Text>(
        &PG_ICU_CI_AI,
        text_key(),
        text_key(),
        Via::Direct,
        Counter::Sometimes,
    );
}
#[test]
fn postgres_icu_case_and_accent_insensitive_through_the_engine() {
    property::<Postgres, String, Text>(
        &PG_ICU_CI_AI,
        text_key(),
        text_key(),
        Via::Engine,
        Counter::Sometimes,
    );
}

/// The ICU collation equates `ß` with `ss` and `æ` with `ae`: keys of
/// different lengths are one key.
#[test]
fn postgres_icu_expansions() {
    property::<Postgres, String, Text>(
        &PG_ICU_CI_AI,
        expanding_key(),
        expanding_key(),
        Via::Direct,
        Counter::Sometimes,
    );
}

#[test]
fn postgres_icu_expansions_through_the_engine() {
    property::<Postgres, String, Text>(
        &PG_ICU_CI_AI,
        expanding_key(),
        expanding_key(),
        Via::Engine,
        Counter::Sometimes,
    );
}

/// The control: keys compare as Rust compares them (PostgreSQL pads no
/// upsert, so the counter is in the control too).
#[test]
fn postgres_text_control() {
    property::<Postgres, String, Text>(
        &PG_TEXT,
        text_key(),
        text_key(),
        Via::Direct,
        Counter::Sometimes,
    );
}

#[test]
fn postgres_text_control_through_the_engine() {
    property::<Postgres, String, Text>(
        &PG_TEXT,
        text_key(),
        text_key(),
        Via::Engine,
        Counter::Sometimes,
    );
}

#[test]
fn postgres_null_key_parts() {
    property::<Postgres, _, Pair>(
        &PAIRS,
        pair_key(),
        pair_key(),
        Via::Direct,
        Counter::Sometimes,
    );
}

#[test]
fn postgres_i64_keys_on_int() {
    i64_keys_on_int::<Postgres>();
}

#[test]
fn postgres_i32_keys_on_bigint() {
    i32_keys_on_bigint::<Postgres>();
}

#[test]
fn postgres_i16_keys_on_int() {
    i16_keys_on_int::<Postgres>();
}

#[test]
fn mysql_general_ci() {
    property::<MySql, String, Text>(
        &MY_CI,
        text_key(),
        text_key(),
        Via::Direct,
        Counter::Sometimes,
    );
}

#[test]
fn mysql_general_ci_through_the_engine() {
    property::<MySql, String, Text>(
        &MY_CI,
        text_key(),
        text_key(),
        Via::Engine,
        Counter::Sometimes,
    );
}

/// `utf8mb4_unicode_520_ci`: case- and accent-insensitive, PAD SPACE.
#[test]
fn mysql_unicode_520_ci() {
    property::<MySql, String, Text>(
        &MY_UNICODE_CI,
        text_key(),
        text_key(),
        Via::Direct,
        Counter::Sometimes,
    );
}
#[test]
fn mysql_unicode_520_ci_through_the_engine() {
    property::<MySql, String, Text>(
        &MY_UNICODE_CI,
        text_key(),
        text_key(),
        Via::Engine,
        Counter::Sometimes,
    );
}

/// `utf8mb4_unicode_520_ci` equates `ß` with `ss` and `æ` with `ae`.
#[test]
fn mysql_unicode_520_ci_expansions() {
    property::<MySql, String, Text>(
        &MY_UNICODE_CI,
        expanding_key(),
        expanding_key(),
        Via::Direct,
        Counter::Sometimes,
    );
}

#[test]
fn mysql_unicode_520_ci_expansions_through_the_engine() {
    property::<MySql, String, Text>(
        &MY_UNICODE_CI,
        expanding_key(),
        expanding_key(),
        Via::Engine,
        Counter::Sometimes,
    );
}

/// `utf8mb4_uca1400_nopad_ai_ci`: case- and accent-insensitive with
/// expansions, like `unicode_520_ci`, but trailing spaces count.
#[test]
fn mysql_uca1400_nopad_ai_ci() {
    property::<MySql, String, Text>(
        &MY_UCA1400_NOPAD,
        unicode_key(),
        unicode_key(),
        Via::Direct,
        Counter::Sometimes,
    );
}

#[test]
fn mysql_uca1400_nopad_ai_ci_through_the_engine() {
    property::<MySql, String, Text>(
        &MY_UCA1400_NOPAD,
        unicode_key(),
        unicode_key(),
        Via::Engine,
        Counter::Sometimes,
    );
}

/// `utf8mb4_bin` is PAD SPACE in MariaDB: `'a' = 'a '`.
#[test]
fn mysql_bin_pads_spaces() {
    property::<MySql, String, Text>(
        &MY_BIN,
        text_key(),
        text_key(),
        Via::Direct,
        Counter::Sometimes,
    );
}

/// The control: keys compare as Rust compares them; no counter.
#[test]
fn mysql_nopad_bin_control() {
    property::<MySql, String, Text>(
        &MY_NOPAD,
        text_key(),
        text_key(),
        Via::Direct,
        Counter::Never,
    );
}

#[test]
fn mysql_nopad_bin_control_through_the_engine() {
    property::<MySql, String, Text>(
        &MY_NOPAD,
        text_key(),
        text_key(),
        Via::Engine,
        Counter::Never,
    );
}

/// The control with the counter: padding must not repeat a row.
#[test]
fn mysql_nopad_bin_counter() {
    property::<MySql, String, Text>(
        &MY_NOPAD,
        text_key(),
        text_key(),
        Via::Direct,
        Counter::Sometimes,
    );
}

#[test]
fn mysql_i64_keys_on_int() {
    i64_keys_on_int::<MySql>();
}

#[test]
fn mysql_i32_keys_on_bigint() {
    i32_keys_on_bigint::<MySql>();
}

#[test]
fn mysql_i16_keys_on_int() {
    i16_keys_on_int::<MySql>();
}

#[test]
fn mysql_null_key_parts() {
    property::<MySql, _, Pair>(
        &PAIRS,
        pair_key(),
        pair_key(),
        Via::Direct,
        Counter::Sometimes,
    );
}

#[test]
fn sqlite_nocase() {
    property::<Sqlite, String, Text>(
        &LITE_NOCASE,
        text_key(),
        text_key(),
        Via::Direct,
        Counter::Sometimes,
    );
}

#[test]
fn sqlite_nocase_through_the_engine() {
    property::<Sqlite, String, Text>(
        &LITE_NOCASE,
        text_key(),
        text_key(),
        Via::Engine,
        Counter::Sometimes,
    );
}

/// `RTRIM`: trailing spaces ignored, case kept.
#[test]
fn sqlite_rtrim() {
    property::<Sqlite, String, Text>(
        &LITE_RTRIM,
        text_key(),
        text_key(),
        Via::Direct,
        Counter::Sometimes,
    );
}
#[test]
fn sqlite_rtrim_through_the_engine() {
    property::<Sqlite, String, Text>(
        &LITE_RTRIM,
        text_key(),
        text_key(),
        Via::Engine,
        Counter::Sometimes,
    );
}

/// The control: keys compare as Rust compares them; no counter.
#[test]
fn sqlite_text_control() {
    property::<Sqlite, String, Text>(
        &LITE_TEXT,
        text_key(),
        text_key(),
        Via::Direct,
        Counter::Never,
    );
}

#[test]
fn sqlite_text_control_through_the_engine() {
    property::<Sqlite, String, Text>(
        &LITE_TEXT,
        text_key(),
        text_key(),
        Via::Engine,
        Counter::Never,
    );
}

/// The control with the counter: padding must not repeat a row.
#[test]
fn sqlite_text_counter() {
    property::<Sqlite, String, Text>(
        &LITE_TEXT,
        text_key(),
        text_key(),
        Via::Direct,
        Counter::Sometimes,
    );
}

#[test]
fn sqlite_null_key_parts() {
    property::<Sqlite, _, Pair>(
        &PAIRS,
        pair_key(),
        pair_key(),
        Via::Direct,
        Counter::Sometimes,
    );
}
