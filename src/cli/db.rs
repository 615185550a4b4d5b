//! Opening the database a command names.

use super::CliError;
use coalesce_store::MemoryStore;
use coalesce_store::db::{Backend, ConnectOptions, Database};
use std::{path::Path, time::Duration};

/// Connections each command opens at most.
const POOL_SIZE: u32 = 4;

/// The database the command line names, and how to connect to it.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// `--database-url`.
    pub(crate) url: String,
    /// `--connect-timeout`.
    pub(crate) connect_timeout: Duration,
    /// `--statement-timeout`.
    pub(crate) statement_timeout: Duration,
}

impl Target {
    /// The store's connect options for a pool of `pool_size`, with the
    /// command line's timeouts.
    pub(crate) fn options(&self, pool_size: u32) -> ConnectOptions {
        ConnectOptions::new(pool_size)
            .with_connect_timeout(self.connect_timeout)
            .with_statement_timeout(self.statement_timeout)
    }
}

/// A migrated memory store on `target`.
pub(crate) async fn store(target: &Target) -> Result<MemoryStore, CliError> {
    let db = database(target).await?;
    db.migrate().await?;
    Ok(MemoryStore::new(db)?)
}

/// A pool on `target`'s database, not migrated.
pub(crate) async fn database(target: &Target) -> Result<Database, CliError> {
    create_sqlite_dir(&target.url)?;
    Ok(Database::connect_with(&target.url, &target.options(POOL_SIZE)).await?)
}

/// Create the directory a `sqlite://` file URL points into, if missing
/// (SQLite creates the file, not its directory). Other URLs are left alone;
/// a bad URL is reported by the connection that follows.
fn create_sqlite_dir(url: &str) -> Result<(), CliError> {
    if !matches!(Backend::from_url(url), Ok(Backend::Sqlite)) {
        return Ok(());
    }
    let Some(dir) = sqlite_dir(url) else {
        return Ok(());
    };
    std::fs::create_dir_all(dir).map_err(|source| CliError::CreateDir {
        path: dir.to_owned(),
        source,
    })
}

/// The directory of a SQLite URL's file: `None` for in-memory databases
/// and files in the current directory.
fn sqlite_dir(url: &str) -> Option<&Path> {
    let rest = url.split_once(':')?.1;
    let path = rest.strip_prefix("//").unwrap_or(rest);
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(":memory:") {
        return None;
    }
    Path::new(path)
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_dirs() {
        let dir = |url| sqlite_dir(url).map(|d| d.to_str().unwrap_or_default().to_owned());
        assert_eq!(
            dir("sqlite://target/coalesce.db").as_deref(),
            Some("target")
        );
        assert_eq!(
            dir("sqlite:///tmp/a/b.db?mode=rwc").as_deref(),
            Some("/tmp/a")
        );
        assert_eq!(dir("sqlite:data.db"), None);
        assert_eq!(dir("sqlite::memory:"), None);
        assert_eq!(dir("sqlite://:memory:"), None);
    }
}
