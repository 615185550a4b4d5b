//! `coalesce` command-line tool.
//!
//! MINIMAL entry point written on the `bench-cli` branch so that `coalesce
//! bench` can be built and tested there; the full CLI (migrate, session,
//! tool, mcp) is written on another branch and adds `Bench(BenchArgs)` to
//! its subcommands (with the module declared as `cli::bench`).

mod cli {
    //! Subcommands.
    pub mod bench;
}

use clap::{Parser, Subcommand, error::ErrorKind};
use std::process::ExitCode;

/// Request coalescing for database access.
#[derive(Debug, Parser)]
#[command(name = "coalesce", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Synthetic concurrent load against a database: naive vs coalesced paths.
    Bench(cli::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                drop(error.print());
                return if error.use_stderr() {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // One line: clap's first line is "error: ...".
            let rendered = error.render().to_string();
            eprintln!(
                "{}",
                rendered.lines().next().unwrap_or("error: bad arguments")
            );
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Bench(args) => runtime.block_on(cli::bench::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
