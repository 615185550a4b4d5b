//! The `tracing` span each batch opens, as a subscriber sees it.
//!
//! A test binary of its own, with one test: `tracing` caches each callsite's
//! interest process-wide, and a callsite registered by another test's
//! thread while this test's scoped subscriber is being created can be
//! cached as "never interested" (seen 4 times in 15 runs when this test
//! shared the loader suite's binary).

#[allow(dead_code)] // the loader suite's test sources; this test needs two
#[path = "loader/source.rs"]
mod source;

use coalesce::Loader;
use parking_lot::Mutex;
use source::{FAIL_KEY, Recorder};
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
