//! Property tests: random concurrent workloads against a direct lookup.

use crate::source::{Recorder, expected};
use coalesce::{BatchWindow, CachePolicy, Loader};
use proptest::prelude::*;
use std::{collections::HashSet, time::Duration};

#[derive(Debug, Clone)]
enum Call {
    Load(u64),
    LoadMany(Vec<u64>),
    /// Forget a key while other tasks may be loading it: it leaves the
    /// cache and any batch already fetching it.
    Clear(u64),
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        4 => (0u64..60).prop_map(Call::Load),
        4 => prop::collection::vec(0u64..60, 0..25).prop_map(Call::LoadMany),
        1 => (0u64..60).prop_map(Call::Clear),
    ]
}

fn window() -> impl Strategy<Value = BatchWindow> {
    prop_oneof![
        (0u32..4).prop_map(BatchWindow::Yield),
        (0u64..3).prop_map(|ms| BatchWindow::Time(Duration::from_millis(ms))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn concurrent_calls_equal_direct_lookups(
        tasks in prop::collection::vec(prop::collection::vec(call(), 1..6), 1..24),
        cap in 1usize..12,
        limit in prop::option::of(1usize..4),
        window in window(),
        workers in 1usize..3,
        cache in any::<bool>(),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .unwrap();
        let source = Recorder::new();
        let cache = if cache { CachePolicy::Unbounded } else { CachePolicy::Disabled };
        let mut builder = Loader::builder(source.clone())
            .max_batch_size(cap)
            .window(window)
            .cache(cache);
        if let Some(limit) = limit {
            builder = builder.max_concurrent_batches(limit);
        }
        let loader = builder.build().unwrap();

        let outcome = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(20), async {
            let handles: Vec<_> = tasks
                .iter()
                .cloned()
                .map(|calls| {
                    let loader = loader.clone();
                    tokio::spawn(async move {
                        let mut seen = Vec::new();
                        for call in calls {
                            match call {
                                Call::Load(key) => seen.push((vec![key], vec![loader.load(key).await.unwrap()])),
                                Call::LoadMany(keys) => {
                                    let values = loader.load_many(keys.clone()).await.unwrap();
                                    seen.push((keys, values));
                                }
                                Call::Clear(key) => loader.clear(&key),
                            }
                        }
                        seen
                    })
                })
                .collect();
            let mut all = Vec::new();
            for handle in handles {
                all.extend(handle.await.unwrap());
            }
            all
        }).await });
        let results = outcome.expect("every call resolves");
        for (keys, values) in results {
            let want: Vec<_> = keys.iter().map(|k| expected(*k, 0)).collect();
            prop_assert_eq!(values, want);
        }
        for batch in source.batches() {
            prop_assert!(batch.len() <= cap, "batch {:?} over cap {}", batch, cap);
            let distinct: HashSet<_> = batch.iter().collect();
            prop_assert_eq!(distinct.len(), batch.len(), "key sent twice in {:?}", batch);
        }
        // Every seat was released: none leaked, whatever was cleared when.
        prop_assert_eq!(loader.in_flight(), 0);
    }
}
