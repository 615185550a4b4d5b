//! `coalesce session`: the specification's entrypoint integration.

use super::{CliError, db};
use std::{io::Write, time::Instant};

/// `session`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct SessionArgs {
    /// The user whose session starts.
    #[arg(long)]
    user_id: String,
}

/// Open the store, prefetch the user's data, print what the specification
/// prints: the prefetch time, the memory count and the statistics.
pub(crate) async fn run(url: &str, args: SessionArgs) -> Result<(), CliError> {
    let store = db::store(url).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "[ENTRYPOINT] ✓ Database batcher initialized").map_err(CliError::Output)?;
    let started = Instant::now();
    let data = store.prefetch_user_data(&args.user_id).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let onboarding = match &data.onboarding {
        None => "none",
        Some(state) if state.completed => "completed",
        Some(_) => "in progress",
    };
    let stats = serde_json::to_string_pretty(&store.stats()).map_err(std::io::Error::other);
    let lines = [
        format!("[BATCH] Prefetch completed in {elapsed:.2}s"),
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
        String::new(),
        "Stats:".to_owned(),
        stats.map_err(CliError::Output)?,
    ];
    lines
        .iter()
        .try_for_each(|line| writeln!(out, "{line}"))
        .map_err(CliError::Output)
}
