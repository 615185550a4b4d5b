//! `coalesce bench`: synthetic concurrent load against a real database,
//! through the naive, `coalesce` and (with `--features peers`) peer paths.
//!
//! One run: open the database (an embedded SQLite file by default, or a
//! server; optionally through a loopback proxy that adds a round-trip
//! time), migrate, seed deterministic data once, then run every workload at
//! every concurrency through every path, one after another on the same data
//! and pool, and print a table per workload (Markdown), the specification's
//! tables, and optionally JSON and an SVG chart.

mod paths;
#[cfg(feature = "peers")]
mod peers;
#[cfg(feature = "plot")]
mod plot;
mod proxy;
mod report;
pub(super) mod seed;
mod workload;

use coalesce_store::StoreError;
use coalesce_store::db::{Backend, ConnectError, Database};
use indicatif::{ProgressBar, ProgressStyle};
use paths::{PathKind, Shape, Target};
use proxy::DelayProxy;
use report::{Meta, Report, Row};
use seed::{SeedError, SeedSpec, Seeded};
use std::{
    io::IsTerminal,
    net::{SocketAddr, ToSocketAddrs},
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};
use workload::{Limit, Workload};

/// The database used when the command line's database URL is its default
/// (a file of its own, so the bench never seeds the application's database).
pub const DEFAULT_DATABASE_URL: &str = "sqlite://target/coalesce-bench.db";

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

    /// Concurrent tasks; a comma-separated list sweeps (e.g. 1,100,1000).
    #[arg(long, value_delimiter = ',', default_value = "1000", value_parser = parse_concurrency)]
    pub concurrency: Vec<usize>,

    /// How long each workload runs through each path [default: 2s].
    #[arg(long, value_parser = parse_duration, conflicts_with = "ops")]
    pub duration: Option<Duration>,

    /// Operations per workload and path, instead of --duration.
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
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
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

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text).map_err(|e| format!("{e} (try 1ms, 500us, 2s)"))
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

fn progress_bar(len: u64, message: String) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template("{msg:40} [{bar:30}] {percent:>3}% {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(message);
    bar
}

/// Run the bench against `url` (the command line's `--database-url`) with these flags: print the tables to stdout, and write
/// JSON and the chart where asked.
pub async fn run(url: &str, args: BenchArgs) -> Result<(), BenchError> {
    let url = url.to_owned();
    if url == DEFAULT_DATABASE_URL {
        std::fs::create_dir_all("target").map_err(|e| BenchError::Write {
            file: "target/".into(),
            message: e.to_string(),
        })?;
    }
    let backend = Backend::from_url(&url)?;
    if backend == Backend::Sqlite && !args.rtt.is_zero() {
        return Err(BenchError::Usage(
            "--rtt needs a database server: SQLite is a local file, with no network to delay"
                .into(),
        ));
    }
    if args.plot.is_some() && !cfg!(feature = "plot") {
        return Err(BenchError::Usage(
            "--plot needs a build with --features plot".into(),
        ));
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
        (Some(ops), _) => Limit::Ops(ops),
        (None, Some(duration)) => Limit::Time(duration),
        (None, None) => Limit::Time(Duration::from_secs(2)),
    };
    let redacted = ServerUrl::parse(&url).map_or_else(
        || url.split('?').next().unwrap_or_default().to_owned(),
        |parts| parts.redacted(),
    );

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
    let db = Database::connect(&connect_url, args.pool_size).await?;
    db.migrate().await?;

    let spec = SeedSpec {
        seed: args.seed,
        users: args.users,
        memories_per_user: args.memories_per_user,
    };
    let bar = progress_bar(u64::from(spec.users), "seeding".into());
    let seeded = seed::seed(&db, &spec, |n| bar.inc(n)).await;
    bar.finish_and_clear();
    match seeded? {
        Seeded::AlreadySeeded => {
            eprintln!("data already seeded ({})", spec.marker());
        }
        Seeded::Written(took) => eprintln!(
            "seeded {} users, {} memories in {:.1} s",
            spec.users,
            spec.total_memories(),
            took.as_secs_f64()
        ),
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
        limit: match limit {
            Limit::Ops(ops) => format!("ops {ops}"),
            Limit::Time(d) => format!("duration {}", humantime::format_duration(d)),
        },
        warmup_ms: args.warmup.as_secs_f64() * 1_000.0,
        worker_threads,
        peers: cfg!(feature = "peers"),
    };
    println!(
        "coalesce bench: {} ({}), pool {}, rtt {}, {} users x {} memories, {} per run\n",
        meta.database,
        meta.backend,
        meta.pool_size,
        humantime::format_duration(args.rtt),
        spec.users,
        spec.memories_per_user,
        meta.limit
    );

    let mut rows = Vec::new();
    for &workload in &workloads {
        let mut workload_rows = Vec::new();
        for &concurrency in &args.concurrency {
            for &path in &paths {
                if !path.supports(workload) {
                    continue;
                }
                let row = measure(&db, shape, workload, path, concurrency, limit, &args).await?;
                workload_rows.push(row);
            }
        }
        let partial = Report::new(meta.clone(), workload_rows.clone());
        print!("{}", partial.workload_tables(args.bulk_size));
        rows.extend(workload_rows);
    }
    let report = Report::new(meta, rows);
    print!("{}", report.spec_tables());

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

/// Warm up, then measure one workload through one path.
async fn measure(
    db: &Database,
    shape: Shape,
    workload: Workload,
    path: PathKind,
    concurrency: usize,
    limit: Limit,
    args: &BenchArgs,
) -> Result<Row, BenchError> {
    let Some(target) = Target::build(path, db, shape)? else {
        return Err(BenchError::Usage(format!(
            "path {} is not in this build",
            path.name()
        )));
    };
    let target = Arc::new(target);
    let label = format!("{} {} x{}", workload.name(), path.name(), concurrency);
    let hidden = ProgressBar::hidden();
    if !args.warmup.is_zero() {
        let warm = Limit::Time(args.warmup);
        let seed = args.seed ^ 0x5741_524d;
        workload::drive(
            Arc::clone(&target),
            workload,
            concurrency,
            warm,
            seed,
            &hidden,
        )
        .await;
    }
    let len = match limit {
        Limit::Ops(ops) => ops,
        Limit::Time(d) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
    };
    let bar = progress_bar(len, label);
    let engine_before = target.engine_stats();
    let statements_before = db.statements();
    let outcome = workload::drive(
        Arc::clone(&target),
        workload,
        concurrency,
        limit,
        args.seed,
        &bar,
    )
    .await;
    let statements = db.statements() - statements_before;
    bar.finish_and_clear();
    let engine = match (target.engine_stats(), engine_before) {
        (Some(after), Some(before)) => Some(after.since(&before)),
        _ => None,
    };
    Ok(Row::new(
        workload,
        path,
        concurrency,
        &outcome,
        statements,
        engine,
    ))
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
    }
}
