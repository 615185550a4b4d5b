//! What a batch tells the outside world: the `tracing` span and the
//! metrics described in the loader's module docs ("Observability"). No
//! clock is read unless someone listens: a subscriber interested in the
//! span, or the `metrics` feature.

use std::time::{Duration, Instant};
use tracing::{Level, Span, field::Empty};

const TARGET: &str = "coalesce::loader";

/// Whether anyone listens for batches, so that their waits are worth timing.
fn observed() -> bool {
    cfg!(feature = "metrics") || tracing::enabled!(target: TARGET, Level::DEBUG)
}

/// How long a batch waited before its fetch began.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Waits {
    window: Duration,
    permit: Duration,
}

/// Times a batch's window and permit wait, when observed.
pub(crate) struct Stopwatch {
    /// When the batch opened and, once it was due, when that was.
    marks: Option<(Instant, Option<Instant>)>,
}

impl Stopwatch {
    pub(crate) fn start() -> Self {
        Self {
            marks: observed().then(|| (Instant::now(), None)),
        }
    }

    /// The window is over; the permit wait begins.
    pub(crate) fn due(&mut self) {
        if let Some((_, due)) = &mut self.marks {
            *due = Some(Instant::now());
        }
    }

    /// The permit is taken: the waits, if they were timed.
    pub(crate) fn permitted(self) -> Option<Waits> {
        self.marks.map(|(opened, due)| {
            let now = Instant::now();
            let due = due.unwrap_or(now);
            Waits {
                window: due - opened,
                permit: now - due,
            }
        })
    }
}

/// How a batch ended, as its span and metrics name it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ending {
    Ok,
    Error,
    Panicked,
}

impl Ending {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Panicked => "panicked",
        }
    }
}

/// One batch's span and measurements, from its seal to its outcome.
pub(crate) struct BatchReport {
    span: Span,
    /// Somebody listens: the span and metrics get the fetch's time.
    observed: bool,
    #[cfg(feature = "metrics")]
    labels: (&'static str, usize, Option<Waits>),
}

impl BatchReport {
    /// Open the batch's span (a disabled one when nobody listens).
    pub(crate) fn begin(loader: &'static str, keys: usize, waits: Option<Waits>) -> Self {
        let span = match waits {
            Some(waits) => tracing::debug_span!(
                target: TARGET,
                "batch",
                loader,
                keys,
                window_us = micros(waits.window),
                permit_wait_us = micros(waits.permit),
                fetch_us = Empty,
                outcome = Empty,
            ),
            None => Span::none(),
        };
        Self {
            span,
            observed: waits.is_some(),
            #[cfg(feature = "metrics")]
            labels: (loader, keys, waits),
        }
    }

    /// The span to run the fetch in.
    pub(crate) fn span(&self) -> Span {
        self.span.clone()
    }

    /// Record the fetch's time and how it ended.
    pub(crate) fn end(self, ending: Ending, fetch: Duration) {
        if !self.observed {
            return;
        }
        self.span.record("fetch_us", micros(fetch));
        self.span.record("outcome", ending.as_str());
        self.span.in_scope(|| {
            tracing::debug!(target: TARGET, "batch completed");
        });
        #[cfg(feature = "metrics")]
        if let (loader, keys, Some(waits)) = self.labels {
            record_metrics(loader, keys, waits, fetch, ending);
        }
    }
}

#[cfg(feature = "metrics")]
fn record_metrics(
    loader: &'static str,
    keys: usize,
    waits: Waits,
    fetch: Duration,
    ending: Ending,
) {
    metrics::histogram!("coalesce_batch_keys", "loader" => loader).record(keys as f64);
    metrics::histogram!("coalesce_batch_window_wait_seconds", "loader" => loader)
        .record(waits.window);
    metrics::histogram!("coalesce_batch_permit_wait_seconds", "loader" => loader)
        .record(waits.permit);
    metrics::histogram!("coalesce_batch_fetch_seconds", "loader" => loader).record(fetch);
    metrics::counter!("coalesce_batches_total", "loader" => loader, "outcome" => ending.as_str())
        .increment(1);
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}
