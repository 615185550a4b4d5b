//! Ambiguous commits: a TCP proxy between the toolkit and the server cuts
//! the connection when the client sends a chosen statement, so a write
//! fails at a known step. Losing the connection at `COMMIT`, or during a
//! write that is a single auto-committed statement, may have written the
//! rows: `CommitOutcomeUnknown`. Losing it at an earlier statement of a
//! transaction wrote nothing: `Database`.

mod common;

use coalesce_sql::{Db, Dialect, Error, KeyPart, Step, Table};
use common::Stock;
use std::sync::{Arc, Mutex};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// A proxy to `upstream` that drops the connection, without forwarding,
/// the first time the client sends bytes containing the armed needle.
#[derive(Clone)]
struct Proxy {
    address: std::net::SocketAddr,
    armed: Arc<Mutex<Option<&'static [u8]>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            address: listener.local_addr().unwrap(),
            armed: Arc::default(),
        };
        let armed = Arc::clone(&proxy.armed);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(&upstream).await.unwrap();
                tokio::spawn(forward(client, server, Arc::clone(&armed)));
            }
        });
        proxy
    }

    /// Cut the next connection that sends `needle`.
    fn arm(&self, needle: &'static [u8]) {
        *self.armed.lock().unwrap() = Some(needle);
    }
}

async fn forward(client: TcpStream, server: TcpStream, armed: Arc<Mutex<Option<&'static [u8]>>>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let mut buffer = vec![0; 1 << 16];
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let sent = &buffer[..n];
            let cut = {
                let mut armed = armed.lock().unwrap();
                let hit =
                    armed.is_some_and(|needle| sent.windows(needle.len()).any(|w| w == needle));
                if hit {
                    *armed = None;
                }
                hit
            };
            if cut || server_write.write_all(sent).await.is_err() {
                return;
            }
        }
    };
    let downstream = tokio::io::copy(&mut server_read, &mut client_write);
    // Whichever side ends first ends both: dropping the halves closes them.
    tokio::select! {
        () = upstream => {}
        _ = downstream => {}
    }
}

/// The three outcomes on one backend, through a proxy to `upstream`.
async fn outcomes<DB: Dialect>(batch: Db<DB>, proxy: Proxy, table: &Table)
where
    i64: KeyPart<DB>,
{
    let rows: Vec<Stock> = (0..35).map(|id| Stock { id, qty: 1 }).collect();

    // Cut at COMMIT of a multi-chunk write: unknown.
    proxy.arm(b"COMMIT");
    let error = batch.upsert(table, &rows).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::CommitOutcomeUnknown {
                step: Step::Commit,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.may_have_committed());

    // Cut at the first statement of a transaction: nothing written.
    proxy.arm(b"INSERT INTO");
    let error = batch.upsert(table, &rows).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Database {
                step: Step::Chunk { index: 1, of: 4 },
                ..
            }
        ),
        "{error}"
    );
    assert!(!error.may_have_committed());

    // Cut at a single auto-committed statement: unknown.
    proxy.arm(b"INSERT INTO");
    let error = batch.upsert(table, &rows[..5]).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::CommitOutcomeUnknown {
                step: Step::Chunk { index: 1, of: 1 },
                ..
            }
        ),
        "{error}"
    );
}

/// The three outcomes on the server at `url` (`direct`, a pool on it),
/// through a proxy in front of it, on a table of the test's own.
async fn lost_connections<DB: Dialect>(direct: sqlx::Pool<DB>, url: &str)
where
    i64: KeyPart<DB>,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    let name = common::unique("stock");
    let ddl = format!("CREATE TABLE {name} (id BIGINT PRIMARY KEY, qty BIGINT NOT NULL)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
        .execute(&direct)
        .await
        .unwrap();
    let upstream = common::host_port(url);
    let proxy = Proxy::start(upstream.to_owned()).await;
    let pool = sqlx::pool::PoolOptions::<DB>::new()
        .max_connections(1)
        .connect(&url.replace(upstream, &proxy.address.to_string()))
        .await
        .unwrap();
    let table = Table::new(&name).key(["id"]).values(["qty"]);
    outcomes(Db::new(pool).with_rows_per_statement(10), proxy, &table).await;
    let drop = format!("DROP TABLE {name}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(&direct)
        .await
        .unwrap();
}

#[tokio::test]
async fn postgres_lost_connections_say_whether_the_write_may_have_committed() {
    if let Some(direct) = common::postgres().await {
        lost_connections(direct, &common::postgres_url()).await;
    }
}

#[tokio::test]
async fn mysql_lost_connections_say_whether_the_write_may_have_committed() {
    if let Some(direct) = common::mysql().await {
        lost_connections(direct, &common::mysql_url()).await;
    }
}
