//! The figures of a bench run: one row per workload, concurrency and path,
//! printed as Markdown tables and written as JSON.

use super::table::{Style, Table};
use super::{
    paths::{EngineStats, PathKind},
    phases::Phases,
    workload::{Limit, Outcome, Workload},
};
use serde::Serialize;
use std::{fmt::Write as _, time::Duration};

/// Latency percentiles of one run, in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Mean.
    pub mean: f64,
    /// Slowest operation.
    pub max: f64,
}

/// The measured figures of one workload through one path at one concurrency.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The workload's name.
    pub workload: Workload,
    /// The path's name.
    pub path: PathKind,
    /// Concurrent tasks.
    pub concurrency: usize,
    /// Operations completed.
    pub ops: u64,
    /// Operations in flight when the run's time was up, dropped unfinished.
    pub dropped: u64,
    /// Whether a run counted in operations ran out of time before all were done.
    pub cut_short: bool,
    /// Whether the run went on past its time because it had completed
    /// fewer than [`Meta::at_least_ops`] operations.
    pub extended: bool,
    /// Operations that failed.
    pub errors: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// Wall time of the run, in seconds.
    pub elapsed_s: f64,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Statements sent during the run (`Database::statements` delta).
    pub statements: u64,
    /// Statements per 1,000 completed operations (`None` if none completed;
    /// statements of operations dropped at the deadline count too).
    pub queries_per_1000_ops: Option<f64>,
    /// Latency per completed operation, microseconds (`None` if none completed).
    pub latency_us: Option<Latency>,
    /// The engine's batching statistics over the run (none for naive).
    pub engine: Option<EngineStats>,
    /// The mean time the run's batches spent waiting for their window,
    /// for a permit and for their fetch (none for a path without a loader).
    pub phases: Option<Phases>,
    /// Throughput divided by the naive path's (same workload and concurrency).
    pub throughput_vs_naive: Option<f64>,
    /// The naive path's statements per operation divided by this path's.
    pub queries_fewer_than_naive: Option<f64>,
    /// Throughput divided by the batched ceiling's (same workload and
    /// concurrency), when the ceiling ran.
    pub throughput_vs_ceiling: Option<f64>,
}

impl Row {
    /// The figures of a finished run.
    pub fn new(
        workload: Workload,
        path: PathKind,
        concurrency: usize,
        outcome: &Outcome,
        limit: Limit,
        statements: u64,
        engine: Option<EngineStats>,
    ) -> Self {
        let secs = outcome.elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        let us = |q: f64| round2(outcome.latency.value_at_quantile(q) as f64 / 1_000.0);
        let completed = outcome.ops > 0;
        let ops = outcome.ops as f64;
        Self {
            workload,
            path,
            concurrency,
            ops: outcome.ops,
            dropped: outcome.dropped,
            cut_short: outcome.cut_short(limit),
            extended: outcome.extended,
            errors: outcome.errors,
            first_error: outcome.first_error.clone(),
            elapsed_s: round2(secs * 1000.0) / 1000.0,
            ops_per_sec: round2(outcome.ops as f64 / secs),
            statements,
            queries_per_1000_ops: completed.then(|| round2(statements as f64 * 1_000.0 / ops)),
            latency_us: completed.then(|| Latency {
                p50: us(0.50),
                p95: us(0.95),
                p99: us(0.99),
                mean: round2(outcome.latency.mean() / 1_000.0),
                max: round2(outcome.latency.max() as f64 / 1_000.0),
            }),
            engine,
            phases: None,
            throughput_vs_naive: None,
            queries_fewer_than_naive: None,
            throughput_vs_ceiling: None,
        }
    }
}

impl Row {
    /// One line: operations done, in how long, and whether the run was cut
    /// short.
    ///
    /// ```ignore
    /// assert_eq!(row.summary(), "12,345 ops in 1.00 s");
    /// ```
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{} ops in {:.2} s",
            thousands(self.ops as f64),
            self.elapsed_s
        );
        if self.cut_short {
            line.push_str(", cut short by --duration");
        }
        if self.dropped > 0 {
            let _ = write!(line, ", {} dropped unfinished at the end", self.dropped);
        }
        line
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// How the run was set up.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    /// The crate version.
    pub version: &'static str,
    /// When the run started (UTC, RFC 3339).
    pub started_at: String,
    /// The database family.
    pub backend: String,
    /// The database URL without credentials.
    pub database: String,
    /// Added round-trip time, milliseconds.
    pub rtt_ms: f64,
    /// Connections in the pool.
    pub pool_size: u32,
    /// Seeded users.
    pub users: u32,
    /// Seeded memories per user.
    pub memories_per_user: u32,
    /// The random seed.
    pub seed: u64,
    /// Memories per `bulk-save` operation.
    pub bulk_size: usize,
    /// Most keys per batch of the coalescing repository.
    pub max_batch_size: usize,
    /// `"ops N"` or `"duration D"` per run.
    pub limit: String,
    /// Operations a run completes, past its duration if need be (0: none).
    pub at_least_ops: u64,
    /// Warm-up before each measured run, milliseconds.
    pub warmup_ms: f64,
    /// Tokio worker threads.
    pub worker_threads: usize,
    /// Whether the peer paths were built in.
    pub peers: bool,
}

/// One measured row of the specification's query reduction table.
#[derive(Debug, Clone, Serialize)]
pub struct QueryReduction {
    /// The specification's operation name.
    pub operation: &'static str,
    /// Statements per operation, one statement per item.
    pub without_batching: f64,
    /// Statements per operation through the store's batch API.
    pub with_batching: f64,
    /// How many times fewer.
    pub improvement: f64,
}

/// One measured row of the specification's latency table.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyRow {
    /// The specification's operation name.
    pub operation: &'static str,
    /// Concurrency the figures were measured at.
    pub concurrency: usize,
    /// Median latency of the naive path (one statement per item, one
    /// after another), microseconds.
    pub before_us: f64,
    /// Median latency through the batch API (the coalesce path),
    /// microseconds.
    pub after_us: f64,
    /// How many times faster.
    pub speedup: f64,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// How the run was set up.
    pub meta: Meta,
    /// One row per workload, concurrency and path.
    pub results: Vec<Row>,
    /// The specification's query reduction table, measured.
    pub query_reduction: Vec<QueryReduction>,
    /// The specification's latency table, measured.
    pub latency_per_operation: Vec<LatencyRow>,
}

impl Report {
    /// A report of `results`: fills in the ratios to naive and the
    /// specification's tables (from the lowest concurrency measured).
    pub fn new(meta: Meta, mut results: Vec<Row>) -> Self {
        let naive: Vec<(Workload, usize, f64, Option<f64>)> = results
            .iter()
            .filter(|r| r.path == PathKind::Naive)
            .map(|r| {
                (
                    r.workload,
                    r.concurrency,
                    r.ops_per_sec,
                    r.queries_per_1000_ops,
                )
            })
            .collect();
        let ceiling: Vec<(Workload, usize, f64)> = results
            .iter()
            .filter(|r| r.path == PathKind::Ceiling && r.ops_per_sec > 0.0)
            .map(|r| (r.workload, r.concurrency, r.ops_per_sec))
            .collect();
        for row in &mut results {
            row.throughput_vs_ceiling = ceiling
                .iter()
                .find(|c| c.0 == row.workload && c.1 == row.concurrency)
                .map(|c| round2(row.ops_per_sec / c.2));
            if let Some((_, _, ops, queries)) = naive
                .iter()
                .find(|n| n.0 == row.workload && n.1 == row.concurrency)
            {
                row.throughput_vs_naive = (*ops > 0.0).then(|| round2(row.ops_per_sec / ops));
                row.queries_fewer_than_naive = match (*queries, row.queries_per_1000_ops) {
                    (Some(naive), Some(this)) if this > 0.0 => Some(round2(naive / this)),
                    _ => None,
                };
            }
        }
        let mut query_reduction = Vec::new();
        let mut latency_per_operation = Vec::new();
        for workload in Workload::DEFAULT {
            let Some(operation) = workload.spec_operation() else {
                continue;
            };
            let lowest = results
                .iter()
                .filter(|r| r.workload == workload)
                .map(|r| r.concurrency)
                .min();
            let pick = |path| {
                results.iter().find(|r| {
                    r.workload == workload && r.path == path && Some(r.concurrency) == lowest
                })
            };
            let (Some(before), Some(after)) = (pick(PathKind::Naive), pick(PathKind::Coalesce))
            else {
                continue;
            };
            // A path that completed no operation has no figures to compare.
            if let (Some(naive), Some(batched)) =
                (before.queries_per_1000_ops, after.queries_per_1000_ops)
            {
                query_reduction.push(QueryReduction {
                    operation,
                    without_batching: naive / 1_000.0,
                    with_batching: batched / 1_000.0,
                    improvement: ratio(naive, batched),
                });
            }
            if let (Some(naive), Some(batched)) = (before.latency_us, after.latency_us) {
                latency_per_operation.push(LatencyRow {
                    operation,
                    concurrency: before.concurrency,
                    before_us: naive.p50,
                    after_us: batched.p50,
                    speedup: ratio(naive.p50, batched.p50),
                });
            }
        }
        Self {
            meta,
            results,
            query_reduction,
            latency_per_operation,
        }
    }

    /// One table per workload, in the order they ran.
    pub fn workload_tables(&self, bulk_size: usize, style: Style) -> String {
        let mut out = String::new();
        let mut workloads: Vec<Workload> = Vec::new();
        for row in &self.results {
            if !workloads.contains(&row.workload) {
                workloads.push(row.workload);
            }
        }
        for workload in workloads {
            out.push_str(&self.workload_table(workload, bulk_size, style));
            out.push('\n');
        }
        out
    }

    /// The specification's query reduction and latency tables, measured.
    pub fn spec_tables(&self, style: Style) -> String {
        let mut out = String::new();
        if !self.query_reduction.is_empty() {
            let _ = writeln!(out, "{}Query reduction (measured)\n", style.heading());
            let mut table = Table::new(
                &[
                    "Operation",
                    "Without batching",
                    "With batching",
                    "Improvement",
                ],
                &["Without batching", "With batching", "Improvement"],
            );
            for r in &self.query_reduction {
                table.row(vec![
                    r.operation.to_owned(),
                    format!("{} queries", number(r.without_batching)),
                    format!("{} queries", number(r.with_batching)),
                    format!("{}x fewer", number(r.improvement)),
                ]);
            }
            out.push_str(&table.render(style));
            out.push('\n');
        }
        if !self.latency_per_operation.is_empty() {
            let _ = writeln!(
                out,
                "{}Latency per operation (measured, p50; naive: one statement per item, \
                 one after another; coalesce: the batch API; both at the tasks shown)\n",
                style.heading()
            );
            let mut table = Table::new(
                &["Operation", "tasks", "naive", "coalesce", "Speedup"],
                &["tasks", "naive", "coalesce", "Speedup"],
            );
            for r in &self.latency_per_operation {
                table.row(vec![
                    r.operation.to_owned(),
                    thousands(r.concurrency as f64),
                    micros(r.before_us),
                    micros(r.after_us),
                    format!("{}x faster", number(r.speedup)),
                ]);
            }
            out.push_str(&table.render(style));
            out.push('\n');
        }
        out
    }

    fn workload_table(&self, workload: Workload, bulk_size: usize, style: Style) -> String {
        const NUMBERS: [&str; 10] = [
            "tasks",
            "ops/s",
            "queries/1k ops",
            "p50",
            "p95",
            "p99",
            "mean batch",
            "vs naive",
            "vs ceiling",
            "errors",
        ];
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}{}: {}\n",
            style.heading(),
            workload.name(),
            workload.describe(bulk_size)
        );
        let rows: Vec<&Row> = self
            .results
            .iter()
            .filter(|r| r.workload == workload)
            .collect();
        let with_ceiling = rows.iter().any(|r| r.throughput_vs_ceiling.is_some());
        let mut headers = vec![
            "tasks",
            "path",
            "ops/s",
            "queries/1k ops",
            "p50",
            "p95",
            "p99",
            "mean batch",
            "vs naive",
        ];
        if with_ceiling {
            headers.push("vs ceiling");
        }
        headers.push("errors");
        let mut table = Table::new(&headers, &NUMBERS);
        let mut notes = Vec::new();
        let dash = || "-".to_owned();
        for r in &rows {
            let latency = |pick: fn(&Latency) -> f64| {
                r.latency_us.as_ref().map_or_else(dash, |l| micros(pick(l)))
            };
            let mut cells = vec![
                r.concurrency.to_string(),
                r.path.name().to_owned(),
                number(r.ops_per_sec),
                r.queries_per_1000_ops.map_or_else(dash, number),
                latency(|l| l.p50),
                latency(|l| l.p95),
                latency(|l| l.p99),
                r.engine
                    .map_or_else(dash, |e| format!("{:.1}", e.mean_batch)),
                r.throughput_vs_naive
                    .map_or_else(dash, |x| format!("{}x", number(x))),
            ];
            if with_ceiling {
                cells.push(
                    r.throughput_vs_ceiling
                        .map_or_else(dash, |x| format!("{:.0} %", x * 100.0)),
                );
            }
            cells.push(r.errors.to_string());
            table.row(cells);
            let run = format!("{} at {} tasks", r.path.name(), r.concurrency);
            if r.ops == 0 {
                notes.push(format!(
                    "{run}: no operation completed within the run's {:.2} s",
                    r.elapsed_s
                ));
            } else if r.cut_short {
                notes.push(format!("{run}: cut short, {}", r.summary()));
            } else if r.extended {
                notes.push(format!(
                    "{run}: went on past its time until {} operations had completed: {}",
                    self.meta.at_least_ops,
                    r.summary()
                ));
            }
            if let Some(error) = &r.first_error {
                notes.push(format!("{run}: first error: {error}"));
            }
        }
        out.push_str(&table.render(style));
        out.push_str(&phases_table(&rows, style));
        if workload == Workload::Mixed && self.meta.backend == "Sqlite" {
            notes.extend(rows.iter().filter_map(|r| self.sqlite_write_tail(r)));
        }
        for note in notes {
            let _ = writeln!(out, "\nnote: {note}");
        }
        out
    }
}

impl Report {
    /// Why coalesce's p99 in the mixed workload on SQLite is above naive's,
    /// for a row where it is: its writes queue for the one write lock.
    fn sqlite_write_tail(&self, row: &Row) -> Option<String> {
        let naive = self.results.iter().find(|n| {
            n.workload == row.workload
                && n.concurrency == row.concurrency
                && n.path == PathKind::Naive
        })?;
        let (tail, naive_tail) = (row.latency_us?.p99, naive.latency_us?.p99);
        let times = row.throughput_vs_naive.map_or_else(|| "-".into(), number);
        (row.path == PathKind::Coalesce && tail > naive_tail).then(|| {
            format!(
                "coalesce at {} tasks: its p99 ({}) is above naive's ({}). It is the writes: \
                 SQLite has one writer at a time, so every write batch (one transaction) waits \
                 for the write lock, and coalesce completes {}x naive's operations, so {}x as \
                 many writes queue there; the slowest 1 % are the last of them. With the mix's \
                 writes turned into reads, coalesce's p99 falls below naive's, and on PostgreSQL \
                 (row locks) the writes barely show (docs/BENCHMARKS.md, \"The mixed workload's tail\").",
                row.concurrency,
                micros(tail),
                micros(naive_tail),
                times,
                times,
            )
        })
    }
}

/// Where the batches of each coalescing run spent their time, beside the
/// latency of one operation; empty when no run had batches.
fn phases_table(rows: &[&Row], style: Style) -> String {
    const NUMBERS: [&str; 6] = [
        "tasks",
        "batches",
        "window wait",
        "permit wait",
        "fetch",
        "op p50",
    ];
    let mut table = Table::new(
        &[
            "tasks",
            "path",
            "batches",
            "window wait",
            "permit wait",
            "fetch",
            "op p50",
        ],
        &NUMBERS,
    );
    let mut any = false;
    for r in rows {
        let Some(phases) = r.phases else { continue };
        any = true;
        table.row(vec![
            r.concurrency.to_string(),
            r.path.name().to_owned(),
            thousands(phases.batches as f64),
            micros(phases.window_us),
            micros(phases.permit_wait_us),
            micros(phases.fetch_us),
            r.latency_us
                .map_or_else(|| "-".to_owned(), |l| micros(l.p50)),
        ]);
    }
    if !any {
        return String::new();
    }
    format!(
        "\nWhere a batch's time goes (means per batch: waiting for its window \
         and for batches in flight, for a concurrency permit, and the fetch):\n\n{}",
        table.render(style)
    )
}

fn ratio(before: f64, after: f64) -> f64 {
    if after > 0.0 {
        round2(before / after)
    } else {
        0.0
    }
}

/// A figure with three significant digits below 100, whole above.
fn number(x: f64) -> String {
    if x >= 100.0 {
        thousands(x)
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else if x >= 1.0 || x == 0.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// An integer with thousands separators.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A latency in microseconds, shown in µs, ms or s.
fn micros(us: f64) -> String {
    let d = Duration::from_secs_f64(us.max(0.0) / 1e6);
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1_000.0)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::super::workload::histogram;
    use super::*;

    /// A row of `ops` operations in one second, 2 % of them taking `p99_us`
    /// (so the p99 is theirs) and the rest 1 ms.
    fn row(workload: Workload, path: PathKind, ops: u64, p99_us: u64) -> Row {
        let mut latency = histogram();
        latency.record_n(1_000_000, ops - ops / 50).unwrap();
        latency.record_n(p99_us * 1_000, ops / 50).unwrap();
        let outcome = Outcome {
            ops,
            dropped: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::from_secs(1),
            extended: false,
            latency,
        };
        Row::new(
            workload,
            path,
            1000,
            &outcome,
            Limit::time(Duration::from_secs(1)),
            ops,
            None,
        )
    }

    fn meta(backend: &str) -> Meta {
        Meta {
            version: "0",
            started_at: String::new(),
            backend: backend.into(),
            database: String::new(),
            rtt_ms: 0.0,
            pool_size: 10,
            users: 1,
            memories_per_user: 10,
            seed: 1,
            bulk_size: 1,
            max_batch_size: 100,
            limit: String::new(),
            at_least_ops: 0,
            warmup_ms: 0.0,
            worker_threads: 2,
            peers: false,
        }
    }

    #[test]
    fn the_mixed_tail_on_sqlite_is_explained_where_coalesce_is_slower_at_p99() {
        let explained = |backend: &str, coalesce_p99_us: u64| {
            let rows = vec![
                row(Workload::Mixed, PathKind::Naive, 10_000, 90_000),
                row(Workload::Mixed, PathKind::Coalesce, 40_000, coalesce_p99_us),
            ];
            Report::new(meta(backend), rows)
                .workload_tables(1, Style::Markdown)
                .contains("It is the writes")
        };
        assert!(explained("Sqlite", 104_000));
        assert!(
            !explained("Sqlite", 80_000),
            "coalesce's tail is not above naive's"
        );
        assert!(!explained("Postgres", 104_000), "a server has row locks");
    }

    #[test]
    fn formats() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(micros(163.2), "163 µs");
        assert_eq!(micros(1500.0), "1.50 ms");
        assert_eq!(number(12.0), "12.0");
        assert_eq!(number(0.5), "0.500");
        assert_eq!(number(0.0357), "0.036");
    }
}
