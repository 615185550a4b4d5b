//! Read-your-writes over real replicas (started by `scripts/replicas.sh
//! start`): PostgreSQL streaming replication and MariaDB GTID replication.
//!
//! Servers come from `COALESCE_{PG,MYSQL}_{PRIMARY,REPLICA}_URL` (defaults:
//! the script's ports; see `pair`). An unreachable server fails the test
//! when `CI` is set, and otherwise skips it with a loud `SKIPPED:` line.
//!
//! Tests stop replay on the replica, or end its connections, and `pair`
//! restarts replay, so the tests of one backend take turns: `pair` takes the
//! backend's lock, and each test holds it to its end.

use coalesce_sql::replicas::{Position, ReplicaError, ReplicaSettings, Replicated, ServerStats};
use common::unique;
use pair::{Pair, TABLE};
use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::MutexGuard;

#[path = "../common/mod.rs"]
mod common;
mod pair;
mod proxy;
mod rows;

use rows::{
    rows_coalesce_over_replicas, rows_read_after_a_token_of_another_handle,
    rows_read_their_writes_with_replay_paused, rows_report_the_server_that_failed,
};

/// The backend's turn, and the two servers of its pair, reachable; replay
/// running; the table made on both. `None` (after a loud line) when
/// unreachable outside CI.
async fn pair<DB: Pair>() -> Option<(MutexGuard<'static, ()>, String, String)> {
    let turn = DB::turn().lock().await;
    let (primary, replica) = DB::urls();
    for url in [&primary, &replica] {
        if let Err(error) = reachable(url).await {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "{} replica pair unreachable in CI: {error} (run scripts/replicas.sh start)",
                    DB::LABEL
                );
            }
            eprintln!(
                "SKIPPED: {} replica tests: {error}; run scripts/replicas.sh start, or set CI=1 to fail instead",
                DB::LABEL
            );
            return None;
        }
    }
    let admin = |url: &str| {
        sqlx::pool::PoolOptions::<DB>::new()
            .max_connections(1)
            .connect_lazy(url)
    };
    let (on_primary, on_replica) = (admin(&primary).unwrap(), admin(&replica).unwrap());
    resume(&on_replica).await;
    DB::run_sql(&on_primary, DB::CREATE_TABLE.into())
        .await
        .unwrap();
    // The table reaches the replica in a moment; wait for it.
    let exists = format!("SELECT count(*) FROM {TABLE}");
    for _ in 0..500 {
        if DB::run_sql(&on_replica, exists.clone()).await.is_ok() {
            return Some((turn, primary, replica));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{TABLE} did not reach the {} replica", DB::LABEL);
}

async fn reachable(url: &str) -> Result<(), String> {
    let host_port = common::host_port(url);
    match tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(host_port),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(format!("{host_port}: {error}")),
        Err(_) => Err(format!("{host_port}: no answer within 3 s")),
    }
}

async fn replica_admin<DB: Pair>(url: &str) -> sqlx::Pool<DB> {
    sqlx::pool::PoolOptions::<DB>::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap()
}

async fn pause<DB: Pair>(replica: &sqlx::Pool<DB>) {
    DB::run_sql(replica, DB::PAUSE_REPLAY.into()).await.unwrap();
}

async fn resume<DB: Pair>(replica: &sqlx::Pool<DB>) {
    DB::run_sql(replica, DB::RESUME_REPLAY.into())
        .await
        .unwrap();
}

/// A handle on the primary and the replica, with [`test_settings`].
async fn handle<DB: Pair>(primary: &str, replica: &str) -> Replicated<DB> {
    Replicated::connect(primary, &[replica], test_settings())
        .await
        .unwrap()
}

/// Wait briefly for replay, and never give up on a lagging replica (the
/// tests stop replay on purpose).
fn test_settings() -> ReplicaSettings {
    ReplicaSettings {
        pool_size: 4,
        wait_for_replay: Duration::from_millis(20),
        lag_bound: Duration::from_secs(3600),
        ..ReplicaSettings::default()
    }
}

/// Wait until the replica itself, read directly, has `rows` (a test that
/// then stops replay needs them there, however slow replication is today).
async fn until_replicated<DB: Pair>(replica: &str, rows: &HashMap<String, i64>) {
    let direct = Replicated::<DB>::connect(replica, &[], ReplicaSettings::default())
        .await
        .unwrap();
    let keys: Vec<String> = rows.keys().cloned().collect();
    for _ in 0..6000 {
        if DB::load(&direct, &keys, None).await == *rows {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the rows did not reach the {} replica in 60 s", DB::LABEL);
}

/// xorshift64*: a reproducible random sequence from a printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

fn seed() -> u64 {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("random seed {seed}");
    seed
}

fn replica_stats(stats: &[ServerStats]) -> &ServerStats {
    &stats[1]
}

/// Writers save rising values of their own keys and read each back at once;
/// while they run, readers read batches of random keys and compare each with
/// the last value whose save had returned before their read started.
/// Returns (reads made, stale reads seen).
async fn storm<DB: Pair>(db: Arc<Replicated<DB>>, run: &str, seed: u64) -> (u64, u64) {
    const WRITERS: usize = 4;
    const KEYS_PER_WRITER: usize = 5;
    const SAVES_PER_WRITER: usize = 40;
    const READERS: usize = 4;
    let keys: Arc<Vec<String>> = Arc::new(
        (0..WRITERS * KEYS_PER_WRITER)
            .map(|i| format!("{run}-w{i}"))
            .collect(),
    );
    // Per key: the value of the last save that has returned (0: none yet).
    let saved: Arc<Vec<AtomicI64>> = Arc::new(keys.iter().map(|_| AtomicI64::new(0)).collect());
    let reads = Arc::new(AtomicU64::new(0));
    let stale = Arc::new(AtomicU64::new(0));
    let writers_left = Arc::new(AtomicUsize::new(WRITERS));
    // What each task holds of the above.
    let shared = || {
        (
            db.clone(),
            keys.clone(),
            saved.clone(),
            reads.clone(),
            stale.clone(),
            writers_left.clone(),
        )
    };
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let (db, keys, saved, reads, stale, writers_left) = shared();
        tasks.spawn(async move {
            let mut rng = Rng(seed ^ (writer as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            for _ in 0..SAVES_PER_WRITER {
                let index = writer * KEYS_PER_WRITER + rng.below(KEYS_PER_WRITER);
                let value = saved[index].load(Ordering::Acquire) + 1;
                DB::save(&db, &keys[index], value).await;
                saved[index].store(value, Ordering::Release);
                let got = DB::load(&db, &keys[index..=index], None).await;
                reads.fetch_add(1, Ordering::Relaxed);
                if got.get(&keys[index]) != Some(&value) {
                    eprintln!(
                        "STALE: {} saved {value}, read {:?}",
                        keys[index],
                        got.get(&keys[index])
                    );
                    stale.fetch_add(1, Ordering::Relaxed);
                }
            }
            writers_left.fetch_sub(1, Ordering::Release);
        });
    }
    for reader in 0..READERS {
        let (db, keys, saved, reads, stale, writers_left) = shared();
        tasks.spawn(async move {
            let mut rng = Rng(seed ^ (reader as u64 + 101).wrapping_mul(0xD6E8_FEB8_6659_FD93));
            while writers_left.load(Ordering::Acquire) > 0 {
                // A batch of 1–4 random keys, some possibly not saved yet.
                let picked: Vec<usize> = (0..1 + rng.below(4))
                    .map(|_| rng.below(keys.len()))
                    .collect();
                let floors: Vec<i64> = picked
                    .iter()
                    .map(|&i| saved[i].load(Ordering::Acquire))
                    .collect();
                let batch: Vec<String> = picked.iter().map(|&i| keys[i].clone()).collect();
                let got = DB::load(&db, &batch, None).await;
                reads.fetch_add(1, Ordering::Relaxed);
                for (key, floor) in batch.iter().zip(floors) {
                    let value = got.get(key).copied().unwrap_or(0);
                    if value < floor {
                        eprintln!("STALE: {key} saved {floor} before the read, read {value}");
                        stale.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    (reads.load(Ordering::Relaxed), stale.load(Ordering::Relaxed))
}

/// Replay stopped on the replica: every read of a saved key sees the save
/// (it is served by the primary), and reads of keys not saved here still go
/// to the replica, with no position statement.
async fn paused_replay_reads_your_writes<DB: Pair>() {
    let Some((_turn, primary, replica)) = pair::<DB>().await else {
        return;
    };
    let admin = replica_admin::<DB>(&replica).await;
    let run = unique("paused");
    // Rows saved before the pause, outside the handle: on both servers.
    let untouched: Vec<String> = (0..10).map(|i| format!("{run}-u{i}")).collect();
    let seeding = handle::<DB>(&primary, &replica).await;
    let mut seeded = HashMap::new();
    for (i, key) in (1..).zip(&untouched) {
        DB::save(&seeding, key, i).await;
        seeded.insert(key.clone(), i);
    }
    until_replicated::<DB>(&replica, &seeded).await;

    pause(&admin).await;
    // Slots enough that the 10 unsaved keys share none with the storm's 20
    // saved ones (odds of a shared slot: 200 in 2^20), which would rightly
    // send their read to the primary.
    let settings = ReplicaSettings {
        remembered_slots: 1 << 20,
        ..test_settings()
    };
    let db = Arc::new(
        Replicated::<DB>::connect(&primary, &[&replica], settings)
            .await
            .unwrap(),
    );
    let (reads, stale) = storm(db.clone(), &run, seed()).await;
    let before = db.stats();
    let got = DB::load(&db, &untouched, None).await;
    let after = db.stats();
    resume(&admin).await;

    eprintln!(
        "{}: {reads} reads with replay paused, {stale} stale; stats {after:?}",
        DB::LABEL
    );
    assert_eq!(stale, 0, "stale reads with replay paused");
    assert_eq!(got.len(), untouched.len());
    assert_eq!(
        replica_stats(&after).reads,
        replica_stats(&before).reads + 1,
        "unsaved keys read on the replica"
    );
    assert_eq!(after[0].reads, before[0].reads, "nor on the primary");
    assert_eq!(
        replica_stats(&after).position_statements,
        replica_stats(&before).position_statements,
        "and without a position check"
    );
    assert!(
        after[0].fallback_reads > 0,
        "saved keys were read on the primary"
    );
}

/// Replay running: reads of saved keys wait for the replica or go to the
/// primary, and never see less than the save.
async fn live_replay_reads_your_writes<DB: Pair>() {
    let Some((_turn, primary, replica)) = pair::<DB>().await else {
        return;
    };
    let db = Arc::new(handle::<DB>(&primary, &replica).await);
    let (reads, stale) = storm(db.clone(), &unique("live"), seed()).await;
    eprintln!(
        "{}: {reads} reads with replay running, {stale} stale; stats {:?}",
        DB::LABEL,
        db.stats()
    );
    assert_eq!(stale, 0, "stale reads with replay running");
}

/// A token from one handle makes another handle (think: another process)
/// read the write; without it, that handle reads the lagging replica.
async fn token_carries_read_your_writes_across_handles<DB: Pair>() {
    let Some((_turn, primary, replica)) = pair::<DB>().await else {
        return;
    };
    let admin = replica_admin::<DB>(&replica).await;
    let key = unique("token");
    let writer = handle::<DB>(&primary, &replica).await;
    DB::save(&writer, &key, 1).await;
    until_replicated::<DB>(&replica, &HashMap::from([(key.clone(), 1)])).await;

    pause(&admin).await;
    let token = DB::save(&writer, &key, 2)
        .await
        .expect("a save has a position")
        .to_string();
    let reader = handle::<DB>(&primary, &replica).await;
    let with_token = DB::load(
        &reader,
        std::slice::from_ref(&key),
        Some(&token.parse().unwrap()),
    )
    .await;
    let without = DB::load(&reader, std::slice::from_ref(&key), None).await;
    let stats = reader.stats();
    resume(&admin).await;

    assert_eq!(with_token.get(&key), Some(&2), "the token's write is seen");
    assert_eq!(
        without.get(&key),
        Some(&1),
        "without the token, the paused replica answers"
    );
    assert_eq!(
        (stats[0].fallback_reads, replica_stats(&stats).reads),
        (1, 1)
    );
}

/// A token of the other backend is a typed error, not a silent pass.
async fn foreign_token_is_an_error<DB: Pair>(foreign: &str) {
    let Some((_turn, primary, replica)) = pair::<DB>().await else {
        return;
    };
    let db = handle::<DB>(&primary, &replica).await;
    let token: Position = foreign.parse().unwrap();
    let outcome = db.read(&[], Some(&token), |_| async { Ok(()) }).await;
    assert!(
        matches!(outcome, Err(ReplicaError::ForeignToken { .. })),
        "{outcome:?}"
    );
}

/// A replica that fails to reach a position for longer than the lag bound
/// (here: at once) stops receiving any read, even one that needs no
/// position, until it is retried.
async fn lagging_replica_is_skipped<DB: Pair>() {
    let Some((_turn, primary, replica)) = pair::<DB>().await else {
        return;
    };
    let admin = replica_admin::<DB>(&replica).await;
    let settings = ReplicaSettings {
        lag_bound: Duration::ZERO,
        retry_after: Duration::from_secs(3600),
        ..test_settings()
    };
    let db = Replicated::<DB>::connect(&primary, &[&replica], settings)
        .await
        .unwrap();
    let (written, untouched) = (unique("lagging"), unique("untouched"));
    DB::load(&db, std::slice::from_ref(&untouched), None).await;
    assert_eq!(replica_stats(&db.stats()).reads, 1, "the replica is used");

    pause(&admin).await;
    DB::save(&db, &written, 1).await;
    let got = DB::load(&db, std::slice::from_ref(&written), None).await;
    DB::load(&db, std::slice::from_ref(&untouched), None).await;
    let stats = db.stats();
    resume(&admin).await;

    assert_eq!(got.get(&written), Some(&1));
    assert_eq!(
        replica_stats(&stats).reads,
        1,
        "no read on the lagging replica"
    );
    assert_eq!(stats[0].reads, 2, "both reads on the primary");
}

/// The replica taken away during a read storm (every connection cut, new
/// ones refused): no caller sees an error (a read that meets the failure is
/// answered by the primary), the replica is skipped, and once it is back,
/// reads return to it.
async fn reads_survive_a_replica_outage<DB: Pair>() {
    let Some((_turn, primary, replica)) = pair::<DB>().await else {
        return;
    };
    let target = common::host_port(&replica).to_owned();
    let proxy = proxy::Proxy::start(target.clone()).await;
    let settings = ReplicaSettings {
        retry_after: Duration::from_millis(200),
        replica_acquire_timeout: Duration::from_millis(500),
        ..test_settings()
    };
    let db = Arc::new(
        Replicated::<DB>::connect(&primary, &[&proxy.url(&replica, &target)], settings)
            .await
            .unwrap(),
    );
    // Rows written by another handle, so that this one reads them without a
    // position: every read may go to the replica.
    let run = unique("outage");
    let keys: Vec<String> = (0..8).map(|i| format!("{run}-{i}")).collect();
    let writer = handle::<DB>(&primary, &replica).await;
    let mut token = None;
    for (i, key) in keys.iter().enumerate() {
        token = DB::save(&writer, key, i as i64).await;
    }
    let expected: HashMap<String, i64> = (0i64..).zip(&keys).map(|(i, k)| (k.clone(), i)).collect();
    assert_eq!(DB::load(&db, &keys, token.as_ref()).await, expected);
    until_replicated::<DB>(&replica, &expected).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (db, keys, expected, stop) = (db.clone(), keys.clone(), expected.clone(), stop.clone());
        readers.spawn(async move {
            let mut wrong = 0;
            while !stop.load(Ordering::Acquire) {
                if DB::load(&db, &keys, None).await != expected {
                    wrong += 1;
                }
                tokio::task::yield_now().await;
            }
            wrong
        });
    }
    let replica_reads = |db: &Replicated<DB>| replica_stats(&db.stats()).reads;
    let primary_reads = |db: &Replicated<DB>| db.stats()[0].reads;
    wait_until("reads on the replica", || replica_reads(&db) > 10).await;

    proxy.cut();
    let before = primary_reads(&db);
    wait_until("reads on the primary", || primary_reads(&db) > before + 10).await;
    let down = db.stats();

    proxy.restore();
    let before = replica_reads(&db);
    wait_until("reads back on the replica", || {
        replica_reads(&db) > before + 10
    })
    .await;
    stop.store(true, Ordering::Release);
    let mut wrong = 0;
    while let Some(done) = readers.join_next().await {
        wrong += done.expect("no reader saw an error (a read error panics in load)");
    }
    eprintln!(
        "{}: outage stats {:?}; after {:?}",
        DB::LABEL,
        down,
        db.stats()
    );
    assert_eq!(wrong, 0, "reads with wrong rows");
    assert!(replica_stats(&down).failures >= 1, "the outage was noticed");
}

/// A replica connection the server ended while it sat idle is pinged and
/// replaced before a read gets it: the read is served by the replica, no
/// failure counted. The control, never pinged: the dead connection is
/// handed out, and the read fails over to the primary (one failure).
async fn an_idle_replica_connection_that_died_is_replaced<DB: Pair>() {
    let Some((_turn, primary, replica)) = pair::<DB>().await else {
        return;
    };
    let run = unique("idle");
    let keys = vec![format!("{run}-0")];
    let writer = handle::<DB>(&primary, &replica).await;
    DB::save(&writer, &keys[0], 7).await;
    let expected = HashMap::from([(keys[0].clone(), 7)]);
    until_replicated::<DB>(&replica, &expected).await;
    let admin = replica_admin::<DB>(&replica).await;
    for (ping_after_idle, failures) in [(Duration::from_millis(50), 0), (Duration::MAX, 1)] {
        let settings = ReplicaSettings {
            pool_size: 1,
            retry_after: Duration::from_secs(3600),
            ping_after_idle,
            ..test_settings()
        };
        let db = Replicated::<DB>::connect(&primary, &[&replica], settings)
            .await
            .unwrap();
        // The replica's pool (a read of its own on the replica), to see the
        // load's connection back in it before the server ends it: sqlx
        // pings a connection on its way back, and a connection that dies on
        // the way is dropped, so the control would get a fresh one.
        let replica_pool = db
            .read(&[], None, |batch| async move { Ok(batch.pool().clone()) })
            .await
            .unwrap();
        assert_eq!(DB::load(&db, &keys, None).await, expected);
        wait_until("the connection back in the pool", || {
            replica_pool.num_idle() == 1
        })
        .await;
        DB::kill_other_clients(&admin).await.unwrap();
        // Idle for longer than `ping_after_idle` (a lower bound, which a
        // sleep gives).
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(DB::load(&db, &keys, None).await, expected);
        let stats = replica_stats(&db.stats()).clone();
        assert_eq!(
            (stats.reads, stats.failures),
            (3, failures),
            "ping_after_idle {ping_after_idle:?}: {stats:?}"
        );
    }
}

/// Poll `done` every 10 ms; fail after 60 s (a liveness bound, not a timing
/// claim: on a working build it holds within a second).
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..6000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

macro_rules! on_both_pairs {
    ($($name:ident $(($arg:expr, $mysql_arg:expr))?),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name::<sqlx::Postgres>($($arg)?).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mariadb() {
                super::$name::<sqlx::MySql>($($mysql_arg)?).await;
            }
        }
    )*};
}

on_both_pairs! {
    paused_replay_reads_your_writes,
    live_replay_reads_your_writes,
    token_carries_read_your_writes_across_handles,
    foreign_token_is_an_error("gtid:0-1-1", "wal:0/1"),
    reads_survive_a_replica_outage,
    lagging_replica_is_skipped,
    an_idle_replica_connection_that_died_is_replaced,
    rows_read_their_writes_with_replay_paused,
    rows_read_after_a_token_of_another_handle("gtid:0-1-1", "wal:0/1"),
    rows_coalesce_over_replicas,
    rows_report_the_server_that_failed,
}
