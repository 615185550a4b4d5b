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

/// Run `sql` (no binds) on a connection of `pool`'s own, for the side of a
/// deadlock that is not the code under test.
macro_rules! on_pool {
    ($pool:expr, |$conn:ident| $body:expr) => {
        match $pool {
            Pool::Postgres(pool) => {
                let mut $conn = pool.begin().await.unwrap();
                $body
            }
            Pool::MySql(pool) => {
                let mut $conn = pool.begin().await.unwrap();
                $body
            }
            Pool::Sqlite(_) => unreachable!("SQLite has one writer at a time"),
        }
    };
}

/// Whether the save (rows `[a, m]` of `user`, written in that order) has
/// taken `a` and so is bound to wait for the holder's `m`: once it has, the
/// holder asking for `a` closes the cycle. Asked of the server, and only
/// about this test's rows and sessions, since other tests wait for locks of
/// their own on the same server.
async fn save_holds_a(pool: &Pool, user: &str, holder_pid: Option<i32>) -> bool {
    match (pool, holder_pid) {
        // A session waits for the holder's: only the save, for `m`, which
        // it asks for after taking `a`. (`pg_locks` is live.)
        (Pool::Postgres(pool), Some(holder)) => sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)))",
        )
        .bind(holder)
        .fetch_one(pool)
        .await
        .unwrap(),
        // A locking read that skips locked rows does not find `a`. (InnoDB's
        // lock tables in information_schema are a snapshot that is
        // refreshed only after 100 ms without a read by anyone, so polling
        // them can see a stale one forever.)
        (Pool::MySql(pool), None) => {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM memories WHERE user_id = ? AND category = 'INTEREST' \
             AND `key` = 'a' FOR UPDATE SKIP LOCKED",
            )
            .bind(user)
            .fetch_one(pool)
            .await
            .unwrap()
                == 0
        }
        _ => unreachable!("a PostgreSQL holder's pid, or MariaDB"),
    }
}

/// Deadlock a batched save on purpose: a holder transaction locks 21 rows
/// including `m`, the save (`[a, m]`) locks `a` and waits for `m`, then the
/// holder asks for `a`. (The names sort so that InnoDB's next-key locks
/// from the holder's scan stay clear of `a`.) The database aborts the save: on InnoDB the
/// transaction that changed fewer rows, on PostgreSQL the first to wait.
/// Returns the save's result, how many statements it sent, and the user.
async fn deadlocked_save(db: &Database, target: Target) -> (Result<(), sqlx::Error>, u64, String) {
    let user = unique("deadlock");
    let names: Vec<String> = (0..20)
        .map(|i| format!("w{i}"))
        .chain(["m".to_owned(), "a".to_owned()])
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
        let rows = vec![
            NewMemory::new(&user, Category::Interest, "a", "saved"),
            NewMemory::new(&user, Category::Interest, "m", "saved"),
        ];
        async move { db.save_memories(&rows, 100).await }
    };
    on_pool!(db.pool(), |holder| {
        for key in &names[..21] {
            sqlx::query(update(key))
                .execute(&mut *holder)
                .await
                .unwrap();
        }
        let holder_pid = match target {
            Target::Postgres => Some(
                sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()")
                    .fetch_one(&mut *holder)
                    .await
                    .unwrap(),
            ),
            _ => None,
        };
        let save = tokio::spawn(save);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !save_holds_a(db.pool(), &user, holder_pid).await {
            if save.is_finished() {
                panic!("the save ended without waiting: {:?}", save.await);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the save never took a"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Ask for `a` now. InnoDB finds the cycle when its second edge is
        // made, and rolls back the lighter transaction: the save. PostgreSQL
        // looks for it once, `deadlock_timeout` (1 s) after a session began
        // to wait, in the session that waited first (the save, which was
        // seen waiting): the holder is waiting by then, milliseconds later.
        sqlx::query(update(&names[21]))
            .execute(&mut *holder)
            .await
            .expect("the holder survives the deadlock");
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
    let keys = ["a", "m"].map(|k| MemoryKey::new(&user, Category::Interest, k));
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
