//! `coalesce tool`: one agent tool call from the shell.

use super::{CliError, db};
use clap::builder::PossibleValuesParser;
use coalesce_store::tools::{MemoryTools, Tool};
use serde_json::Value;
use std::io::Write;

/// `tool`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct ToolArgs {
    /// The tool to run.
    #[arg(value_parser = PossibleValuesParser::new(Tool::ALL.map(Tool::name)))]
    name: String,
    /// The user the tool serves (the model cannot choose another).
    #[arg(long)]
    user_id: String,
    /// The tool's arguments as a JSON object.
    #[arg(default_value = "{}")]
    arguments: String,
}

/// Run the tool and print its JSON; a `"success": false` answer is printed
/// too, and also reported as the command's error.
pub(crate) async fn run(url: &str, args: ToolArgs) -> Result<(), CliError> {
    let arguments: Value =
        serde_json::from_str(&args.arguments).map_err(CliError::ToolArguments)?;
    let tools = MemoryTools::new(db::store(url).await?, args.user_id).map_err(CliError::UserId)?;
    let result = tools.call(&args.name, arguments).await;
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
