//! Where a batch's time goes: a `tracing` subscriber that listens only to
//! the engine's `batch` spans (target `coalesce::loader`) and adds up their
//! window wait, permit wait and fetch time, so each run of the bench can
//! say which phase its coalesced loads spend their time in.
//!
//! A subscriber of our own rather than `tracing-subscriber`: it needs three
//! numbers from one span, no formatting, no filtering language.

use serde::Serialize;
use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};
use tracing::{
    Event, Id, Metadata, Subscriber,
    field::{Field, Visit},
    level_filters::LevelFilter,
    span::{Attributes, Record},
    subscriber::Interest,
};

/// The engine's target for its batch spans and events.
const TARGET: &str = "coalesce::loader";

/// Sums over every batch closed since the process began.
static TOTALS: Totals = Totals {
    batches: AtomicU64::new(0),
    window_us: AtomicU64::new(0),
    permit_us: AtomicU64::new(0),
    fetch_us: AtomicU64::new(0),
};

struct Totals {
    batches: AtomicU64,
    window_us: AtomicU64,
    permit_us: AtomicU64,
    fetch_us: AtomicU64,
}

/// Install the subscriber for the whole process. Returns `false` when
/// another subscriber was installed first (then no phases are measured).
pub fn install() -> bool {
    tracing::subscriber::set_global_default(BatchPhases::default()).is_ok()
}

/// The totals so far, to subtract from a later reading.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reading {
    batches: u64,
    window_us: u64,
    permit_us: u64,
    fetch_us: u64,
}

impl Reading {
    /// Read the totals now.
    pub fn now() -> Self {
        Self {
            batches: TOTALS.batches.load(Relaxed),
            window_us: TOTALS.window_us.load(Relaxed),
            permit_us: TOTALS.permit_us.load(Relaxed),
            fetch_us: TOTALS.fetch_us.load(Relaxed),
        }
    }

    /// The mean phases of the batches closed since `before`, if any were.
    pub fn since(&self, before: &Self) -> Option<Phases> {
        let batches = self.batches.checked_sub(before.batches)?;
        let mean = |now: u64, then: u64| now.saturating_sub(then) as f64 / batches as f64;
        (batches > 0).then(|| Phases {
            batches,
            window_us: mean(self.window_us, before.window_us),
            permit_wait_us: mean(self.permit_us, before.permit_us),
            fetch_us: mean(self.fetch_us, before.fetch_us),
        })
    }
}

/// The mean time a run's batches spent in each phase, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Phases {
    /// Batches closed during the run.
    pub batches: u64,
    /// From the batch's first key until it was due (the window, and with
    /// the default window the wait for a batch in flight to complete).
    pub window_us: f64,
    /// Waiting for one of the loader's `max_concurrent_batches` permits.
    pub permit_wait_us: f64,
    /// The source's call: the statement's round trip.
    pub fetch_us: f64,
}

/// The subscriber: open batch spans by id, with their counts of handles.
#[derive(Default)]
struct BatchPhases {
    next_id: AtomicU64,
    open: std::sync::Mutex<HashMap<u64, Open>>,
}

/// One open batch span: its handles and the fields recorded so far.
#[derive(Default)]
struct Open {
    handles: usize,
    fields: Fields,
}

#[derive(Default)]
struct Fields {
    window_us: u64,
    permit_us: u64,
    fetch_us: u64,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "window_us" => self.window_us = value,
            "permit_wait_us" => self.permit_us = value,
            "fetch_us" => self.fetch_us = value,
            _ => {}
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl BatchPhases {
    /// The open spans; a panic elsewhere while holding them leaves plain
    /// numbers behind, so a poisoned lock is still usable.
    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Open>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Subscriber for BatchPhases {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.enabled(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // Events too: the engine asks whether its event is enabled before
        // it reads any clock.
        metadata.target() == TARGET
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::DEBUG)
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut open = Open {
            handles: 1,
            ..Open::default()
        };
        span.record(&mut open.fields);
        let id = self.next_id.fetch_add(1, Relaxed) + 1;
        self.open().insert(id, open);
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some(open) = self.open().get_mut(&span.into_u64()) {
            values.record(&mut open.fields);
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}

    fn clone_span(&self, span: &Id) -> Id {
        if let Some(open) = self.open().get_mut(&span.into_u64()) {
            open.handles += 1;
        }
        span.clone()
    }

    fn try_close(&self, span: Id) -> bool {
        let closed = {
            let mut open = self.open();
            let id = span.into_u64();
            match open.get_mut(&id) {
                Some(entry) if entry.handles > 1 => {
                    entry.handles -= 1;
                    None
                }
                Some(_) => open.remove(&id),
                None => None,
            }
        };
        let Some(closed) = closed else {
            return false;
        };
        let Fields {
            window_us,
            permit_us,
            fetch_us,
        } = closed.fields;
        TOTALS.batches.fetch_add(1, Relaxed);
        TOTALS.window_us.fetch_add(window_us, Relaxed);
        TOTALS.permit_us.fetch_add(permit_us, Relaxed);
        TOTALS.fetch_us.fetch_add(fetch_us, Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coalesce::{BatchSettings, Loader, from_fn};
    use std::{collections::HashMap, convert::Infallible, time::Duration};

    #[test]
    fn each_closed_batch_adds_its_phases() {
        let phases = BatchPhases::default();
        let _guard = tracing::subscriber::set_default(phases);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        let before = Reading::now();
        runtime.block_on(async {
            let loader = Loader::builder(from_fn(|keys: Vec<u32>| async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok::<_, Infallible>(keys.into_iter().map(|k| (k, k)).collect::<HashMap<_, _>>())
            }))
            .settings(BatchSettings::default())
            .build()
            .expect("a loader");
            loader.load_many([1, 2, 3]).await.expect("loaded");
            loader.load(4).await.expect("loaded");
        });
        // Other tests may close batches meanwhile; these two at least.
        let phases = Reading::now().since(&before).expect("batches were seen");
        assert!(phases.batches >= 2, "{phases:?}");
        assert!(
            phases.fetch_us >= 20_000.0 / phases.batches as f64,
            "{phases:?}"
        );
    }
}
