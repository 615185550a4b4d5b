//! The agent tools through their dispatch entry point, on a SQLite file:
//! the JSON shapes of the specification, the user binding, and every kind
//! of bad argument answered with `{"success": false, "error": ...}`.

mod common;

use coalesce_store::db::Pool;
use coalesce_store::tools::{ECHO_LIMIT, MAX_LIMIT, MemoryTools, Tool, ToolError};
use coalesce_store::{Category, MemoryStore, NewMemory};
use common::{Target, unique};
use serde_json::{Value, json};

/// A fresh store holding memories of two users; the tools serve the first.
async fn setup() -> (MemoryTools, String, String) {
    let store = MemoryStore::connect(&common::url(Target::Sqlite), 4)
        .await
        .expect("SQLite store");
    let (me, other) = (unique("me"), unique("other"));
    let mut rows = Vec::new();
    for i in 0..12 {
        rows.push(NewMemory::new(
            &me,
            Category::Fact,
            format!("fact{i:02}"),
            format!("v{i}"),
        ));
    }
    rows.push(NewMemory::new(&me, Category::Interest, "hobby", "coding"));
    rows.push(NewMemory::new(&me, Category::Interest, "music", "jazz"));
    rows.push(NewMemory::new(&other, Category::Fact, "secret", "theirs"));
    rows.push(NewMemory::new(&other, Category::Goal, "plan", "theirs"));
    store.batch_save_memories(&rows).await.expect("seed");
    let tools = MemoryTools::new(store, &me).expect("valid user id");
    (tools, me, other)
}

fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn lists_three_tools_with_schemas() {
    let names: Vec<&str> = MemoryTools::list().iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "getDatabaseBatchStats",
            "batchGetMemories",
            "bulkMemorySearch"
        ]
    );
    let get = Tool::BatchGetMemories.definition();
    assert_eq!(get.input_schema["required"], json!(["category"]));
    assert_eq!(
        get.input_schema["properties"]["limit"]["maximum"],
        MAX_LIMIT
    );
    assert_eq!(
        get.input_schema["properties"]["category"]["enum"],
        json!(["FACT", "INTEREST", "GOAL", "EXPERIENCE", "PREFERENCE"])
    );
    let search = Tool::BulkMemorySearch.definition();
    assert_eq!(search.input_schema["required"], json!(["categories"]));
    for tool in MemoryTools::list() {
        assert!(tool.input_schema["properties"].get("user_id").is_none());
        assert!(!tool.description.is_empty());
        let json = serde_json::to_value(tool).expect("serializable");
        assert_eq!(keys(&json), ["name", "description", "input_schema"]);
    }
}

#[tokio::test]
async fn stats_have_the_specification_shape() {
    let (tools, _, _) = setup().await;
    let before = tools.call("getDatabaseBatchStats", Value::Null).await;
    assert_eq!(
        keys(&before)[..5],
        [
            "total_operations",
            "queries_saved",
            "efficiency_gain",
            "batch_size",
            "status"
        ]
    );
    assert_eq!(before["status"], "active");
    assert_eq!(before["batch_size"], 100);
    assert!(
        before["efficiency_gain"]
            .as_str()
            .is_some_and(|g| g.ends_with('%'))
    );
    let ops = before["total_operations"].as_u64().expect("a count");
    tools
        .call(
            "bulkMemorySearch",
            json!({"categories": "FACT,INTEREST,GOAL"}),
        )
        .await;
    let after = tools.call("getDatabaseBatchStats", json!({})).await;
    assert_eq!(after["total_operations"].as_u64(), Some(ops + 1));
    assert_eq!(
        after["queries_saved"].as_u64(),
        before["queries_saved"].as_u64().map(|saved| saved + 2),
        "three categories in one query save two"
    );
}

#[tokio::test]
async fn batch_get_memories_shape_and_limit() {
    let (tools, _, _) = setup().await;
    let out = tools
        .call("batchGetMemories", json!({"category": "FACT", "limit": 5}))
        .await;
    assert_eq!(keys(&out), ["success", "count", "memories"]);
    assert_eq!(out["success"], true);
    assert_eq!(out["count"], 5);
    let memories = out["memories"].as_array().expect("a list");
    assert_eq!(memories.len(), 5);
    assert_eq!(
        memories[0],
        json!({"category": "FACT", "key": "fact00", "value": "v0"})
    );
    assert!(memories.iter().all(|m| m["category"] == "FACT"));

    let all = tools
        .call("batchGetMemories", json!({"category": "fact"}))
        .await;
    assert_eq!(all["count"], 12, "default limit 50 returns all twelve");
    let interests = tools
        .call(
            "batchGetMemories",
            json!({"category": "INTEREST", "limit": null}),
        )
        .await;
    let got: Vec<&str> = interests["memories"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|m| m["key"].as_str())
        .collect();
    assert_eq!(got, ["hobby", "music"]);
}

#[tokio::test]
async fn bulk_memory_search_shape_string_and_list() {
    let (tools, _, _) = setup().await;
    let out = tools
        .call(
            "bulkMemorySearch",
            json!({"categories": "INTEREST, FACT,GOAL", "limit_per_category": 3}),
        )
        .await;
    assert_eq!(
        keys(&out),
        [
            "success",
            "categories_searched",
            "total_memories",
            "results"
        ]
    );
    assert_eq!(out["success"], true);
    assert_eq!(out["categories_searched"], 3);
    assert_eq!(out["total_memories"], 2 + 3);
    assert_eq!(keys(&out["results"]), ["INTEREST", "FACT", "GOAL"]);
    assert_eq!(out["results"]["FACT"].as_array().map(Vec::len), Some(3));
    assert_eq!(out["results"]["GOAL"], json!([]));

    let listed = tools
        .call(
            "bulkMemorySearch",
            json!({"categories": ["INTEREST", "FACT", "GOAL", "FACT"], "limit_per_category": 3}),
        )
        .await;
    assert_eq!(listed["categories_searched"], 3, "duplicates count once");
    assert_eq!(listed["total_memories"], out["total_memories"]);
    assert_eq!(keys(&listed["results"]), keys(&out["results"]));

    let defaults = tools
        .call("bulkMemorySearch", json!({"categories": "FACT"}))
        .await;
    assert_eq!(
        defaults["total_memories"], 10,
        "limit_per_category defaults to 10"
    );
}

#[tokio::test]
async fn tools_serve_only_their_user() {
    let (tools, me, other) = setup().await;
    assert_eq!(tools.user_id(), me);
    let facts = tools
        .call(
            "batchGetMemories",
            json!({"category": "FACT", "limit": 100}),
        )
        .await;
    assert!(
        facts["memories"]
            .as_array()
            .expect("a list")
            .iter()
            .all(|m| m["value"] != "theirs")
    );
    let goals = tools
        .call("bulkMemorySearch", json!({"categories": "GOAL"}))
        .await;
    assert_eq!(
        goals["total_memories"], 0,
        "the other user's goal is not visible"
    );

    // Naming the other user is refused, whatever the spelling.
    for name in ["user_id", "userId", "USER_ID", "user"] {
        for (tool, mut args) in [
            ("batchGetMemories", json!({"category": "GOAL"})),
            ("bulkMemorySearch", json!({"categories": "GOAL"})),
            ("getDatabaseBatchStats", json!({})),
        ] {
            args[name] = json!(other);
            let out = tools.call(tool, args).await;
            assert_eq!(out["success"], false, "{tool} with {name}");
            assert!(
                out["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("serves one user")),
                "{out}"
            );
        }
    }
    // The other user's own tools do see their data.
    let theirs = MemoryTools::new(tools.store().clone(), &other).expect("valid");
    let goals = theirs
        .call("bulkMemorySearch", json!({"categories": "GOAL"}))
        .await;
    assert_eq!(goals["total_memories"], 1);
}

#[tokio::test]
async fn bad_arguments_answer_success_false() {
    let (tools, _, _) = setup().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("searchMemories", json!({}), "unknown tool"),
        ("", json!({}), "unknown tool"),
        (
            "batchGetMemories",
            json!({"category": "HOBBY"}),
            "unknown category",
        ),
        (
            "batchGetMemories",
            json!({"category": "FACT", "limit": 0}),
            "between 1 and 100",
        ),
        (
            "batchGetMemories",
            json!({"category": "FACT", "limit": -4}),
            "between 1 and 100",
        ),
        (
            "batchGetMemories",
            json!({"category": "FACT", "limit": 101}),
            "between 1 and 100",
        ),
        (
            "batchGetMemories",
            json!({"category": "FACT", "limit": 1e30}),
            "between 1 and 100",
        ),
        (
            "batchGetMemories",
            json!({"category": "FACT", "limit": 2.5}),
            "an integer",
        ),
        (
            "batchGetMemories",
            json!({"category": "FACT", "limit": "5"}),
            "an integer",
        ),
        (
            "batchGetMemories",
            json!({"category": 3}),
            "category name string",
        ),
        (
            "batchGetMemories",
            json!({"limit": 5}),
            "missing required argument \"category\"",
        ),
        (
            "batchGetMemories",
            json!({"category": null}),
            "missing required argument",
        ),
        ("batchGetMemories", Value::Null, "missing required argument"),
        (
            "batchGetMemories",
            json!(["FACT", 5]),
            "must be a JSON object",
        ),
        ("batchGetMemories", json!("FACT"), "must be a JSON object"),
        (
            "batchGetMemories",
            json!({"category": "FACT", "keys": ["a"]}),
            "unknown argument \"keys\"",
        ),
        (
            "bulkMemorySearch",
            json!({}),
            "missing required argument \"categories\"",
        ),
        (
            "bulkMemorySearch",
            json!({"categories": ""}),
            "at least one category",
        ),
        (
            "bulkMemorySearch",
            json!({"categories": []}),
            "at least one category",
        ),
        (
            "bulkMemorySearch",
            json!({"categories": "FACT,NOPE"}),
            "unknown category \"NOPE\"",
        ),
        (
            "bulkMemorySearch",
            json!({"categories": ["FACT", 1]}),
            "comma-separated string or a list",
        ),
        (
            "bulkMemorySearch",
            json!({"categories": {"FACT": 1}}),
            "comma-separated string or a list",
        ),
        (
            "bulkMemorySearch",
            json!({"categories": "FACT", "limit_per_category": 0}),
            "between 1 and 100",
        ),
        (
            "bulkMemorySearch",
            json!({"categories": "FACT", "limit_per_category": 500}),
            "between 1 and 100",
        ),
        (
            "bulkMemorySearch",
            json!({"categories": "FACT", "limit": 5}),
            "unknown argument \"limit\"",
        ),
        (
            "getDatabaseBatchStats",
            json!({"verbose": true}),
            "takes no arguments",
        ),
        ("getDatabaseBatchStats", json!(7), "must be a JSON object"),
    ];
    let before = tools.store().database().statements();
    for (tool, args, hint) in cases {
        let out = tools.call(tool, args.clone()).await;
        assert_eq!(keys(&out), ["success", "error"], "{tool} {args}");
        assert_eq!(out["success"], false, "{tool} {args}");
        let error = out["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(hint),
            "{tool} {args}: {error:?} lacks {hint:?}"
        );
    }
    assert_eq!(
        tools.store().database().statements(),
        before,
        "refused calls run no query"
    );
    let typed = tools
        .try_call("batchGetMemories", &json!({"limit": 1}))
        .await;
    assert!(matches!(typed, Err(ToolError::InvalidArguments(_))));
    let typed = tools.try_call("nope", &json!({})).await;
    assert!(matches!(typed, Err(ToolError::UnknownTool(_))));
}

#[tokio::test]
async fn huge_inputs_are_quoted_bounded_in_errors() {
    let (tools, _, _) = setup().await;
    let huge = "A".repeat(10_000_000);
    let cases = [
        ("batchGetMemories", json!({ "category": huge })),
        ("bulkMemorySearch", json!({ "categories": [huge] })),
        (
            "batchGetMemories",
            json!({ "category": "FACT", huge.clone(): 1 }),
        ),
        (huge.as_str(), json!({})),
    ];
    for (tool, args) in cases {
        let out = tools.call(tool, args).await;
        assert_eq!(out["success"], false);
        let error = out["error"].as_str().unwrap_or_default();
        assert!(error.len() < 400, "a {} byte error", error.len());
        let quoted = format!(
            "\"{}\"… ({} more characters)",
            "A".repeat(ECHO_LIMIT),
            huge.len() - ECHO_LIMIT
        );
        assert!(error.contains(&quoted), "{error}");
    }
}

#[tokio::test]
async fn whole_numbers_written_as_floats_are_integer_limits() {
    let (tools, _, _) = setup().await;
    let out = tools
        .call(
            "batchGetMemories",
            json!({"category": "FACT", "limit": 1e1}),
        )
        .await;
    assert_eq!(out["success"], true, "{out}");
    assert_eq!(out["count"], 10);
    let out = tools
        .call(
            "bulkMemorySearch",
            json!({"categories": "FACT", "limit_per_category": 2.0}),
        )
        .await;
    assert_eq!(out["success"], true, "{out}");
}

#[tokio::test]
async fn database_errors_answer_success_false() {
    let (tools, _, _) = setup().await;
    let Pool::Sqlite(pool) = tools.store().database().pool() else {
        panic!("a SQLite store");
    };
    pool.close().await;
    for (tool, args) in [
        ("batchGetMemories", json!({"category": "FACT"})),
        ("bulkMemorySearch", json!({"categories": "FACT,GOAL"})),
    ] {
        let out = tools.call(tool, args).await;
        assert_eq!(out["success"], false, "{tool}");
        let error = out["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("the memory store failed"), "{error}");
    }
    let typed = tools
        .try_call("bulkMemorySearch", &json!({"categories": "FACT"}))
        .await;
    assert!(matches!(typed, Err(ToolError::Store(_))));
}

#[tokio::test]
async fn refuses_an_invalid_session_user() {
    let (tools, _, _) = setup().await;
    assert!(MemoryTools::new(tools.store().clone(), "").is_err());
    assert!(MemoryTools::new(tools.store().clone(), "a\0b").is_err());
    assert!(MemoryTools::new(tools.store().clone(), "x".repeat(192)).is_err());
}
