//! A small SQLite-backed store benchmark, so `cargo bench` measures what
//! coalescing buys without a database server: `N` concurrent single-profile
//! reads, naive (one statement each, `Database::profile_direct`) against
//! coalesced (the store's `get_profile`, one batched statement for all).
//!
//! The full comparison, on any database and with peers, is `coalesce bench`.

use coalesce_store::MemoryStore;
use coalesce_store::db::Database;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::future::join_all;
use std::{hint::black_box, path::PathBuf};
use tokio::runtime::Runtime;

/// Users seeded with a profile.
const USERS: usize = 1_000;

fn user_id(i: usize) -> String {
    format!("bench-user-{i:05}")
}

/// A migrated SQLite file with `USERS` profiles, and a store over it.
fn setup(runtime: &Runtime) -> (Database, MemoryStore) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&dir).expect("create target/");
    let url = format!("sqlite://{}", dir.join("bench-store.db").display());
    runtime.block_on(async {
        let db = Database::connect(&url, 10).await.expect("open SQLite");
        db.migrate().await.expect("migrate");
        let store = MemoryStore::new(db.clone()).expect("store");
        if db
            .profile_direct(&user_id(USERS - 1))
            .await
            .expect("probe")
            .is_none()
        {
            for i in 0..USERS {
                store
                    .save_profile(&user_id(i), &format!("profile of user {i}"))
                    .await
                    .expect("seed");
            }
        }
        (db, store)
    })
}

fn get_profile(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (db, store) = setup(&runtime);
    let mut group = c.benchmark_group("store/get_profile");
    for tasks in [1_usize, 100] {
        group.throughput(Throughput::Elements(tasks as u64));
        let ids: Vec<String> = (0..tasks).map(|i| user_id(i * 7 % USERS)).collect();
        group.bench_with_input(BenchmarkId::new("naive", tasks), &ids, |b, ids| {
            b.to_async(&runtime).iter(|| async {
                let found = join_all(ids.iter().map(|id| db.profile_direct(id))).await;
                black_box(found)
            });
        });
        group.bench_with_input(BenchmarkId::new("coalesce", tasks), &ids, |b, ids| {
            b.to_async(&runtime).iter(|| async {
                let found = join_all(ids.iter().map(|id| store.get_profile(id))).await;
                black_box(found)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, get_profile);
criterion_main!(benches);
