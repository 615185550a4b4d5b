//! `Rows`, the coalesced handle of a table, on all three backends: each
//! call answers as its own statement would, concurrent calls share
//! statements, one bad item fails alone, and a call that starts after a
//! write returned sees it, through any handle built over the same `Db`.

mod common;

use coalesce_sql::{Db, Dialect, KeyPart, Record, Rows, RowsOptions, Table, TableRow};
use futures::future::join_all;
use proptest::prelude::*;
use sqlx::{Executor, MySql, Pool, Postgres, Sqlite};
use std::collections::{HashMap, HashSet};

/// A row of the tests' table: `id` and a value that must not be negative.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Record)]
#[record(table = "rows_handle", key(id))]
struct Item {
    id: i64,
    qty: i64,
}

/// A composite key, to cover tuples through the derive.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Record)]
#[record(table = "rows_handle_lines", key(order_id, line_no))]
struct Line {
    order_id: i64,
    line_no: i32,
    sku: String,
}

/// Each backend's pool and DDL spelling.
trait Backend: Dialect {
    const LABEL: &'static str;
    async fn pool() -> Option<Pool<Self>>;
}

impl Backend for Postgres {
    const LABEL: &'static str = "PostgreSQL";
    async fn pool() -> Option<Pool<Self>> {
        common::postgres().await
    }
}

impl Backend for MySql {
    const LABEL: &'static str = "MariaDB";
    async fn pool() -> Option<Pool<Self>> {
        common::mysql().await
    }
}

impl Backend for Sqlite {
    const LABEL: &'static str = "SQLite";
    async fn pool() -> Option<Pool<Self>> {
        common::sqlite().await
    }
}

/// A fresh copy of `R`'s table named for this test, created with
/// `columns`; the `Db` and the name.
async fn table<DB: Backend>(prefix: &str, columns: &str) -> Option<(Db<DB>, String)>
where
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
{
    let pool = DB::pool().await?;
    let name = common::unique(prefix);
    let ddl = format!("CREATE TABLE {name} ({columns})");
    pool.execute(sqlx::AssertSqlSafe(ddl)).await.unwrap();
    Some((Db::new(pool), name))
}

fn named<R: TableRow>(db: &Db<impl Dialect>, name: &str) -> Rows<R> {
    let options = RowsOptions {
        table_name: Some(name.to_owned()),
        ..RowsOptions::default()
    };
    db.rows_with(options).unwrap()
}

const ITEMS: &str = "id BIGINT PRIMARY KEY, qty BIGINT NOT NULL CHECK (qty >= 0)";

/// Gets, saves and deletes answer as one statement each would, and
/// concurrent calls made in one poll share one statement per kind.
async fn answers_and_statements<DB: Backend>()
where
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
{
    let Some((db, name)) = table::<DB>("rows_basic", ITEMS).await else {
        return;
    };
    let items: Rows<Item> = named(&db, &name);
    let saved = items
        .save_many((1..=50).map(|id| Item { id, qty: id * 10 }))
        .await;
    assert!(saved.iter().all(Result::is_ok), "{}: {saved:?}", DB::LABEL);
    assert_eq!(
        db.statements(),
        1,
        "{}: 50 saves in one statement",
        DB::LABEL
    );

    let before = db.statements();
    let found = items.get_many(0..=60).await.unwrap();
    assert_eq!(db.statements() - before, 1, "{}: 61 gets", DB::LABEL);
    for (id, row) in (0..=60).zip(&found) {
        let expected = (1..=50).contains(&id).then(|| Item { id, qty: id * 10 });
        assert_eq!(row, &expected, "{}: id {id}", DB::LABEL);
    }

    // A key deleted twice in one batch: true, then false, as one after
    // the other; a key never there: false.
    let deleted = items.delete_many([7, 7, 99, 8]).await;
    let deleted: Vec<bool> = deleted.into_iter().map(Result::unwrap).collect();
    assert_eq!(deleted, [true, false, false, true], "{}", DB::LABEL);
    assert_eq!(items.get(7).await.unwrap(), None, "{}", DB::LABEL);
    assert_eq!(items.get(9).await.unwrap(), Some(Item { id: 9, qty: 90 }));

    // Two saves of one key in one batch: the second wins.
    let saves = items
        .save_many([Item { id: 3, qty: 1 }, Item { id: 3, qty: 2 }])
        .await;
    assert!(saves.iter().all(Result::is_ok), "{}: {saves:?}", DB::LABEL);
    assert_eq!(items.get(3).await.unwrap(), Some(Item { id: 3, qty: 2 }));
}

#[tokio::test]
async fn answers_and_statements_postgres() {
    answers_and_statements::<Postgres>().await;
}

#[tokio::test]
async fn answers_and_statements_mysql() {
    answers_and_statements::<MySql>().await;
}

#[tokio::test]
async fn answers_and_statements_sqlite() {
    answers_and_statements::<Sqlite>().await;
}

/// A row breaking a CHECK among good rows fails alone, and nothing of it
/// is written; the good rows are.
async fn one_bad_row_fails_alone<DB: Backend>()
where
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
{
    let Some((db, name)) = table::<DB>("rows_bad", ITEMS).await else {
        return;
    };
    let items: Rows<Item> = named(&db, &name);
    let rows = (1..=20).map(|id| Item {
        id,
        qty: if id == 13 { -1 } else { id },
    });
    let saved = items.save_many(rows).await;
    for (id, result) in (1..=20).zip(&saved) {
        assert_eq!(
            result.is_err(),
            id == 13,
            "{}: id {id}: {result:?}",
            DB::LABEL
        );
    }
    let found = items.get_many(1..=20).await.unwrap();
    for (id, row) in (1..=20).zip(found) {
        assert_eq!(row.is_none(), id == 13, "{}: id {id}", DB::LABEL);
    }
}

#[tokio::test]
async fn one_bad_row_fails_alone_postgres() {
    one_bad_row_fails_alone::<Postgres>().await;
}

#[tokio::test]
async fn one_bad_row_fails_alone_mysql() {
    one_bad_row_fails_alone::<MySql>().await;
}

#[tokio::test]
async fn one_bad_row_fails_alone_sqlite() {
    one_bad_row_fails_alone::<Sqlite>().await;
}

/// One operation of the mixed workload.
#[derive(Debug, Clone, Copy)]
enum Op {
    Get(i64),
    Save(i64, i64),
    Delete(i64),
}

/// What an operation answered: a get's value, a delete's "existed".
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Got(Option<i64>),
    Saved,
    Deleted(bool),
}

/// Task `t`'s operations on its own keys (`t * 10 ..`), whose answers a
/// sequential replay fixes; shared keys (`-1 ..= -5`) are only saved.
fn script(t: i64) -> Vec<Op> {
    let own = t * 10;
    vec![
        Op::Get(own),
        Op::Save(own, t),
        Op::Get(own),
        Op::Save(-(t % 5) - 1, t),
        Op::Save(own + 1, t + 1),
        Op::Delete(own),
        Op::Get(own),
        Op::Delete(own),
        Op::Save(own, t + 2),
        Op::Delete(own + 2),
        Op::Get(own + 1),
    ]
}

/// The answers of `ops` run one after another on `table` (the model).
fn replay(ops: &[Op], table: &mut HashMap<i64, i64>) -> Vec<Answer> {
    ops.iter()
        .map(|op| match *op {
            Op::Get(id) => Answer::Got(table.get(&id).copied()),
            Op::Save(id, qty) => {
                table.insert(id, qty);
                Answer::Saved
            }
            Op::Delete(id) => Answer::Deleted(table.remove(&id).is_some()),
        })
        .collect()
}

/// 1,000 tasks, each running its script through its own clone of the
/// handle (gets, saves and deletes of one task coalesced with everyone
/// else's): every answer equals the task's sequential replay, the final
/// table equals the replay of all tasks on their own keys, and each
/// shared key holds a value some task saved there.
async fn mixed_tasks_equal_a_sequential_replay<DB: Backend>()
where
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
{
    const TASKS: i64 = 1000;
    let Some((db, name)) = table::<DB>("rows_mixed", ITEMS).await else {
        return;
    };
    let items: Rows<Item> = named(&db, &name);
    let tasks = (0..TASKS).map(|t| {
        let items = items.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for op in script(t) {
                answers.push(match op {
                    Op::Get(id) => Answer::Got(items.get(id).await?.map(|item| item.qty)),
                    Op::Save(id, qty) => {
                        items.save(Item { id, qty }).await.map(|()| Answer::Saved)?
                    }
                    Op::Delete(id) => Answer::Deleted(items.delete(id).await?),
                });
            }
            Ok::<_, coalesce_sql::RowsError>(answers)
        })
    });
    let answers = join_all(tasks).await;
    let mut model = HashMap::new();
    for (t, answers) in (0..TASKS).zip(answers) {
        let answers = answers.unwrap().unwrap();
        let own: Vec<Op> = script(t)
            .into_iter()
            .filter(|op| !matches!(op, Op::Save(id, _) if *id < 0))
            .collect();
        let expected = replay(&own, &mut model);
        let answered: Vec<Answer> = answers
            .into_iter()
            .zip(script(t))
            .filter(|(_, op)| !matches!(op, Op::Save(id, _) if *id < 0))
            .map(|(answer, _)| answer)
            .collect();
        assert_eq!(answered, expected, "{}: task {t}", DB::LABEL);
    }
    // Every key any task touched, read back after all writes.
    let touched: Vec<i64> = (-5..0)
        .chain((0..TASKS).flat_map(|t| t * 10..t * 10 + 3))
        .collect();
    let final_rows: Vec<(i64, i64)> = items
        .get_many(touched)
        .await
        .unwrap()
        .into_iter()
        .flatten()
        .map(|item| (item.id, item.qty))
        .collect();
    let (shared, own): (Vec<_>, Vec<_>) = final_rows.into_iter().partition(|(id, _)| *id < 0);
    let mut expected: Vec<(i64, i64)> = model.into_iter().collect();
    expected.sort_unstable();
    assert_eq!(own, expected, "{}: final rows", DB::LABEL);
    assert_eq!(shared.len(), 5, "{}", DB::LABEL);
    for (id, qty) in shared {
        let savers: HashSet<i64> = (0..TASKS).filter(|t| -(t % 5) - 1 == id).collect();
        assert!(savers.contains(&qty), "{}: shared {id} = {qty}", DB::LABEL);
    }
    let stats = items.stats();
    assert!(
        stats.total_operations < stats.loads_requested / 5,
        "{}: coalesced: {stats:?}",
        DB::LABEL
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_tasks_equal_a_sequential_replay_postgres() {
    mixed_tasks_equal_a_sequential_replay::<Postgres>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_tasks_equal_a_sequential_replay_mysql() {
    mixed_tasks_equal_a_sequential_replay::<MySql>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_tasks_equal_a_sequential_replay_sqlite() {
    mixed_tasks_equal_a_sequential_replay::<Sqlite>().await;
}

/// Composite keys through the derive: the same answers as single ones.
async fn composite_keys<DB: Backend>()
where
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
{
    let columns = "order_id BIGINT NOT NULL, line_no INT NOT NULL, sku VARCHAR(20) NOT NULL, PRIMARY KEY (order_id, line_no)";
    let Some((db, name)) = table::<DB>("rows_lines", columns).await else {
        return;
    };
    let lines: Rows<Line> = named(&db, &name);
    let line = |order_id, line_no| Line {
        order_id,
        line_no,
        sku: format!("sku-{order_id}-{line_no}"),
    };
    let saved = lines.save_many([line(1, 1), line(1, 2), line(2, 1)]).await;
    assert!(saved.iter().all(Result::is_ok), "{}", DB::LABEL);
    let found = lines.get_many([(1, 1), (1, 3), (2, 1)]).await.unwrap();
    assert_eq!(
        found,
        [Some(line(1, 1)), None, Some(line(2, 1))],
        "{}",
        DB::LABEL
    );
    assert!(lines.delete((1, 2)).await.unwrap(), "{}", DB::LABEL);
    assert_eq!(lines.get((1, 2)).await.unwrap(), None, "{}", DB::LABEL);
}

#[tokio::test]
async fn composite_keys_postgres() {
    composite_keys::<Postgres>().await;
}

#[tokio::test]
async fn composite_keys_mysql() {
    composite_keys::<MySql>().await;
}

#[tokio::test]
async fn composite_keys_sqlite() {
    composite_keys::<Sqlite>().await;
}

#[test]
fn the_derive_describes_the_table() {
    let table = Line::table();
    assert_eq!(table.name(), "rows_handle_lines");
    assert_eq!(table.key_columns(), ["order_id", "line_no"]);
    assert_eq!(table.value_columns(), ["sku"]);
    let line = Line {
        order_id: 4,
        line_no: 2,
        sku: "x".into(),
    };
    assert_eq!(Record::<Sqlite>::key(&line), (4, 2));
}

/// The tests' row through a gate: each row a read returns first calls
/// `rows_handle_gate()`, which waits while the test holds the gate's lock
/// (after the row was read, so the read answers what it saw before).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct Gated {
    id: i64,
    qty: i64,
}

impl<DB: Dialect> Record<DB> for Gated
where
    i64: KeyPart<DB>,
{
    type Key = i64;
    type Values<'a> = (&'a i64,);
    fn key(&self) -> i64 {
        self.id
    }
    fn values(&self) -> Self::Values<'_> {
        (&self.qty,)
    }
}

impl TableRow for Gated {
    type Key = i64;
    fn table() -> Table {
        Table::new("gated")
            .key(["id"])
            .values(["qty"])
            .select("id, qty, rows_handle_gate() AS gate")
    }
    coalesce_sql::table_row_backends!();
}

/// A server whose reads can be held in flight by a lock the test holds.
trait Gate: Backend {
    /// `CREATE ... FUNCTION rows_handle_gate()`: waits for the lock.
    const FUNCTION: &'static str;
    /// Take the lock on `connection`, for as long as it is held.
    const LOCK: &'static str;
    const UNLOCK: &'static str;
    /// How many statements wait for the lock.
    const WAITING: &'static str;
}

impl Gate for Postgres {
    const FUNCTION: &'static str = "CREATE OR REPLACE FUNCTION rows_handle_gate() RETURNS INT \
        LANGUAGE sql AS 'SELECT pg_advisory_xact_lock_shared(4242); SELECT 1'";
    const LOCK: &'static str = "SELECT pg_advisory_lock(4242)";
    const UNLOCK: &'static str = "SELECT pg_advisory_unlock(4242)";
    const WAITING: &'static str = "SELECT COUNT(*) FROM pg_locks \
        WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted";
}

impl Gate for MySql {
    const FUNCTION: &'static str = "CREATE OR REPLACE FUNCTION rows_handle_gate() RETURNS INT \
        NOT DETERMINISTIC RETURN GET_LOCK('rows_handle_gate', 60) + RELEASE_LOCK('rows_handle_gate')";
    const LOCK: &'static str = "SELECT GET_LOCK('rows_handle_gate', 60)";
    const UNLOCK: &'static str = "SELECT RELEASE_LOCK('rows_handle_gate')";
    const WAITING: &'static str = "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
        WHERE STATE = 'User lock'";
}

/// Taken by each gate test for its whole run (they run on separate
/// runtimes, so an async mutex that belongs to none).
static GATE_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Which write the second handle makes while the first's read is held.
#[derive(Debug, Clone, Copy)]
enum Write {
    Save,
    Delete,
}

/// Two handles over one `Db` (and a clone of it): a read through B held
/// in flight across a write of its key through A; a read through B that
/// starts after the write returned sees the write, where joining the read
/// in flight would answer the value from before.
async fn reads_after_a_write_see_it_across_handles<DB: Gate>(write: Write)
where
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    i64: KeyPart<DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    // One gate test at a time: they share the lock, and the probe counts
    // every statement waiting for it.
    let _turn = GATE_TURN.lock().await;
    let Some((db, name)) = table::<DB>("rows_gated", ITEMS).await else {
        return;
    };
    db.pool().execute(DB::FUNCTION).await.unwrap();
    let writer: Rows<Gated> = named(&db.clone(), &name);
    let reader: Rows<Gated> = named(&db, &name);
    writer.save(Gated { id: 1, qty: 1 }).await.unwrap();

    // The gate and the probe on a pool of their own: the `Db`'s two
    // connections are for the held read and the write.
    let side = DB::pool().await.unwrap();
    let mut gate = side.acquire().await.unwrap();
    (&mut *gate).execute(DB::LOCK).await.unwrap();
    let held = tokio::spawn({
        let reader = reader.clone();
        async move { reader.get(1).await }
    });
    // Wait (on the server's own word) until that read is at the gate.
    let mut waiting = 0;
    for _ in 0..3000 {
        let row = side.fetch_one(DB::WAITING).await.unwrap();
        waiting = sqlx::Row::get::<i64, _>(&row, 0_usize);
        if waiting > 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(
        waiting > 0,
        "{}: the first read never reached the gate",
        DB::LABEL
    );

    match write {
        Write::Save => writer.save(Gated { id: 1, qty: 2 }).await.unwrap(),
        Write::Delete => assert!(writer.delete(1).await.unwrap()),
    }
    let mut after = Box::pin(reader.get(1));
    assert!(futures::poll!(&mut after).is_pending(), "{}", DB::LABEL);
    (&mut *gate).execute(DB::UNLOCK).await.unwrap();

    let before = held.await.unwrap().unwrap();
    assert_eq!(
        before,
        Some(Gated { id: 1, qty: 1 }),
        "{}: read before the write",
        DB::LABEL
    );
    let expected = match write {
        Write::Save => Some(Gated { id: 1, qty: 2 }),
        Write::Delete => None,
    };
    assert_eq!(after.await.unwrap(), expected, "{}: {write:?}", DB::LABEL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_after_a_save_sees_it_across_handles_postgres() {
    reads_after_a_write_see_it_across_handles::<Postgres>(Write::Save).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_after_a_delete_sees_it_across_handles_postgres() {
    reads_after_a_write_see_it_across_handles::<Postgres>(Write::Delete).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_after_a_save_sees_it_across_handles_mysql() {
    reads_after_a_write_see_it_across_handles::<MySql>(Write::Save).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_after_a_delete_sees_it_across_handles_mysql() {
    reads_after_a_write_see_it_across_handles::<MySql>(Write::Delete).await;
}

/// One group of calls made together (one poll of one task), all of one
/// kind: gets, saves or deletes of keys `0..KEYS`, a negative quantity
/// breaking the CHECK.
#[derive(Debug, Clone)]
enum Group {
    Gets(Vec<i64>),
    Saves(Vec<(i64, i64)>),
    Deletes(Vec<i64>),
}

const KEYS: i64 = 6;

fn group() -> impl Strategy<Value = Group> {
    let key = 0..KEYS;
    let calls = 1..12usize;
    prop_oneof![
        prop::collection::vec(key.clone(), calls.clone()).prop_map(Group::Gets),
        prop::collection::vec((key.clone(), -1..4i64), calls.clone()).prop_map(Group::Saves),
        prop::collection::vec(key, calls).prop_map(Group::Deletes),
    ]
}

/// What a call answered; `None` for a failed call.
type Answers = Vec<Option<String>>;

/// Run `groups` through `items`, each group's calls together, the groups
/// one after another; every answer, then the table's rows.
async fn run_groups(items: &Rows<Item>, groups: &[Group]) -> (Answers, Vec<Option<Item>>) {
    let mut answers = Answers::new();
    for group in groups {
        match group {
            Group::Gets(ids) => answers.extend(
                join_all(ids.iter().map(|&id| items.get(id)))
                    .await
                    .into_iter()
                    .map(|got| got.ok().map(|row| format!("{row:?}"))),
            ),
            Group::Saves(rows) => answers.extend(
                items
                    .save_many(rows.iter().map(|&(id, qty)| Item { id, qty }))
                    .await
                    .into_iter()
                    .map(|saved| saved.ok().map(|()| "saved".to_owned())),
            ),
            Group::Deletes(ids) => answers.extend(
                items
                    .delete_many(ids.iter().copied())
                    .await
                    .into_iter()
                    .map(|deleted| deleted.ok().map(|d| d.to_string())),
            ),
        }
    }
    let rows = items.get_many(0..KEYS).await.unwrap();
    (answers, rows)
}

/// Random groups of calls through a coalesced handle answer, call by
/// call, what the same calls one at a time through a per-item handle
/// answer (saves of a key in call order, a key deleted twice `true` then
/// `false`, the bad row alone failing), and leave the same rows.
fn coalesced_equals_per_item<DB: Backend>()
where
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Some(((db, batched), serial)) = runtime.block_on(async {
        let (db, batched) = table::<DB>("rows_prop_b", ITEMS).await?;
        let serial = common::unique("rows_prop_s");
        let ddl = format!("CREATE TABLE {serial} ({ITEMS})");
        db.pool().execute(sqlx::AssertSqlSafe(ddl)).await.unwrap();
        Some(((db, batched), serial))
    }) else {
        return;
    };
    let coalesced: Rows<Item> = named(&db, &batched);
    let per_item: Rows<Item> = db
        .rows_with(RowsOptions {
            table_name: Some(serial),
            per_item: true,
            ..RowsOptions::default()
        })
        .unwrap();
    let config = ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let strategy = prop::collection::vec(group(), 1..5);
    let result = runner.run(&strategy, |groups| {
        runtime.block_on(async {
            let _ = coalesced.delete_many(0..KEYS).await;
            let _ = per_item.delete_many(0..KEYS).await;
            let batched = run_groups(&coalesced, &groups).await;
            let mut one_by_one = (Answers::new(), Vec::new());
            for call in groups.iter().flat_map(single_calls) {
                let (answers, rows) = run_groups(&per_item, &[call]).await;
                one_by_one.0.extend(answers);
                one_by_one.1 = rows;
            }
            prop_assert_eq!(&batched, &one_by_one, "{}", DB::LABEL);
            Ok(())
        })
    });
    if let Err(failure) = result {
        panic!("{}: {failure}", DB::LABEL);
    }
}

/// A group's calls, each alone.
fn single_calls(group: &Group) -> Vec<Group> {
    match group {
        Group::Gets(ids) => ids.iter().map(|&id| Group::Gets(vec![id])).collect(),
        Group::Saves(rows) => rows.iter().map(|&row| Group::Saves(vec![row])).collect(),
        Group::Deletes(ids) => ids.iter().map(|&id| Group::Deletes(vec![id])).collect(),
    }
}

#[test]
fn coalesced_equals_per_item_postgres() {
    coalesced_equals_per_item::<Postgres>();
}

#[test]
fn coalesced_equals_per_item_mysql() {
    coalesced_equals_per_item::<MySql>();
}

#[test]
fn coalesced_equals_per_item_sqlite() {
    coalesced_equals_per_item::<Sqlite>();
}

/// `db.rows()` taken inline in each caller (as a handler would) shares one
/// handle across the `Db`'s clones: concurrent calls still share a
/// statement. A handle with options of its own is apart.
#[tokio::test]
async fn handles_taken_inline_share_batches() {
    let Some(pool) = common::sqlite().await else {
        return;
    };
    let ddl = format!("CREATE TABLE {} ({ITEMS})", Item::table().name());
    pool.execute(sqlx::AssertSqlSafe(ddl)).await.unwrap();
    let db = Db::new(pool);
    let saved = db
        .rows::<Item>()
        .save_many((1..=3).map(|id| Item { id, qty: id }))
        .await;
    assert!(saved.iter().all(Result::is_ok));

    let clone = db.clone();
    let before = db.statements();
    let (a, b) = tokio::join!(async { db.rows::<Item>().get(1).await }, async {
        clone.rows::<Item>().get(2).await
    },);
    assert_eq!(
        (a.unwrap(), b.unwrap()),
        (Some(Item { id: 1, qty: 1 }), Some(Item { id: 2, qty: 2 }))
    );
    assert_eq!(db.statements() - before, 1, "one statement for both");

    let own = db.rows_with::<Item>(RowsOptions::default()).unwrap();
    let before = db.statements();
    let (a, b) = tokio::join!(async { db.rows::<Item>().get(1).await }, own.get(2));
    assert!(a.unwrap().is_some() && b.unwrap().is_some());
    assert_eq!(
        db.statements() - before,
        2,
        "a handle of its own batches apart"
    );
}

/// With a cache, a save empties it for every key of the table, unless the
/// handle's keys compare exactly (`exact_keys`): then only the saved key is
/// read again. A delete through a handle keyed by part of the key (another
/// key type) still detaches every read.
#[tokio::test]
async fn exact_keys_detach_only_the_keys_written() {
    let Some(pool) = common::sqlite().await else {
        return;
    };
    let ddl = format!("CREATE TABLE {} ({ITEMS})", Item::table().name());
    pool.execute(sqlx::AssertSqlSafe(ddl)).await.unwrap();
    let db = Db::new(pool);
    let cached = |exact_keys| RowsOptions {
        cache: coalesce::CachePolicy::Unbounded,
        exact_keys,
        ..RowsOptions::default()
    };
    let (exact, loose) = (
        db.rows_with::<Item>(cached(true)).unwrap(),
        db.rows_with::<Item>(cached(false)).unwrap(),
    );
    let saved = exact
        .save_many((1..=2).map(|id| Item { id, qty: id }))
        .await;
    assert!(saved.iter().all(Result::is_ok));
    // Read (and cache) both keys through both handles.
    let reads = |rows: Rows<Item>| async move { rows.get_many([1, 2]).await.unwrap() };
    reads(exact.clone()).await;
    reads(loose.clone()).await;

    exact.save(Item { id: 1, qty: 10 }).await.unwrap();
    let before = db.statements();
    assert_eq!(exact.get(2).await.unwrap(), Some(Item { id: 2, qty: 2 }));
    assert_eq!(db.statements(), before, "exact: key 2 stays cached");
    assert_eq!(exact.get(1).await.unwrap(), Some(Item { id: 1, qty: 10 }));
    assert_eq!(db.statements(), before + 1, "exact: key 1 is read again");
    assert_eq!(loose.get(2).await.unwrap(), Some(Item { id: 2, qty: 2 }));
    assert_eq!(
        db.statements(),
        before + 2,
        "loose: every key is read again"
    );

    // A write by a key of another type: the exact handle cannot tell which
    // of its keys it covers, so it reads again too.
    db.delete(&Table::new(Item::table().name()).key(["id"]), &[99_i32])
        .await
        .unwrap();
    let before = db.statements();
    assert_eq!(exact.get(2).await.unwrap(), Some(Item { id: 2, qty: 2 }));
    assert_eq!(
        db.statements(),
        before + 1,
        "exact: another key type detaches all"
    );
}

/// A line of an order whose lines are numbered 1 to 3: a delete by order
/// covers three keys, which it lists (`TableRow::keys_written_by`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct NumberedLine {
    order_id: i64,
    line_no: i64,
}

impl<DB: Dialect> Record<DB> for NumberedLine
where
    i64: KeyPart<DB>,
{
    type Key = (i64, i64);
    type Values<'a> = ();
    fn key(&self) -> (i64, i64) {
        (self.order_id, self.line_no)
    }
    fn values(&self) {}
}

impl TableRow for NumberedLine {
    type Key = (i64, i64);
    fn table() -> Table {
        Table::new("numbered_lines").key(["order_id", "line_no"])
    }
    fn keys_written_by(key: &dyn std::any::Any) -> Option<Vec<(i64, i64)>> {
        let order = *key.downcast_ref::<i64>()?;
        Some((1..=3).map(|line| (order, line)).collect())
    }
    coalesce_sql::table_row_backends!();
}

/// With exact keys, a delete by order (another key type) detaches the
/// reads of the lines it covers only: the other order's stay cached.
#[tokio::test]
async fn a_write_by_another_key_type_detaches_the_keys_it_covers() {
    let Some(pool) = common::sqlite().await else {
        return;
    };
    let ddl = "CREATE TABLE numbered_lines (order_id BIGINT, line_no BIGINT, \
               PRIMARY KEY (order_id, line_no))";
    pool.execute(ddl).await.unwrap();
    let db = Db::new(pool);
    let lines = db
        .rows_with::<NumberedLine>(RowsOptions {
            cache: coalesce::CachePolicy::Unbounded,
            exact_keys: true,
            ..RowsOptions::default()
        })
        .unwrap();
    let line = |order_id, line_no| NumberedLine { order_id, line_no };
    let saved = lines.save_many([line(1, 1), line(2, 1)]).await;
    assert!(saved.iter().all(Result::is_ok));
    lines.get_many([(1, 1), (2, 1)]).await.unwrap();

    let by_order = Table::new("numbered_lines").key(["order_id"]);
    assert_eq!(db.delete(&by_order, &[1_i64]).await.unwrap(), [1]);
    let before = db.statements();
    assert_eq!(lines.get((2, 1)).await.unwrap(), Some(line(2, 1)));
    assert_eq!(db.statements(), before, "order 2's line stays cached");
    assert_eq!(lines.get((1, 1)).await.unwrap(), None, "the delete is seen");
    assert_eq!(db.statements(), before + 1, "order 1's line is read again");
}

/// A repository trait of the user's own, in a module of its own, with a
/// key built from an argument and a many-key method.
mod inventory {
    use super::Item;
    use std::future::Future;

    #[derive(Debug, thiserror::Error)]
    #[error(transparent)]
    pub struct InventoryError(#[from] coalesce_sql::RowsError);

    pub trait Inventory {
        fn quantity(&self, id: &str) -> impl Future<Output = Result<Option<Item>, InventoryError>>;
        fn all(
            &self,
            ids: Vec<i64>,
        ) -> impl Future<Output = Result<Vec<Option<Item>>, InventoryError>>;
        fn remove(&self, id: i64) -> impl Future<Output = Result<bool, InventoryError>>;
    }
}

coalesce_sql::repository! {
    /// `inventory::Inventory` on `Rows<Item>`.
    struct Stock { items: Item }
    impl inventory::Inventory for Stock {
        /// Ids arrive as text here.
        fn quantity(&self, id: &str) -> Result<Option<Item>, inventory::InventoryError> { self.items.get(id.parse().unwrap_or(-1)) }
        fn all(&self, ids: Vec<i64>) -> Result<Vec<Option<Item>>, inventory::InventoryError> { self.items.get_many(ids) }
        fn remove(&self, id: i64) -> Result<bool, inventory::InventoryError> { self.items.delete(id) }
    }
}

/// `repository!` builds the struct and the trait impl: `coalesced` shares
/// statements across concurrent calls, `per_item` sends one per call, and
/// both answer alike.
#[tokio::test]
async fn the_repository_macro_implements_the_users_trait() {
    use inventory::Inventory;
    let Some(pool) = common::sqlite().await else {
        return;
    };
    let ddl = format!("CREATE TABLE {} ({ITEMS})", Item::table().name());
    pool.execute(sqlx::AssertSqlSafe(ddl)).await.unwrap();
    let db = Db::new(pool);
    let saved = db
        .rows::<Item>()
        .save_many((1..=4).map(|id| Item { id, qty: 10 * id }))
        .await;
    assert!(saved.iter().all(Result::is_ok));

    let mut answers = Vec::new();
    for (repo, statements) in [(Stock::per_item(&db), 4), (Stock::coalesced(&db), 1)] {
        let before = db.statements();
        let found = join_all(["1", "2", "x", "4"].map(|id| repo.quantity(id))).await;
        assert_eq!(db.statements() - before, statements);
        let found: Vec<_> = found.into_iter().map(Result::unwrap).collect();
        answers.push((found, repo.all(vec![3, 5]).await.unwrap()));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0[2], None, "\"x\" is no id");
    assert_eq!(answers[0].1, vec![Some(Item { id: 3, qty: 30 }), None]);

    let stock = Stock::coalesced(&db);
    let removed = join_all([4, 4, 9].map(|id| stock.remove(id))).await;
    let removed: Vec<bool> = removed.into_iter().map(Result::unwrap).collect();
    assert_eq!(removed, [true, false, false]);
}
