//! The batching contracts a caller builds on: loads made within one poll of
//! one task reach the source as one batch, fresh or warm, on both runtimes;
//! a source that answers at once still gets full batches from a storm of
//! tasks.

use crate::source::{Recorder, expected};
use coalesce::{BatchSource, CachePolicy, Loader, from_fn};
use futures::future::join_all;
use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::SeqCst},
    },
    time::Duration,
};

/// A source whose fetches wait like a round trip (so the loader learns that
/// its fetches wait, the state in which a quiet loader sends a lone load
/// without yielding for company).
fn round_trip_source() -> Recorder {
    Recorder::slow(Duration::from_millis(1))
}

/// Warm a loader as an application does: lone loads, one after the other,
/// each answered before the next.
async fn warm_up(loader: &Loader<Recorder>) {
    for key in 1000..1005 {
        assert_eq!(loader.load(key).await.unwrap(), expected(key, 0));
    }
}

/// `join_all` of 20 loads in one task, then the same once more nested three
/// levels deep (each level's keys come from the level above, as a GraphQL
/// list field's children do): one source call per level.
async fn fan_out_in_one_task(loader: Loader<Recorder>, source: Recorder) {
    warm_up(&loader).await;
    let before = source.batches().len();
    let values = join_all((1..=20).map(|key| loader.load(key))).await;
    for (key, value) in (1..=20).zip(values) {
        assert_eq!(value.unwrap(), expected(key, 0));
    }
    let batches = source.batches();
    assert_eq!(
        batches[before..],
        [(1..=20).collect::<Vec<u64>>()],
        "one poll of one task, one batch"
    );

    warm_up(&loader).await;
    let before = source.batches().len();
    let levels = join_all((0..4).map(|author| {
        let loader = &loader;
        async move {
            loader.load(100 + author).await.unwrap();
            join_all((0..3).map(|post| async move {
                let post = 200 + author * 10 + post;
                loader.load(post).await.unwrap();
                join_all((0..2).map(|comment| loader.load(3000 + post * 10 + comment))).await
            }))
            .await
        }
    }))
    .await;
    assert_eq!(levels.len(), 4);
    let sizes: Vec<usize> = source.batches()[before..].iter().map(Vec::len).collect();
    assert_eq!(sizes, [4, 12, 24], "three levels of fan-out, three batches");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_loader_sends_one_task_s_fan_out_as_one_batch_multi_thread() {
    let source = round_trip_source();
    let loader = Loader::new(source.clone());
    // In a task of the runtime, where an application's handlers run.
    tokio::spawn(fan_out_in_one_task(loader, source))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_loader_sends_one_task_s_fan_out_as_one_batch_from_block_on() {
    let source = round_trip_source();
    let loader = Loader::new(source.clone());
    fan_out_in_one_task(loader, source).await;
}

#[tokio::test]
async fn a_warm_loader_sends_one_task_s_fan_out_as_one_batch_current_thread() {
    let source = round_trip_source();
    let loader = Loader::new(source.clone());
    fan_out_in_one_task(loader, source).await;
}

/// A source that answers without waiting and counts its calls and keys.
#[derive(Clone, Default)]
struct Instant {
    calls: Arc<AtomicUsize>,
    keys: Arc<AtomicUsize>,
}

impl BatchSource for Instant {
    type Key = u64;
    type Value = u64;
    type Error = Infallible;

    async fn load(&self, keys: &[u64]) -> Result<HashMap<u64, u64>, Infallible> {
        self.calls.fetch_add(1, SeqCst);
        self.keys.fetch_add(keys.len(), SeqCst);
        Ok(keys.iter().map(|k| (*k, k * 2)).collect())
    }
}

/// 100,000 tasks on two workers, keys from 1,000 distinct, each task
/// loading one key from a source that answers at once; returns the
/// source's calls and the keys it was asked for. A burst: every task is
/// ready before any runs, as requests that arrived while a server was busy
/// are. One worker is held (blocked on a channel, not scheduling) while the
/// other spawns them all in one poll, so none starts before the last is
/// spawned. (Tasks that trickle in, spawned one by one while the other
/// worker already serves them, arrive one per round of that worker: each
/// then looks like a lone load, which goes at once; docs/BENCHMARKS.md has
/// what that gives.)
async fn storm(cache: CachePolicy) -> (usize, usize) {
    let source = Instant::default();
    let loader = Loader::builder(source.clone())
        .cache(cache)
        .build()
        .unwrap();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let held = tokio::spawn(async move { released.recv().expect("the spawner releases it") });
    let tasks = tokio::spawn({
        let loader = loader.clone();
        async move {
            let tasks: Vec<_> = (0..100_000u64)
                .map(|i| {
                    let loader = loader.clone();
                    let key = i * 7919 % 1000;
                    tokio::spawn(async move { (key, loader.load(key).await) })
                })
                .collect();
            release.send(()).expect("the held worker waits");
            tasks
        }
    })
    .await
    .unwrap();
    held.await.unwrap();
    for task in tasks {
        let (key, value) = task.await.unwrap();
        assert_eq!(value.unwrap(), Some(key * 2));
    }
    (source.calls.load(SeqCst), source.keys.load(SeqCst))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_on_a_fast_source_with_the_cache_stays_near_the_floor() {
    let (calls, _) = storm(CachePolicy::Unbounded).await;
    // ⌈1,000 distinct keys / 100 a batch⌉ = 10 calls at best. The issue's
    // bound is 3x that; with one plain yield a batch this takes 18-23.
    assert!(calls <= 15, "{calls} source calls, the floor is 10");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_on_a_fast_source_without_the_cache_sends_full_batches() {
    let (calls, keys) = storm(CachePolicy::Disabled).await;
    let mean = keys as f64 / calls as f64;
    // The bound is 50; with one plain yield a batch this is 53-66.
    assert!(mean >= 80.0, "{calls} calls, mean batch {mean:.1}");
}

#[tokio::test]
async fn fan_out_through_from_fn_is_one_batch_on_a_fresh_loader() {
    let calls = Arc::new(AtomicUsize::new(0));
    let loader = Loader::new(from_fn({
        let calls = Arc::clone(&calls);
        move |keys: Vec<u32>| {
            calls.fetch_add(1, SeqCst);
            async move {
                Ok::<_, Infallible>(keys.into_iter().map(|k| (k, k)).collect::<HashMap<_, _>>())
            }
        }
    }));
    let values = join_all((0..20).map(|k| loader.load(k))).await;
    assert!(values.into_iter().all(|v| v.unwrap().is_some()));
    assert_eq!(calls.load(SeqCst), 1);
}

/// A fan-out of more than half the cap in one task, made right after a full
/// batch's answer (within its fetch time: the moment the dispatch policy
/// splits callers coming back from a batch into halves), still reaches the
/// source as one batch. Before, it went as 50 keys, then 10.
async fn fan_out_right_after_a_full_batch(loader: Loader<Recorder>, source: Recorder) {
    let first = join_all((0..100).map(|key| loader.load(key))).await;
    assert!(first.into_iter().all(|value| value.is_ok()));
    // A fetch of 300 ms: the next loads come within it, by a margin no
    // busy machine's scheduling delay reaches.
    let values = join_all((100..160).map(|key| loader.load(key))).await;
    for (key, value) in (100..160).zip(values) {
        assert_eq!(value.unwrap(), expected(key, 0));
    }
    let sizes: Vec<usize> = source.batches().iter().map(Vec::len).collect();
    assert_eq!(sizes, [100, 60], "one poll of one task, one batch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_right_after_a_full_batch_is_one_batch_multi_thread() {
    let source = Recorder::slow(Duration::from_millis(300));
    let loader = Loader::new(source.clone());
    tokio::spawn(fan_out_right_after_a_full_batch(loader, source))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_fan_out_right_after_a_full_batch_is_one_batch_current_thread() {
    let source = Recorder::slow(Duration::from_millis(300));
    let loader = Loader::new(source.clone());
    fan_out_right_after_a_full_batch(loader, source).await;
}
