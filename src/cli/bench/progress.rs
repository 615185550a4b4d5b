//! Progress on stderr while the bench works: a bar on a terminal, and plain
//! lines every few seconds when stderr is a pipe or a file (a CI log, `2>
//! bench.log`), so a long step is never silent.

use indicatif::{ProgressBar, ProgressStyle};
use std::{
    io::IsTerminal,
    time::{Duration, Instant},
};

/// How often a plain progress line is printed when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// How progress reaches the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A bar redrawn in place (stderr is a terminal).
    Bar,
    /// A plain line every few seconds, and one per finished step.
    Lines,
}

impl Mode {
    /// A bar on a terminal, lines otherwise.
    pub fn detect() -> Self {
        if std::io::stderr().is_terminal() {
            Self::Bar
        } else {
            Self::Lines
        }
    }

    /// Print a line about a finished step: in [`Lines`](Self::Lines) mode
    /// only, since on a terminal the tables themselves show how far it got.
    pub fn step_done(self, line: &str) {
        if self == Self::Lines {
            eprintln!("{line}");
        }
    }
}

/// The progress of one step (seeding, a warm-up, a measured run) towards
/// `len` units.
pub struct Meter {
    label: String,
    len: u64,
    unit: &'static str,
    bar: Option<ProgressBar>,
    /// When the last plain line was printed (`None` for a bar).
    last_line: Option<Instant>,
}

impl Meter {
    /// A meter for a step of `len` `unit`s (e.g. `"ms"`, `"users"`).
    ///
    /// ```ignore
    /// let mut meter = Meter::new(Mode::detect(), "seeding".into(), 10_000, "users");
    /// meter.set(2_000);
    /// meter.finish();
    /// ```
    pub fn new(mode: Mode, label: String, len: u64, unit: &'static str) -> Self {
        let (bar, last_line) = match mode {
            Mode::Bar => {
                let bar = ProgressBar::new(len);
                let style =
                    ProgressStyle::with_template("{msg:44} [{bar:30}] {percent:>3}% {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> ");
                bar.set_style(style);
                bar.set_message(label.clone());
                (Some(bar), None)
            }
            Mode::Lines => (None, Some(Instant::now())),
        };
        Self {
            label,
            len,
            unit,
            bar,
            last_line,
        }
    }

    /// A meter that shows nothing.
    pub fn silent() -> Self {
        Self {
            label: String::new(),
            len: 0,
            unit: "",
            bar: None,
            last_line: None,
        }
    }

    /// Move to `position`; prints a plain line if the last one is old enough.
    pub fn set(&mut self, position: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(position);
        }
        if let Some(last) = &mut self.last_line
            && last.elapsed() >= LINE_EVERY
        {
            *last = Instant::now();
            eprintln!("{}: {position} of {} {}", self.label, self.len, self.unit);
        }
    }

    /// Remove the bar (the step's result is printed elsewhere).
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
