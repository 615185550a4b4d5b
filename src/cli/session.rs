//! `coalesce session`: the specification's entrypoint integration, with
//! what the prefetch saved: its reads in parallel against the same reads
//! one after another (the naive path).

use super::{CliError, db};
use coalesce_store::db::Database;
use coalesce_store::{StoreConfig, StoreError};
use std::{
    io::Write,
    time::{Duration, Instant},
};

/// `session`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct SessionArgs {
    /// The user whose session starts (after `coalesce seed`: user-000000, ...).
    #[arg(long)]
    user_id: String,
}

/// Open the store, prefetch the user's data, print what the specification
/// prints (the prefetch time, the memory count, the statistics), then the
/// same reads made one after another, for comparison. Both are timed on
/// open connections (a first, untimed prefetch opens them).
pub(crate) async fn run(target: &db::Target, args: SessionArgs) -> Result<(), CliError> {
    let store = db::store(target).await?;
    let database = store.database();
    let mut out = std::io::stdout().lock();
    writeln!(out, "[ENTRYPOINT] ✓ Database batcher initialized").map_err(CliError::Output)?;
    // Untimed: opens the pool's connections, so both timings below are of
    // the reads alone.
    store.prefetch_user_data(&args.user_id).await?;
    let statements = database.statements();
    let started = Instant::now();
    let data = store.prefetch_user_data(&args.user_id).await?;
    let parallel = started.elapsed();
    let parallel_statements = database.statements() - statements;
    let (sequential, sequential_statements) = one_after_another(database, &args.user_id).await?;
    let onboarding = match &data.onboarding {
        None => "none",
        Some(state) if state.completed => "completed",
        Some(_) => "in progress",
    };
    let stats = serde_json::to_string_pretty(&store.stats()).map_err(std::io::Error::other);
    let mut lines = vec![
        format!(
            "[BATCH] Prefetch completed in {:.2}s ({parallel_statements} statements in parallel, {})",
            parallel.as_secs_f64(),
            millis(parallel)
        ),
        format!("[BATCH] ✓ Prefetched {} memories", data.memory_count),
        format!(
            "[SESSION] profile: {}, recent memories: {}, onboarding: {onboarding}",
            if data.profile.is_some() {
                "yes"
            } else {
                "none"
            },
            data.recent_memories.len(),
        ),
        format!(
            "[NAIVE] the same reads one after another: {sequential_statements} statements in {} ({:.1}x the prefetch's time)",
            millis(sequential),
            sequential.as_secs_f64() / parallel.as_secs_f64().max(1e-9)
        ),
    ];
    if data.profile.is_none() && data.memory_count == 0 && data.onboarding.is_none() {
        lines.push(format!(
            "note: user {} has no data in this database; `coalesce seed` writes demo users (try --user-id user-000000)",
            args.user_id
        ));
    }
    lines.extend([
        String::new(),
        "Stats:".to_owned(),
        stats.map_err(CliError::Output)?,
    ]);
    lines
        .iter()
        .try_for_each(|line| writeln!(out, "{line}"))
        .map_err(CliError::Output)
}

/// The prefetch's four reads as the naive path makes them, each waiting
/// for the one before: how long they took and how many statements.
async fn one_after_another(
    database: &Database,
    user_id: &str,
) -> Result<(Duration, u64), CliError> {
    let failed = |context| move |source| CliError::Store(StoreError::Database { context, source });
    let statements = database.statements();
    let started = Instant::now();
    database
        .profile_direct(user_id)
        .await
        .map_err(failed("session: profile"))?;
    database
        .recent_memories(user_id, StoreConfig::default().recent_memories)
        .await
        .map_err(failed("session: recent memories"))?;
    database
        .onboarding_direct(user_id)
        .await
        .map_err(failed("session: onboarding"))?;
    database
        .count_memories(user_id)
        .await
        .map_err(failed("session: memory count"))?;
    Ok((started.elapsed(), database.statements() - statements))
}

/// A duration in milliseconds, two decimals.
fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1_000.0)
}
