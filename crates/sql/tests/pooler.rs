//! The toolkit through PgBouncer in transaction mode (`scripts/pgbouncer.sh
//! start`, `COALESCE_PGBOUNCER_URL`): what goes wrong there without the
//! pooler mode, and that with it statements, their timeout and a load of
//! 100 concurrent tasks hold. (The toolkit's whole suite also runs through
//! it: `mod pgbouncer` in `tests/batch.rs`.)

mod common;

use coalesce_sql::{Db, Pooler, Session, SessionSettings, Table};
use common::Stock;
use futures::future::join_all;
use sqlx::{AssertSqlSafe, PgPool, Postgres, postgres::PgPoolOptions};
use std::{collections::HashMap, str::FromStr, time::Duration};

/// Fresh client sessions opened one after another: more than the server
/// connections the pooler keeps for the database (`default_pool_size = 20`
/// in `scripts/pgbouncer.sh`), so at least two of them are served by the
/// same server session.
const SESSIONS: usize = 64;

/// The pooler's URL (without `pooler=`) and its settings.
fn pooler() -> Option<(SessionSettings, String)> {
    Some(common::pgbouncer_settings(&common::pgbouncer_url()?))
}

/// A pool of `size` connections through the pooler, opened without the
/// startup parameters it refuses.
async fn pool(settings: &SessionSettings, url: &str, size: u32) -> PgPool {
    let options = settings.connect_options::<Postgres>(url).unwrap();
    PgPoolOptions::new()
        .max_connections(size)
        .connect_with(options)
        .await
        .expect("the pooler accepts a connection without startup parameters")
}

/// A fresh table of [`Stock`] rows through the pooler.
async fn stock_table(pool: &PgPool) -> Table {
    let name = common::unique("pooled");
    let ddl = format!("CREATE TABLE {name} (id BIGINT PRIMARY KEY, qty BIGINT NOT NULL)");
    sqlx::raw_sql(AssertSqlSafe(ddl))
        .execute(pool)
        .await
        .unwrap();
    Table::new(name).key(["id"]).values(["qty"])
}

async fn drop_table(pool: &PgPool, table: &Table) {
    let ddl = format!("DROP TABLE {}", table.name());
    sqlx::raw_sql(AssertSqlSafe(ddl))
        .execute(pool)
        .await
        .unwrap();
}

/// Read two keys of `table` on a fresh single-connection pool, its
/// statements run as `batch_settings` say.
async fn read_on_a_fresh_session(
    settings: &SessionSettings,
    url: &str,
    table: &Table,
    batch_settings: SessionSettings,
) -> Result<HashMap<i64, Stock>, coalesce_sql::Error> {
    let pool = pool(settings, url, 1).await;
    let batch = Db::new(pool.clone()).with_session_settings(batch_settings);
    let found = batch.fetch(table, &[1, 2]).await;
    pool.close().await;
    found
}

#[tokio::test]
async fn sqlx_startup_parameters_are_refused_by_the_pooler() {
    let Some((_, url)) = pooler() else { return };
    // What the store sent before the pooler mode: sqlx's own
    // `extra_float_digits`, and the statement timeout as `options`.
    let options = sqlx::postgres::PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("statement_timeout", 30_000)]);
    let refused = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("unsupported startup parameter"),
        "{refused}"
    );
}

#[tokio::test]
async fn named_statements_collide_through_the_pooler_and_the_pooler_mode_avoids_them() {
    let Some((settings, url)) = pooler() else {
        return;
    };
    let admin = pool(&settings, &url, 1).await;
    let table = stock_table(&admin).await;
    let named = SessionSettings::default();

    // sqlx's default: every fresh session names its first statement
    // `sqlx_s_1`; a server session that already holds one refuses another.
    let mut failures = Vec::new();
    for _ in 0..SESSIONS {
        if let Err(error) = read_on_a_fresh_session(&settings, &url, &table, named).await {
            failures.push(error.to_string());
        }
    }
    assert!(
        failures.iter().any(|e| e.contains("prepared statement")),
        "{SESSIONS} sessions through {} server connections at most: {failures:?}",
        20
    );

    // The pooler mode: the same sessions, no named statement, no failure.
    for _ in 0..SESSIONS {
        let found = read_on_a_fresh_session(&settings, &url, &table, settings).await;
        assert_eq!(found.unwrap(), HashMap::new());
    }
    drop_table(&admin, &table).await;
}

#[tokio::test]
async fn the_statement_timeout_holds_per_transaction_and_ends_with_it() {
    let Some((settings, url)) = pooler() else {
        return;
    };
    let pool = pool(&settings, &url, 1).await;
    let limited = SessionSettings {
        statement_timeout: Some(Duration::from_millis(50)),
        ..settings
    };

    let mut session = Session::begin(&pool, &limited).await.unwrap();
    assert!(session.in_transaction() && !session.named_statements());
    let shown: String = sqlx::query_scalar("SHOW statement_timeout")
        .persistent(session.named_statements())
        .fetch_one(&mut *session)
        .await
        .unwrap();
    assert_eq!(shown, "50ms");
    let cancelled = sqlx::query("SELECT pg_sleep(5)")
        .persistent(session.named_statements())
        .execute(&mut *session)
        .await
        .unwrap_err();
    let code = cancelled.as_database_error().and_then(|e| e.code());
    assert_eq!(code.as_deref(), Some("57014"), "{cancelled}"); // query_canceled
    drop(session);

    // `SET LOCAL` ended with its transaction: the next one, whichever
    // server session serves it, has no trace of it.
    let unlimited = SessionSettings {
        statement_timeout: None,
        ..settings
    };
    let mut session = Session::begin(&pool, &unlimited).await.unwrap();
    let shown: String = sqlx::query_scalar("SHOW statement_timeout")
        .persistent(session.named_statements())
        .fetch_one(&mut *session)
        .await
        .unwrap();
    assert_ne!(shown, "50ms");
    session.finish().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_tasks_read_write_and_delete_through_the_pooler() {
    let Some((settings, url)) = pooler() else {
        return;
    };
    let pool = pool(&settings, &url, 10).await;
    let table = stock_table(&pool).await;
    let batch = Db::new(pool.clone()).with_session_settings(settings);

    // Task `t` writes rows 10t..10t+10 (several statements: one
    // transaction), reads them back, deletes the odd ones, reads again.
    let task = |t: i64| {
        let (batch, table) = (batch.clone(), table.clone());
        tokio::spawn(async move {
            let rows: Vec<Stock> = (10 * t..10 * t + 10)
                .map(|id| Stock { id, qty: id * 2 })
                .collect();
            batch
                .clone()
                .with_rows_per_statement(3)
                .upsert(&table, &rows)
                .await?;
            let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
            let written: HashMap<i64, Stock> = batch.fetch(&table, &ids).await?;
            let odd: Vec<i64> = ids.iter().copied().filter(|id| id % 2 == 1).collect();
            let deleted = batch.delete(&table, &odd).await?;
            let left: HashMap<i64, Stock> = batch.fetch(&table, &ids).await?;
            Ok::<_, coalesce_sql::Error>((rows, written, odd, deleted, left))
        })
    };
    let results = join_all((0..100).map(task)).await;
    for result in results {
        let (rows, written, odd, deleted, left) = result.unwrap().unwrap();
        let expected: HashMap<i64, Stock> = rows.into_iter().map(|row| (row.id, row)).collect();
        assert_eq!(written, expected);
        assert_eq!(deleted, odd);
        let even: HashMap<i64, Stock> =
            expected.into_iter().filter(|(id, _)| id % 2 == 0).collect();
        assert_eq!(left, even);
    }
    drop_table(&pool, &table).await;
}

#[tokio::test]
async fn a_per_key_read_isolates_a_failing_key_inside_transactions() {
    let Some((settings, url)) = pooler() else {
        return;
    };
    let pool = pool(&settings, &url, 1).await;
    let table = stock_table(&pool).await;
    let batch = Db::new(pool.clone()).with_session_settings(settings);
    let rows: Vec<Stock> = (0..10)
        .map(|id| Stock {
            id,
            qty: i64::from(id != 7),
        })
        .collect();
    batch.upsert(&table, &rows).await.unwrap();
    // Dividing by row 7's 0 fails its statement (SQLSTATE 22012, a data
    // error): the keys are read again in halves, each statement after the
    // failed one in a new transaction.
    let divided = table.clone().select("id, 10 / qty AS qty");
    let ids: Vec<i64> = (0..10).collect();
    let found = batch
        .fetch_each::<i64, Stock>(&divided, &ids)
        .await
        .unwrap();
    assert_eq!(found.len(), 10);
    for (id, answer) in found {
        match answer {
            Ok(row) => assert_eq!((id, row.qty), (row.id, 10), "key {id}"),
            Err(error) => assert_eq!(id, 7, "{error}"),
        }
    }
    drop_table(&pool, &table).await;
}

/// Directly on PostgreSQL, one connection: the server session holds the
/// named statements a handle prepared, none in the pooler mode.
#[tokio::test]
async fn the_pooler_mode_leaves_no_named_statement_on_the_server_session() {
    if common::postgres().await.is_none() {
        return;
    }
    let url = common::postgres_url();
    let transaction = SessionSettings {
        pooler: Pooler::Transaction,
        statement_timeout: Some(Duration::from_secs(30)),
    };
    let mut named = HashMap::new();
    for settings in [SessionSettings::default(), transaction] {
        let pool = pool(&settings, &url, 1).await;
        let table = stock_table(&pool).await;
        let batch = Db::new(pool.clone()).with_session_settings(settings);
        let rows: Vec<Stock> = (0..20).map(|id| Stock { id, qty: id }).collect();
        batch.upsert(&table, &rows).await.unwrap();
        let _: HashMap<i64, Stock> = batch.fetch(&table, &[1, 2, 3]).await.unwrap();
        batch.delete(&table, &[4, 5]).await.unwrap();
        let prepared: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_prepared_statements")
            .persistent(false)
            .fetch_one(&pool)
            .await
            .unwrap();
        named.insert(settings.pooler, prepared);
        drop_table(&pool, &table).await;
    }
    assert!(named[&Pooler::None] >= 3, "{named:?}");
    assert_eq!(named[&Pooler::Transaction], 0, "{named:?}");
}

#[test]
fn only_known_pooler_modes_are_accepted() {
    let (pooler, url) = Pooler::from_url("postgres://h/db?sslmode=disable&pooler=session").unwrap();
    assert_eq!(
        (pooler, url.as_str()),
        (Pooler::None, "postgres://h/db?sslmode=disable")
    );
    assert!(Pooler::from_url("postgres://h/db?pooler=statement").is_err());
}
