//! The batched ceiling: the limit a coalescing loader chases. The same kind
//! of keys as the drop-in reads, drawn up front into full batches (the
//! loaders' most keys per batch) and fetched back to back through the same
//! batched statement by as many workers as the pool has connections: no
//! coalescing cost, no waiting for a batch to fill, no idle connection.
//!
//! Each key of a batch counts as one operation whose latency is the
//! batch's; the concurrency of the run does not apply (the workers are the
//! pool's connections).

use super::{
    paths::{OpError, Shape},
    progress::Meter,
    seed::{Rng, user_id},
    workload::{Limit, Outcome, Run, Tally, Workload, gather},
};
use coalesce_store::db::Database;
use std::{sync::Arc, time::Instant};

/// Whether the ceiling has a batched read for `workload`: the single-key
/// reads `profile` and `memory`.
pub fn supports(workload: Workload) -> bool {
    matches!(workload, Workload::Profile | Workload::Memory)
}

/// Fetch full batches of `workload`'s keys with one worker per pool
/// connection until `limit`.
pub async fn drive(
    db: &Database,
    shape: Shape,
    workload: Workload,
    limit: Limit,
    seed: u64,
    meter: &mut Meter,
) -> Outcome {
    let workers = usize::try_from(db.pool_size()).unwrap_or(1);
    let batch = shape.max_batch_size as u64;
    let tallies: Vec<Tally> = (0..workers).map(|_| Tally::new()).collect();
    let run = Run::start(limit);
    let tasks = tallies
        .into_iter()
        .enumerate()
        .map(|(worker, mut tally)| {
            let (run, db) = (Arc::clone(&run), db.clone());
            tokio::spawn(async move {
                let mut rng = Rng::for_item(&[seed, 0xce11, worker as u64]);
                let deadline = run.deadline();
                tokio::pin!(deadline);
                loop {
                    let n = run.claim(batch);
                    if n == 0 {
                        break;
                    }
                    let began = Instant::now();
                    let fetch = fetch(&db, &shape, workload, n, &mut rng);
                    let Some(result) = run.before_deadline(n, deadline.as_mut(), fetch).await
                    else {
                        break;
                    };
                    tally.record(began.elapsed(), n, result);
                }
                tally
            })
        })
        .collect();
    gather(&run, tasks, meter).await
}

/// One batch of `n` random keys of `workload`, in one statement; every key
/// must be found, as on the other paths.
async fn fetch(
    db: &Database,
    shape: &Shape,
    workload: Workload,
    n: u64,
    rng: &mut Rng,
) -> Result<(), OpError> {
    match workload {
        Workload::Memory => {
            let mut keys: Vec<_> = (0..n)
                .map(|_| {
                    let user = shape.user(rng);
                    shape.seeded_key(user, rng)
                })
                .collect();
            keys.sort_unstable();
            keys.dedup();
            let found = db.memories_by_key(&keys).await?;
            found
                .len()
                .eq(&keys.len())
                .then_some(())
                .ok_or(OpError::Missing("memory"))
        }
        _ => {
            let mut users: Vec<String> = (0..n).map(|_| user_id(shape.user(rng))).collect();
            users.sort_unstable();
            users.dedup();
            let found = db.profiles(&users).await?;
            found
                .len()
                .eq(&users.len())
                .then_some(())
                .ok_or(OpError::Missing("profile"))
        }
    }
}
