//! Read-your-writes across handles: two stores over one `Database` (writes
//! through one, reads through the other), with reads of the written key
//! kept in flight through the second all along. A read through the second
//! that starts after a save or delete through the first returned must see
//! it; joining a read already sent would answer the value from before.
//!
//! (The toolkit's `tests/rows_handle.rs` holds one such read in flight on
//! purpose, behind a lock; here the overlap comes from load, so a store
//! that did not detach would fail most runs, and a correct one never.)

mod common;

use coalesce_store::{
    Category, MemoryKey, MemoryStore, NewMemory,
    repo::{CoalescingRepository, MemoryRepository},
};
use common::{Target, unique};
use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

const ROUNDS: u32 = 150;
const BACKGROUND_READERS: usize = 4;

async fn reads_through_one_store_see_writes_through_another(a: MemoryStore, target: Target) {
    let b = MemoryStore::new(a.database().clone()).unwrap();
    let user = unique("across");
    let memory = |value: u32| NewMemory::new(&user, Category::Fact, "k", value.to_string());
    a.save_memory(&memory(0)).await.unwrap();

    // Reads of the key through `b`, in flight at every moment.
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..BACKGROUND_READERS)
        .map(|_| {
            let (b, user, stop) = (b.clone(), user.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    b.get_memory(&user, Category::Fact, "k").await.unwrap();
                }
            })
        })
        .collect();

    let mut stale = Vec::new();
    for round in 1..=ROUNDS {
        a.save_memory(&memory(round)).await.unwrap();
        let seen = b.get_memory(&user, Category::Fact, "k").await.unwrap();
        let seen: Option<u32> = seen.map(|m| m.value.parse().unwrap());
        if seen != Some(round) {
            stale.push((round, "save", seen));
        }
        if round % 10 == 0 {
            assert!(a.delete_memory(&user, "k").await.unwrap());
            let seen = b.get_memory(&user, Category::Fact, "k").await.unwrap();
            if let Some(seen) = seen {
                stale.push((round, "delete", Some(seen.value.parse().unwrap())));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    assert!(
        stale.is_empty(),
        "{target:?}: reads through the second store missed a write through the first \
         that had returned: {stale:?}"
    );
}

on_all_backends!(reads_through_one_store_see_writes_through_another);

/// The same between the store and a coalescing repository over its
/// database: the store's profile saves (its own SQL) and memory saves are
/// seen by the repository's reads, the repository's saves by the store's,
/// and its deletes (by user and key) by its reads (by user, category and
/// key).
async fn a_repository_and_a_store_see_each_others_writes(a: MemoryStore, target: Target) {
    let repo = Arc::new(CoalescingRepository::new(a.database().clone()));
    let user = unique("across_repo");
    let key = MemoryKey::new(&user, Category::Fact, "k");
    a.save_profile(&user, "0").await.unwrap();

    // Reads of the profile and the memory through the repository, in
    // flight at every moment.
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..BACKGROUND_READERS)
        .map(|_| {
            let (repo, user, key, stop) = (
                Arc::clone(&repo),
                user.clone(),
                key.clone(),
                Arc::clone(&stop),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    repo.get_profile(&user).await.unwrap();
                    repo.get_memory(&key).await.unwrap();
                }
            })
        })
        .collect();

    let mut stale = Vec::new();
    for round in 1..=ROUNDS {
        let value = round.to_string();
        a.save_profile(&user, &value).await.unwrap();
        let seen = repo.get_profile(&user).await.unwrap();
        if seen.as_deref() != Some(value.as_str()) {
            stale.push((round, "store's profile save", seen));
        }
        let memory = NewMemory::new(&user, Category::Fact, "k", &value);
        if round % 2 == 0 {
            a.save_memory(&memory).await.unwrap();
        } else {
            repo.save_memory(memory).await.unwrap();
        }
        let seen = repo.get_memory(&key).await.unwrap();
        if seen.as_deref() != Some(value.as_str()) {
            stale.push((round, "memory save, read by the repository", seen));
        }
        let seen = a.get_memory(&user, Category::Fact, "k").await.unwrap();
        let seen = seen.map(|memory| memory.value);
        if seen.as_deref() != Some(value.as_str()) {
            stale.push((round, "memory save, read by the store", seen));
        }
        if round % 10 == 0 {
            // A delete by (user, key) covers the memory's (user, category,
            // key) reads in flight.
            assert!(repo.delete_memory(&user, "k").await.unwrap());
            let seen = repo.get_memory(&key).await.unwrap();
            if seen.is_some() {
                stale.push((round, "the repository's delete", seen));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    assert!(
        stale.is_empty(),
        "{target:?}: a read missed a write that had returned: {stale:?}"
    );
}

on_all_backends!(a_repository_and_a_store_see_each_others_writes);
