//! `coalesce bench`: synthetic concurrent load against a real database,
//! through the naive, `coalesce` and (with `--features peers`) peer paths.
//!
//! One run: open the database (an embedded SQLite file by default, or a
//! server; optionally through a loopback proxy that adds a round-trip
//! time), migrate, seed deterministic data once, then run every workload at
//! every concurrency through every path, one after another on the same data
//! and pool, and print a table per workload (Markdown), the specification's
//! tables, and optionally JSON and an SVG chart.

mod ceiling;
mod paths;
#[cfg(feature = "peers")]
mod peers;
mod phases;
#[cfg(feature = "plot")]
mod plot;
mod progress;
mod proxy;
mod report;
pub(super) mod seed;
mod servers;
mod table;
mod workload;

use coalesce_store::StoreError;
use coalesce_store::db::{Backend, ConnectError, Database, ReplicaSettings};
use paths::{PathKind, Shape, Target};
use progress::{Meter, Mode};
use proxy::DelayProxy;
use report::{Meta, Report, Row};
use seed::{SeedError, SeedSpec, Seeded};
use std::{
    net::{SocketAddr, ToSocketAddrs},
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};
use table::Style;
use workload::{Limit, Workload};

/// How long a run lasts when neither `--duration` nor `--ops` says.
const DEFAULT_RUN_TIME: Duration = Duration::from_secs(1);

/// Operations a run completes, past [`DEFAULT_RUN_TIME`] if need be, when
/// neither `--duration` nor `--ops` says: enough for a throughput and a
/// p99, on a path whose operations all finish late (a write queue).
const DEFAULT_AT_LEAST: u64 = 100;

/// The most such a run goes on past [`DEFAULT_RUN_TIME`] for them.
const DEFAULT_LONGEST_RUN: Duration = Duration::from_secs(10);

/// The most a run counted with `--ops` may take when `--duration` does not say.
const DEFAULT_OPS_RUN_CAP: Duration = Duration::from_secs(60);

/// The flags of `coalesce bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Random seed of the synthetic data and of the load.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Users to seed, each with a profile and onboarding data.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub users: u32,

    /// Memories per user, spread over the five categories.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(10..=100_000))]
    pub memories_per_user: u32,

    /// Concurrent tasks; a comma-separated list sweeps (e.g. 1,100,1000)
    /// [default: 1000; save and delete 100, as their naive path's
    /// single-row writes queue for SQLite's one write lock].
    #[arg(long, value_delimiter = ',', value_parser = parse_concurrency)]
    pub concurrency: Vec<usize>,

    /// How long each workload runs through each path; operations still in
    /// flight at the end are dropped, so a run never lasts longer than this
    /// [default: 1s, and then a run goes on, 10s at most, until 100
    /// operations have completed; with --ops, the most a run may take: 60s].
    #[arg(long, value_parser = parse_run_time)]
    pub duration: Option<Duration>,

    /// Operations per workload and path, instead of a fixed time (a run
    /// that runs out of --duration first says how many it completed).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub ops: Option<u64>,

    /// Workloads to run, comma-separated [default: all but bulk-save].
    #[arg(long, value_delimiter = ',', value_enum)]
    pub workload: Vec<Workload>,

    /// Paths to compare, comma-separated [default: all this build has].
    #[arg(long, value_delimiter = ',', value_enum)]
    pub paths: Vec<PathKind>,

    /// Round-trip time added by a loopback proxy between the pool and the
    /// database server (e.g. 1ms, 500us); 0 connects directly.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub rtt: Duration,

    /// A read replica of the `--database-url` primary (PostgreSQL or
    /// MySQL/MariaDB; repeat for several): the store reads from the
    /// replicas, keeps read-your-writes, and the statements per server are
    /// printed after the tables.
    #[arg(long = "replica-url", value_name = "URL")]
    pub replica_urls: Vec<String>,

    /// Connections in the pool shared by every path.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub pool_size: u32,

    /// Memories saved by one bulk-save operation.
    #[arg(long, default_value_t = 10_000, value_parser = parse_bulk_size)]
    pub bulk_size: usize,

    /// Most keys per batch of the coalescing repository's loaders (the
    /// library's default is 100).
    #[arg(long, default_value_t = coalesce::DEFAULT_MAX_BATCH_SIZE, value_parser = parse_bulk_size)]
    pub max_batch_size: usize,

    /// Unmeasured load before each measured run (0 for none).
    #[arg(long, default_value = "50ms", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Also write the figures as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Draw throughput against concurrency of the first workload as SVG
    /// into this file (needs a build with `--features plot`).
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
}

/// Why `coalesce bench` stopped; every message is one line.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The flags cannot work together.
    #[error("{0}")]
    Usage(String),
    /// Opening or migrating the database failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// Seeding failed.
    #[error(transparent)]
    Seed(#[from] SeedError),
    /// The store could not be built.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database server cannot be reached.
    #[error("{0}")]
    Unreachable(String),
    /// The round-trip proxy could not start.
    #[error("could not start the round-trip proxy: {0}")]
    Proxy(std::io::Error),
    /// A file could not be written.
    #[error("could not write {file}: {message}")]
    Write {
        /// The file.
        file: String,
        /// What went wrong.
        message: String,
    },
    /// The chart could not be drawn.
    #[cfg(feature = "plot")]
    #[error(transparent)]
    Plot(#[from] plot::PlotError),
}

/// The longest duration any flag takes (so deadlines and the plan's total
/// stay far from overflowing).
const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let duration =
        humantime::parse_duration(text).map_err(|e| format!("{e} (try 1ms, 500us, 2s)"))?;
    if duration > MAX_DURATION {
        return Err("at most 24h".into());
    }
    Ok(duration)
}

fn parse_run_time(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err("a run needs some time (try 1s, 500ms)".into()),
        time => Ok(time),
    }
}

fn parse_concurrency(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n @ 1..=1_000_000) => Ok(n),
        _ => Err("must be a whole number from 1 to 1000000".into()),
    }
}

fn parse_bulk_size(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n @ 1..=1_000_000) => Ok(n),
        _ => Err("must be a whole number from 1 to 1000000".into()),
    }
}

/// The parts of a server URL around its `host:port`.
#[derive(Debug, PartialEq, Eq)]
struct ServerUrl<'a> {
    /// `scheme://` and the user info with its `@`, if any.
    before: &'a str,
    /// The host, brackets kept for IPv6.
    host: &'a str,
    /// The port, if the URL names one.
    port: Option<u16>,
    /// The path and query.
    after: &'a str,
}

impl<'a> ServerUrl<'a> {
    fn parse(url: &'a str) -> Option<Self> {
        let scheme_end = url.find("://")? + 3;
        let rest = &url[scheme_end..];
        let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_len];
        let host_start = scheme_end + authority.rfind('@').map_or(0, |at| at + 1);
        let host_port = &url[host_start..scheme_end + authority_len];
        let (host, port) = match host_port.rfind(':') {
            Some(colon) if !host_port[colon..].contains(']') => (
                &host_port[..colon],
                Some(host_port[colon + 1..].parse().ok()?),
            ),
            _ => (host_port, None),
        };
        Some(Self {
            before: &url[..host_start],
            host,
            port,
            after: &url[scheme_end + authority_len..],
        })
    }

    /// The URL without user info or query, for reports.
    fn redacted(&self) -> String {
        let scheme = self.before.split("://").next().unwrap_or_default();
        let path = self.after.split('?').next().unwrap_or_default();
        match self.port {
            Some(port) => format!("{scheme}://{}:{port}{path}", self.host),
            None => format!("{scheme}://{}{path}", self.host),
        }
    }
}

/// `url` without user info or query, for reports.
fn redact(url: &str) -> String {
    ServerUrl::parse(url).map_or_else(
        || url.split('?').next().unwrap_or_default().to_owned(),
        |parts| parts.redacted(),
    )
}

/// Start the proxy in front of `upstream` and return the URL that goes
/// through it instead.
fn through_proxy(
    url: &str,
    upstream: SocketAddr,
    rtt: Duration,
) -> Result<(String, DelayProxy), BenchError> {
    let parts = ServerUrl::parse(url).ok_or_else(|| {
        BenchError::Usage("--rtt: cannot find host:port in the database URL".into())
    })?;
    let proxy = DelayProxy::start(upstream, rtt).map_err(BenchError::Proxy)?;
    let local = proxy.local_addr();
    Ok((format!("{}{local}{}", parts.before, parts.after), proxy))
}

/// The server's socket address, from the URL (default port per backend).
fn server_addr(url: &str, backend: Backend) -> Result<SocketAddr, BenchError> {
    let parts = ServerUrl::parse(url)
        .ok_or_else(|| BenchError::Usage("cannot find host:port in the database URL".into()))?;
    let port = parts.port.unwrap_or(match backend {
        Backend::MySql => 3306,
        _ => 5432,
    });
    let host = parts.host.trim_start_matches('[').trim_end_matches(']');
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| {
            BenchError::Unreachable(format!("cannot resolve database host {host}:{port}"))
        })
}

/// Fail fast when nothing listens at the server's address (the pool would
/// otherwise retry a refused connection for its whole 30 s acquire timeout).
fn probe(addr: SocketAddr, backend: Backend) -> Result<(), BenchError> {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map(drop)
        .map_err(|e| {
            BenchError::Unreachable(format!("could not connect to {backend:?} at {addr}: {e}"))
        })
}

/// Refuse flags that cannot work together, before anything is created.
fn check_usage(backend: Backend, args: &BenchArgs) -> Result<(), BenchError> {
    if backend == Backend::Sqlite && !args.rtt.is_zero() {
        return Err(BenchError::Usage(
            "--rtt needs a database server: SQLite is a local file, with no network to delay"
                .into(),
        ));
    }
    if backend == Backend::Sqlite && !args.replica_urls.is_empty() {
        return Err(BenchError::Usage(
            "--replica-url needs a PostgreSQL or MySQL/MariaDB --database-url: SQLite has no replicas"
                .into(),
        ));
    }
    if !args.rtt.is_zero() && !args.replica_urls.is_empty() {
        return Err(BenchError::Usage(
            "--rtt delays the primary only: it cannot be combined with --replica-url".into(),
        ));
    }
    if args.plot.is_some() && !cfg!(feature = "plot") {
        return Err(BenchError::Usage(
            "--plot needs a build with --features plot".into(),
        ));
    }
    Ok(())
}

/// The measured runs, in order: every workload at every concurrency (its
/// default, when none is given) through every path that has it.
fn plan(
    workloads: &[Workload],
    concurrency: &[usize],
    paths: &[PathKind],
) -> Vec<(Workload, usize, PathKind)> {
    let mut runs = Vec::new();
    for &workload in workloads {
        let default = [workload.default_concurrency()];
        let levels = if concurrency.is_empty() {
            &default[..]
        } else {
            concurrency
        };
        for &tasks in levels {
            for &path in paths.iter().filter(|p| p.supports(workload)) {
                runs.push((workload, tasks, path));
            }
        }
    }
    runs
}

/// The header's account of what will run, at how many tasks, and for how
/// long.
fn describe_plan(runs: &[(Workload, usize, PathKind)], limit: Limit, warmup: Duration) -> String {
    let workloads = dedup(&runs.iter().map(|r| r.0).collect::<Vec<_>>());
    let paths: Vec<&str> = dedup(&runs.iter().map(|r| r.2).collect::<Vec<_>>())
        .into_iter()
        .map(PathKind::name)
        .collect();
    let each = limit.time + warmup;
    let total = each.saturating_mul(u32::try_from(runs.len()).unwrap_or(u32::MAX));
    let run = match limit.ops {
        Some(ops) => format!(
            "{ops} ops (at most {})",
            humantime::format_duration(limit.time)
        ),
        None if limit.at_least > 0 => format!(
            "{} (longer, {} at most, until {} ops have completed)",
            humantime::format_duration(limit.time),
            humantime::format_duration(limit.longest),
            limit.at_least
        ),
        None => humantime::format_duration(limit.time).to_string(),
    };
    format!(
        "{} runs ({} workloads x paths {}; {}), each {run} + {} warm-up: {} {:.0} s",
        runs.len(),
        workloads.len(),
        paths.join("/"),
        describe_tasks(runs, &workloads),
        humantime::format_duration(warmup),
        if limit.ops.is_some() {
            "at most"
        } else {
            "about"
        },
        total.as_secs_f64()
    )
}

/// The concurrency levels of a plan: `tasks 1000`, `tasks 1,100,1000`, or,
/// where workloads differ, `tasks 1000 (save, delete: 100)`.
fn describe_tasks(runs: &[(Workload, usize, PathKind)], workloads: &[Workload]) -> String {
    let levels = |workload: Workload| {
        let levels: Vec<usize> = runs
            .iter()
            .filter(|r| r.0 == workload)
            .map(|r| r.1)
            .collect();
        dedup(&levels)
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for &workload in workloads {
        let levels = levels(workload);
        match groups.iter_mut().find(|(l, _)| *l == levels) {
            Some((_, names)) => names.push(workload.name()),
            None => groups.push((levels, vec![workload.name()])),
        }
    }
    // The levels most workloads share first, without their names.
    groups.sort_by_key(|(_, names)| std::cmp::Reverse(names.len()));
    let Some(((most, _), others)) = groups.split_first() else {
        return "no runs".into();
    };
    let mut text = format!("tasks {most}");
    let others: Vec<String> = others
        .iter()
        .map(|(levels, names)| format!("{}: {levels}", names.join(", ")))
        .collect();
    if !others.is_empty() {
        text.push_str(&format!(" ({})", others.join("; ")));
    }
    text
}

/// Run the bench against `target` (the command line's `--database-url` and
/// timeouts) with these flags: print the tables to stdout, and write JSON
/// and the chart where asked. The database is left holding what it held
/// before, plus the seeded data if it was missing.
pub async fn run(target: &super::db::Target, args: BenchArgs) -> Result<(), BenchError> {
    let url = target.url.clone();
    let backend = Backend::from_url(&url)?;
    check_usage(backend, &args)?;
    // Where each run's batches spend their time; an application that set
    // its own subscriber first gets no breakdown, nothing else changes.
    phases::install();
    if url == super::DEFAULT_DATABASE_URL {
        std::fs::create_dir_all("target").map_err(|e| BenchError::Write {
            file: "target/".into(),
            message: e.to_string(),
        })?;
    }
    let workloads = if args.workload.is_empty() {
        Workload::DEFAULT.to_vec()
    } else {
        dedup(&args.workload)
    };
    let requested = if args.paths.is_empty() {
        PathKind::ALL.to_vec()
    } else {
        dedup(&args.paths)
    };
    let peers_missing = requested.iter().any(|p| !p.available());
    let paths: Vec<PathKind> = requested.into_iter().filter(|p| p.available()).collect();
    if paths.is_empty() {
        return Err(BenchError::Usage("no path to run in this build".into()));
    }
    let limit = match (args.ops, args.duration) {
        (None, None) => Limit::at_least(DEFAULT_RUN_TIME, DEFAULT_AT_LEAST, DEFAULT_LONGEST_RUN),
        (None, Some(time)) => Limit::time(time),
        (Some(ops), time) => Limit {
            ops: Some(ops),
            ..Limit::time(time.unwrap_or(DEFAULT_OPS_RUN_CAP))
        },
    };
    let runs = plan(&workloads, &args.concurrency, &paths);
    if runs.is_empty() {
        return Err(BenchError::Usage(
            "none of these paths has any of these workloads".into(),
        ));
    }
    let redacted = redact(&url);

    let upstream = match backend {
        Backend::Sqlite => None,
        _ => {
            let addr = server_addr(&url, backend)?;
            probe(addr, backend)?;
            Some(addr)
        }
    };
    let (connect_url, _proxy) = match upstream {
        Some(upstream) if !args.rtt.is_zero() => {
            let (proxied, proxy) = through_proxy(&url, upstream, args.rtt)?;
            (proxied, Some(proxy))
        }
        _ => (url.clone(), None),
    };
    for replica in &args.replica_urls {
        let replica_backend = Backend::from_url(replica)?;
        probe(server_addr(replica, replica_backend)?, replica_backend)?;
    }
    let db = if args.replica_urls.is_empty() {
        Database::connect_with(&connect_url, &target.options(args.pool_size)).await?
    } else {
        let replicas: Vec<&str> = args.replica_urls.iter().map(String::as_str).collect();
        let options = target.options(args.pool_size);
        let settings = ReplicaSettings {
            pool_size: args.pool_size,
            ..ReplicaSettings::default()
        };
        Database::connect_replicated(&connect_url, &replicas, &options, settings).await?
    };
    db.migrate().await?;

    let mode = Mode::detect();
    let style = Style::detect();
    let spec = SeedSpec {
        seed: args.seed,
        users: args.users,
        memories_per_user: args.memories_per_user,
    };
    let mut meter = Meter::new(mode, "seeding".into(), u64::from(spec.users), "users");
    let mut users_done = 0;
    let seeded = seed::seed(&db, &spec, |n| {
        users_done += n;
        meter.set(users_done);
    })
    .await;
    meter.finish();
    match seeded? {
        Seeded::AlreadySeeded(holds) => {
            eprintln!("data already seeded ({})", holds.marker());
        }
        Seeded::Written { holds, users, took } => eprintln!(
            "seeded {users} users in {:.1} s (first run only; the database holds {})",
            took.as_secs_f64(),
            holds.marker()
        ),
    }
    let leftover = seed::remove_written(&db).await?;
    if leftover > 0 {
        eprintln!("removed {leftover} memories an earlier run wrote and left behind");
    }
    if peers_missing {
        eprintln!(
            "note: the peer paths (dataloader, async-graphql) need a build with --features peers"
        );
    }
    // Open every connection of the pool before measuring.
    let warm = (0..args.pool_size * 2).map(|_| db.profile_direct(seed::MARKER_USER));
    drop(futures::future::join_all(warm).await);

    let shape = Shape {
        spec,
        bulk_size: args.bulk_size,
        max_batch_size: args.max_batch_size,
    };
    let worker_threads = std::thread::available_parallelism().map_or(1, usize::from);
    let meta = Meta {
        version: env!("CARGO_PKG_VERSION"),
        started_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        backend: format!("{backend:?}"),
        database: redacted,
        rtt_ms: args.rtt.as_secs_f64() * 1_000.0,
        pool_size: args.pool_size,
        users: spec.users,
        memories_per_user: spec.memories_per_user,
        seed: spec.seed,
        bulk_size: args.bulk_size,
        max_batch_size: args.max_batch_size,
        limit: match limit.ops {
            Some(ops) => format!(
                "ops {ops}, at most {}",
                humantime::format_duration(limit.time)
            ),
            None if limit.at_least > 0 => format!(
                "duration {}, longer ({} at most) until {} ops have completed",
                humantime::format_duration(limit.time),
                humantime::format_duration(limit.longest),
                limit.at_least
            ),
            None => format!("duration {}", humantime::format_duration(limit.time)),
        },
        at_least_ops: limit.at_least,
        warmup_ms: args.warmup.as_secs_f64() * 1_000.0,
        worker_threads,
        peers: cfg!(feature = "peers"),
    };
    println!(
        "coalesce bench: {} ({}), pool {}, rtt {}, {} users x {} memories\nplan: {}\n",
        meta.database,
        meta.backend,
        meta.pool_size,
        humantime::format_duration(args.rtt),
        spec.users,
        spec.memories_per_user,
        describe_plan(&runs, limit, args.warmup)
    );

    let mut rows: Vec<Row> = Vec::new();
    for (index, &(workload, concurrency, path)) in runs.iter().enumerate() {
        let label = format!(
            "[{}/{}] {} {} x{concurrency}",
            index + 1,
            runs.len(),
            workload.name(),
            path.name()
        );
        let row = measure(
            &db,
            shape,
            (workload, path, concurrency),
            limit,
            &args,
            mode,
            &label,
        )
        .await?;
        mode.step_done(&format!("{label}: {}", row.summary()));
        rows.push(row);
        let last_of_workload = runs.get(index + 1).is_none_or(|next| next.0 != workload);
        if last_of_workload {
            let of_workload = rows
                .iter()
                .filter(|r| r.workload == workload)
                .cloned()
                .collect();
            let report = Report::new(meta.clone(), of_workload);
            print!("{}", report.workload_tables(args.bulk_size, style));
        }
    }
    let written = seed::remove_written(&db).await?;
    eprintln!("restored the seeded data: removed the {written} memories the run wrote");
    let report = Report::new(meta, rows);
    print!("{}", report.spec_tables(style));
    if let Some(stats) = db.server_stats() {
        let replicas: Vec<String> = args.replica_urls.iter().map(|url| redact(url)).collect();
        print!("{}", servers::statements_per_server(&stats, &replicas));
    }

    if let Some(file) = &args.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| BenchError::Write {
            file: file.display().to_string(),
            message: e.to_string(),
        })?;
        std::fs::write(file, json + "\n").map_err(|e| BenchError::Write {
            file: file.display().to_string(),
            message: e.to_string(),
        })?;
    }
    #[cfg(feature = "plot")]
    if let Some(file) = &args.plot {
        plot::throughput_svg(file, &report, workloads[0])?;
    }
    Ok(())
}

/// What runs a path's operations.
enum Driver {
    /// Concurrent tasks, each doing one operation after another.
    Tasks(Arc<Target>),
    /// The batched ceiling's workers.
    Ceiling,
}

impl Driver {
    fn build(path: PathKind, db: &Database, shape: Shape) -> Result<Self, BenchError> {
        if path == PathKind::Ceiling {
            return Ok(Self::Ceiling);
        }
        match Target::build(path, db, shape)? {
            Some(target) => Ok(Self::Tasks(Arc::new(target))),
            None => Err(BenchError::Usage(format!(
                "path {} is not in this build",
                path.name()
            ))),
        }
    }

    /// One run of `workload` until `limit`.
    #[allow(clippy::too_many_arguments)]
    async fn drive(
        &self,
        db: &Database,
        shape: Shape,
        workload: Workload,
        concurrency: usize,
        limit: Limit,
        seed: u64,
        meter: &mut Meter,
    ) -> workload::Outcome {
        match self {
            Self::Tasks(target) => {
                workload::drive(
                    Arc::clone(target),
                    workload,
                    concurrency,
                    limit,
                    seed,
                    meter,
                )
                .await
            }
            Self::Ceiling => ceiling::drive(db, shape, workload, limit, seed, meter).await,
        }
    }

    fn engine_stats(&self) -> Option<paths::EngineStats> {
        match self {
            Self::Tasks(target) => target.engine_stats(),
            Self::Ceiling => None,
        }
    }
}

/// Warm up, then measure one workload through one path at one concurrency.
async fn measure(
    db: &Database,
    shape: Shape,
    (workload, path, concurrency): (Workload, PathKind, usize),
    limit: Limit,
    args: &BenchArgs,
    mode: Mode,
    label: &str,
) -> Result<Row, BenchError> {
    let driver = Driver::build(path, db, shape)?;
    if !args.warmup.is_zero() {
        let seed = args.seed ^ 0x5741_524d;
        let mut meter = match mode {
            Mode::Bar => Meter::new(mode, format!("{label} warm-up"), millis(args.warmup), "ms"),
            Mode::Lines => Meter::silent(),
        };
        let warm = Limit::time(args.warmup);
        driver
            .drive(db, shape, workload, concurrency, warm, seed, &mut meter)
            .await;
        meter.finish();
    }
    let mut meter = match limit.ops {
        Some(ops) => Meter::new(mode, label.to_owned(), ops, "operations"),
        None => Meter::new(mode, label.to_owned(), millis(limit.time), "ms"),
    };
    let engine_before = driver.engine_stats();
    let statements_before = db.statements();
    let phases_before = phases::Reading::now();
    let outcome = driver
        .drive(
            db,
            shape,
            workload,
            concurrency,
            limit,
            args.seed,
            &mut meter,
        )
        .await;
    let statements = db.statements() - statements_before;
    let phases = phases::Reading::now().since(&phases_before);
    meter.finish();
    let engine = match (driver.engine_stats(), engine_before) {
        (Some(after), Some(before)) => Some(after.since(&before)),
        _ => None,
    };
    let mut row = Row::new(
        workload,
        path,
        concurrency,
        &outcome,
        limit,
        statements,
        engine,
    );
    row.phases = phases;
    Ok(row)
}

/// Whole milliseconds of `d`, for a meter.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The items in first-seen order, without repeats.
fn dedup<T: PartialEq + Copy>(items: &[T]) -> Vec<T> {
    let mut out = Vec::new();
    for item in items {
        if !out.contains(item) {
            out.push(*item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_split_around_host_and_port() {
        let url = "postgres://user:p%40ss@db.example:6543/app?sslmode=disable";
        let parts = ServerUrl::parse(url).unwrap();
        assert_eq!(parts.before, "postgres://user:p%40ss@");
        assert_eq!((parts.host, parts.port), ("db.example", Some(6543)));
        assert_eq!(parts.after, "/app?sslmode=disable");
        assert_eq!(parts.redacted(), "postgres://db.example:6543/app");

        let parts = ServerUrl::parse("mysql://root@[::1]/test").unwrap();
        assert_eq!((parts.host, parts.port), ("[::1]", None));
        let parts = ServerUrl::parse("postgres://127.0.0.1:5432").unwrap();
        assert_eq!(
            (parts.host, parts.port, parts.after),
            ("127.0.0.1", Some(5432), "")
        );
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1ms"), Ok(Duration::from_millis(1)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("25h").is_err());
        assert_eq!(
            parse_run_time("0"),
            Err("a run needs some time (try 1s, 500ms)".into())
        );
    }
}
