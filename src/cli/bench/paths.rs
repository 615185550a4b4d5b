//! The paths a workload runs through, on the same database and pool:
//! naive (one statement per item), `coalesce` (the coalescing repository and
//! the store's batch API) and, with the `peers` feature, the `dataloader`
//! crate and async-graphql's `DataLoader` over the same batched SQL.

use super::{
    seed::{Rng, SeedSpec, bulk_key, memory_category, memory_key, scratch_key, user_id},
    workload::Workload,
};
use coalesce::{BatchSettings, StatsSnapshot};
use coalesce_store::db::Database;
use coalesce_store::repo::{
    CoalescingRepository, MemoryBatchRepository, MemoryRepository, PlainRepository,
};
use coalesce_store::{Category, MemoryKey, MemoryStore, NewMemory, StoreError};
use serde::Serialize;

/// A way of reaching the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathKind {
    /// One statement per item: `PlainRepository` and per-item statements.
    Naive,
    /// `CoalescingRepository` over the memory store, and the store's batch API.
    Coalesce,
    /// The batched ceiling: the same kind of keys pre-chunked into full
    /// batches, fetched back to back by one worker per pool connection
    /// through the same batched SQL (`profile` and `memory` only).
    Ceiling,
    /// The `dataloader` crate 0.18 (`non_cached::Loader`, default settings)
    /// over the same batched SQL (needs `--features peers`).
    Dataloader,
    /// async-graphql 7's `DataLoader` (no cache, default 1 ms delay) over the
    /// same batched SQL (needs `--features peers`).
    AsyncGraphql,
    /// async-graphql 7's `DataLoader` with zero delay (needs `--features peers`).
    #[value(name = "async-graphql-0")]
    #[serde(rename = "async-graphql-0")]
    AsyncGraphqlNoDelay,
}

impl PathKind {
    /// Every path, in report order.
    pub const ALL: [Self; 6] = [
        Self::Naive,
        Self::Coalesce,
        Self::Ceiling,
        Self::Dataloader,
        Self::AsyncGraphql,
        Self::AsyncGraphqlNoDelay,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Naive => "naive",
            Self::Coalesce => "coalesce",
            Self::Ceiling => "ceiling",
            Self::Dataloader => "dataloader",
            Self::AsyncGraphql => "async-graphql",
            Self::AsyncGraphqlNoDelay => "async-graphql-0",
        }
    }

    /// Whether this is a peer loader, built only with `--features peers`.
    pub fn is_peer(self) -> bool {
        !matches!(self, Self::Naive | Self::Coalesce | Self::Ceiling)
    }

    /// Whether this build can run the path.
    pub fn available(self) -> bool {
        cfg!(feature = "peers") || !self.is_peer()
    }

    /// Whether the path has an implementation of `workload`: peers only
    /// batch single-key reads (`profile`, `memory`, `profiles`), the
    /// ceiling only `profile` and `memory`.
    pub fn supports(self, workload: Workload) -> bool {
        if self == Self::Ceiling {
            return super::ceiling::supports(workload);
        }
        !self.is_peer()
            || matches!(
                workload,
                Workload::Profile | Workload::Memory | Workload::Profiles
            )
    }
}

/// Why one operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The store or repository failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A per-item statement failed.
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// A peer loader failed.
    #[error("{0}")]
    Peer(String),
    /// A row the seeded data holds was not returned.
    #[error("seeded {0} not found: wrong data or a broken path")]
    Missing(&'static str),
}

/// Batching statistics of an engine over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct EngineStats {
    /// Items requested from the engine.
    pub requests: u64,
    /// Batches (queries) the engine sent.
    pub batches: u64,
    /// Keys sent over all batches.
    pub keys: u64,
    /// Mean keys per batch.
    pub mean_batch: f64,
    /// The largest batch (since the engine was built, warm-up included).
    pub largest_batch: u64,
    /// Requests joined to a key already pending or in flight.
    pub deduplicated: u64,
    /// Batches that failed.
    pub errors: u64,
}

impl EngineStats {
    /// The counts of a loader snapshot.
    pub fn from_snapshot(s: &StatsSnapshot) -> Self {
        Self {
            requests: s.loads_requested,
            batches: s.total_operations,
            keys: s.keys_dispatched,
            mean_batch: s.mean_batch_size,
            largest_batch: s.largest_batch,
            deduplicated: s.deduplicated_keys,
            errors: s.errors,
        }
    }

    /// Mean keys per batch, one decimal (as the loader's statistics round
    /// it), 0 without batches.
    pub fn mean_batch(keys: u64, batches: u64) -> f64 {
        if batches == 0 {
            0.0
        } else {
            (keys as f64 / batches as f64 * 10.0).round() / 10.0
        }
    }

    /// What happened between `before` and `self`.
    pub fn since(&self, before: &Self) -> Self {
        let batches = self.batches.saturating_sub(before.batches);
        let keys = self.keys.saturating_sub(before.keys);
        Self {
            requests: self.requests.saturating_sub(before.requests),
            batches,
            keys,
            mean_batch: Self::mean_batch(keys, batches),
            largest_batch: self.largest_batch,
            deduplicated: self.deduplicated.saturating_sub(before.deduplicated),
            errors: self.errors.saturating_sub(before.errors),
        }
    }
}

/// What the workloads need to know about the data.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// The seeded data.
    pub spec: SeedSpec,
    /// Memories per `bulk-save` operation.
    pub bulk_size: usize,
    /// Most keys per batch of the coalescing repository's loaders.
    pub max_batch_size: usize,
}

impl Shape {
    pub(super) fn user(&self, rng: &mut Rng) -> u32 {
        u32::try_from(rng.below(u64::from(self.spec.users))).unwrap_or(0)
    }

    fn item(&self, rng: &mut Rng) -> u32 {
        u32::try_from(rng.below(u64::from(self.spec.memories_per_user))).unwrap_or(0)
    }

    /// The key of a random seeded memory of `user`.
    pub(super) fn seeded_key(&self, user: u32, rng: &mut Rng) -> MemoryKey {
        let item = self.item(rng);
        MemoryKey::new(user_id(user), memory_category(item), memory_key(item))
    }
}

/// A scratch memory of `user`.
fn scratch_memory(user: &str, i: u64, rng: &mut Rng) -> NewMemory {
    let category = Category::ALL[(i % 5) as usize];
    let value = format!("written {:016x}", rng.next_u64());
    NewMemory::new(user, category, scratch_key(i), value)
}

enum Imp {
    Naive(PlainRepository),
    /// The repository, and through `inner()` the store's batch API.
    Coalesce(Box<CoalescingRepository<MemoryStore>>),
    #[cfg(feature = "peers")]
    Peer(super::peers::Peers),
}

/// One path, ready to run operations.
pub struct Target {
    shape: Shape,
    db: Database,
    imp: Imp,
}

impl Target {
    /// Build `kind` over `db`, fresh (so its statistics are its own).
    /// `None` when this build lacks the path, and for the ceiling, which
    /// has no per-operation target (see `ceiling`).
    pub fn build(kind: PathKind, db: &Database, shape: Shape) -> Result<Option<Self>, StoreError> {
        let imp = match kind {
            PathKind::Ceiling => return Ok(None),
            PathKind::Naive => Imp::Naive(PlainRepository::new(db.clone())),
            PathKind::Coalesce => {
                let store = MemoryStore::new(db.clone())?;
                let settings = BatchSettings {
                    max_batch_size: shape.max_batch_size,
                    max_concurrent_batches: store.max_concurrent_batches(),
                    ..BatchSettings::default()
                };
                let repo = CoalescingRepository::with_settings(store, settings)
                    .map_err(|error| StoreError::InvalidInput(error.into()))?;
                Imp::Coalesce(Box::new(repo))
            }
            #[cfg(feature = "peers")]
            PathKind::Dataloader | PathKind::AsyncGraphql | PathKind::AsyncGraphqlNoDelay => {
                Imp::Peer(super::peers::Peers::new(kind, db))
            }
            #[cfg(not(feature = "peers"))]
            PathKind::Dataloader | PathKind::AsyncGraphql | PathKind::AsyncGraphqlNoDelay => {
                return Ok(None);
            }
        };
        Ok(Some(Self {
            shape,
            db: db.clone(),
            imp,
        }))
    }

    /// The engine's statistics so far; `None` for the naive path.
    pub fn engine_stats(&self) -> Option<EngineStats> {
        match &self.imp {
            Imp::Naive(_) => None,
            Imp::Coalesce(repo) => Some(EngineStats::from_snapshot(
                &repo.stats().merge(&repo.inner().stats()),
            )),
            #[cfg(feature = "peers")]
            Imp::Peer(peers) => Some(peers.stats()),
        }
    }

    /// Run one operation of `workload`, drawing its inputs from `rng`.
    pub async fn op(&self, workload: Workload, rng: &mut Rng) -> Result<(), OpError> {
        match &self.imp {
            Imp::Naive(repo) => match workload {
                Workload::Profile | Workload::Memory | Workload::Onboarding | Workload::Mixed => {
                    drop_in(repo, workload, &self.shape, rng).await
                }
                // Boxed: the batch workloads' futures are kilobytes, and
                // the per-item arms' callers would copy that much per op.
                _ => Box::pin(self.naive_batch(repo, workload, rng)).await,
            },
            Imp::Coalesce(repo) => match workload {
                Workload::Profile | Workload::Memory | Workload::Onboarding | Workload::Mixed => {
                    drop_in(repo.as_ref(), workload, &self.shape, rng).await
                }
                _ => Box::pin(self.coalesced_batch(repo.inner(), workload, rng)).await,
            },
            #[cfg(feature = "peers")]
            Imp::Peer(peers) => {
                let shape = &self.shape;
                match workload {
                    Workload::Profile => {
                        let user = user_id(shape.user(rng));
                        peers
                            .profile(user)
                            .await?
                            .ok_or(OpError::Missing("profile"))?;
                        Ok(())
                    }
                    Workload::Memory => {
                        let user = shape.user(rng);
                        let key = shape.seeded_key(user, rng);
                        peers.memory(key).await?.ok_or(OpError::Missing("memory"))?;
                        Ok(())
                    }
                    Workload::Profiles => {
                        let users = five_users(shape, rng);
                        let found = futures::future::try_join_all(
                            users.into_iter().map(|u| peers.profile(u)),
                        )
                        .await?;
                        if found.iter().all(Option::is_some) {
                            Ok(())
                        } else {
                            Err(OpError::Missing("profile"))
                        }
                    }
                    _ => Err(OpError::Peer(format!(
                        "workload {} has no peer implementation",
                        workload.name()
                    ))),
                }
            }
        }
    }

    /// The specification's batch operations done one statement per item,
    /// one after another (the N+1 pattern).
    async fn naive_batch(
        &self,
        repo: &PlainRepository,
        workload: Workload,
        rng: &mut Rng,
    ) -> Result<(), OpError> {
        let shape = &self.shape;
        match workload {
            Workload::GetMemories => {
                let user = shape.user(rng);
                for key in ten_keys(shape, user, rng) {
                    repo.get_memory(&key)
                        .await?
                        .ok_or(OpError::Missing("memory"))?;
                }
            }
            Workload::Save => {
                let user = user_id(shape.user(rng));
                for i in 0..20 {
                    repo.save_memory(scratch_memory(&user, i, rng)).await?;
                }
            }
            Workload::Delete => {
                let user = user_id(shape.user(rng));
                for i in 0..15 {
                    repo.delete_memory(&user, &scratch_key(i)).await?;
                }
            }
            Workload::Profiles => {
                for user in five_users(shape, rng) {
                    repo.get_profile(&user)
                        .await?
                        .ok_or(OpError::Missing("profile"))?;
                }
            }
            Workload::Search => {
                let user = user_id(shape.user(rng));
                for category in four_categories(rng) {
                    self.db.top_memories_direct(&user, category, 10).await?;
                }
            }
            Workload::Prefetch => {
                let user = user_id(shape.user(rng));
                self.db
                    .profile_direct(&user)
                    .await?
                    .ok_or(OpError::Missing("profile"))?;
                self.db.recent_memories(&user, 20).await?;
                self.db.onboarding_direct(&user).await?;
                self.db.count_memories(&user).await?;
            }
            Workload::BulkSave => {
                for memory in bulk_rows(shape, rng) {
                    repo.save_memory(memory).await?;
                }
            }
            Workload::Profile | Workload::Memory | Workload::Onboarding | Workload::Mixed => {
                drop_in(repo, workload, shape, rng).await?;
            }
        }
        Ok(())
    }

    /// The specification's batch operations through the store's batch API.
    async fn coalesced_batch(
        &self,
        store: &MemoryStore,
        workload: Workload,
        rng: &mut Rng,
    ) -> Result<(), OpError> {
        let shape = &self.shape;
        match workload {
            Workload::GetMemories => {
                let user = shape.user(rng);
                let keys: Vec<String> = ten_keys(shape, user, rng).map(|k| k.key).collect();
                let wanted = keys.len();
                let found = store
                    .batch_get_memories(&user_id(user), None, Some(&keys), None)
                    .await?;
                if found.len() != wanted {
                    return Err(OpError::Missing("memory"));
                }
            }
            Workload::Save => {
                let user = user_id(shape.user(rng));
                let rows: Vec<NewMemory> = (0..20).map(|i| scratch_memory(&user, i, rng)).collect();
                store.batch_save_memories(&rows).await?;
            }
            Workload::Delete => {
                let user = user_id(shape.user(rng));
                let keys: Vec<String> = (0..15).map(scratch_key).collect();
                store.batch_delete_memories(&user, &keys).await?;
            }
            Workload::Profiles => {
                let users = five_users(shape, rng);
                let found = store.batch_get_profiles(&users).await?;
                if found.len() != users.len() {
                    return Err(OpError::Missing("profile"));
                }
            }
            Workload::Search => {
                let user = user_id(shape.user(rng));
                store
                    .bulk_memory_search(&user, &four_categories(rng), 10)
                    .await?;
            }
            Workload::Prefetch => {
                let user = user_id(shape.user(rng));
                let data = store.prefetch_user_data(&user).await?;
                data.profile.ok_or(OpError::Missing("profile"))?;
            }
            Workload::BulkSave => {
                let rows: Vec<NewMemory> = bulk_rows(shape, rng).collect();
                store.batch_save_memories(&rows).await?;
            }
            Workload::Profile | Workload::Memory | Workload::Onboarding | Workload::Mixed => {
                return Err(OpError::Peer(format!(
                    "workload {} is a drop-in workload",
                    workload.name()
                )));
            }
        }
        Ok(())
    }
}

/// One drop-in operation through the per-item repository trait.
async fn drop_in<R: MemoryRepository>(
    repo: &R,
    workload: Workload,
    shape: &Shape,
    rng: &mut Rng,
) -> Result<(), OpError> {
    let workload = match workload {
        Workload::Mixed => match rng.below(100) {
            0..40 => Workload::Profile,
            40..75 => Workload::Memory,
            75..85 => Workload::Onboarding,
            85..95 => Workload::Save,
            _ => Workload::Delete,
        },
        other => other,
    };
    let user = shape.user(rng);
    match workload {
        Workload::Profile => {
            repo.get_profile(&user_id(user))
                .await?
                .ok_or(OpError::Missing("profile"))?;
        }
        Workload::Memory => {
            let key = shape.seeded_key(user, rng);
            repo.get_memory(&key)
                .await?
                .ok_or(OpError::Missing("memory"))?;
        }
        Workload::Onboarding => {
            repo.get_onboarding(&user_id(user))
                .await?
                .ok_or(OpError::Missing("onboarding"))?;
        }
        Workload::Save => {
            let i = rng.below(20);
            repo.save_memory(scratch_memory(&user_id(user), i, rng))
                .await?;
        }
        _ => {
            let key = scratch_key(rng.below(20));
            repo.delete_memory(&user_id(user), &key).await?;
        }
    }
    Ok(())
}

/// Ten distinct seeded memory keys of `user` (fewer if it has fewer).
fn ten_keys(shape: &Shape, user: u32, rng: &mut Rng) -> impl Iterator<Item = MemoryKey> {
    let per_user = shape.spec.memories_per_user;
    let first = shape.item(rng);
    (0..per_user.min(10)).map(move |i| {
        let item = (first + i) % per_user;
        MemoryKey::new(user_id(user), memory_category(item), memory_key(item))
    })
}

/// Five distinct seeded users (fewer if there are fewer).
fn five_users(shape: &Shape, rng: &mut Rng) -> Vec<String> {
    let users = shape.spec.users;
    let first = shape.user(rng);
    (0..users.min(5))
        .map(|i| user_id((first + i) % users))
        .collect()
}

/// Four of the five categories, starting at a random one.
fn four_categories(rng: &mut Rng) -> Vec<Category> {
    let first = rng.index(5);
    (0..4).map(|i| Category::ALL[(first + i) % 5]).collect()
}

/// `bulk_size` distinct memories: 50 scratch keys per user over
/// consecutive users from a random one.
fn bulk_rows<'a>(shape: &'a Shape, rng: &mut Rng) -> impl Iterator<Item = NewMemory> + 'a {
    let first = u64::from(shape.user(rng));
    let stamp = rng.next_u64();
    let users = u64::from(shape.spec.users);
    (0..shape.bulk_size as u64).map(move |i| {
        let user = user_id(u32::try_from((first + i / 50) % users).unwrap_or(0));
        let category = Category::ALL[(i % 5) as usize];
        NewMemory::new(user, category, bulk_key(i), format!("bulk {stamp:016x}"))
    })
}
