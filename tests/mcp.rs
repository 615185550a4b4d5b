//! `coalesce mcp` end to end: the MCP SDK's client spawns the built binary
//! over stdio, lists the tools, calls each one and checks the JSON.

#[path = "../crates/store/tests/common/mod.rs"]
mod common;

use coalesce_store::tools::MemoryTools;
use coalesce_store::{Category, MemoryStore, NewMemory};
use common::{Target, unique};
use rmcp::{
    ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    transport::{ConfigureCommandExt, TokioChildProcess},
};
use serde_json::{Value, json};

/// The JSON text of a tool result, parsed.
fn json_of(result: &CallToolResult) -> Value {
    assert_eq!(result.content.len(), 1, "{result:?}");
    let text = result.content[0].as_text().expect("text content");
    serde_json::from_str(&text.text).expect("JSON text")
}

fn call(name: &'static str, arguments: Value) -> CallToolRequestParams {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object");
    };
    CallToolRequestParams::new(name).with_arguments(arguments)
}

#[tokio::test]
async fn mcp_server_lists_and_calls_the_tools() {
    let url = common::url(Target::Sqlite);
    let (me, other) = (unique("me"), unique("other"));
    let store = MemoryStore::connect(&url, 2).await.expect("SQLite store");
    store
        .batch_save_memories(&[
            NewMemory::new(&me, Category::Fact, "name", "John"),
            NewMemory::new(&me, Category::Fact, "age", "30"),
            NewMemory::new(&me, Category::Goal, "run", "a marathon"),
            NewMemory::new(&other, Category::Fact, "name", "Mallory"),
        ])
        .await
        .expect("seed");

    let command = tokio::process::Command::new(env!("CARGO_BIN_EXE_coalesce")).configure(|cmd| {
        cmd.args(["mcp", "--user-id", &me, "--database-url", &url])
            .env_remove("DATABASE_URL");
    });
    let client =
        ().serve(TokioChildProcess::new(command).expect("spawn coalesce mcp"))
            .await
            .expect("MCP handshake");

    let info = client.peer_info().expect("server info");
    let server = info.server_info.as_ref().expect("server identity");
    assert_eq!(server.name, "coalesce");

    let listed = client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = listed.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            "getDatabaseBatchStats",
            "batchGetMemories",
            "bulkMemorySearch"
        ]
    );
    for (tool, definition) in listed.iter().zip(MemoryTools::list()) {
        assert_eq!(
            Value::Object((*tool.input_schema).clone()),
            definition.input_schema
        );
        assert_eq!(tool.description.as_deref(), Some(definition.description));
    }

    let got = client
        .call_tool(call(
            "batchGetMemories",
            json!({"category": "FACT", "limit": 10}),
        ))
        .await
        .expect("tools/call");
    assert_ne!(got.is_error, Some(true));
    assert_eq!(
        json_of(&got),
        json!({"success": true, "count": 2, "memories": [
            {"category": "FACT", "key": "age", "value": "30"},
            {"category": "FACT", "key": "name", "value": "John"},
        ]})
    );

    let searched = client
        .call_tool(call(
            "bulkMemorySearch",
            json!({"categories": ["GOAL", "INTEREST"], "limit_per_category": 5}),
        ))
        .await
        .expect("tools/call");
    assert_eq!(
        json_of(&searched),
        json!({"success": true, "categories_searched": 2, "total_memories": 1, "results": {
            "GOAL": [{"category": "GOAL", "key": "run", "value": "a marathon"}],
            "INTEREST": [],
        }})
    );

    let stats = client
        .call_tool(CallToolRequestParams::new("getDatabaseBatchStats"))
        .await
        .expect("tools/call");
    let stats = json_of(&stats);
    assert_eq!(stats["status"], "active");
    assert_eq!(
        stats["total_operations"], 2,
        "two tool queries in this server"
    );
    assert_eq!(stats["queries_saved"], 1, "two categories in one query");

    // The model cannot pick the user, and bad arguments are tool errors.
    for (name, args, hint) in [
        (
            "batchGetMemories",
            json!({"category": "FACT", "user_id": other}),
            "serves one user",
        ),
        (
            "batchGetMemories",
            json!({"category": "FACT", "limit": 0}),
            "between 1 and 100",
        ),
        (
            "bulkMemorySearch",
            json!({"categories": "FACT,NOPE"}),
            "unknown category",
        ),
        ("deleteEverything", json!({}), "unknown tool"),
    ] {
        let refused = client
            .call_tool(call(name, args))
            .await
            .expect("tools/call");
        assert_eq!(refused.is_error, Some(true), "{name}");
        let out = json_of(&refused);
        assert_eq!(out["success"], false);
        assert!(
            out["error"].as_str().is_some_and(|e| e.contains(hint)),
            "{out}"
        );
    }

    client.cancel().await.expect("clean shutdown");
}

/// `coalesce mcp` driven line by line, for what a well-behaved client
/// never sends.
struct RawSession {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl RawSession {
    /// A server for a fresh user on a fresh SQLite file, initialized.
    async fn start(url: &str) -> Self {
        use std::process::Stdio;
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_coalesce"))
            .args(["mcp", "--user-id", &unique("raw"), "--database-url", url])
            .env_remove("DATABASE_URL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn coalesce mcp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let lines = tokio::io::BufReader::new(stdout).lines();
        let mut session = Self {
            child,
            stdin,
            lines,
        };
        let init = json!({"protocolVersion": "2025-06-18", "capabilities": {},
                          "clientInfo": {"name": "raw", "version": "0"}});
        let answer = session.request(1, "initialize", init).await;
        assert!(answer.get("result").is_some(), "{answer}");
        session
            .send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
        session
    }

    async fn send(&mut self, line: &str) {
        use tokio::io::AsyncWriteExt;
        let framed = format!("{line}\n");
        self.stdin
            .write_all(framed.as_bytes())
            .await
            .expect("write");
        self.stdin.flush().await.expect("flush");
    }

    /// The next message from the server, parsed.
    async fn receive(&mut self) -> Value {
        let line = self.lines.next_line().await.expect("read").expect("a line");
        serde_json::from_str(&line).expect("JSON")
    }

    async fn request(&mut self, id: u64, method: &str, params: Value) -> Value {
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send(&request.to_string()).await;
        self.receive().await
    }
}

#[tokio::test]
async fn mcp_server_answers_malformed_calls_by_the_protocol() {
    let url = common::url(Target::Sqlite);
    let mut session = RawSession::start(&url).await;

    let nameless = session
        .request(2, "tools/call", json!({"arguments": {"category": "FACT"}}))
        .await;
    assert_eq!(nameless["id"], 2);
    assert_eq!(nameless["error"]["code"], -32602, "{nameless}");
    let message = nameless["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("name"), "{message}");

    // JSON Schema's integer includes 100.0, however it is written.
    let line = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"batchGetMemories","arguments":{"category":"FACT","limit":1e2}}}"#;
    session.send(line).await;
    let called = session.receive().await;
    assert_eq!(called["id"], 3);
    assert_ne!(called["result"]["isError"], true, "{called}");
    let text = called["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    let out: Value = serde_json::from_str(text).expect("the tool's JSON");
    assert_eq!(out["success"], true, "{out}");

    // A line that is not JSON: rmcp's transport drops it unanswered (its
    // guard against error storms, not ours to change); serving goes on.
    session
        .send(r#"{"jsonrpc": "2.0", "id": 4, "method": "#)
        .await;
    let pong = session.request(5, "ping", json!({})).await;
    assert_eq!(pong["id"], 5, "{pong}");
    assert!(pong.get("result").is_some(), "{pong}");

    drop(session.stdin);
    let status = session.child.wait().await.expect("exit");
    assert!(status.success(), "{status}");
    common::remove_sqlite(&url);
}
