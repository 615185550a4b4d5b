//! PostgreSQL plans the toolkit's keyed reads with the key index even in a
//! generic plan, the one a prepared statement may switch to after five
//! executions (see /work/briefs/pgplan-findings.md, issue 9 item 10: a
//! `$n IS NULL OR ...` catch-all lost its index that way). The session
//! forces generic plans, so the test checks the plan without waiting for
//! PostgreSQL to choose one, and without timing anything.

mod common;

use coalesce_sql::{Db, Table};
use sqlx::{AssertSqlSafe, Executor, postgres::PgPoolOptions};
use std::collections::HashMap;

/// The plan of every statement this session prepared, as JSON text, run
/// with `arguments` (SQL literals).
async fn generic_plans(conn: &mut sqlx::PgConnection, arguments: &str) -> Vec<String> {
    let names: Vec<(String,)> = sqlx::query_as("SELECT name FROM pg_prepared_statements")
        .persistent(false)
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    let mut plans = Vec::new();
    for (name,) in names {
        let explain = format!("EXPLAIN (FORMAT JSON) EXECUTE {name}({arguments})");
        let (plan,): (sqlx::types::JsonValue,) = sqlx::query_as(AssertSqlSafe(explain))
            .persistent(false)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        plans.push(plan.to_string());
    }
    plans
}

/// A fresh table `(a, b, v)` keyed by `(a, b)`, ten `b`s per `a`, with
/// `rows` rows and fresh statistics; its name.
async fn keyed_table(direct: &sqlx::PgPool, prefix: &str, rows: u64) -> String {
    let name = common::unique(prefix);
    let ddl = format!(
        "CREATE TABLE {name} (a BIGINT NOT NULL, b BIGINT NOT NULL, v TEXT NOT NULL, PRIMARY KEY (a, b)); \
         INSERT INTO {name} SELECT i / 10, i % 10, 'v' FROM generate_series(0, {last}) i; \
         ANALYZE {name}",
        last = rows - 1
    );
    sqlx::raw_sql(AssertSqlSafe(ddl))
        .execute(direct)
        .await
        .unwrap();
    name
}

async fn drop_table(direct: &sqlx::PgPool, name: &str) {
    sqlx::raw_sql(AssertSqlSafe(format!("DROP TABLE {name}")))
        .execute(direct)
        .await
        .unwrap();
}

#[tokio::test]
async fn keyed_reads_use_the_key_index_in_a_generic_plan() {
    let Some(direct) = common::postgres().await else {
        return;
    };
    let name = keyed_table(&direct, "plans", 200_000).await;
    // One connection, always planning generically.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("SET plan_cache_mode = force_generic_plan")
                    .await?;
                Ok(())
            })
        })
        .connect(&common::postgres_url())
        .await
        .unwrap();
    let sql = Db::new(pool.clone());

    let by_a = Table::new(&name).key(["a"]).values(["v"]);
    let found: HashMap<i64, Vec<(i64, String)>> = sql.fetch_grouped(&by_a, &[1, 2]).await.unwrap();
    assert_eq!(found.len(), 2);
    let mut conn = pool.acquire().await.unwrap();
    let plans = generic_plans(&mut conn, "'{1,2}'").await;
    assert_eq!(plans.len(), 1);
    assert!(
        plans[0].contains("Index Cond") && !plans[0].contains("Seq Scan"),
        "{}",
        plans[0]
    );
    sqlx::query("DEALLOCATE ALL")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);

    let by_ab = Table::new(&name).key(["a", "b"]).values(["v"]);
    let found: HashMap<(i64, i64), (i64, i64, String)> =
        sql.fetch(&by_ab, &[(1, 1), (2, 2)]).await.unwrap();
    assert_eq!(found.len(), 2);
    let mut conn = pool.acquire().await.unwrap();
    let plans = generic_plans(&mut conn, "'{1,2}', '{1,2}'").await;
    assert_eq!(plans.len(), 1);
    assert!(
        plans[0].contains("Index Cond") && !plans[0].contains("Seq Scan"),
        "{}",
        plans[0]
    );
    drop(conn);

    drop_table(&direct, &name).await;
}

/// How often PostgreSQL planned the session's prepared statements that
/// read `table`: (custom plans, generic plans).
async fn plan_counts(conn: &mut sqlx::PgConnection, table: &str) -> (i64, i64) {
    let pattern = format!("SELECT %FROM \"{table}\"%");
    sqlx::query_as(
        "SELECT COALESCE(SUM(custom_plans), 0)::BIGINT, COALESCE(SUM(generic_plans), 0)::BIGINT \
         FROM pg_prepared_statements WHERE statement LIKE $1",
    )
    .bind(pattern)
    .persistent(false)
    .fetch_one(&mut *conn)
    .await
    .unwrap()
}

/// A read of one key (a lone load) or of a few is a statement PostgreSQL
/// plans a few times and then serves from its cached generic plan. As a
/// short array (`= ANY($1)`, `UNNEST`) it was planned anew on every call:
/// the generic plan's guess of ten elements per array made it look dearer
/// than a custom one (~0.1 to 0.5 ms of planning per read).
#[tokio::test]
async fn small_reads_are_served_by_a_cached_plan() {
    let Some(direct) = common::postgres().await else {
        return;
    };
    let name = keyed_table(&direct, "lone", 10_000).await;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&common::postgres_url())
        .await
        .unwrap();
    let sql = Db::new(pool.clone());
    let by_a = Table::new(&name).key(["a"]).values(["v"]);
    let by_ab = Table::new(&name).key(["a", "b"]).values(["v"]);
    for i in 0..12 {
        for a in [vec![i], vec![i, i + 100, i + 200]] {
            let grouped: HashMap<i64, Vec<(i64, String)>> =
                sql.fetch_grouped(&by_a, &a).await.unwrap();
            assert!(a.iter().all(|a| grouped[a].len() == 10));
        }
        for ab in [vec![(i, 3)], vec![(i, 3), (i, 4), (i + 1, 5)]] {
            let found: HashMap<(i64, i64), (i64, i64, String)> =
                sql.fetch(&by_ab, &ab).await.unwrap();
            assert!(
                ab.iter()
                    .all(|&(a, b)| found[&(a, b)] == (a, b, "v".to_owned()))
            );
        }
    }
    let mut conn = pool.acquire().await.unwrap();
    let (custom, generic) = plan_counts(&mut conn, &name).await;
    // Four statements (one key and three, each key shape), 12 calls each:
    // PostgreSQL tries five custom plans per statement before it settles
    // on the generic one.
    assert_eq!(custom + generic, 48);
    assert!(
        custom <= 20 && generic >= 28,
        "custom {custom}, generic {generic}"
    );
    drop(conn);
    drop_table(&direct, &name).await;
}
