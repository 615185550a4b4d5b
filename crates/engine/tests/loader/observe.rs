//! With the `metrics` feature, the metrics a recorder receives per batch.
//! (The `tracing` span is tested in `tests/batch_span.rs`, a binary of its
//! own.)

#[cfg(feature = "metrics")]
mod metrics_facade {
    use crate::source::{FAIL_KEY, Recorder};
    use coalesce::Loader;
    use metrics::{
        Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, SharedString,
        Unit,
    };
    use parking_lot::Mutex;
    use std::sync::Arc;

    /// Every value recorded, as (metric name and labels, value).
    #[derive(Clone, Default)]
    struct Recorded(Arc<Mutex<Vec<(String, f64)>>>);

    /// One registered metric: records into [`Recorded`] under its key.
    struct Handle {
        key: String,
        into: Recorded,
    }

    impl CounterFn for Handle {
        fn increment(&self, value: u64) {
            self.into.0.lock().push((self.key.clone(), value as f64));
        }

        fn absolute(&self, value: u64) {
            self.increment(value);
        }
    }

    impl HistogramFn for Handle {
        fn record(&self, value: f64) {
            self.into.0.lock().push((self.key.clone(), value));
        }
    }

    impl Recorded {
        fn handle(&self, key: &Key) -> Arc<Handle> {
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let key = format!("{}{{{}}}", key.name(), labels.join(","));
            Arc::new(Handle {
                key,
                into: self.clone(),
            })
        }

        fn values(&self, key: &str) -> Vec<f64> {
            let recorded = self.0.lock();
            recorded
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| *v)
                .collect()
        }
    }

    impl metrics::Recorder for Recorded {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(self.handle(key))
        }

        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }

        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::from_arc(self.handle(key))
        }
    }

    #[test]
    fn batch_sizes_waits_and_errors_reach_the_metrics_recorder_per_loader() {
        let recorded = Recorded::default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        metrics::with_local_recorder(&recorded, || {
            runtime.block_on(async {
                let loader = Loader::builder(Recorder::new())
                    .name("profiles")
                    .build()
                    .unwrap();
                loader.load_many([1, 2, 3]).await.unwrap();
                loader.load_many([4, FAIL_KEY]).await.unwrap_err();
            });
        });
        let keys = recorded.values("coalesce_batch_keys{loader=profiles}");
        assert_eq!(keys, vec![3.0, 2.0]);
        for timed in [
            "coalesce_batch_window_wait_seconds{loader=profiles}",
            "coalesce_batch_permit_wait_seconds{loader=profiles}",
            "coalesce_batch_fetch_seconds{loader=profiles}",
        ] {
            let values = recorded.values(timed);
            assert_eq!(values.len(), 2, "{timed}: {values:?}");
            assert!(values.iter().all(|s| (0.0..60.0).contains(s)), "{values:?}");
        }
        let ok = recorded.values("coalesce_batches_total{loader=profiles,outcome=ok}");
        let failed = recorded.values("coalesce_batches_total{loader=profiles,outcome=error}");
        assert_eq!((ok, failed), (vec![1.0], vec![1.0]));
    }
}
