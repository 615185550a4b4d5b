//! `coalesce-graphql serve` runs the example service; `coalesce-graphql
//! queries` prints the fixed query set's POST bodies, one a line (the
//! benchmark's load script reads them).

use clap::{Parser, Subcommand};
use coalesce_graphql::{Mode, QUERY_SET, ServiceError, Settings, serve};
use std::{io::Write, net::SocketAddr};

#[derive(Parser)]
#[command(about = "Example GraphQL service: per-item resolvers in three modes")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create and seed the tables, then serve `POST /graphql` and `GET /stats`.
    Serve {
        /// How per-item reads reach the database.
        #[arg(long, value_enum, default_value = "coalesce")]
        mode: Mode,
        /// `postgres://...` or `sqlite:...`; default: a file in the temp directory.
        #[arg(long)]
        database_url: Option<String>,
        /// Prefix of the service's table names.
        #[arg(long, default_value = "graphql_example_")]
        table_prefix: String,
        /// Connections in the database pool.
        #[arg(long, default_value_t = 10)]
        pool_size: u32,
        /// Where to listen; port 0 picks a free port. The address is
        /// printed as `listening on ADDRESS` once the service answers.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// Print the fixed query set's POST bodies, one a line.
    Queries,
}

#[tokio::main]
async fn main() -> Result<(), ServiceError> {
    match Cli::parse().command {
        Command::Serve {
            mode,
            database_url,
            table_prefix,
            pool_size,
            listen,
        } => {
            let settings = Settings {
                mode,
                database_url: database_url.unwrap_or_else(default_sqlite_url),
                table_prefix,
                pool_size,
                listen,
            };
            serve(settings, |address| {
                println!("listening on {address}");
                // Whoever waits for the line reads it through a pipe.
                let _ = std::io::stdout().flush();
            })
            .await
        }
        Command::Queries => {
            for query in QUERY_SET {
                println!("{}", query.body());
            }
            Ok(())
        }
    }
}

/// A SQLite file in the temp directory, created if missing.
fn default_sqlite_url() -> String {
    let file = std::env::temp_dir().join("coalesce-graphql-example.db");
    format!("sqlite:{}?mode=rwc", file.display())
}
