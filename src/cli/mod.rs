//! The command line: argument parsing, the subcommands, and turning every
//! failure into a one-line `error: ...` on stderr with a non-zero exit.
//!
//! To add a subcommand: one variant in [`Command`] (with its clap `Args`
//! struct) and one arm in [`run`]; if its errors are a type of their own,
//! one `#[from]` variant in [`CliError`].

mod bench;
mod db;
#[cfg(test)]
mod doc_commands;
mod mcp;
mod migrate;
mod seed;
mod session;
mod tool;

use clap::{CommandFactory, Parser, Subcommand, error::ErrorKind};
use coalesce_store::StoreError;
use coalesce_store::db::ConnectError;
use std::{io, path::PathBuf, process::ExitCode, time::Duration};

/// Where the database is when neither `--database-url` nor `DATABASE_URL`
/// says: a SQLite file, created (with its directory) on first use.
pub(crate) const DEFAULT_DATABASE_URL: &str = "sqlite://target/coalesce.db";

/// Request coalescing for database access: the memory store's migrations,
/// the session demo, the agent tools and an MCP server.
#[derive(Debug, Parser)]
#[command(
    name = "coalesce",
    version,
    propagate_version = true,
    after_help = "Examples:\n  \
        coalesce migrate\n  \
        coalesce seed --users 100\n  \
        coalesce session --user-id 123\n  \
        coalesce tool batchGetMemories --user-id 123 '{\"category\": \"FACT\", \"limit\": 50}'\n  \
        coalesce mcp --user-id 123 --database-url postgres://localhost/app"
)]
pub(crate) struct Cli {
    /// Database URL: postgres://, mysql://, mariadb:// or sqlite://PATH
    /// (a SQLite file and its directory are created on first use).
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        default_value = DEFAULT_DATABASE_URL,
        hide_env_values = true
    )]
    pub(crate) database_url: String,

    /// How long opening the database may take before the command fails
    /// (e.g. 5s, 500ms).
    #[arg(long, global = true, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub(crate) connect_timeout: Duration,

    /// How long the server lets one statement run before cancelling it
    /// (PostgreSQL's statement_timeout, MariaDB's max_statement_time;
    /// SQLite: how long a statement waits for a lock).
    #[arg(long, global = true, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub(crate) statement_timeout: Duration,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create or update the tables, and say which migrations were applied.
    #[command(after_help = "Example:\n  coalesce migrate --database-url sqlite://data/app.db")]
    Migrate,
    /// Write deterministic demo data (users with a profile, onboarding data
    /// and memories) after migrating; the same flags write the same data, so
    /// running it again changes nothing. Says which user ids to try.
    #[command(after_help = "Example:\n  \
        coalesce seed --users 100 --memories-per-user 20\n  \
        coalesce tool batchGetMemories --user-id user-000000 '{\"category\": \"FACT\"}'")]
    Seed(seed::SeedArgs),
    /// The specification's session start: prefetch a user's data in
    /// parallel, then print the prefetch time and the batching statistics.
    #[command(after_help = "Example:\n  coalesce session --user-id 123")]
    Session(session::SessionArgs),
    /// Run one agent tool for a user and print its JSON result (or, with
    /// --lines, many calls read from stdin in one process).
    #[command(after_help = "Examples:\n  \
        coalesce tool getDatabaseBatchStats --user-id 123\n  \
        printf '%s\\n' '{\"name\": \"batchGetMemories\", \"arguments\": {\"category\": \"FACT\"}}' '{\"name\": \"getDatabaseBatchStats\"}' | coalesce tool --lines --user-id user-000000\n  \
        coalesce tool batchGetMemories --user-id 123 '{\"category\": \"FACT\", \"limit\": 50}'\n  \
        coalesce tool bulkMemorySearch --user-id 123 '{\"categories\": \"FACT,INTEREST,GOAL\", \"limit_per_category\": 5}'")]
    Tool(tool::ToolArgs),
    /// Synthetic concurrent load against the database: the naive path, one
    /// query per item, against coalescing (and peer loaders with
    /// `--features peers`). Seeds the same data as `seed` (10,000 users by
    /// default) and removes what its write workloads wrote when it ends.
    #[command(after_help = "Examples:\n  \
        coalesce bench\n  \
        coalesce bench --database-url postgres://postgres@127.0.0.1:5432/test --workload profile --concurrency 1,100,1000\n  \
        coalesce bench --database-url postgres://postgres@127.0.0.1:5432/test --workload profile --rtt 1ms --json out.json")]
    Bench(bench::BenchArgs),
    /// Serve the agent tools for one user over MCP on stdin/stdout.
    #[command(after_help = "Example (what an MCP client runs):\n  \
        coalesce mcp --user-id 123 --database-url sqlite:///var/lib/app/memories.db")]
    Mcp(mcp::McpArgs),
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Opening or migrating the database failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The memory store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The directory of a SQLite file could not be created.
    #[error("could not create the directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Writing to stdout failed (e.g. a closed pipe).
    #[error("could not write the output: {0}")]
    Output(#[source] io::Error),
    /// `tool`'s arguments were not JSON.
    #[error("the tool arguments are not valid JSON: {0}")]
    ToolArguments(#[source] serde_json::Error),
    /// A tool answered `{"success": false, ...}`.
    #[error("{0}")]
    ToolFailed(String),
    /// The user id was refused.
    #[error("invalid --user-id: {0}")]
    UserId(#[source] coalesce_store::InvalidInput),
    /// The MCP session could not start.
    #[error("the MCP session could not start: {0}")]
    McpStart(#[source] Box<rmcp::service::ServerInitializeError>),
    /// The MCP session ended abnormally.
    #[error("the MCP server stopped: {0}")]
    McpStopped(#[from] tokio::task::JoinError),
    /// `coalesce bench` failed.
    #[error(transparent)]
    Bench(#[from] bench::BenchError),
    /// `coalesce seed` failed.
    #[error(transparent)]
    Seed(#[from] bench::seed::SeedError),
    /// The async runtime could not start.
    #[error("could not start the async runtime: {0}")]
    Runtime(#[source] io::Error),
}

/// Parse the command line, run the command, report failure on one line.
pub(crate) fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    // The bench measures a multi-threaded server; the other commands need one thread.
    let mut builder = match cli.command {
        Command::Bench(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let ran = builder
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
        .and_then(|runtime| runtime.block_on(run(cli)));
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error.to_string()));
            error.exit_code()
        }
    }
}

impl CliError {
    /// 2 for a command-line mistake found after parsing (flags that cannot
    /// work together, tool arguments that are not JSON, a user id the store
    /// refuses), as for the ones clap finds; 1 for anything else.
    fn exit_code(&self) -> ExitCode {
        match self {
            Self::Bench(bench::BenchError::Usage(_))
            | Self::ToolArguments(_)
            | Self::UserId(_)
            | Self::Store(StoreError::InvalidInput(_)) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }
}

/// Run one parsed command.
async fn run(cli: Cli) -> Result<(), CliError> {
    let target = db::Target {
        url: cli.database_url,
        connect_timeout: cli.connect_timeout,
        statement_timeout: cli.statement_timeout,
    };
    match cli.command {
        Command::Migrate => migrate::run(&target).await,
        Command::Seed(args) => seed::run(&target, args).await,
        Command::Session(args) => session::run(&target, args).await,
        Command::Tool(args) => tool::run(&target, args).await,
        Command::Mcp(args) => mcp::run(&target, args).await,
        Command::Bench(args) => Ok(bench::run(&target, args).await?),
    }
}

/// Help and version go to stdout with success; any other parse error is
/// one line on stderr with clap's usage exit status (2).
fn usage_error(error: &clap::Error) -> ExitCode {
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        return match error.print() {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let names: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .filter(|name| name != "help")
            .collect();
        eprintln!(
            "error: a subcommand is required: {} (see --help)",
            names.join(", ")
        );
        return ExitCode::from(2);
    }
    // clap's first paragraph is the message; usage and tips follow.
    let rendered = error.render().to_string();
    let paragraph: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .collect();
    let message = one_line(&paragraph.join(" "));
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    eprintln!("error: {message} (see --help)");
    ExitCode::from(2)
}

/// A message on one line: line breaks become spaces.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn one_line_joins_lines() {
        assert_eq!(one_line("a\n  b\r\nc "), "a b c");
    }
}
