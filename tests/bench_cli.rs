//! `coalesce bench`: the round-trip proxy delays, seeding is deterministic,
//! a tiny run on SQLite succeeds with sane figures, and bad flags fail with
//! one line. No timing upper bounds: the machine may be busy.

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
        assert!(matches!(first, seed::Seeded::Written(_)));
        assert_eq!(
            seed::seed(&db, &spec, |_| {}).await.unwrap(),
            seed::Seeded::AlreadySeeded
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
        "naive,coalesce",
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
    assert_eq!(results.len(), 2 * 2 * 2, "{results:?}");
    let find = |workload: &str, path: &str, tasks: u64| {
        results
            .iter()
            .find(|r| r["workload"] == workload && r["path"] == path && r["concurrency"] == tasks)
            .unwrap_or_else(|| panic!("no row {workload} {path} {tasks}"))
    };
    for row in results {
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
    fails_with_one_line(&["--ops", "10", "--duration", "1s"], "--duration");
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
