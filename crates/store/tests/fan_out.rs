//! Loads made together in one task (`join!`, `try_join_all`: how a handler
//! or a GraphQL list field loads) reach the database as one statement, on
//! a warm store and a multi-thread runtime, as the memory store's examples
//! promise.

mod common;

use coalesce_store::MemoryStore;
use common::{Target, unique};

/// Five rounds of two joined `get_profile` calls, each after lone reads
/// that warm the loader: one statement a round.
async fn joined_profile_reads_are_one_statement_every_round(store: MemoryStore) {
    let (a, b) = (unique("fan-a"), unique("fan-b"));
    store.save_profile(&a, "profile a").await.unwrap();
    store.save_profile(&b, "profile b").await.unwrap();
    for round in 0..5 {
        for _ in 0..3 {
            store.get_profile(&a).await.unwrap();
        }
        let before = store.database().statements();
        let (first, second) = tokio::join!(store.get_profile(&a), store.get_profile(&b));
        assert_eq!(first.unwrap().as_deref(), Some("profile a"));
        assert_eq!(second.unwrap().as_deref(), Some("profile b"));
        assert_eq!(
            store.database().statements() - before,
            1,
            "round {round}: two joined reads, one statement"
        );
    }
}

/// Run the body in a task of a 4-worker runtime, where an application's
/// handlers run.
async fn in_a_task(target: Target, url: String) {
    let body = async move {
        if let Some(store) = common::store_at(target, &url).await {
            joined_profile_reads_are_one_statement_every_round(store).await;
        }
        common::remove_sqlite(&url);
    };
    tokio::spawn(body).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres() {
    in_a_task(Target::Postgres, common::url(Target::Postgres)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql() {
    in_a_task(Target::MySql, common::url(Target::MySql)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite() {
    in_a_task(Target::Sqlite, common::url(Target::Sqlite)).await;
}
