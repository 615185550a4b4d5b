//! Faults on the networked backends (PostgreSQL, MariaDB):
//! - a connection lost under the pool reaches every caller of the batch as
//!   an error, and the store works again once the database answers (through
//!   a TCP proxy the test can cut; SQLite has no connection to lose);
//! - a batched write that the database aborts to break a deadlock is run
//!   again, and succeeds (SQLite has one writer at a time, so no deadlock).

mod common;

use coalesce_store::db::{Database, Pool};
use coalesce_store::{Category, MemoryKey, MemoryStore, NewMemory, StoreError};
use common::{Target, unique};
use futures::future::join_all;
use std::{collections::HashMap, net::SocketAddr, time::Duration};
use tokio::{
    net::{TcpSocket, TcpStream},
    task::JoinSet,
};

/// A loopback proxy to `upstream` that can be cut (every connection reset,
/// new ones refused) and restored on the same port.
struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    tasks: JoinSet<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let mut proxy = Self {
            addr: "127.0.0.1:0".parse().unwrap(),
            upstream,
            tasks: JoinSet::new(),
        };
        proxy.listen();
        proxy
    }

    fn listen(&mut self) {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(self.addr).unwrap();
        let listener = socket.listen(64).unwrap();
        self.addr = listener.local_addr().unwrap();
        let upstream = self.upstream;
        self.tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
    }

    /// Reset every connection and refuse new ones.
    async fn cut(&mut self) {
        self.tasks.shutdown().await;
    }
}

/// A store whose pool reaches the `target` server through a cuttable
/// proxy, with the proxy, and a store connected directly for checking.
async fn behind_proxy(target: Target) -> Option<(MemoryStore, Proxy, MemoryStore)> {
    // Skip (or fail in CI) exactly as the other tests do.
    let direct = common::store(target).await?;
    let url = common::url(target);
    let server = common::host_port(&url);
    let upstream = tokio::net::lookup_host(server)
        .await
        .unwrap()
        .find(SocketAddr::is_ipv4)
        .unwrap();
    let proxy = Proxy::start(upstream).await;
    let via_proxy = url.replacen(server, &proxy.addr.to_string(), 1);
    let timeout = Duration::from_secs(2);
    let pool = match target {
        Target::Postgres => Pool::Postgres(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(timeout)
                .connect(&via_proxy)
                .await
                .unwrap(),
        ),
        Target::MySql => Pool::MySql(
            sqlx::mysql::MySqlPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(timeout)
                .connect(&via_proxy)
                .await
                .unwrap(),
        ),
        Target::Sqlite => unreachable!("no connection to lose"),
    };
    let store = MemoryStore::new(Database::new(pool)).unwrap();
    Some((store, proxy, direct))
}

async fn lost_connection(target: Target) {
    let Some((store, mut proxy, direct)) = behind_proxy(target).await else {
        return;
    };
    let users: Vec<String> = (0..10).map(|_| unique("fault")).collect();
    for user in &users {
        direct.save_profile(user, "before").await.unwrap();
    }
    let all = || join_all(users.iter().map(|u| store.get_profile(u)));
    assert!(
        all()
            .await
            .into_iter()
            .all(|r| r.unwrap().as_deref() == Some("before"))
    );

    proxy.cut().await;
    let failed = all().await;
    for result in &failed {
        assert!(
            matches!(result, Err(StoreError::Batch { .. })),
            "{result:?}"
        );
    }
    assert!(store.stats().errors >= 1);

    proxy.listen();
    // The pool may need failed attempts to notice its dead connections (up
    // to one per connection): retry until it serves, within a bound.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !all()
        .await
        .into_iter()
        .all(|r| matches!(r, Ok(Some(ref p)) if p == "before"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the store works again once the database answers"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn lost_connection_postgres() {
    lost_connection(Target::Postgres).await;
}

#[tokio::test]
async fn lost_connection_mysql() {
    lost_connection(Target::MySql).await;
}

/// The connection is cut while a bulk save's transaction is half sent:
/// the caller gets the error and the database holds none of the rows.
async fn cut_mid_transaction(target: Target) {
    let Some((store, mut proxy, direct)) = behind_proxy(target).await else {
        return;
    };
    let user = unique("cut");
    // 200 upserts of 100 rows in one transaction: far longer than the
    // few statements the test waits for before cutting.
    let rows: Vec<NewMemory> = (0..20_000)
        .map(|i| NewMemory::new(&user, Category::Fact, format!("k{i}"), "v"))
        .collect();
    let db = store.database().clone();
    let before = db.statements();
    let save = tokio::spawn(async move { store.batch_save_memories(&rows).await });
    while db.statements() < before + 3 {
        assert!(
            !save.is_finished(),
            "the save ended before the cut: {save:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    proxy.cut().await;
    let result = save.await.unwrap();
    assert!(
        matches!(result, Err(StoreError::Database { .. })),
        "{result:?}"
    );
    assert_eq!(
        direct.database().count_memories(&user).await.unwrap(),
        0,
        "nothing of the cut transaction is written"
    );
}

#[tokio::test]
async fn cut_mid_transaction_postgres() {
    cut_mid_transaction(Target::Postgres).await;
}

#[tokio::test]
async fn cut_mid_transaction_mysql() {
    cut_mid_transaction(Target::MySql).await;
}

/// Two transactions on connections of `pool`'s own, the holder and the
/// gate: the sides of a deadlock that are not the code under test.
macro_rules! on_pool {
    ($pool:expr, |$holder:ident, $gate:ident| $body:expr) => {
        match $pool {
            Pool::Postgres(pool) => {
                let mut $holder = pool.begin().await.unwrap();
                let mut $gate = pool.begin().await.unwrap();
                $body
            }
            Pool::MySql(pool) => {
                let mut $holder = pool.begin().await.unwrap();
                let mut $gate = pool.begin().await.unwrap();
                $body
            }
            Pool::Sqlite(_) => unreachable!("SQLite has one writer at a time"),
        }
    };
}

/// Wait until `event` holds, asking the server every 2 ms; fail after 30 s
/// (a liveness bound: on a working build it holds within milliseconds).
async fn until<F: Future<Output = bool>>(what: &str, mut event: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !event().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// PostgreSQL: whether a session waits right now for a lock that session
/// `pid` holds, or (`blocked`) whether session `pid` waits for any lock.
/// `pg_locks` is live, and only this test's sessions are asked about.
async fn lock_wait(pool: &Pool, pid: i32, blocked: bool) -> bool {
    let Pool::Postgres(pool) = pool else {
        unreachable!("PostgreSQL's lock view");
    };
    let sql = if blocked {
        "SELECT cardinality(pg_blocking_pids($1)) > 0"
    } else {
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)))"
    };
    sqlx::query_scalar(sql)
        .bind(pid)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// MariaDB: whether some transaction holds a lock on the row `key` of
/// `user`: a locking read that skips locked rows does not find it.
/// (InnoDB's lock tables in information_schema are a snapshot refreshed
/// only after 100 ms without a read by anyone, so polling them can see a
/// stale one forever.)
async fn row_locked(pool: &Pool, user: &str, key: &str) -> bool {
    let Pool::MySql(pool) = pool else {
        unreachable!("MariaDB's locking read");
    };
    let found: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM memories WHERE user_id = ? AND category = 'INTEREST' \
         AND `key` = ? FOR UPDATE SKIP LOCKED",
    )
    .bind(user)
    .bind(key)
    .fetch_one(pool)
    .await
    .unwrap();
    found == 0
}

/// Deadlock a batched save on purpose: a holder transaction locks 21 rows
/// including `m`; the save (`[a, g, m]`, written in that order) locks `a`
/// and, past `g`, waits for `m`; the holder asks for `a`. (The names sort
/// so that InnoDB's next-key locks from the holder's scan stay clear of
/// `a`.) Each step waits for the server to show the one before, so the
/// database aborts the save every time:
/// - InnoDB looks for a cycle when a wait begins and rolls back the
///   lighter transaction (the save: it changed fewer rows);
/// - PostgreSQL looks once, `deadlock_timeout` after a session began to
///   wait, and aborts the session that looks. The holder never looks (its
///   timeout is an hour), and a gate, holding `g`, keeps the save from
///   asking for `m` until the holder waits for `a`: the save's one look,
///   1 s after it waits for `m`, always finds the cycle.
///
/// Returns the save's result, how many statements it sent, and the user.
async fn deadlocked_save(db: &Database, target: Target) -> (Result<(), sqlx::Error>, u64, String) {
    let user = unique("deadlock");
    let names: Vec<String> = (0..20)
        .map(|i| format!("w{i}"))
        .chain(["m", "a", "g"].map(str::to_owned))
        .collect();
    let seed: Vec<NewMemory> = names
        .iter()
        .map(|k| NewMemory::new(&user, Category::Interest, k, "seed"))
        .collect();
    db.save_memories(&seed, 100).await.unwrap();

    let quoted_key = if target == Target::MySql {
        "`key`"
    } else {
        "key"
    };
    // One row a statement: a point lookup locks that row only, where an IN
    // list over most of the user's rows may be run as a scan of them all.
    let update = |key: &str| {
        sqlx::AssertSqlSafe(format!(
            "UPDATE memories SET value = 'holder' WHERE user_id = '{user}' \
             AND category = 'INTEREST' AND {quoted_key} = '{key}'"
        ))
    };
    let before = db.statements();
    let save = {
        let db = db.clone();
        let rows = ["a", "g", "m"].map(|k| NewMemory::new(&user, Category::Interest, k, "saved"));
        async move { db.save_memories(&rows, 100).await }
    };
    let pid = "SELECT pg_backend_pid()";
    on_pool!(db.pool(), |holder, gate| {
        for key in &names[..21] {
            sqlx::query(update(key))
                .execute(&mut *holder)
                .await
                .unwrap();
        }
        let pids = if target == Target::Postgres {
            sqlx::query("SET LOCAL deadlock_timeout = '1h'")
                .execute(&mut *holder)
                .await
                .unwrap();
            sqlx::query(update("g")).execute(&mut *gate).await.unwrap();
            let holder_pid: i32 = sqlx::query_scalar(pid)
                .fetch_one(&mut *holder)
                .await
                .unwrap();
            let gate_pid: i32 = sqlx::query_scalar(pid).fetch_one(&mut *gate).await.unwrap();
            Some((holder_pid, gate_pid))
        } else {
            None
        };
        let save = tokio::spawn(save);
        let asked_for_a = match pids {
            Some((holder_pid, gate_pid)) => {
                // The save holds `a` and waits at the gate.
                until("the save waits for the gate", || {
                    lock_wait(db.pool(), gate_pid, false)
                })
                .await;
                // The holder asks for `a`; once it waits, the gate opens.
                let open_the_gate = async {
                    until("the holder waits for a", || {
                        lock_wait(db.pool(), holder_pid, true)
                    })
                    .await;
                    gate.rollback().await.unwrap();
                };
                let (asked, ()) = tokio::join!(
                    sqlx::query(update("a")).execute(&mut *holder),
                    open_the_gate
                );
                asked
            }
            None => {
                drop(gate);
                until("the save holds a", || row_locked(db.pool(), &user, "a")).await;
                sqlx::query(update("a")).execute(&mut *holder).await
            }
        };
        asked_for_a.expect("the holder survives the deadlock");
        // Commit only once the save has seen the deadlock (it failed, or
        // its retry sent a second statement): committing at once sometimes
        // beat MariaDB's victim to its rollback, and the save went through
        // undisturbed.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !save.is_finished() && db.statements() - before < 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the save never saw the deadlock"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        holder.commit().await.unwrap();
        (save.await.unwrap(), db.statements() - before, user)
    })
}

async fn deadlocked_write_is_retried(target: Target) {
    let Some(store) = common::store(target).await else {
        return;
    };
    let db = store.database().clone();

    let (once, statements, _) = deadlocked_save(&db.clone().with_write_attempts(1), target).await;
    let code = match &once {
        Err(sqlx::Error::Database(e)) => e.code().map(|c| c.into_owned()),
        other => panic!("expected the database to abort the save: {other:?}"),
    };
    assert!(
        matches!(code.as_deref(), Some("40001" | "40P01")),
        "{once:?}"
    );
    assert_eq!(statements, 1);

    let (retried, statements, user) = deadlocked_save(&db, target).await;
    retried.expect("the retried save succeeds");
    assert_eq!(statements, 2, "one aborted attempt, one that succeeded");
    // The retry ran after the holder committed, so its values are the last.
    let keys = ["a", "g", "m"].map(|k| MemoryKey::new(&user, Category::Interest, k));
    let found = db.memories_by_key(&keys).await.unwrap();
    assert_eq!(
        found,
        HashMap::from(keys.map(|k| (k, "saved".to_owned()))),
        "the retried save is in the database"
    );
}

#[tokio::test]
async fn deadlocked_write_is_retried_postgres() {
    deadlocked_write_is_retried(Target::Postgres).await;
}

#[tokio::test]
async fn deadlocked_write_is_retried_mysql() {
    deadlocked_write_is_retried(Target::MySql).await;
}
