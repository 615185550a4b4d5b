//! What a [`Replicated`] handle does with its servers' health and
//! settings, on the PostgreSQL test server standing in for both primary and
//! replica (no read here needs a replayed position), an unreachable port
//! for a replica that is down, and PgBouncer for replicas behind a pooler.
//!
//! A test binary of its own: it installs a global `tracing` subscriber to
//! see the warning a replica taken out of use logs (see
//! `crates/engine/tests/batch_span.rs` for why scoped subscribers are not
//! used across threads).

mod common;

use coalesce_sql::{
    Table,
    replicas::{OutOfUse, ReplicaSettings, Replicated, ServerStats},
};
use common::Stock;
use sqlx::Postgres;
use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};
use tokio::sync::Notify;
use tracing::{
    Event, Id, Metadata, Subscriber,
    field::{Field, Visit},
    span::{Attributes, Record},
};

/// Every event's fields as text, message included.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<HashMap<&'static str, String>>>>);

struct Fields<'a>(&'a mut HashMap<&'static str, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
}

impl Subscriber for Events {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(fields);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The process's subscriber, installed once.
fn events() -> &'static Events {
    static EVENTS: OnceLock<Events> = OnceLock::new();
    EVENTS.get_or_init(|| {
        let events = Events::default();
        tracing::subscriber::set_global_default(events.clone()).expect("no other subscriber");
        events
    })
}

/// A URL nothing listens on.
const DOWN: &str = "postgres://postgres@127.0.0.1:1/test";

fn settings(pool_size: u32) -> ReplicaSettings {
    ReplicaSettings {
        pool_size,
        replica_acquire_timeout: Duration::from_millis(200),
        ..ReplicaSettings::default()
    }
}

/// `SELECT 1` on whatever server the handle picks.
async fn read_one(db: &Replicated<Postgres>) -> i32 {
    db.read(&[], None, |batch| async move {
        Ok(sqlx::query_scalar("SELECT 1")
            .fetch_one(batch.pool())
            .await?)
    })
    .await
    .unwrap()
}

fn replica(stats: &[ServerStats]) -> &ServerStats {
    &stats[1]
}

#[tokio::test]
async fn a_replica_taken_out_of_use_says_why_in_the_log_and_the_stats() {
    let events = events();
    if common::postgres().await.is_none() {
        return;
    }
    let db = Replicated::<Postgres>::connect(&common::postgres_url(), &[DOWN], settings(2))
        .await
        .unwrap();
    assert_eq!(read_one(&db).await, 1, "served by the primary");
    let stats = db.stats();
    assert_eq!(replica(&stats).failures, 1);
    let Some(OutOfUse::Failed(reason)) = &replica(&stats).last_out_of_use else {
        panic!("{:?}", replica(&stats).last_out_of_use);
    };
    let logged = events.0.lock().unwrap().clone();
    let warning = logged
        .iter()
        .find(|fields| {
            fields.get("message").map(String::as_str) == Some("replica taken out of use")
        })
        .unwrap_or_else(|| panic!("no warning among {logged:?}"));
    assert_eq!(warning["server"], "replica 0");
    assert!(warning["reason"].contains(reason.as_str()), "{warning:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_pool_is_busy_stays_in_use() {
    if common::postgres().await.is_none() {
        return;
    }
    let url = common::postgres_url();
    // One connection per server: a read holding the replica's makes the
    // next read wait out the acquire timeout on a replica that is fine.
    let db = Arc::new(
        Replicated::<Postgres>::connect(&url, &[&url], settings(1))
            .await
            .unwrap(),
    );
    let (held, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let holder = {
        let (db, held, release) = (Arc::clone(&db), Arc::clone(&held), Arc::clone(&release));
        tokio::spawn(async move {
            db.read(&[], None, |batch| {
                let (held, release) = (Arc::clone(&held), Arc::clone(&release));
                async move {
                    let connection = batch.pool().acquire().await?;
                    held.notify_one();
                    release.notified().await;
                    drop(connection);
                    Ok(())
                }
            })
            .await
        })
    };
    held.notified().await;
    assert_eq!(read_one(&db).await, 1, "served by the primary meanwhile");
    release.notify_one();
    holder.await.unwrap().unwrap();

    let stats = db.stats();
    assert_eq!(replica(&stats).failures, 0, "{stats:?}");
    assert_eq!(replica(&stats).last_out_of_use, None);
    let reads = replica(&stats).reads;
    read_one(&db).await;
    assert_eq!(
        replica(&db.stats()).reads,
        reads + 1,
        "the replica is still in use"
    );
}

#[tokio::test]
async fn every_server_gets_the_statement_timeout() {
    if common::postgres().await.is_none() {
        return;
    }
    let url = common::postgres_url();
    let settings = ReplicaSettings {
        statement_timeout: Some(Duration::from_millis(1234)),
        ..settings(1)
    };
    let db = Replicated::<Postgres>::connect(&url, &[&url], settings)
        .await
        .unwrap();
    let show = "SHOW statement_timeout";
    let on_primary: String = sqlx::query_scalar(show)
        .fetch_one(db.primary().pool())
        .await
        .unwrap();
    let on_replica: String = db
        .read(&[], None, |batch| async move {
            Ok(sqlx::query_scalar(show).fetch_one(batch.pool()).await?)
        })
        .await
        .unwrap();
    assert_eq!(
        (on_primary.as_str(), on_replica.as_str()),
        ("1234ms", "1234ms")
    );
    assert_eq!(
        replica(&db.stats()).reads,
        1,
        "the read went to the replica"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_behind_a_transaction_pooler_read_and_write() {
    let Some(url) = common::pgbouncer_url() else {
        return;
    };
    let Some(admin) = common::pgbouncer().await else {
        return;
    };
    let name = common::unique("replicated_pooled");
    let ddl = format!("CREATE TABLE {name} (id BIGINT PRIMARY KEY, qty BIGINT NOT NULL)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
        .execute(&admin)
        .await
        .unwrap();
    let table = Table::new(&name).key(["id"]).values(["qty"]);
    let settings = ReplicaSettings {
        statement_timeout: Some(Duration::from_secs(30)),
        wait_for_replay: Duration::ZERO,
        ..settings(4)
    };
    let db = Replicated::<Postgres>::connect(&url, &[&url], settings)
        .await
        .unwrap();
    for round in 0..20 {
        let rows: Vec<Stock> = (0..10).map(|id| Stock { id, qty: round }).collect();
        let written = db.upsert(&table, &rows).await.unwrap();
        assert!(written.position.is_some());
        // The "replica" is the primary, which replays nothing: reads of
        // written keys go to the primary, the others to the replica.
        let ids: Vec<i64> = (0..20).collect();
        let found: HashMap<i64, Stock> = db.fetch(&table, &ids, None).await.unwrap();
        assert_eq!(found.len(), 10);
        assert!(found.values().all(|row| row.qty == round));
    }
    let stats = db.stats();
    assert_eq!(replica(&stats).failures, 0, "{stats:?}");
    let ddl = format!("DROP TABLE {name}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
        .execute(&admin)
        .await
        .unwrap();
}
