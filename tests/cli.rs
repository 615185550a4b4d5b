//! Smoke tests of the `coalesce` binary: help, one-line errors with a
//! non-zero exit, `migrate`, `seed`, `session` and `tool` on a SQLite file.

#[path = "../crates/store/tests/common/mod.rs"]
mod common;

use coalesce_store::{Category, MemoryStore, NewMemory};
use common::{Target, unique};
use serde_json::Value;
use std::process::{Command, Output};

/// Run the binary with `args`, `DATABASE_URL` unset.
fn coalesce(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coalesce"))
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run coalesce")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The command failed with `code` and exactly one `error: ...` line.
fn assert_one_line_error(output: &Output, code: i32, hint: &str) {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(stderr.starts_with("error: "), "{stderr:?}");
    assert!(stderr.contains(hint), "{stderr:?} lacks {hint:?}");
    assert!(!stderr.contains("panicked"), "{stderr:?}");
}

/// A SQLite URL in a directory that does not exist yet (under Cargo's
/// scratch directory for integration tests, as `bench_cli`'s files), and
/// the guard that removes that directory when the test ends, passed or
/// failed.
fn fresh_url() -> (Scratch, String) {
    let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("coalesce-cli"));
    let url = format!(
        "sqlite://{}",
        root.join("nested").join("memories.db").display()
    );
    (Scratch(root), url)
}

/// A test's scratch directory, removed on drop.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        // Absent when the command under test refused to create it.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn every_command_has_help_with_an_example() {
    for command in [
        &[][..],
        &["migrate"],
        &["seed"],
        &["session"],
        &["tool"],
        &["mcp"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let output = coalesce(&args);
        assert!(output.status.success(), "{args:?}");
        let help = text(&output.stdout);
        assert!(help.contains("Example"), "{args:?}: {help}");
        assert!(help.contains("coalesce "), "{args:?}: {help}");
    }
}

#[test]
fn usage_errors_are_one_line() {
    assert_one_line_error(&coalesce(&[]), 2, "subcommand");
    assert_one_line_error(&coalesce(&["--bogus"]), 2, "--bogus");
    assert_one_line_error(&coalesce(&["frobnicate"]), 2, "frobnicate");
    assert_one_line_error(&coalesce(&["session"]), 2, "--user-id");
    assert_one_line_error(&coalesce(&["tool", "nope", "--user-id", "u"]), 2, "nope");
    assert_one_line_error(&coalesce(&["tool", "--user-id", "u"]), 2, "<NAME>");
    assert_one_line_error(&coalesce(&["migrate", "extra"]), 2, "extra");
    assert_one_line_error(&coalesce(&["seed", "--users", "0"]), 2, "--users");
    assert_one_line_error(
        &coalesce(&["seed", "--memories-per-user", "many"]),
        2,
        "many",
    );
    assert_one_line_error(&coalesce(&["seed", "--seed", "abc"]), 2, "--seed");
}

/// `--connect-timeout` and `--statement-timeout` reach the connect options
/// of every command that opens the database: zero, which the store refuses,
/// is refused by each.
#[test]
fn the_timeout_flags_reach_every_command_that_connects() {
    let (_scratch, url) = fresh_url();
    let commands: [&[&str]; 6] = [
        &["migrate"],
        &["seed"],
        &["session", "--user-id", "u"],
        &["tool", "getDatabaseBatchStats", "--user-id", "u"],
        &["mcp", "--user-id", "u"],
        &["bench", "--duration", "1s"],
    ];
    for command in commands {
        for (flag, setting) in [
            ("--statement-timeout", "statement_timeout"),
            ("--connect-timeout", "connect_timeout"),
        ] {
            let mut args = command.to_vec();
            args.extend([flag, "0s", "--database-url", &url]);
            let refused = format!("{setting} must be longer than zero");
            assert_one_line_error(&coalesce(&args), 1, &refused);
        }
    }
    let unparsable = coalesce(&["migrate", "--statement-timeout", "soon"]);
    assert_one_line_error(&unparsable, 2, "--statement-timeout");
}

#[test]
fn runtime_errors_are_one_line() {
    let bad_scheme = coalesce(&["migrate", "--database-url", "mssql://db/app"]);
    assert_one_line_error(&bad_scheme, 1, "unsupported database URL scheme");
    let (_scratch, url) = fresh_url();
    let bad_json = coalesce(&[
        "tool",
        "getDatabaseBatchStats",
        "--user-id",
        "u",
        "{",
        "--database-url",
        &url,
    ]);
    // Bad values on the command line exit 2, like the mistakes clap finds.
    assert_one_line_error(&bad_json, 2, "not valid JSON");
    let empty_user = coalesce(&["session", "--user-id", "", "--database-url", &url]);
    assert_one_line_error(&empty_user, 2, "user id must not be empty");
    let empty_mcp_user = coalesce(&["mcp", "--user-id", "", "--database-url", &url]);
    assert_one_line_error(&empty_mcp_user, 2, "invalid --user-id");
    let bad_dir = coalesce(&[
        "mcp",
        "--user-id",
        "u",
        "--database-url",
        "sqlite:///proc/no/such/dir/x.db",
    ]);
    assert_one_line_error(
        &bad_dir,
        1,
        "could not create the directory /proc/no/such/dir",
    );
}

#[test]
fn migrate_creates_the_file_and_is_idempotent() {
    let (_scratch, url) = fresh_url();
    let first = coalesce(&["migrate", "--database-url", &url]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stdout).contains("applied migration 1 (memory store)"));
    let again = Command::new(env!("CARGO_BIN_EXE_coalesce"))
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .output()
        .expect("run coalesce");
    assert!(again.status.success(), "{}", text(&again.stderr));
    let said = text(&again.stdout);
    assert!(
        said.contains("up to date: 1 migration(s) already applied"),
        "{said}"
    );
}

#[tokio::test]
async fn tool_and_session_print_the_users_data() {
    let (_scratch, url) = fresh_url();
    let first = coalesce(&["migrate", "--database-url", &url]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let (me, other) = (unique("me"), unique("other"));
    let store = MemoryStore::connect(&url, 1).await.expect("store");
    store
        .batch_save_memories(&[
            NewMemory::new(&me, Category::Fact, "name", "John"),
            NewMemory::new(&me, Category::Interest, "hobby", "coding"),
            NewMemory::new(&other, Category::Fact, "name", "Mallory"),
        ])
        .await
        .expect("seed");

    let args = r#"{"category": "FACT", "limit": 50}"#;
    let output = coalesce(&[
        "tool",
        "batchGetMemories",
        "--user-id",
        &me,
        args,
        "--database-url",
        &url,
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(
        json,
        serde_json::json!({"success": true, "count": 1, "memories": [
            {"category": "FACT", "key": "name", "value": "John"}
        ]})
    );

    let refused = coalesce(&[
        "tool",
        "batchGetMemories",
        "--user-id",
        &me,
        r#"{"category": "FACT", "user_id": "x"}"#,
        "--database-url",
        &url,
    ]);
    assert_one_line_error(&refused, 1, "serves one user");
    let json: Value = serde_json::from_slice(&refused.stdout).expect("JSON on stdout");
    assert_eq!(json["success"], false);

    let session = coalesce(&["session", "--user-id", &me, "--database-url", &url]);
    assert!(session.status.success(), "{}", text(&session.stderr));
    let said = text(&session.stdout);
    assert!(
        said.contains("[ENTRYPOINT] ✓ Database batcher initialized"),
        "{said}"
    );
    assert!(said.contains("[BATCH] Prefetch completed in "), "{said}");
    assert!(said.contains("[BATCH] ✓ Prefetched 2 memories"), "{said}");
    assert!(said.contains("(4 statements in parallel, "), "{said}");
    assert!(
        said.contains("[NAIVE] the same reads one after another: 4 statements in "),
        "{said}"
    );
    assert!(!said.contains("has no data"), "{said}");
    let nobody = coalesce(&["session", "--user-id", "nobody", "--database-url", &url]);
    let said = text(&nobody.stdout);
    assert!(
        said.contains("note: user nobody has no data in this database"),
        "{said}"
    );
    let stats = said.split_once("Stats:\n").expect("a stats section").1;
    let stats: Value = serde_json::from_str(stats).expect("stats JSON");
    assert_eq!(stats["status"], "active");
    assert!(stats["total_operations"].as_u64().is_some_and(|n| n > 0));
}

#[test]
fn seed_writes_data_the_tools_read_and_is_idempotent() {
    let (_scratch, url) = fresh_url();
    let flags = [
        "seed",
        "--users",
        "3",
        "--memories-per-user",
        "10",
        "--seed",
        "7",
        "--database-url",
        &url,
    ];
    let first = coalesce(&flags);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let said = text(&first.stdout);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.starts_with("wrote 3 users in "), "{said}");
    assert!(
        said.contains(": the Sqlite database holds 3 users (user-000000 to user-000002), 10 memories each (seed 7)"),
        "{said}"
    );
    assert!(
        said.contains("try: coalesce session --user-id user-000000"),
        "{said}"
    );

    let facts = || {
        let output = coalesce(&[
            "tool",
            "batchGetMemories",
            "--user-id",
            "user-000002",
            r#"{"category": "FACT"}"#,
            "--database-url",
            &url,
        ]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        serde_json::from_slice::<Value>(&output.stdout).expect("JSON on stdout")
    };
    let seeded = facts();
    // Ten memories round-robin over five categories: FACT holds items 0 and 5.
    assert_eq!(seeded["count"], 2, "{seeded}");
    let keys: Vec<&str> = seeded["memories"]
        .as_array()
        .expect("memories")
        .iter()
        .filter_map(|m| m["key"].as_str())
        .collect();
    assert_eq!(keys, ["k000", "k005"]);

    let again = coalesce(&flags);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let said = text(&again.stdout);
    assert!(
        said.starts_with("the Sqlite database already holds 3 users"),
        "{said}"
    );
    assert_eq!(facts(), seeded, "the same flags give the same data");
    let fewer = coalesce(&[
        "seed",
        "--users",
        "2",
        "--memories-per-user",
        "10",
        "--seed",
        "7",
        "--database-url",
        &url,
    ]);
    let said = text(&fewer.stdout);
    assert!(
        said.starts_with("the Sqlite database already holds 3 users"),
        "seed must say what the database holds, not what it was asked: {said}"
    );

    let session = coalesce(&[
        "session",
        "--user-id",
        "user-000000",
        "--database-url",
        &url,
    ]);
    assert!(session.status.success(), "{}", text(&session.stderr));
    let said = text(&session.stdout);
    assert!(said.contains("[BATCH] ✓ Prefetched 10 memories"), "{said}");
}

#[test]
fn tool_lines_run_many_calls_in_one_process() {
    use std::io::Write;
    let (_scratch, url) = fresh_url();
    let seeded = coalesce(&[
        "seed",
        "--users",
        "2",
        "--memories-per-user",
        "10",
        "--database-url",
        &url,
    ]);
    assert!(seeded.status.success(), "{}", text(&seeded.stderr));
    let run = |input: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_coalesce"))
            .args([
                "tool",
                "--lines",
                "--user-id",
                "user-000001",
                "--database-url",
                &url,
            ])
            .env_remove("DATABASE_URL")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run coalesce");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).expect("write the calls");
        drop(stdin);
        child.wait_with_output().expect("coalesce ends")
    };
    let output = run(concat!(
        r#"{"name": "batchGetMemories", "arguments": {"category": "FACT"}}"#,
        "\n\n",
        r#"{"name": "getDatabaseBatchStats"}"#,
        "\n"
    ));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let results: Vec<Value> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON result a line"))
        .collect();
    assert_eq!(results.len(), 2, "{results:?}");
    assert_eq!(results[0]["count"], 2, "{}", results[0]);
    // The stats call saw the call before it: same process, same store.
    assert!(
        results[1]["total_operations"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{}",
        results[1]
    );

    let bad = run("not json\n{\"name\": \"getDatabaseBatchStats\"}\n");
    assert_one_line_error(&bad, 1, "1 of 2 tool calls failed");
    let results: Vec<Value> = text(&bad.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON result a line"))
        .collect();
    assert_eq!(results[0]["success"], false);
    assert!(
        results[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("line 1 is not a tool call"))
    );
    assert_eq!(results[1]["status"], "active");
}

/// The report `migrate` prints, on every backend: a store is migrated when
/// it connects, so a second run applies nothing and names what is there.
async fn migrate_report_after_connect(store: MemoryStore, _: Target) {
    let report = store.database().migrate_report().await.expect("migrate");
    assert!(report.applied.is_empty(), "{report:?}");
    let first = report.already_applied.first().expect("the first migration");
    assert_eq!(
        (first.version, first.description.as_str()),
        (1, "memory store")
    );
}

on_all_backends!(migrate_report_after_connect);
