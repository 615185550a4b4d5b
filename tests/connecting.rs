//! The commands that open a database, against servers and files that
//! cannot be used: one line naming what failed and why, at once.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Run the binary with `args`, `DATABASE_URL` unset, stdin empty.
fn coalesce(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coalesce"))
        .args(args)
        .env_remove("DATABASE_URL")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run coalesce")
}

/// The command failed with exactly one `error: ...` line, returned.
fn one_line_error(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(stderr.starts_with("error: "), "{stderr:?}");
    stderr.trim_end().to_owned()
}

/// A loopback port that refuses connections while the socket lives: bound,
/// never listening. (A port bound and let go could meanwhile become another
/// connection's, as another test's outgoing connection did once.)
fn refusing_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    socket.bind(any).expect("a free port");
    let port = socket.local_addr().expect("its address").port();
    (socket, port)
}

#[test]
fn a_refused_server_is_reported_at_once_by_migrate_and_mcp() {
    let (_refusing, port) = refusing_port();
    for (scheme, backend) in [
        ("postgres://postgres@", "PostgreSQL"),
        ("mariadb://root@", "MySQL/MariaDB"),
    ] {
        let url = format!("{scheme}127.0.0.1:{port}/test");
        for args in [
            &["migrate", "--database-url", &url][..],
            &["mcp", "--user-id", "u", "--database-url", &url][..],
        ] {
            let started = Instant::now();
            let error = one_line_error(&coalesce(args));
            // Far below the 5 s connect timeout, let alone the old 30 s.
            assert!(started.elapsed() < Duration::from_secs(5), "{args:?}");
            assert!(
                error.ends_with(&format!(
                    "could not connect to {backend} at 127.0.0.1:{port}: connection refused"
                )),
                "{args:?}: {error}"
            );
        }
    }
}

#[test]
fn migrate_refuses_a_sqlite_url_without_a_path() {
    for url in ["sqlite://", "sqlite:"] {
        let error = one_line_error(&coalesce(&["migrate", "--database-url", url]));
        assert!(error.contains("the SQLite URL names no file"), "{error}");
    }
}

#[test]
fn migrate_names_a_sqlite_path_that_is_a_directory() {
    let dir = env!("CARGO_TARGET_TMPDIR");
    let url = format!("sqlite://{dir}");
    let error = one_line_error(&coalesce(&["migrate", "--database-url", &url]));
    assert!(
        error.ends_with(&format!(
            "could not open the SQLite database {dir}: is a directory"
        )),
        "{error}"
    );
}
