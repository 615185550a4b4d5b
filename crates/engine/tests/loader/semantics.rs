//! One test per promise the engine makes.

use crate::source::{FAIL_KEY, PANIC_KEY, Recorder, expected};
use coalesce::{
    BatchSource, BatchWindow, CachePolicy, ConfigError, LoadError, Loader, StatsSnapshot,
};
use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::SeqCst},
    },
    time::Duration,
};

fn spawn_loads(
    loader: &Loader<Recorder>,
    keys: impl IntoIterator<Item = u64>,
) -> Vec<tokio::task::JoinHandle<Result<Option<String>, LoadError<crate::source::SourceError>>>> {
    keys.into_iter()
        .map(|key| {
            let loader = loader.clone();
            tokio::spawn(async move { loader.load(key).await })
        })
        .collect()
}

#[tokio::test]
async fn concurrent_loads_in_one_tick_become_one_batch() {
    let source = Recorder::new();
    let loader = Loader::new(source.clone());
    let tasks = spawn_loads(&loader, 1..=50);
    for (key, task) in (1..=50).zip(tasks) {
        assert_eq!(task.await.unwrap().unwrap(), expected(key, 0));
    }
    let batches = source.batches();
    assert_eq!(batches.len(), 1, "50 loads in one tick: {batches:?}");
    assert_eq!(batches[0].len(), 50);
    let stats = loader.stats();
    assert_eq!((stats.total_operations, stats.queries_saved), (1, 49));
}

#[tokio::test]
async fn a_lone_load_is_dispatched_without_waiting_for_company() {
    let source = Recorder::new();
    let loader = Loader::new(source.clone());
    assert_eq!(loader.load(3).await.unwrap(), expected(3, 0));
    assert_eq!(
        loader.load(10).await.unwrap(),
        None,
        "missing rows are None"
    );
    assert_eq!(source.batches(), vec![vec![3], vec![10]]);
}

#[tokio::test]
async fn batches_never_exceed_the_cap_and_load_many_is_split_in_order() {
    let source = Recorder::new();
    let loader = Loader::builder(source.clone())
        .max_batch_size(10)
        .build()
        .unwrap();
    let keys: Vec<u64> = (100..135).collect();
    let values = loader.load_many(keys.clone()).await.unwrap();
    let want: Vec<_> = keys.iter().map(|k| expected(*k, 0)).collect();
    assert_eq!(values, want);
    let sizes: Vec<usize> = source.batches().iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![10, 10, 10, 5]);
    assert_eq!(loader.stats().largest_batch, 10);
}

#[tokio::test]
async fn the_default_cap_is_one_hundred() {
    let source = Recorder::new();
    let loader = Loader::new(source.clone());
    let tasks = spawn_loads(&loader, 0..250);
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let sizes: Vec<usize> = source.batches().iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![100, 100, 50]);
    assert_eq!(loader.stats().batch_size, 100);
}

#[tokio::test]
async fn duplicate_keys_in_one_window_go_to_the_source_once() {
    let source = Recorder::new();
    let loader = Loader::new(source.clone());
    let tasks = spawn_loads(&loader, std::iter::repeat_n(7, 20));
    let many = loader.load_many([7, 8, 7, 8]).await.unwrap();
    assert_eq!(
        many,
        vec![
            expected(7, 0),
            expected(8, 0),
            expected(7, 0),
            expected(8, 0)
        ]
    );
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), expected(7, 0));
    }
    let batches = source.batches();
    assert_eq!(batches.len(), 1);
    let mut sent = batches[0].clone();
    sent.sort();
    assert_eq!(sent, vec![7, 8]);
    assert_eq!(loader.stats().deduplicated_keys, 22);
}

#[tokio::test]
async fn a_key_already_in_flight_joins_that_batch() {
    let source = Recorder::gated();
    let loader = Loader::new(source.clone());
    let first = spawn_loads(&loader, [1, 2]);
    source.until_running(1).await;
    // Batch {1, 2} is inside the source now; these join it.
    let joined = spawn_loads(&loader, [1, 2, 1]);
    tokio::task::yield_now().await;
    source.release(1);
    for task in first.into_iter().chain(joined) {
        assert!(task.await.unwrap().unwrap().is_some());
    }
    assert_eq!(
        source.batches().len(),
        1,
        "single flight: {:?}",
        source.batches()
    );
    assert_eq!(loader.in_flight(), 0);
}

#[tokio::test]
async fn clear_detaches_a_key_from_a_batch_already_fetching_it() {
    let source = Recorder::gated();
    // `Yield`, so the second fetch begins while the first is in flight.
    let loader = Loader::builder(source.clone())
        .window(BatchWindow::Yield(1))
        .cache(CachePolicy::Unbounded)
        .build()
        .unwrap();
    let before = spawn_loads(&loader, [1]);
    source.until_running(1).await;
    // A write happens while the old value is being fetched, then clears.
    let version = source.bump_version();
    loader.clear(&1);
    let after = spawn_loads(&loader, [1]);
    source.until_running(2).await;
    source.release(2);
    assert_eq!(
        before.into_iter().next().unwrap().await.unwrap().unwrap(),
        expected(1, 0)
    );
    assert_eq!(
        after.into_iter().next().unwrap().await.unwrap().unwrap(),
        expected(1, version)
    );
    // The old fetch must not have been cached over the new one.
    assert_eq!(loader.load(1).await.unwrap(), expected(1, version));
    assert_eq!(source.batches().len(), 2);
    assert_eq!(loader.stats().cache_hits, 1);
}

#[tokio::test]
async fn clear_keeps_a_key_in_a_batch_that_has_not_started() {
    let source = Recorder::new();
    let loader = Loader::new(source.clone());
    let pending = spawn_loads(&loader, [4]);
    tokio::task::yield_now().await; // the task registered key 4; batch still open
    loader.clear(&4);
    let again = spawn_loads(&loader, [4]);
    for task in pending.into_iter().chain(again) {
        assert_eq!(task.await.unwrap().unwrap(), expected(4, 0));
    }
    // The open batch fetches after clear, so joining it is safe and the key
    // is never sent twice in one batch.
    for batch in source.batches() {
        let distinct: HashSet<_> = batch.iter().collect();
        assert_eq!(distinct.len(), batch.len());
    }
}

#[tokio::test]
async fn a_source_error_reaches_every_caller_of_the_batch_and_the_loader_recovers() {
    let source = Recorder::new();
    let loader = Loader::new(source.clone());
    let tasks = spawn_loads(&loader, [1, 2, FAIL_KEY, 3, 4]);
    for task in tasks {
        match task.await.unwrap() {
            Err(LoadError::Source { source, batch_size }) => {
                assert_eq!(source.0, FAIL_KEY);
                assert_eq!(batch_size, 5);
            }
            other => panic!("expected the batch's error, got {other:?}"),
        }
    }
    assert_eq!(loader.load(1).await.unwrap(), expected(1, 0));
    let stats = loader.stats();
    assert_eq!((stats.errors, stats.total_operations), (1, 2));
    assert_eq!(loader.in_flight(), 0);
}

#[tokio::test]
async fn a_panicking_source_is_contained_to_its_batch() {
    let source = Recorder::new();
    let loader = Loader::new(source.clone());
    let tasks = spawn_loads(&loader, [1, PANIC_KEY, 2]);
    for task in tasks {
        match task.await.expect("the caller's task must not panic") {
            Err(err @ LoadError::Panicked { .. }) => {
                assert!(err.to_string().contains("source exploded"), "{err}");
            }
            other => panic!("expected a panic error, got {other:?}"),
        }
    }
    assert_eq!(loader.load(2).await.unwrap(), expected(2, 0));
    assert_eq!(loader.in_flight(), 0);
}

/// A source that panics while building its future (before any `.await`)
/// when a batch holds key 13, and otherwise returns each key as its value.
fn panics_before_its_future_on_13()
-> Loader<impl coalesce::BatchSource<Key = u64, Value = u64, Error = std::convert::Infallible>> {
    Loader::new(coalesce::from_fn(|keys: Vec<u64>| {
        assert!(!keys.contains(&13), "sync panic in batch fn");
        async move {
            Ok::<_, std::convert::Infallible>(
                keys.into_iter()
                    .map(|k| (k, k))
                    .collect::<std::collections::HashMap<_, _>>(),
            )
        }
    }))
}

fn assert_sync_panic<T: std::fmt::Debug, E: std::fmt::Debug>(
    result: Result<T, LoadError<E>>,
    batch_size: usize,
) {
    match result {
        Err(LoadError::Panicked {
            message,
            batch_size: size,
        }) => {
            assert!(message.contains("sync panic in batch fn"), "{message}");
            assert_eq!(size, batch_size);
        }
        other => panic!("expected LoadError::Panicked, got {other:?}"),
    }
}

#[tokio::test]
async fn a_source_panicking_before_its_future_fails_its_batch_not_its_callers() {
    use futures::FutureExt;
    use std::panic::AssertUnwindSafe;

    let loader = panics_before_its_future_on_13();
    // A lone load leads its batch: the panic must not unwind out of it.
    let lone = AssertUnwindSafe(loader.load(13)).catch_unwind().await;
    assert_sync_panic(lone.expect("load must not panic"), 1);
    // Every caller of a shared batch, the leader included, gets the error.
    let tasks: Vec<_> = [1, 13, 2]
        .map(|key| {
            let loader = loader.clone();
            tokio::spawn(async move { loader.load(key).await })
        })
        .into();
    for task in tasks {
        assert_sync_panic(task.await.expect("no caller may panic"), 3);
    }
    // load_many's batches run in a task of their own.
    let many = AssertUnwindSafe(loader.load_many([13, 4]))
        .catch_unwind()
        .await;
    assert_sync_panic(many.expect("load_many must not panic"), 2);
    // The loader is left clean and the next batch works.
    assert_eq!(loader.in_flight(), 0);
    assert_eq!(
        loader.load_many([1, 2]).await.unwrap(),
        vec![Some(1), Some(2)]
    );
    assert_eq!(loader.stats().errors, 3);
}

#[tokio::test]
async fn cancelled_callers_leave_the_batch_and_state_intact() {
    let source = Recorder::gated();
    let loader = Loader::new(source.clone());
    let tasks = spawn_loads(&loader, 0..20);
    source.until_running(1).await;
    let mut kept = Vec::new();
    for (key, task) in (0..20).zip(tasks) {
        if key % 2 == 0 {
            task.abort();
        } else {
            kept.push((key, task));
        }
    }
    source.release(1);
    for (key, task) in kept {
        assert_eq!(task.await.unwrap().unwrap(), expected(key, 0));
    }
    assert_eq!(loader.in_flight(), 0, "nothing may be left behind");
    assert_eq!(source.batches().len(), 1);
}

#[tokio::test]
async fn callers_dropped_before_dispatch_do_not_stall_the_batch() {
    let source = Recorder::new();
    let loader = Loader::new(source.clone());
    // Every caller polls once, registering its key, then gives up; the
    // batch still runs and cleans up.
    for key in 0..10 {
        let dropped = futures::FutureExt::now_or_never(loader.load(key));
        assert!(dropped.is_none());
    }
    assert_eq!(loader.in_flight(), 10);
    let survivor = loader.load(3).await.unwrap();
    assert_eq!(survivor, expected(3, 0));
    let drained = async {
        while loader.in_flight() > 0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), drained)
        .await
        .expect("abandoned keys must leave the loader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_limit_bounds_running_batches() {
    let source = Recorder::gated();
    let loader = Loader::builder(source.clone())
        .max_batch_size(1)
        .max_concurrent_batches(2)
        .build()
        .unwrap();
    let all = {
        let loader = loader.clone();
        tokio::spawn(async move { loader.load_many(0..12).await })
    };
    source.until_running(2).await;
    // Give the ten waiting batches every chance to start; none may.
    for _ in 0..200 {
        tokio::task::yield_now().await;
    }
    assert_eq!(source.running(), 2, "{:?}", source.batches());
    source.release(12);
    let values = all.await.unwrap().unwrap();
    assert_eq!(values, (0..12).map(|k| expected(k, 0)).collect::<Vec<_>>());
    assert_eq!(source.most_running(), 2);
    assert_eq!(source.batches().len(), 12);
}

// One worker, so the batches ask for permits in the order they were opened.
#[tokio::test]
async fn batches_waiting_for_a_permit_run_in_order() {
    let source = Recorder::slow(Duration::from_millis(1));
    let loader = Loader::builder(source.clone())
        .max_batch_size(1)
        .max_concurrent_batches(1)
        .build()
        .unwrap();
    loader.load_many(0..12).await.unwrap();
    let order: Vec<u64> = source.batches().into_iter().flatten().collect();
    assert_eq!(order, (0..12).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn a_time_window_gathers_loads_spread_over_time() {
    let source = Recorder::new();
    let loader = Loader::builder(source.clone())
        .window(BatchWindow::Time(Duration::from_millis(10)))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for key in 0..5 {
        tasks.extend(spawn_loads(&loader, [key]));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(source.batches().len(), 1, "{:?}", source.batches());
}

#[tokio::test(start_paused = true)]
async fn a_full_batch_does_not_wait_out_the_window() {
    let source = Recorder::new();
    let loader = Loader::builder(source.clone())
        .max_batch_size(3)
        .window(BatchWindow::Time(Duration::from_secs(3600)))
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    loader.load_many([1, 2, 3]).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn the_cache_is_off_by_default() {
    let source = Recorder::new();
    let loader = Loader::new(source.clone());
    loader.load(1).await.unwrap();
    source.bump_version();
    assert_eq!(
        loader.load(1).await.unwrap(),
        expected(1, 1),
        "no stale reads"
    );
    assert_eq!(loader.cached(), 0);
}

#[tokio::test]
async fn an_unbounded_cache_memoizes_values_and_misses() {
    let source = Recorder::new();
    let loader = Loader::builder(source.clone())
        .cache(CachePolicy::Unbounded)
        .build()
        .unwrap();
    loader.load_many([1, 5]).await.unwrap();
    assert_eq!(
        loader.load_many([5, 1]).await.unwrap(),
        vec![None, expected(1, 0)]
    );
    assert_eq!(source.batches().len(), 1);
    assert_eq!(loader.stats().cache_hits, 2);
    loader.clear_all();
    loader.load(1).await.unwrap();
    assert_eq!(source.batches().len(), 2);
}

// The cache's clock is the system's, so age is tested with lifetimes far
// from the test's pace: an hour is never reached, a millisecond is always
// passed after a sleep of two.
#[tokio::test]
async fn a_bounded_cache_evicts_by_capacity_and_age() {
    let source = Recorder::new();
    let bounded = |time_to_live| {
        Loader::builder(source.clone())
            .cache(CachePolicy::Bounded {
                capacity: 2,
                time_to_live: Some(time_to_live),
            })
            .build()
            .unwrap()
    };
    let loader = bounded(Duration::from_secs(3600));
    for key in [1, 2, 3] {
        loader.load(key).await.unwrap();
    }
    assert_eq!(loader.cached(), 2);
    loader.load(1).await.unwrap(); // evicted: fetched again
    assert_eq!(source.batches().len(), 4);
    loader.load(1).await.unwrap(); // fresh: cached
    assert_eq!(source.batches().len(), 4);

    let loader = bounded(Duration::from_millis(1));
    loader.load(1).await.unwrap();
    assert_eq!(source.batches().len(), 5);
    tokio::time::sleep(Duration::from_millis(2)).await;
    loader.load(1).await.unwrap(); // expired: fetched again
    assert_eq!(source.batches().len(), 6);
}

#[tokio::test]
async fn prime_serves_a_value_without_a_query() {
    let source = Recorder::new();
    let loader = Loader::builder(source.clone())
        .cache(CachePolicy::Unbounded)
        .build()
        .unwrap();
    assert!(loader.prime(42, "primed".to_owned()));
    assert_eq!(loader.load(42).await.unwrap().as_deref(), Some("primed"));
    assert!(source.batches().is_empty());
}

#[tokio::test]
async fn prime_keeps_a_value_already_cached_or_being_fetched() {
    let source = Recorder::gated();
    let loader = Loader::builder(source.clone())
        .cache(CachePolicy::Unbounded)
        .build()
        .unwrap();
    // A fetched value (and a known miss) stay as they are.
    let fetching = spawn_loads(&loader, [1, 5]);
    source.until_running(1).await;
    assert!(!loader.prime(1, "while fetching".to_owned()));
    source.release(1);
    for task in fetching {
        task.await.unwrap().unwrap();
    }
    assert!(!loader.prime(1, "over a value".to_owned()));
    assert!(!loader.prime(5, "over a miss".to_owned()));
    assert_eq!(loader.load(1).await.unwrap(), expected(1, 0));
    assert_eq!(loader.load(5).await.unwrap(), None);
    // Replacing is clear, then prime.
    loader.clear(&1);
    assert!(loader.prime(1, "replaced".to_owned()));
    assert_eq!(loader.load(1).await.unwrap().as_deref(), Some("replaced"));
    assert_eq!(source.batches().len(), 1);
}

#[tokio::test]
async fn prime_without_a_cache_stores_nothing() {
    let source = Recorder::new();
    let loader = Loader::new(source.clone());
    assert!(!loader.prime(2, "primed".to_owned()));
    assert_eq!(loader.load(2).await.unwrap(), expected(2, 0));
}

#[test]
fn loading_outside_a_runtime_is_an_error_not_a_panic() {
    let loader = Loader::new(Recorder::new());
    let result = futures::executor::block_on(loader.load(1));
    assert!(matches!(result, Err(LoadError::NoRuntime)), "{result:?}");
}

#[test]
fn impossible_configurations_are_rejected() {
    let zero = Loader::builder(Recorder::new()).max_batch_size(0).build();
    assert_eq!(zero.unwrap_err(), ConfigError::ZeroBatchSize);
    let none = Loader::builder(Recorder::new())
        .max_concurrent_batches(0)
        .build();
    assert_eq!(none.unwrap_err(), ConfigError::ZeroConcurrency);
}

#[tokio::test]
async fn a_cap_of_usize_max_means_no_cap() {
    let source = Recorder::new();
    let loader = Loader::builder(source.clone())
        .max_batch_size(usize::MAX)
        .build()
        .unwrap();
    let tasks = spawn_loads(&loader, 1..=300);
    for (key, task) in (1..=300).zip(tasks) {
        assert_eq!(task.await.unwrap().unwrap(), expected(key, 0));
    }
    assert_eq!(source.batches().len(), 1, "300 loads in one tick");
}

#[test]
fn stats_arithmetic_matches_the_specification() {
    // "total_operations": 45, "queries_saved": 127, "efficiency_gain": "282.2%"
    let spec = StatsSnapshot::from_totals(100, 45 + 127, 45);
    assert_eq!((spec.total_operations, spec.queries_saved), (45, 127));
    assert_eq!(spec.efficiency_gain, "282.2%");
    // "total_operations": 15, "queries_saved": 42, "efficiency_gain": "280.0%"
    let example = StatsSnapshot::from_totals(100, 15 + 42, 15);
    assert_eq!(example.efficiency_gain, "280.0%");
    let idle = StatsSnapshot::from_totals(100, 0, 0);
    assert_eq!(idle.efficiency_gain, "0.0%");
    let json = serde_json::to_value(&spec).unwrap();
    for field in [
        "total_operations",
        "queries_saved",
        "efficiency_gain",
        "batch_size",
        "status",
    ] {
        assert!(json.get(field).is_some(), "missing {field} in {json}");
    }
    assert_eq!(json["batch_size"], 100);
    assert_eq!(json["status"], "active");
}

#[tokio::test]
async fn live_stats_count_what_happened() {
    let source = Recorder::new();
    let loader = Loader::builder(source.clone())
        .max_batch_size(4)
        .build()
        .unwrap();
    loader.load_many([1, 2, 3, 4, 5, 6, 1]).await.unwrap();
    let stats = loader.stats();
    assert_eq!(stats.loads_requested, 7);
    assert_eq!(stats.total_operations, 2);
    assert_eq!(stats.keys_dispatched, 6);
    assert_eq!(stats.deduplicated_keys, 1);
    assert_eq!(stats.largest_batch, 4);
    assert_eq!(stats.mean_batch_size, 3.0);
    assert_eq!(stats.queries_saved, 5);
    assert_eq!(stats.efficiency_gain, "250.0%");
}

#[cfg(feature = "dataloader")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataloader_batch_fn_runs_unchanged() {
    use coalesce::DataloaderSource;
    use std::collections::HashMap;

    struct Doubler(Vec<usize>);
    impl dataloader::BatchFn<u64, u64> for Doubler {
        async fn load(&mut self, keys: &[u64]) -> HashMap<u64, u64> {
            self.0.push(keys.len());
            keys.iter()
                .filter(|k| **k != 0)
                .map(|k| (*k, k * 2))
                .collect()
        }
    }
    let loader = Loader::new(DataloaderSource::new(Doubler(Vec::new())));
    assert_eq!(
        loader.load_many([0, 1, 2, 1]).await.unwrap(),
        vec![None, Some(2), Some(4), Some(2)]
    );
    assert_eq!(loader.stats().total_operations, 1);
}

/// Wait (yielding) until exactly `n` batches are inside the source, then
/// give the loader every chance to dispatch another.
async fn until_running(source: &Recorder, n: usize) {
    let settled = async {
        while source.running() != n {
            tokio::task::yield_now().await;
        }
    };
    let waited = tokio::time::timeout(Duration::from_secs(5), settled).await;
    assert!(
        waited.is_ok(),
        "expected {n} batches running, saw {:?}",
        source.batches()
    );
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
}

/// Wait (yielding) until the source has been called `n` times.
async fn until_batches(source: &Recorder, n: usize) {
    let arrived = async {
        while source.batches().len() < n {
            tokio::task::yield_now().await;
        }
    };
    let waited = tokio::time::timeout(Duration::from_secs(5), arrived).await;
    assert!(
        waited.is_ok(),
        "expected {n} batches, saw {:?}",
        source.batches()
    );
}

/// Spawn one load per key, `per_tick` at a time, letting the runtime run
/// between groups, so the loads arrive spread over many ticks.
async fn spread_loads(
    loader: &Loader<Recorder>,
    keys: std::ops::Range<u64>,
    per_tick: usize,
) -> Vec<tokio::task::JoinHandle<Result<Option<String>, LoadError<crate::source::SourceError>>>> {
    let keys: Vec<u64> = keys.collect();
    let mut tasks = Vec::new();
    for group in keys.chunks(per_tick) {
        tasks.extend(spawn_loads(loader, group.iter().copied()));
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
    }
    tasks
}

#[tokio::test]
async fn while_a_batch_is_in_flight_loads_arriving_over_many_ticks_fill_batches() {
    let source = Recorder::gated();
    let loader = Loader::new(source.clone());
    let first = spawn_loads(&loader, [1000]);
    source.until_running(1).await;
    let tasks = spread_loads(&loader, 0..250, 10).await;
    // Two full batches went at once; the other 50 keys wait for company.
    source.until_running(3).await;
    let sizes = || source.batches().iter().map(Vec::len).collect::<Vec<_>>();
    assert_eq!(sizes(), vec![1, 100, 100]);
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(sizes(), vec![1, 100, 100], "the open batch must wait");
    // Two batches still in flight: the loader is still busy.
    source.release(1);
    until_running(&source, 2).await;
    assert_eq!(sizes(), vec![1, 100, 100]);
    // The last completes: the open batch goes with what it holds.
    source.release(2);
    until_batches(&source, 4).await;
    assert_eq!(sizes(), vec![1, 100, 100, 50]);
    source.release(3);
    for (key, task) in (0..250).zip(tasks) {
        assert_eq!(task.await.unwrap().unwrap(), expected(key, 0));
    }
    assert_eq!(
        first.into_iter().next().unwrap().await.unwrap().unwrap(),
        expected(1000, 0)
    );
    assert_eq!(loader.in_flight(), 0);
}

// Callers a full batch answered that load again at once (a loop) are split
// into two batches, so one is fetched while the other's callers come back:
// the database and the callers work at the same time, not in turn.
#[tokio::test]
async fn callers_looping_after_a_full_batch_become_two_batches_in_flight() {
    let source = Recorder::gated();
    let loader = Loader::builder(source.clone())
        .max_batch_size(10)
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|key| {
            let loader = loader.clone();
            tokio::spawn(async move {
                loader.load(key).await?;
                loader.load(key + 10).await
            })
        })
        .collect();
    source.until_running(1).await;
    // A fetch that takes a while, like a round trip: the callers come back
    // within it, by a margin no busy machine's scheduling delay reaches.
    tokio::time::sleep(Duration::from_millis(250)).await;
    source.release(1);
    source.until_running(2).await;
    let sizes: Vec<usize> = source.batches().iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![10, 5, 5], "both halves in flight at once");
    source.release(2);
    for (key, task) in (10..20).zip(tasks) {
        assert_eq!(task.await.unwrap().unwrap(), expected(key, 0));
    }
}

// Only callers coming back within a fetch time are split: a burst after a
// pause goes in one batch, even after a full one.
#[tokio::test]
async fn a_burst_after_a_pause_goes_in_one_batch_even_after_a_full_one() {
    let source = Recorder::new();
    let loader = Loader::builder(source.clone())
        .max_batch_size(10)
        .build()
        .unwrap();
    for task in spawn_loads(&loader, 0..10) {
        task.await.unwrap().unwrap();
    }
    // Far longer than the first batch's fetch (an in-memory answer).
    tokio::time::sleep(Duration::from_millis(100)).await;
    for task in spawn_loads(&loader, 10..20) {
        task.await.unwrap().unwrap();
    }
    let sizes: Vec<usize> = source.batches().iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![10, 10]);
}

#[tokio::test]
async fn under_a_concurrency_limit_full_batches_queue_and_the_open_one_waits() {
    let source = Recorder::gated();
    let loader = Loader::builder(source.clone())
        .max_concurrent_batches(2)
        .build()
        .unwrap();
    let first = spawn_loads(&loader, [1000]);
    source.until_running(1).await;
    let tasks = spread_loads(&loader, 0..250, 10).await;
    // One full batch takes the second permit, the next waits for one, and
    // the last 50 keys wait for company.
    until_running(&source, 2).await;
    let sizes = || source.batches().iter().map(Vec::len).collect::<Vec<_>>();
    assert_eq!(sizes(), vec![1, 100]);
    source.release(1);
    until_batches(&source, 3).await;
    until_running(&source, 2).await;
    assert_eq!(sizes(), vec![1, 100, 100]);
    source.release(2);
    until_batches(&source, 4).await;
    assert_eq!(sizes(), vec![1, 100, 100, 50]);
    source.release(1);
    for task in first.into_iter().chain(tasks) {
        task.await.unwrap().unwrap();
    }
    assert_eq!(source.most_running(), 2);
    assert_eq!(loader.in_flight(), 0);
}

#[tokio::test]
async fn the_yield_window_dispatches_however_busy_the_loader_is() {
    let source = Recorder::gated();
    let loader = Loader::builder(source.clone())
        .window(BatchWindow::Yield(1))
        .build()
        .unwrap();
    let first = spawn_loads(&loader, [1000]);
    source.until_running(1).await;
    let tasks = spread_loads(&loader, 0..30, 10).await;
    source.until_running(4).await;
    let sizes: Vec<usize> = source.batches().iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![1, 10, 10, 10]);
    source.release(4);
    for task in first.into_iter().chain(tasks) {
        task.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_lone_load_on_a_quiet_loader_is_answered_after_one_yield() {
    let source = Recorder::new();
    let loader = Loader::builder(source.clone())
        .max_concurrent_batches(10)
        .build()
        .unwrap();
    let load = loader.load(3);
    tokio::pin!(load);
    assert!(futures::poll!(load.as_mut()).is_pending(), "the window");
    match futures::poll!(load.as_mut()) {
        std::task::Poll::Ready(value) => assert_eq!(value.unwrap(), expected(3, 0)),
        std::task::Poll::Pending => panic!("a lone load must not wait for more"),
    }
}

// Once fetches are seen to wait, a lone load still yields once before it
// goes, so loads made in the same poll of its task could join it; loads
// arriving while it is in flight gather behind it. (Run on one worker, so
// that a batch is wholly done when its callers see the result.)
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_lone_load_yields_once_and_loads_arriving_in_flight_share_a_batch() {
    let source = Recorder::gated();
    let loader = Loader::builder(source.clone())
        .max_concurrent_batches(10)
        .build()
        .unwrap();
    // The first fetch teaches the loader that its source waits.
    let first = spawn_loads(&loader, [1]);
    source.until_running(1).await;
    source.release(1);
    first.into_iter().next().unwrap().await.unwrap().unwrap();
    let lone = loader.load(3);
    tokio::pin!(lone);
    assert!(futures::poll!(lone.as_mut()).is_pending());
    assert_eq!(source.batches(), vec![vec![1]], "not within its first poll");
    assert!(futures::poll!(lone.as_mut()).is_pending());
    assert_eq!(source.batches(), vec![vec![1], vec![3]], "sent at the next");
    // Loads arriving while it is in flight still share one batch.
    let together = spawn_loads(&loader, 10..60);
    while loader.in_flight() < 51 {
        tokio::task::yield_now().await;
    }
    until_running(&source, 1).await;
    assert_eq!(
        source.batches().len(),
        2,
        "the open batch waits for company"
    );
    source.release(1);
    assert_eq!(lone.await.unwrap(), expected(3, 0));
    source.until_running(1).await;
    source.release(1);
    for (key, task) in (10..60).zip(together) {
        assert_eq!(task.await.unwrap().unwrap(), expected(key, 0));
    }
    assert_eq!(source.batches()[2].len(), 50);
    // The next lone load yields as well.
    let next = loader.load(7);
    tokio::pin!(next);
    assert!(futures::poll!(next.as_mut()).is_pending());
    assert_eq!(source.batches().len(), 3, "not within its first poll");
    source.release(1);
    assert_eq!(next.await.unwrap(), expected(7, 0));
}

#[test]
fn a_runtime_shutting_down_fails_a_waiting_open_batch() {
    let source = Recorder::gated();
    let loader = Loader::new(source.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        drop(spawn_loads(&loader, [1000]));
        source.until_running(1).await;
        drop(spread_loads(&loader, 0..5, 1).await);
        tokio::task::yield_now().await;
    });
    assert_eq!(
        source.batches().len(),
        1,
        "the open batch waits for company"
    );
    // Joins the open batch: no runtime needed to wait for it.
    let waiter = std::thread::spawn({
        let loader = loader.clone();
        move || futures::executor::block_on(loader.load(7))
    });
    while loader.in_flight() < 7 {
        std::thread::yield_now();
    }
    drop(runtime);
    assert!(matches!(waiter.join().unwrap(), Err(LoadError::Abandoned)));
    assert_eq!(loader.in_flight(), 0);
}

// Multi-threaded, where the task woken last (here the open batch's leader)
// runs first: its extra yield must let the woken callers add keys first.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn callers_of_a_completed_batch_join_the_waiting_open_batch() {
    let source = Recorder::gated();
    let loader = Loader::new(source.clone());
    // Spawned from the worker, so all ten are queued before any runs (from
    // the test's own thread they would trickle into the global queue, and
    // the first could dispatch alone).
    let spawner = tokio::spawn({
        let loader = loader.clone();
        async move {
            (0..10)
                .map(|key| {
                    let loader = loader.clone();
                    tokio::spawn(async move {
                        loader.load(key).await.unwrap();
                        loader.load(key + 10).await.unwrap()
                    })
                })
                .collect::<Vec<_>>()
        }
    });
    let chains = spawner.await.unwrap();
    source.until_running(1).await;
    let waiting = spread_loads(&loader, 100..101, 1).await;
    while loader.in_flight() < 11 {
        tokio::task::yield_now().await;
    }
    // A third batch would be one too many, but must not hang the test.
    source.release(3);
    for (key, chain) in (10..20).zip(chains) {
        assert_eq!(chain.await.unwrap(), expected(key, 0));
    }
    waiting.into_iter().next().unwrap().await.unwrap().unwrap();
    let mut batches = source.batches();
    batches.iter_mut().for_each(|batch| batch.sort_unstable());
    let second: Vec<u64> = (10..20).chain([100]).collect();
    assert_eq!(batches, vec![(0..10).collect(), second]);
}

/// A value (or key) that counts its clones; it equals another of the same
/// `key`.
#[derive(Debug)]
struct Counted {
    key: u64,
    clones: Arc<AtomicUsize>,
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.clones.fetch_add(1, SeqCst);
        Self {
            key: self.key,
            clones: Arc::clone(&self.clones),
        }
    }
}

impl PartialEq for Counted {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Counted {}

impl std::hash::Hash for Counted {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

/// A source of [`Counted`] values that answers in the order of its keys:
/// key 0 is never found, and the last key of a batch gets no entry at all.
struct InOrder {
    clones: Arc<AtomicUsize>,
    calls: AtomicUsize,
}

impl BatchSource for InOrder {
    type Key = u64;
    type Value = Counted;
    type Error = std::convert::Infallible;

    async fn load(&self, _keys: &[u64]) -> Result<HashMap<u64, Counted>, Self::Error> {
        unreachable!("the loader asks for values in order")
    }

    async fn load_in_order(&self, keys: &[u64]) -> Result<Vec<Option<Counted>>, Self::Error> {
        self.calls.fetch_add(1, SeqCst);
        let answered = &keys[..keys.len() - 1];
        Ok(answered
            .iter()
            .map(|&key| {
                (key != 0).then(|| Counted {
                    key,
                    clones: Arc::clone(&self.clones),
                })
            })
            .collect())
    }
}

#[tokio::test]
async fn a_value_moves_to_its_only_caller_and_is_cloned_for_the_others() {
    let clones = Arc::new(AtomicUsize::new(0));
    let loader = Loader::new(InOrder {
        clones: Arc::clone(&clones),
        calls: AtomicUsize::new(0),
    });
    // One batch: keys 1..=50 once each, key 60 three times, then key 99,
    // which the source leaves out.
    let keys: Vec<u64> = (1..=50).chain([60, 60, 60, 99]).collect();
    let tasks: Vec<_> = keys
        .iter()
        .map(|&key| {
            let loader = loader.clone();
            tokio::spawn(async move { loader.load(key).await })
        })
        .collect();
    for (&key, task) in keys.iter().zip(tasks) {
        let value = task.await.unwrap().unwrap();
        let expected = (key != 99).then_some(key);
        assert_eq!(value.map(|value| value.key), expected, "key {key}");
    }
    assert_eq!(loader.source().calls.load(SeqCst), 1, "one batch");
    assert_eq!(
        clones.load(SeqCst),
        2,
        "only key 60's second and third caller copy"
    );
}

#[tokio::test]
async fn load_many_answers_repeated_keys_and_keys_the_source_left_out() {
    let clones = Arc::new(AtomicUsize::new(0));
    let loader = Loader::new(InOrder {
        clones: Arc::clone(&clones),
        calls: AtomicUsize::new(0),
    });
    let values = loader.load_many([0, 5, 5, 7, 9]).await.unwrap();
    let keys: Vec<Option<u64>> = values.iter().map(|v| v.as_ref().map(|v| v.key)).collect();
    // 0: not found; 9: the batch's last key, which the source left out.
    assert_eq!(keys, [None, Some(5), Some(5), Some(7), None]);
    assert_eq!(clones.load(SeqCst), 1, "key 5's second caller copies");
}

/// Answers each key with its id.
struct ById;

impl BatchSource for ById {
    type Key = Counted;
    type Value = u64;
    type Error = std::convert::Infallible;

    async fn load(&self, keys: &[Counted]) -> Result<HashMap<Counted, u64>, Self::Error> {
        unreachable!("the loader asks for values in order, {} keys", keys.len())
    }

    async fn load_in_order(&self, keys: &[Counted]) -> Result<Vec<Option<u64>>, Self::Error> {
        Ok(keys.iter().map(|key| Some(key.key)).collect())
    }
}

/// Loads of keys 0..40, key 7 three times, in tasks of their own; returns
/// how often the loader cloned a key.
async fn key_clones(cache: CachePolicy) -> usize {
    let clones = Arc::new(AtomicUsize::new(0));
    let loader = Loader::builder(ById).cache(cache).build().unwrap();
    let ids: Vec<u64> = (0..40).chain([7, 7]).collect();
    let tasks: Vec<_> = ids
        .iter()
        .map(|&id| {
            let loader = loader.clone();
            let key = Counted {
                key: id,
                clones: Arc::clone(&clones),
            };
            tokio::spawn(async move { loader.load(key).await })
        })
        .collect();
    for (id, task) in ids.into_iter().zip(tasks) {
        assert_eq!(task.await.unwrap().unwrap(), Some(id));
    }
    assert_eq!(loader.in_flight(), 0);
    clones.load(SeqCst)
}

#[tokio::test]
async fn a_key_moves_into_its_batch_and_is_cloned_only_to_be_cached() {
    assert_eq!(
        key_clones(CachePolicy::Disabled).await,
        0,
        "without the cache"
    );
    assert_eq!(
        key_clones(CachePolicy::Unbounded).await,
        40,
        "the cache keeps a copy of each distinct key"
    );
}
