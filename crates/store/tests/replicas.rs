//! The memory store on a primary and a read replica (`scripts/replicas.sh
//! start`): read-your-writes with the replica's replay paused, across
//! handles with a position token, and for the queries of a user's
//! memories; reads of data not written here served by the replica.
//!
//! The pairs come from `COALESCE_{PG,MYSQL}_{PRIMARY,REPLICA}_URL`; an
//! unreachable pair fails the test when `CI` is set and skips it otherwise.
//! Tests stop the replica's replay, so the tests of one pair take turns:
//! [`Pair::turn`] takes its lock, and each test holds it to its end.

mod common;

use coalesce_store::{
    Category, Memory, MemoryKey, MemoryStore, NewMemory, StoreError,
    db::{
        Backend, ConnectError, ConnectOptions, Database, ReplicaSettings, ServerName, ServerStats,
        Token, TokenError,
    },
    repo::{CoalescingRepository, MemoryRepository},
};
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard};

/// Saves and reads back, with replay paused.
const ITERATIONS: usize = 100;

/// One replicated pair and how to stop its replica's replay.
struct Pair {
    label: &'static str,
    primary: String,
    replica: String,
    pause: &'static str,
    resume: &'static str,
    /// One test of this pair at a time.
    turn: &'static Mutex<()>,
}

static POSTGRES_TURN: Mutex<()> = Mutex::const_new(());
static MARIADB_TURN: Mutex<()> = Mutex::const_new(());

impl Pair {
    fn postgres() -> Pair {
        Pair {
            label: "PostgreSQL",
            primary: env_or(
                "COALESCE_PG_PRIMARY_URL",
                "postgres://postgres@127.0.0.1:55432/test",
            ),
            replica: env_or(
                "COALESCE_PG_REPLICA_URL",
                "postgres://postgres@127.0.0.1:55433/test",
            ),
            // `pg_wal_replay_pause` only asks: wait, on the server, until
            // replay has stopped, or a write made next may still be replayed.
            pause: "DO $$ BEGIN PERFORM pg_wal_replay_pause(); \
                WHILE pg_get_wal_replay_pause_state() <> 'paused' LOOP PERFORM pg_sleep(0.001); END LOOP; END $$",
            resume: "SELECT pg_wal_replay_resume()",
            turn: &POSTGRES_TURN,
        }
    }

    fn mariadb() -> Pair {
        Pair {
            label: "MariaDB",
            primary: env_or(
                "COALESCE_MYSQL_PRIMARY_URL",
                "mysql://root@127.0.0.1:33306/test",
            ),
            replica: env_or(
                "COALESCE_MYSQL_REPLICA_URL",
                "mysql://root@127.0.0.1:33307/test",
            ),
            pause: "STOP SLAVE SQL_THREAD",
            resume: "START SLAVE SQL_THREAD",
            turn: &MARIADB_TURN,
        }
    }

    /// The pair's turn, with both servers reachable and replay running;
    /// `None` (after a loud line) when unreachable outside CI.
    async fn turn(&self) -> Option<MutexGuard<'static, ()>> {
        let turn = self.turn.lock().await;
        if !self.reachable().await {
            return None;
        }
        self.on_replica(self.resume).await;
        Some(turn)
    }

    /// Whether both servers accept connections; a panic in CI if not.
    async fn reachable(&self) -> bool {
        for url in [&self.primary, &self.replica] {
            let probe = tokio::net::TcpStream::connect(common::host_port(url));
            let error = match tokio::time::timeout(Duration::from_secs(3), probe).await {
                Ok(Ok(_)) => continue,
                Ok(Err(error)) => error.to_string(),
                Err(_) => "no answer within 3 s".to_owned(),
            };
            let label = self.label;
            let host = common::host_port(url);
            if std::env::var_os("CI").is_some() {
                panic!("{label} replica pair unreachable in CI at {host}: {error}");
            }
            eprintln!(
                "SKIPPED: {label} store replica tests: {host}: {error}; run scripts/replicas.sh start, or set CI=1 to fail instead"
            );
            return false;
        }
        true
    }

    /// Save `memory` through a store of its own (no position remembered by
    /// the handles under test), and wait until the replica, read directly,
    /// has it, with replay running.
    async fn seed(&self, memory: &NewMemory) {
        let plain = MemoryStore::connect(&self.primary, 2).await.unwrap();
        plain.save_memory(memory).await.unwrap();
        let replica = Database::connect(&self.replica, 1).await.unwrap();
        let on_replica = MemoryStore::new(replica).unwrap();
        let (user, category, key) = (&memory.user_id, memory.category, &memory.key);
        for _ in 0..6000 {
            let found = on_replica.get_memory(user, category, key).await;
            if found.is_ok_and(|found| found.is_some_and(|found| found.value == memory.value)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "{}: the seeded memory did not reach the replica in 60 s",
            self.label
        );
    }

    /// A database on the primary and the replica, waiting briefly for
    /// replay and never skipping the replica for lagging: replay is stopped
    /// on purpose.
    async fn replicated(&self) -> Database {
        let settings = ReplicaSettings {
            pool_size: 4,
            wait_for_replay: Duration::from_millis(5),
            lag_bound: Duration::from_secs(3600),
            ..ReplicaSettings::default()
        };
        let options = ConnectOptions::new(4);
        Database::connect_replicated(&self.primary, &[&self.replica], &options, settings)
            .await
            .unwrap()
    }

    /// Run one of the replica's administrative statements.
    async fn on_replica(&self, sql: &'static str) {
        let replica = Database::connect(&self.replica, 1).await.unwrap();
        match replica.pool() {
            coalesce_store::db::Pool::Postgres(pool) => {
                sqlx::raw_sql(sql).execute(pool).await.unwrap();
            }
            coalesce_store::db::Pool::MySql(pool) => {
                sqlx::raw_sql(sql).execute(pool).await.unwrap();
            }
            coalesce_store::db::Pool::Sqlite(_) => unreachable!("no SQLite replicas"),
        }
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn server(stats: &[ServerStats], name: ServerName) -> &ServerStats {
    stats.iter().find(|s| s.server == name).unwrap()
}

/// With replay paused, every `save_memory`, `save_profile` and
/// `delete_memory` is seen by the read after it (0 stale reads), while a memory saved elsewhere is still read
/// from the replica.
async fn paused_replay_reads_your_writes(pair: Pair) {
    let Some(_turn) = pair.turn().await else {
        return;
    };
    let user = common::unique("replica");
    let elsewhere = NewMemory::new(&user, Category::Fact, "elsewhere", "seeded");
    pair.seed(&elsewhere).await;
    let db = pair.replicated().await;
    let store = MemoryStore::new(db).unwrap();
    pair.on_replica(pair.pause).await;
    let mut stale = 0;
    for iteration in 0..ITERATIONS {
        let value = format!("v{iteration}");
        let memory = NewMemory::new(&user, Category::Goal, "written", &value);
        store.save_memory(&memory).await.unwrap();
        let read = store.get_memory(&user, Category::Goal, "written").await;
        if read.unwrap().map(|memory| memory.value) != Some(value.clone()) {
            stale += 1;
        }
        // A profile is written by the store's own statement, not the
        // toolkit's: its position is remembered all the same.
        store.save_profile(&user, &value).await.unwrap();
        if store.get_profile(&user).await.unwrap() != Some(value) {
            stale += 1;
        }
    }
    assert!(store.delete_memory(&user, "written").await.unwrap());
    if store
        .get_memory(&user, Category::Goal, "written")
        .await
        .unwrap()
        .is_some()
    {
        stale += 1;
    }
    let before = store.database().server_stats().unwrap();
    let seeded = store.get_memory(&user, Category::Fact, "elsewhere").await;
    let after = store.database().server_stats().unwrap();
    pair.on_replica(pair.resume).await;

    let label = pair.label;
    eprintln!("{label}: {ITERATIONS} save-then-read with replay paused, {stale} stale; {after:?}");
    assert_eq!(stale, 0, "{label}: stale reads with replay paused");
    assert_eq!(
        seeded.unwrap().map(|memory| memory.value).as_deref(),
        Some("seeded")
    );
    let primary = server(&after, ServerName::Primary);
    // Each iteration's memory and profile, then the delete.
    assert_eq!(primary.writes, 2 * ITERATIONS as u64 + 1);
    assert!(
        primary.fallback_reads > 2 * ITERATIONS as u64,
        "{label}: reads of keys written with replay paused go to the primary: {after:?}"
    );
    let replica_before = server(&before, ServerName::Replica(0));
    let replica_after = server(&after, ServerName::Replica(0));
    assert_eq!(
        replica_after.batch_statements,
        replica_before.batch_statements + 1,
        "{label}: a key not written here is read from the replica"
    );
    assert_eq!(
        server(&before, ServerName::Primary).batch_statements,
        primary.batch_statements,
        "{label}: ... and not from the primary"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_paused_replay_reads_your_writes() {
    paused_replay_reads_your_writes(Pair::postgres()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_paused_replay_reads_your_writes() {
    paused_replay_reads_your_writes(Pair::mariadb()).await;
}

/// The reads routed on a server since `before`: (on the primary, of them
/// the primary's fallbacks, on the replica).
fn reads_since(before: &[ServerStats], after: &[ServerStats]) -> (u64, u64, u64) {
    let delta = |name, reads: fn(&ServerStats) -> u64| {
        reads(server(after, name)) - reads(server(before, name))
    };
    (
        delta(ServerName::Primary, |s| s.reads),
        delta(ServerName::Primary, |s| s.fallback_reads),
        delta(ServerName::Replica(0), |s| s.reads),
    )
}

fn has(memories: &[Memory], key: &str, value: &str) -> bool {
    memories.iter().any(|m| m.key == key && m.value == value)
}

/// Handle A saves and hands out its token as a string; handle B, another
/// database on the same pair (another process, as far as positions go),
/// with replay paused, reads with the token parsed back and sees the save,
/// and without it reads the replica, which has not replayed the save.
async fn token_across_handles(pair: Pair) {
    let Some(_turn) = pair.turn().await else {
        return;
    };
    let label = pair.label;
    let user = common::unique("token");
    pair.seed(&NewMemory::new(&user, Category::Fact, "seeded", "before"))
        .await;
    let a = MemoryStore::new(pair.replicated().await).unwrap();
    let b = MemoryStore::new(pair.replicated().await).unwrap();
    assert_eq!(a.token(), None, "{label}: no write yet, no token");
    pair.on_replica(pair.pause).await;
    a.save_memory(&NewMemory::new(&user, Category::Fact, "name", "Ann"))
        .await
        .unwrap();
    let token = a.token().expect("a write gives a token").to_string();

    // Without the token, B reads the replica, paused before the save.
    let before = b.database().server_stats().unwrap();
    let unseen = b.get_memory(&user, Category::Fact, "name").await.unwrap();
    let after = b.database().server_stats().unwrap();
    assert_eq!(
        unseen, None,
        "{label}: the replica has not replayed the save"
    );
    assert_eq!(
        reads_since(&before, &after),
        (0, 0, 1),
        "{label}: {after:?}"
    );

    // With it, a single read and a query of the user see the save.
    let token: Token = token.parse().unwrap();
    let scoped = b.with_token(&token).unwrap();
    let seen = scoped.get_memory(&user, Category::Fact, "name").await;
    let facts = scoped
        .batch_get_memories(&user, Some(Category::Fact), None, None)
        .await
        .unwrap();
    let last = b.database().server_stats().unwrap();
    pair.on_replica(pair.resume).await;
    assert_eq!(
        seen.unwrap().map(|memory| memory.value).as_deref(),
        Some("Ann"),
        "{label}: a read with the token sees the save"
    );
    assert!(has(&facts, "name", "Ann"), "{label}: {facts:?}");
    assert!(has(&facts, "seeded", "before"), "{label}: {facts:?}");
    // Served by the primary: the replica is behind the token.
    assert_eq!(reads_since(&after, &last), (2, 2, 0), "{label}: {last:?}");
    assert_eq!(b.token(), None, "{label}: B wrote nothing");

    let foreign = match b.database().backend() {
        Backend::Postgres => "gtid:0-1-1",
        _ => "wal:0/10",
    };
    let refused = b.with_token(&foreign.parse().unwrap()).unwrap_err();
    assert!(
        matches!(refused, StoreError::Token(TokenError::OtherBackend { .. })),
        "{label}: {refused:?}"
    );
}

/// The coalescing repository over a replicated store, replay paused: its
/// writes are seen by its reads and by the store's reads and queries, the
/// store's writes by its reads; a repository over another database made
/// with a token sees the write the token covers (without it, the paused
/// replica answers); a memory written nowhere here is read on the replica.
async fn repository_reads_your_writes_over_replicas(pair: Pair) {
    let Some(_turn) = pair.turn().await else {
        return;
    };
    let label = pair.label;
    let (user, elsewhere) = (common::unique("repo"), common::unique("repo_other"));
    pair.seed(&NewMemory::new(
        &elsewhere,
        Category::Fact,
        "seeded",
        "before",
    ))
    .await;
    let store = MemoryStore::new(pair.replicated().await).unwrap();
    let repo = CoalescingRepository::new(store.clone());
    let other = MemoryStore::new(pair.replicated().await).unwrap();
    pair.on_replica(pair.pause).await;

    let before = store.database().server_stats().unwrap();
    let seeded = repo
        .get_memory(&MemoryKey::new(&elsewhere, Category::Fact, "seeded"))
        .await;
    let after_seeded = store.database().server_stats().unwrap();
    repo.save_memory(NewMemory::new(&user, Category::Fact, "name", "Ann"))
        .await
        .unwrap();
    let name = MemoryKey::new(&user, Category::Fact, "name");
    let through_repo = repo.get_memory(&name).await;
    let through_store = store.get_memory(&user, Category::Fact, "name").await;
    let facts = store
        .batch_get_memories(&user, Some(Category::Fact), None, None)
        .await;
    store
        .save_memory(&NewMemory::new(&user, Category::Goal, "run", "5k"))
        .await
        .unwrap();
    let run = MemoryKey::new(&user, Category::Goal, "run");
    let saved_by_store = repo.get_memory(&run).await;
    let token = store.token().expect("the writes leave a token");
    let with_token = CoalescingRepository::new(other.with_token(&token).unwrap());
    let after_token = with_token.get_memory(&name).await;
    let without_token = CoalescingRepository::new(other.clone())
        .get_memory(&run)
        .await;
    let deleted = repo.delete_memory(&user, "name").await;
    let after_delete = (
        repo.get_memory(&name).await,
        store.get_memory(&user, Category::Fact, "name").await,
    );
    pair.on_replica(pair.resume).await;

    assert_eq!(seeded.unwrap().as_deref(), Some("before"), "{label}");
    assert_eq!(
        reads_since(&before, &after_seeded),
        (0, 0, 1),
        "{label}: a memory written nowhere here is read on the replica"
    );
    assert_eq!(through_repo.unwrap().as_deref(), Some("Ann"), "{label}");
    let through_store = through_store.unwrap().map(|memory| memory.value);
    assert_eq!(through_store.as_deref(), Some("Ann"), "{label}");
    assert!(
        has(&facts.unwrap(), "name", "Ann"),
        "{label}: the store's query sees it"
    );
    assert_eq!(saved_by_store.unwrap().as_deref(), Some("5k"), "{label}");
    assert_eq!(
        after_token.unwrap().as_deref(),
        Some("Ann"),
        "{label}: the token covers the repository's save"
    );
    assert_eq!(
        without_token.unwrap(),
        None,
        "{label}: without the token, the paused replica answers"
    );
    assert!(deleted.unwrap(), "{label}: the memory existed");
    assert_eq!(after_delete.0.unwrap(), None, "{label}");
    assert_eq!(after_delete.1.unwrap(), None, "{label}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_repository_reads_your_writes_over_replicas() {
    repository_reads_your_writes_over_replicas(Pair::postgres()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_repository_reads_your_writes_over_replicas() {
    repository_reads_your_writes_over_replicas(Pair::mariadb()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_token_across_handles() {
    token_across_handles(Pair::postgres()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_token_across_handles() {
    token_across_handles(Pair::mariadb()).await;
}

/// What process A of [`token_across_processes`] is told: the pair, and
/// the user whose memory it saves.
const CHILD_PAIR: &str = "COALESCE_TOKEN_CHILD_PAIR";
const CHILD_USER: &str = "COALESCE_TOKEN_CHILD_USER";

/// Process A of [`token_across_processes`], run by it as a child process
/// (this test binary, this test alone): saves a memory through a
/// replicated store and prints its token. Ignored in a plain run: it
/// belongs to its parent, which pauses the replica's replay first.
#[tokio::test]
#[ignore = "process A of token_across_processes, which runs it"]
async fn token_child_saves_and_prints_its_token() {
    let pair = match std::env::var(CHILD_PAIR).as_deref() {
        Ok("postgres") => Pair::postgres(),
        Ok("mariadb") => Pair::mariadb(),
        other => panic!("run by token_across_processes, with {CHILD_PAIR} set: {other:?}"),
    };
    let user = std::env::var(CHILD_USER).expect("the parent names the user");
    let a = MemoryStore::new(pair.replicated().await).unwrap();
    a.save_memory(&NewMemory::new(&user, Category::Fact, "name", "Ann"))
        .await
        .unwrap();
    println!("TOKEN {}", a.token().expect("a write gives a token"));
}

/// The two processes: with the replica's replay paused, process A
/// (a child process) saves and prints its token; this process reads with
/// the token parsed from A's output and sees the save, which the replica
/// has not replayed.
async fn token_across_processes(pair: Pair, name: &str) {
    let Some(_turn) = pair.turn().await else {
        return;
    };
    let label = pair.label;
    let user = common::unique("token_process");
    pair.seed(&NewMemory::new(&user, Category::Fact, "seeded", "before"))
        .await;
    pair.on_replica(pair.pause).await;
    let mut process_a = std::process::Command::new(std::env::current_exe().unwrap());
    process_a
        .args(["--exact", "token_child_saves_and_prints_its_token"])
        .args(["--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_PAIR, name)
        .env(CHILD_USER, &user);
    let child = tokio::task::spawn_blocking(move || process_a.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success(),
        "{label}: process A failed: {stdout}{}",
        String::from_utf8_lossy(&child.stderr)
    );
    let token: Token = stdout
        .lines()
        // The test harness prints the test's name on the same line.
        .find_map(|line| line.split_once("TOKEN ").map(|(_, token)| token.trim()))
        .unwrap_or_else(|| panic!("{label}: process A printed no token: {stdout}"))
        .parse()
        .unwrap();

    let b = MemoryStore::new(pair.replicated().await).unwrap();
    let unseen = b.get_memory(&user, Category::Fact, "name").await.unwrap();
    let seen = b
        .with_token(&token)
        .unwrap()
        .get_memory(&user, Category::Fact, "name")
        .await;
    pair.on_replica(pair.resume).await;
    assert_eq!(
        unseen, None,
        "{label}: the replica has not replayed A's save"
    );
    assert_eq!(
        seen.unwrap().map(|memory| memory.value).as_deref(),
        Some("Ann"),
        "{label}: a read with A's token sees A's save"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_token_across_processes() {
    token_across_processes(Pair::postgres(), "postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_token_across_processes() {
    token_across_processes(Pair::mariadb(), "mariadb").await;
}

/// With replay paused, the queries of a user's memories (by category,
/// top-N per category, recent, count, a list of over 100 keys) right
/// after a save of that user include it; the same queries of another user
/// are served by the replica.
async fn queries_read_your_writes_by_user(pair: Pair) {
    let Some(_turn) = pair.turn().await else {
        return;
    };
    let label = pair.label;
    let (writer, other) = (common::unique("writer"), common::unique("other"));
    pair.seed(&NewMemory::new(&other, Category::Fact, "k0", "theirs"))
        .await;
    pair.seed(&NewMemory::new(&writer, Category::Fact, "k0", "mine"))
        .await;
    // Over the loader's 100: the query by key list, not the batched read.
    let keys: Vec<String> = (0..120).map(|i| format!("k{i}")).collect();
    let store = MemoryStore::new(pair.replicated().await).unwrap();
    let db = store.database();
    pair.on_replica(pair.pause).await;
    store
        .save_memory(&NewMemory::new(&writer, Category::Goal, "k1", "fresh"))
        .await
        .unwrap();

    let before = db.server_stats().unwrap();
    let goals = store
        .batch_get_memories(&writer, Some(Category::Goal), None, None)
        .await
        .unwrap();
    let categories = [Category::Goal, Category::Fact];
    let top = store.bulk_memory_search(&writer, &categories, 5).await;
    let among = store
        .batch_get_memories(&writer, None, Some(&keys), None)
        .await;
    let recent = db.recent_memories(&writer, 10).await.unwrap();
    let count = db.count_memories(&writer).await.unwrap();
    let after = db.server_stats().unwrap();

    let theirs = store
        .batch_get_memories(&other, Some(Category::Fact), None, None)
        .await
        .unwrap();
    let their_top = store.bulk_memory_search(&other, &categories, 5).await;
    let their_recent = db.recent_memories(&other, 10).await.unwrap();
    let their_count = db.count_memories(&other).await.unwrap();
    // MariaDB reads a key list through the batched read, by key.
    let their_keys = (db.backend() == Backend::Postgres).then_some(&keys);
    let mut their_among = Vec::new();
    if let Some(keys) = their_keys {
        their_among = db.memories(&other, None, Some(keys), None).await.unwrap();
    }
    let last = db.server_stats().unwrap();
    pair.on_replica(pair.resume).await;

    assert!(has(&goals, "k1", "fresh"), "{label}: by category {goals:?}");
    let top = top.unwrap();
    assert!(
        has(&top[&Category::Goal], "k1", "fresh"),
        "{label}: top {top:?}"
    );
    let among = among.unwrap();
    assert!(has(&among, "k1", "fresh"), "{label}: by keys {among:?}");
    assert!(has(&recent, "k1", "fresh"), "{label}: recent {recent:?}");
    assert_eq!(count, 2, "{label}: count");
    assert_eq!(
        reads_since(&before, &after),
        (5, 5, 0),
        "{label}: the writer's queries wait for its save: {after:?}"
    );

    assert!(has(&theirs, "k0", "theirs"), "{label}: {theirs:?}");
    assert!(has(&their_top.unwrap()[&Category::Fact], "k0", "theirs"));
    assert!(
        has(&their_recent, "k0", "theirs"),
        "{label}: {their_recent:?}"
    );
    assert_eq!(their_count, 1);
    let routed = 4 + u64::from(their_keys.is_some());
    if their_keys.is_some() {
        assert!(
            has(&their_among, "k0", "theirs"),
            "{label}: {their_among:?}"
        );
    }
    assert_eq!(
        reads_since(&after, &last),
        (0, 0, routed),
        "{label}: another user's queries go to the replica: {last:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_queries_read_your_writes_by_user() {
    queries_read_your_writes_by_user(Pair::postgres()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_queries_read_your_writes_by_user() {
    queries_read_your_writes_by_user(Pair::mariadb()).await;
}

/// Without replicas a token is harmless: a write gives none, and a token
/// of the database's kind changes nothing; SQLite, which has none, refuses
/// every token.
#[tokio::test]
async fn without_replicas_tokens_are_harmless() {
    let url = common::url(common::Target::Sqlite);
    let Some(store) = common::store_at(common::Target::Sqlite, &url).await else {
        return;
    };
    store
        .save_memory(&NewMemory::new("u", Category::Fact, "k", "v"))
        .await
        .unwrap();
    assert_eq!(store.token(), None);
    let refused = store.with_token(&"wal:0/10".parse().unwrap()).unwrap_err();
    assert!(
        matches!(
            refused,
            StoreError::Token(TokenError::OtherBackend {
                backend: Backend::Sqlite,
                ..
            })
        ),
        "{refused:?}"
    );
    common::remove_sqlite(&url);

    let Some(store) = common::store(common::Target::Postgres).await else {
        return;
    };
    let user = common::unique("single");
    store
        .save_memory(&NewMemory::new(&user, Category::Fact, "k", "v"))
        .await
        .unwrap();
    assert_eq!(store.token(), None);
    let scoped = store
        .with_token(&"wal:FFFFFFFF/0".parse().unwrap())
        .unwrap();
    let found = scoped.get_memory(&user, Category::Fact, "k").await.unwrap();
    assert_eq!(found.map(|memory| memory.value).as_deref(), Some("v"));
}

#[tokio::test]
async fn sqlite_has_no_replicas() {
    let url = common::url(common::Target::Sqlite);
    let error = Database::connect_replicated(
        &url,
        &[url.as_str()],
        &ConnectOptions::new(1),
        ReplicaSettings::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            error,
            ConnectError::NoReplicas {
                backend: Backend::Sqlite
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_replica_of_another_backend_is_refused() {
    let (primary, replica) = ("postgres://127.0.0.1:1/x", "mysql://127.0.0.1:1/x");
    let error = Database::connect_replicated(
        primary,
        &[replica],
        &ConnectOptions::new(1),
        ReplicaSettings::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            error,
            ConnectError::MixedReplicaBackend {
                primary: Backend::Postgres,
                replica: Backend::MySql
            }
        ),
        "{error:?}"
    );
}
