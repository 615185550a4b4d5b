//! The `tracing` span each batch opens, as a subscriber sees it, and (with
//! the `metrics` feature) the metrics a recorder receives.

use crate::source::{FAIL_KEY, Recorder};
use coalesce::Loader;
use parking_lot::Mutex;
use std::{collections::HashMap, fmt, sync::Arc};
use tracing::{
    Event, Id, Metadata, Subscriber,
    field::{Field, Visit},
    span::{Attributes, Record},
};

/// A span's name and its fields as text.
type SpanRecord = (&'static str, HashMap<&'static str, String>);

/// Every span, in the order they were opened.
#[derive(Clone, Default)]
struct Spans {
    opened: Arc<Mutex<Vec<SpanRecord>>>,
}

struct Fields<'a>(&'a mut HashMap<&'static str, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }
}

impl Subscriber for Spans {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = HashMap::new();
        span.record(&mut Fields(&mut fields));
        let mut opened = self.opened.lock();
        opened.push((span.metadata().name(), fields));
        // Ids start at 1: span `n` is entry `n - 1`.
        Id::from_u64(opened.len() as u64)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let index = span.into_u64() as usize - 1;
        values.record(&mut Fields(&mut self.opened.lock()[index].1));
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn each_batch_reports_its_loader_keys_waits_fetch_and_outcome_in_a_span() {
    let spans = Spans::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    tracing::subscriber::with_default(spans.clone(), || {
        runtime.block_on(async {
            let loader = Loader::builder(Recorder::new())
                .name("profiles")
                .build()
                .unwrap();
            loader.load_many([1, 2, 3]).await.unwrap();
            loader.load_many([4, FAIL_KEY]).await.unwrap_err();
        });
    });
    let opened = spans.opened.lock();
    let batches: Vec<_> = opened
        .iter()
        .filter(|(name, _)| *name == "batch")
        .map(|(_, fields)| fields)
        .collect();
    assert_eq!(batches.len(), 2, "one span per batch: {opened:?}");
    for (fields, keys, outcome) in [(batches[0], "3", "ok"), (batches[1], "2", "error")] {
        assert_eq!(fields["loader"], "profiles");
        assert_eq!(fields["keys"], keys);
        assert_eq!(fields["outcome"], outcome);
        for timed in ["window_us", "permit_wait_us", "fetch_us"] {
            let micros: u64 = fields[timed].parse().expect("a number of microseconds");
            assert!(micros < 60_000_000, "{timed} = {micros}");
        }
    }
}

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
