//! Faults: a connection lost under the pool reaches every caller of the
//! batch as an error, and the store works again once the database answers.
//! Runs on the networked backends (PostgreSQL, MariaDB) through a TCP proxy
//! the test can cut; SQLite has no connection to lose.

mod common;

use coalesce::{
    sql::{Database, Pool},
    store::{MemoryStore, StoreError},
};
use common::{Target, unique};
use futures::future::join_all;
use std::{net::SocketAddr, time::Duration};
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

async fn lost_connection(target: Target) {
    // Skip (or fail in CI) exactly as the other tests do.
    let Some(direct) = common::store(target).await else {
        return;
    };
    let url = common::url(target);
    let server = common::host_port(&url);
    let upstream = tokio::net::lookup_host(server)
        .await
        .unwrap()
        .find(SocketAddr::is_ipv4)
        .unwrap();
    let mut proxy = Proxy::start(upstream).await;
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
    // The pool may need one failed attempt to notice its dead connections.
    let mut recovered = false;
    for _ in 0..5 {
        if all()
            .await
            .into_iter()
            .all(|r| matches!(r, Ok(Some(ref p)) if p == "before"))
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "the store works again once the database answers");
}

#[tokio::test]
async fn lost_connection_postgres() {
    lost_connection(Target::Postgres).await;
}

#[tokio::test]
async fn lost_connection_mysql() {
    lost_connection(Target::MySql).await;
}
