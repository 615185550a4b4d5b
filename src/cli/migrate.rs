//! `coalesce migrate`.

use super::{CliError, db};
use std::io::Write;

/// Apply the migrations and say which were applied.
pub(crate) async fn run(target: &db::Target) -> Result<(), CliError> {
    let database = db::database(target).await?;
    let report = database.migrate_report().await?;
    let backend = format!("{:?}", database.backend());
    let mut out = std::io::stdout().lock();
    let mut say = |line: String| writeln!(out, "{line}").map_err(CliError::Output);
    if report.applied.is_empty() {
        say(format!(
            "{backend} database is up to date: {} migration(s) already applied, none to apply",
            report.already_applied.len()
        ))?;
    }
    for migration in &report.applied {
        say(format!(
            "applied migration {} ({}) to the {backend} database",
            migration.version, migration.description
        ))?;
    }
    Ok(())
}
