//! `coalesce tool`: agent tool calls from the shell, one from the command
//! line, or many from stdin in one process (one store, so the statistics
//! `getDatabaseBatchStats` reports count the calls before it).

use super::{CliError, db};
use clap::builder::PossibleValuesParser;
use coalesce_store::tools::{MemoryTools, Tool};
use serde_json::{Value, json};
use std::io::Write;
use tokio::io::{AsyncBufReadExt, BufReader};

/// `tool`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct ToolArgs {
    /// The tool to run (omit with --lines).
    #[arg(
        value_parser = PossibleValuesParser::new(Tool::ALL.map(Tool::name)),
        required_unless_present = "lines"
    )]
    name: Option<String>,
    /// The user the tool serves (the model cannot choose another).
    #[arg(long)]
    user_id: String,
    /// The tool's arguments as a JSON object.
    #[arg(default_value = "{}")]
    arguments: String,
    /// Read calls from stdin, one JSON object a line
    /// (`{"name": "batchGetMemories", "arguments": {"category": "FACT"}}`),
    /// run them one after another in this process, and print one JSON
    /// result a line.
    #[arg(long, conflicts_with = "name")]
    lines: bool,
}

/// Run the tool(s) and print the JSON; a `"success": false` answer is
/// printed too, and also reported as the command's error.
pub(crate) async fn run(target: &db::Target, args: ToolArgs) -> Result<(), CliError> {
    let arguments: Option<Value> = match &args.name {
        Some(_) => Some(serde_json::from_str(&args.arguments).map_err(CliError::ToolArguments)?),
        None => None,
    };
    let tools =
        MemoryTools::new(db::store(target).await?, args.user_id).map_err(CliError::UserId)?;
    match (args.name, arguments) {
        (Some(name), Some(arguments)) => one_call(&tools, &name, arguments).await,
        _ => calls_from_stdin(&tools).await,
    }
}

async fn one_call(tools: &MemoryTools, name: &str, arguments: Value) -> Result<(), CliError> {
    let result = tools.call(name, arguments).await;
    let text = serde_json::to_string_pretty(&result).map_err(std::io::Error::other);
    writeln!(
        std::io::stdout().lock(),
        "{}",
        text.map_err(CliError::Output)?
    )
    .map_err(CliError::Output)?;
    if result["success"] == Value::Bool(false) {
        let message = result["error"].as_str().unwrap_or("the tool failed");
        return Err(CliError::ToolFailed(message.to_owned()));
    }
    Ok(())
}

/// One call per non-empty stdin line, in order; a line that is not a call
/// gets a `"success": false` answer like a failed call.
async fn calls_from_stdin(tools: &MemoryTools) -> Result<(), CliError> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let (mut calls, mut failed) = (0, 0);
    while let Some(line) = lines.next_line().await.map_err(CliError::Output)? {
        if line.trim().is_empty() {
            continue;
        }
        calls += 1;
        let result = match serde_json::from_str::<Value>(&line) {
            Ok(call) => match call["name"].as_str() {
                Some(name) => {
                    let arguments = call.get("arguments").cloned().unwrap_or_else(|| json!({}));
                    tools.call(name, arguments).await
                }
                None => not_a_call(calls, "it has no \"name\""),
            },
            Err(error) => not_a_call(calls, &error.to_string()),
        };
        if result["success"] == Value::Bool(false) {
            failed += 1;
        }
        writeln!(std::io::stdout().lock(), "{result}").map_err(CliError::Output)?;
    }
    if failed > 0 {
        return Err(CliError::ToolFailed(format!(
            "{failed} of {calls} tool calls failed (see their JSON)"
        )));
    }
    Ok(())
}

fn not_a_call(line: usize, why: &str) -> Value {
    json!({
        "success": false,
        "error": format!(
            "line {line} is not a tool call ({{\"name\": ..., \"arguments\": {{...}}}}): {why}"
        ),
    })
}
