//! `coalesce seed`: deterministic demo data, so `session` and `tool` have
//! something to show on a fresh database. The bench's seeding, reused.

use super::{
    CliError,
    bench::seed::{self, SeedSpec, Seeded},
    db,
};
use std::io::Write;

/// `seed`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct SeedArgs {
    /// Users to write, each with a profile and onboarding data; their ids
    /// are user-000000, user-000001, ...
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    users: u32,
    /// Memories per user, spread over the five categories.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    memories_per_user: u32,
    /// Random seed of the generated text: the same flags write the same data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// Migrate, write the data unless the database already holds it, and say
/// on one line what is there and which user to try.
pub(crate) async fn run(target: &db::Target, args: SeedArgs) -> Result<(), CliError> {
    let database = db::database(target).await?;
    database.migrate().await?;
    let spec = SeedSpec {
        seed: args.seed,
        users: args.users,
        memories_per_user: args.memories_per_user,
    };
    let seeded = seed::seed(&database, &spec, |_| ()).await?;
    let holds = seeded.holds();
    let first = seed::user_id(0);
    let data = format!(
        "{} users ({first} to {}), {} memories each (seed {})",
        holds.users,
        seed::user_id(holds.users.saturating_sub(1)),
        holds.memories_per_user,
        holds.seed
    );
    let backend = database.backend();
    let said = match seeded {
        Seeded::AlreadySeeded(_) => format!("the {backend:?} database already holds {data}"),
        Seeded::Written { users, took, .. } => format!(
            "wrote {users} users in {:.1} s: the {backend:?} database holds {data}",
            took.as_secs_f64()
        ),
    };
    writeln!(
        std::io::stdout().lock(),
        "{said}; try: coalesce session --user-id {first}"
    )
    .map_err(CliError::Output)
}
