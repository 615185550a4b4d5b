//! The `coalesce` command line: see `coalesce --help` and `docs/tools.md`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
