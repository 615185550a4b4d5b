//! `coalesce bench`: the round-trip proxy delays, seeding is deterministic,
//! a tiny run on SQLite succeeds with sane figures, and bad flags fail with
//! one line. No timing upper bounds: the machine may be busy.

#[path = "../crates/store/tests/common/mod.rs"]
mod common;

#[allow(dead_code)]
#[path = "../src/cli/bench/proxy.rs"]
mod proxy;

#[allow(dead_code)]
#[path = "../src/cli/bench/seed.rs"]
mod seed;

use coalesce_store::db::Database;
use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

static FILES: AtomicU32 = AtomicU32::new(0);

/// The runs against the PostgreSQL test server take turns: they seed and
/// clean up the same users' rows, and one's clean-up deadlocked with
/// another's writes when they overlapped.
static POSTGRES_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A fresh SQLite URL under the target directory, and its file.
fn sqlite_url(name: &str) -> (String, PathBuf) {
    let n = FILES.fetch_add(1, Ordering::Relaxed);
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-cli-{name}-{}-{n}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        drop(std::fs::remove_file(format!("{}{suffix}", file.display())));
    }
    (format!("sqlite://{}", file.display()), file)
}

fn remove(file: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        drop(std::fs::remove_file(format!("{}{suffix}", file.display())));
    }
}

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_coalesce"))
        .arg("bench")
        .args(args)
        .output()
        .expect("run coalesce")
}

#[test]
fn proxy_adds_the_round_trip_time() {
    let echo = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = echo.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in echo.incoming() {
            let mut stream = stream.unwrap();
            std::thread::spawn(move || {
                let mut buffer = [0; 64];
                while let Ok(n @ 1..) = stream.read(&mut buffer) {
                    if stream.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let rtt = Duration::from_millis(40);
    let proxy = proxy::DelayProxy::start(upstream, rtt).unwrap();
    let mut client = TcpStream::connect(proxy.local_addr()).unwrap();
    client.set_nodelay(true).unwrap();
    for round in 0..3 {
        let began = Instant::now();
        client.write_all(b"ping").unwrap();
        let mut reply = [0; 4];
        client.read_exact(&mut reply).unwrap();
        let took = began.elapsed();
        assert_eq!(&reply, b"ping");
        assert!(
            took >= rtt,
            "round {round} took {took:?}, less than {rtt:?}"
        );
    }
}

#[test]
fn generated_data_is_deterministic() {
    let spec = seed::SeedSpec {
        seed: 7,
        users: 100,
        memories_per_user: 20,
    };
    assert_eq!(spec.profile(3), spec.profile(3));
    assert_eq!(spec.onboarding(3), spec.onboarding(3));
    let a: Vec<_> = spec.memories(42).collect();
    let b: Vec<_> = spec.memories(42).collect();
    assert_eq!(a, b);
    assert_eq!(a.len(), 20);
    let other = seed::SeedSpec { seed: 8, ..spec };
    assert_ne!(spec.profile(3), other.profile(3));
    let mut x = seed::Rng::for_item(&[1, 2]);
    let mut y = seed::Rng::for_item(&[1, 2]);
    assert!((0..100).all(|_| x.next_u64() == y.next_u64()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_writes_the_same_rows_once() {
    let spec = seed::SeedSpec {
        seed: 11,
        users: 30,
        memories_per_user: 12,
    };
    let mut tables = Vec::new();
    let mut files = Vec::new();
    for _ in 0..2 {
        let (url, file) = sqlite_url("seed");
        let db = Database::connect(&url, 2).await.unwrap();
        db.migrate().await.unwrap();
        let first = seed::seed(&db, &spec, |_| {}).await.unwrap();
        assert!(matches!(first, seed::Seeded::Written { users: 30, .. }));
        assert_eq!(
            seed::seed(&db, &spec, |_| {}).await.unwrap(),
            seed::Seeded::AlreadySeeded(spec)
        );
        let user = seed::user_id(29);
        assert_eq!(db.count_memories(&user).await.unwrap(), 12);
        let mut rows = db.memories(&user, None, None, None).await.unwrap();
        rows.sort_by(|a, b| a.key.cmp(&b.key));
        tables.push((db.profile_direct(&user).await.unwrap(), rows));
        files.push(file);
    }
    assert_eq!(tables[0], tables[1], "two seedings wrote different rows");
    assert_eq!(tables[0].0, Some(spec.profile(29)));
    files.iter().for_each(|f| remove(f));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeding_covered_by_the_data_writes_nothing_and_a_larger_one_only_the_missing_users() {
    let (url, file) = sqlite_url("grow");
    let db = Database::connect(&url, 2).await.unwrap();
    db.migrate().await.unwrap();
    let spec = |users| seed::SeedSpec {
        seed: 5,
        users,
        memories_per_user: 10,
    };
    seed::seed(&db, &spec(30), |_| {}).await.unwrap();
    assert_eq!(
        seed::seed(&db, &spec(10), |_| {}).await.unwrap(),
        seed::Seeded::AlreadySeeded(spec(30)),
        "fewer users of the same data must not write again"
    );
    let grown = seed::seed(&db, &spec(40), |_| {}).await.unwrap();
    assert!(
        matches!(grown, seed::Seeded::Written { users: 10, holds, .. } if holds == spec(40)),
        "{grown:?}"
    );
    for user in [0, 29, 39] {
        let id = seed::user_id(user);
        assert_eq!(db.count_memories(&id).await.unwrap(), 10, "{id}");
        assert_eq!(
            db.profile_direct(&id).await.unwrap(),
            Some(spec(40).profile(user))
        );
    }
    let other_seed = seed::SeedSpec {
        seed: 6,
        ..spec(10)
    };
    assert!(matches!(
        seed::seed(&db, &other_seed, |_| {}).await.unwrap(),
        seed::Seeded::Written { users: 10, .. }
    ));
    remove(&file);
}

/// Every memory of the first `users` seeded users: (user, key, value).
async fn all_memories(db: &Database, users: u32) -> Vec<(String, String, String)> {
    let mut rows = Vec::new();
    for user in 0..users {
        let id = seed::user_id(user);
        for m in db.memories(&id, None, None, None).await.unwrap() {
            rows.push((id.clone(), m.key, m.value));
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_leaves_the_data_as_it_found_it() {
    let (url, file) = sqlite_url("restore");
    let args = [
        "--database-url",
        &url,
        "--users",
        "20",
        "--memories-per-user",
        "10",
        "--concurrency",
        "4",
        "--ops",
        "100",
        "--warmup",
        "0",
        "--workload",
        "save,mixed,bulk-save",
        "--bulk-size",
        "60",
    ];
    let first = bench(&args);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let db = Database::connect(&url, 2).await.unwrap();
    let before = all_memories(&db, 20).await;
    assert_eq!(before.len(), 20 * 10, "the seeded rows only");
    let second = bench(&args);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(stderr.contains("restored the seeded data"), "{stderr}");
    assert_eq!(
        all_memories(&db, 20).await,
        before,
        "the run changed the data"
    );
    remove(&file);
}

#[test]
fn a_run_that_runs_out_of_time_says_how_many_operations_completed() {
    let (url, file) = sqlite_url("cut");
    let json = file.with_extension("json");
    let output = bench(&[
        "--database-url",
        &url,
        "--users",
        "20",
        "--memories-per-user",
        "10",
        "--concurrency",
        "2",
        "--ops",
        "1000000000",
        "--duration",
        "1s",
        "--warmup",
        "0",
        "--workload",
        "profile",
        "--paths",
        "naive",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let row = &report["results"][0];
    assert_eq!(row["cut_short"], true, "{row}");
    let ops = row["ops"].as_u64().unwrap();
    assert!(ops > 0 && ops < 1_000_000_000, "{row}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("cut short"), "{stdout}");
    // Not a terminal: progress comes as plain lines, one per finished run.
    assert!(stderr.contains("[1/1] profile naive x2: "), "{stderr}");
    remove(&file);
    drop(std::fs::remove_file(json));
}

/// A path slower than the run: through a 300 ms round trip, no operation
/// of a 100 ms run can finish, and the run must end anyway, with every
/// task's operation counted as dropped (PostgreSQL; fails under `CI`
/// when the server is unreachable, skips loudly otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_ends_at_its_time_however_slow_the_path() {
    if common::store(common::Target::Postgres).await.is_none() {
        return;
    }
    let _turn = POSTGRES_TURN.lock().await;
    let url = common::url(common::Target::Postgres);
    let json = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("slow-{}.json", std::process::id()));
    let output = tokio::task::spawn_blocking({
        let json = json.clone();
        move || {
            bench(&[
                "--database-url",
                &url,
                "--users",
                "20",
                "--concurrency",
                "3",
                "--duration",
                "100ms",
                "--warmup",
                "0",
                "--rtt",
                "300ms",
                "--workload",
                "profile",
                "--paths",
                "naive",
                "--json",
                json.to_str().unwrap(),
            ])
        }
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let row = &report["results"][0];
    assert_eq!(row["ops"], 0, "{row}");
    assert_eq!(row["dropped"], 3, "{row}");
    assert!(row["latency_us"].is_null(), "{row}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("no operation completed"), "{stdout}");
    drop(std::fs::remove_file(json));
}

/// The default run's write workloads (save, delete: the rows that once
/// read "no operation completed"): at their default concurrency and run
/// time, every row of the table carries measured figures. A run that has
/// not completed 100 operations at its time goes on until it has, so this
/// holds on a slow machine too.
#[test]
fn a_default_run_of_the_write_workloads_has_a_figure_in_every_row() {
    let (url, file) = sqlite_url("figures");
    let json = file.with_extension("json");
    let output = bench(&[
        "--database-url",
        &url,
        "--users",
        "200",
        "--memories-per-user",
        "10",
        "--warmup",
        "0",
        "--workload",
        "save,delete",
        "--paths",
        "naive,coalesce",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("no operation completed"), "{stdout}");
    assert!(stdout.contains("tasks 100"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 4, "{results:?}");
    for row in results {
        assert_eq!(row["concurrency"], 100, "{row}");
        assert!(row["ops"].as_u64().unwrap() >= 100, "{row}");
        for field in [
            "ops_per_sec",
            "queries_per_1000_ops",
            "throughput_vs_naive",
            "queries_fewer_than_naive",
        ] {
            assert!(
                row[field].as_f64().is_some_and(|x| x > 0.0),
                "{field} in {row}"
            );
        }
        for field in ["p50", "p95", "p99"] {
            assert!(row["latency_us"][field].as_f64().unwrap() > 0.0, "{row}");
        }
    }
    // The closing tables: a row per operation, at the tasks it ran with,
    // labelled by path.
    let latency = report["latency_per_operation"].as_array().unwrap();
    assert_eq!(latency.len(), 2, "{latency:?}");
    assert!(
        latency.iter().all(|r| r["concurrency"] == 100),
        "{latency:?}"
    );
    assert!(
        stdout.contains("| Operation | tasks | naive | coalesce | Speedup |"),
        "{stdout}"
    );
    assert!(!stdout.contains("sequential"), "{stdout}");
    remove(&file);
    drop(std::fs::remove_file(json));
}

/// A default-length run of a path slower than it (a 200 ms round trip, 8
/// tasks: at most 40 operations in its second) goes on past its time until
/// it has completed 100 operations, and says so (PostgreSQL; fails under
/// `CI` when the server is unreachable, skips loudly otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_run_goes_on_until_it_has_figures() {
    if common::store(common::Target::Postgres).await.is_none() {
        return;
    }
    let _turn = POSTGRES_TURN.lock().await;
    let url = common::url(common::Target::Postgres);
    let json = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("extended-{}.json", std::process::id()));
    let output = tokio::task::spawn_blocking({
        let json = json.clone();
        move || {
            bench(&[
                "--database-url",
                &url,
                "--users",
                "20",
                "--concurrency",
                "8",
                "--warmup",
                "0",
                "--rtt",
                "200ms",
                "--workload",
                "profile",
                "--paths",
                "naive",
                "--json",
                json.to_str().unwrap(),
            ])
        }
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let row = &report["results"][0];
    assert_eq!(row["extended"], true, "{row}");
    assert!(row["elapsed_s"].as_f64().unwrap() > 1.0, "{row}");
    assert!(row["ops"].as_u64().unwrap() > 40, "{row}");
    assert!(row["latency_us"]["p99"].as_f64().unwrap() > 0.0, "{row}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout
            .contains("naive at 8 tasks: went on past its time until 100 operations had completed"),
        "{stdout}"
    );
    drop(std::fs::remove_file(json));
}

#[test]
fn rtt_on_sqlite_is_a_usage_error_that_creates_nothing() {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("rtt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_coalesce"))
        .args(["bench", "--rtt", "1ms"])
        .env_remove("DATABASE_URL")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("SQLite"));
    assert!(
        !dir.join("target").exists(),
        "created target/ before refusing"
    );
    drop(std::fs::remove_dir_all(dir));
}

#[test]
fn a_tiny_run_on_sqlite_reports_fewer_queries_for_coalesce() {
    let (url, file) = sqlite_url("run");
    let json = file.with_extension("json");
    let output = bench(&[
        "--database-url",
        &url,
        "--users",
        "40",
        "--memories-per-user",
        "10",
        "--concurrency",
        "1,16",
        "--ops",
        "200",
        "--warmup",
        "0",
        "--workload",
        "profile,save",
        "--paths",
        "naive,coalesce,ceiling",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("| tasks | path | ops/s |"), "{stdout}");
    assert!(stdout.contains("Query reduction"), "{stdout}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["meta"]["backend"], "Sqlite");
    let results = report["results"].as_array().unwrap();
    // profile: naive, coalesce, ceiling; save: naive, coalesce (no ceiling); at 1 and 16 tasks.
    assert_eq!(results.len(), (3 + 2) * 2, "{results:?}");
    let find = |workload: &str, path: &str, tasks: u64| {
        results
            .iter()
            .find(|r| r["workload"] == workload && r["path"] == path && r["concurrency"] == tasks)
            .unwrap_or_else(|| panic!("no row {workload} {path} {tasks}"))
    };
    for row in results {
        assert_eq!(row["cut_short"], false, "{row}");
        for field in ["ops_per_sec", "queries_per_1000_ops", "elapsed_s"] {
            assert!(row[field].as_f64().unwrap() > 0.0, "{field} in {row}");
        }
        for field in ["p50", "p95", "p99"] {
            assert!(row["latency_us"][field].as_f64().unwrap() > 0.0, "{row}");
        }
        assert_eq!(row["ops"], 200, "{row}");
        assert_eq!(row["errors"], 0, "{row}");
    }
    let q = |r: &serde_json::Value| r["queries_per_1000_ops"].as_f64().unwrap();
    // Naive: one statement per profile, twenty per save of twenty.
    assert_eq!(q(find("profile", "naive", 16)), 1000.0);
    assert_eq!(q(find("save", "naive", 1)), 20_000.0);
    // Coalesce: one statement per save of twenty; at most one per profile.
    assert_eq!(q(find("save", "coalesce", 1)), 1000.0);
    assert!(q(find("profile", "coalesce", 16)) <= 1000.0);
    assert!(
        find("profile", "coalesce", 16)["engine"]["batches"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(find("profile", "naive", 1)["engine"].is_null());
    // Where the coalesced batches spent their time: the run's batches (the
    // last one's span may close just after the run's reading), and a fetch
    // that took time; no batches, no phases, on the other paths.
    let phases = &find("profile", "coalesce", 16)["phases"];
    let batches = find("profile", "coalesce", 16)["engine"]["batches"].as_u64();
    let timed = phases["batches"].as_u64().unwrap();
    assert!(timed > 0 && Some(timed) <= batches, "{phases}");
    assert!(phases["fetch_us"].as_f64().unwrap() > 0.0, "{phases}");
    assert!(find("profile", "naive", 16)["phases"].is_null());
    assert!(find("profile", "ceiling", 16)["phases"].is_null());
    assert!(stdout.contains("Where a batch's time goes"), "{stdout}");
    // The ceiling: full batches of the default 100 keys, so 10 statements per 1,000 loads.
    assert_eq!(q(find("profile", "ceiling", 1)), 10.0);
    assert_eq!(q(find("profile", "ceiling", 16)), 10.0);
    assert!(
        find("profile", "coalesce", 16)["throughput_vs_ceiling"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(find("save", "coalesce", 16)["throughput_vs_ceiling"].is_null());
    assert!(stdout.contains("vs ceiling"), "{stdout}");
    assert_eq!(find("save", "naive", 1)["throughput_vs_naive"], 1.0);
    let reduction = report["query_reduction"].as_array().unwrap();
    assert_eq!(reduction[0]["operation"], "Save 20 memories");
    assert_eq!(reduction[0]["improvement"], 20.0);
    assert!(report["latency_per_operation"].as_array().unwrap().len() == 1);

    // A second run finds the data seeded.
    let again = bench(&[
        "--database-url",
        &url,
        "--users",
        "40",
        "--memories-per-user",
        "10",
        "--concurrency",
        "2",
        "--ops",
        "20",
        "--workload",
        "memory",
    ]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already seeded"));
    remove(&file);
    drop(std::fs::remove_file(json));
}

/// Assert a failed run with exactly one line on stderr, containing `needle`.
fn fails_with_one_line(args: &[&str], needle: &str) {
    let output = bench(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{args:?} succeeded");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{args:?} printed {stderr:?}");
    assert!(lines[0].contains(needle), "{args:?}: {stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_flags_fail_with_one_line() {
    fails_with_one_line(&["--concurrency", "0"], "--concurrency");
    fails_with_one_line(&["--rtt", "soon"], "--rtt");
    fails_with_one_line(&["--no-such-flag"], "--no-such-flag");
    fails_with_one_line(&["--duration", "0s"], "--duration");
    fails_with_one_line(&["--workload", "everything"], "everything");
    fails_with_one_line(&["--database-url", "mssql://localhost/db"], "unsupported");
    let (url, file) = sqlite_url("rtt");
    fails_with_one_line(&["--database-url", &url, "--rtt", "1ms"], "SQLite");
    remove(&file);
}

#[test]
fn an_unreachable_server_fails_with_one_line() {
    // Port 1 on loopback: nothing listens there.
    fails_with_one_line(
        &["--database-url", "postgres://postgres@127.0.0.1:1/test"],
        "could not connect",
    );
}

#[test]
fn replica_url_on_sqlite_is_a_usage_error() {
    let (url, file) = sqlite_url("replica");
    let output = bench(&[
        "--database-url",
        &url,
        "--replica-url",
        "postgres://postgres@127.0.0.1:55433/test",
    ]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("SQLite has no replicas"));
    remove(&file);
}

/// The bench on the project's PostgreSQL pair (`scripts/replicas.sh
/// start`) reads from the replica and says so; fails in CI if the pair is
/// down, skips loudly otherwise.
#[test]
fn replica_url_reports_statements_per_server() {
    let primary = std::env::var("COALESCE_PG_PRIMARY_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432/test".to_owned());
    let replica = std::env::var("COALESCE_PG_REPLICA_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55433/test".to_owned());
    for url in [&primary, &replica] {
        let host = url
            .rsplit('@')
            .next()
            .and_then(|rest| rest.split('/').next());
        let reachable = host
            .and_then(|host| host.parse().ok())
            .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_ok());
        if !reachable {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL replica pair unreachable in CI at {url}"
            );
            eprintln!(
                "SKIPPED: PostgreSQL replica pair unreachable at {url}; set CI=1 to fail instead"
            );
            return;
        }
    }
    let output = bench(&[
        "--database-url",
        &primary,
        "--replica-url",
        &replica,
        "--workload",
        "profile",
        "--paths",
        "coalesce",
        "--concurrency",
        "10",
        "--users",
        "50",
        "--duration",
        "200ms",
        "--warmup",
        "0",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    let row = stdout
        .lines()
        .find(|line| line.starts_with("| replica 0 |"))
        .unwrap_or_else(|| panic!("no replica row: {stdout}"));
    let reads: u64 = row.split('|').nth(2).unwrap().trim().parse().unwrap();
    assert!(reads > 0, "the replica served no read: {stdout}");
    assert!(
        stdout.contains("replica 0: postgres://127.0.0.1:"),
        "{stdout}"
    );
}

/// Every workload of the default set runs through PgBouncer in transaction
/// mode (`COALESCE_PGBOUNCER_URL`, with `?pooler=transaction`) with no
/// error, at 100 tasks, on the naive and coalescing paths (bulk-save, not
/// in the default set, is one statement per row on the naive path: minutes
/// at 100 tasks): migrations, seeding, the
/// writes' clean-up and every statement of both paths go through the
/// pooler. Fails under `CI` when the URL is unset, skips loudly otherwise.
#[test]
fn every_workload_runs_through_a_transaction_pooler_without_errors() {
    let Some(url) = common::pgbouncer_url() else {
        return;
    };
    let _turn = POSTGRES_TURN.blocking_lock();
    let json = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-pgbouncer-{}.json", std::process::id()));
    let workloads =
        "profile,memory,onboarding,mixed,get-memories,save,delete,profiles,search,prefetch";
    let output = bench(&[
        "--database-url",
        &url,
        "--users",
        "200",
        "--memories-per-user",
        "10",
        "--warmup",
        "0",
        "--concurrency",
        "100",
        "--ops",
        "100",
        "--workload",
        workloads,
        "--paths",
        "naive,coalesce",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    assert_eq!(
        results.len(),
        2 * workloads.split(',').count(),
        "{results:?}"
    );
    for row in results {
        assert_eq!(row["concurrency"], 100, "{row}");
        assert_eq!(row["errors"], 0, "{row}");
        assert!(row["ops"].as_u64().unwrap() >= 100, "{row}");
    }
    drop(std::fs::remove_file(json));
}
