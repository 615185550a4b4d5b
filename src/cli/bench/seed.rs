//! Deterministic synthetic data: users with a profile, onboarding data and
//! memories spread over the five categories, written in bulk.
//!
//! Every value derives from `(seed, user, item)` alone, so two runs with the
//! same parameters write identical rows, and the workloads can compute which
//! rows exist without reading them. A marker profile records the parameters
//! of the data the database holds. Since user `n`'s rows depend only on the
//! seed and `n`, more users of the same seed and size contain fewer: a
//! request the marker covers writes nothing, a larger one writes only the
//! users missing, so `coalesce seed` and `coalesce bench` share one data set.
//!
//! The bench's own writes use keys no seeded memory has ([`scratch_key`],
//! [`bulk_key`]); [`remove_written`] deletes them to restore the seeded state.
//!
//! Refers only to the library (`coalesce::…`), so tests can include the file.

use coalesce_store::db::{Database, Pool};
use coalesce_store::{Category, MemoryStore, NewMemory, Onboarding, StoreConfig, StoreError};
use std::time::{Duration, Instant};

/// The user id under which the marker profile is stored.
pub const MARKER_USER: &str = "__coalesce_bench_seed__";

/// Rows per upsert statement while seeding (under SQLite's bind limit).
const SEED_ROWS_PER_STATEMENT: usize = 8_000;

/// Users whose profiles and onboarding rows go in one statement or transaction.
const USERS_PER_CHUNK: usize = 2_000;

/// A small, fast, deterministic pseudo-random generator (SplitMix64).
///
/// ```ignore
/// let mut a = Rng::for_item(&[7]);
/// let mut b = Rng::for_item(&[7]);
/// assert_eq!(a.next_u64(), b.next_u64());
/// ```
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose sequence is fixed by `parts` (a seed and the
    /// numbers of an item).
    pub fn for_item(parts: &[u64]) -> Self {
        let mut rng = Self(0x853c_49e6_748f_ea9b);
        for part in parts {
            rng.0 ^= *part;
            rng.next_u64();
        }
        rng
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        // Multiply-shift: unbiased enough for load generation, no division.
        ((u128::from(self.next_u64()) * u128::from(n.max(1))) >> 64) as u64
    }

    /// A number in `0..n` as `usize`.
    pub fn index(&mut self, n: usize) -> usize {
        usize::try_from(self.below(n as u64)).unwrap_or_default()
    }
}

const WORDS: [&str; 32] = [
    "coffee",
    "hiking",
    "rust",
    "piano",
    "berlin",
    "garden",
    "chess",
    "novel",
    "sailing",
    "python",
    "yoga",
    "tea",
    "jazz",
    "physics",
    "cooking",
    "cycling",
    "history",
    "cats",
    "painting",
    "running",
    "photography",
    "sushi",
    "mountains",
    "theatre",
    "poetry",
    "tennis",
    "astronomy",
    "baking",
    "travel",
    "design",
    "kayak",
    "music",
];

/// The parameters that determine the seeded data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedSpec {
    /// The random seed.
    pub seed: u64,
    /// How many users.
    pub users: u32,
    /// Memories per user, spread round-robin over the five categories.
    pub memories_per_user: u32,
}

/// The start of the marker's text, before the parameters.
const MARKER_PREFIX: &str = "coalesce bench data v1:";

impl SeedSpec {
    /// The text stored in the marker profile for these parameters.
    pub fn marker(&self) -> String {
        format!(
            "{MARKER_PREFIX} seed={} users={} memories_per_user={}",
            self.seed, self.users, self.memories_per_user
        )
    }

    /// The parameters a marker's text records; `None` if it is not one.
    ///
    /// ```ignore
    /// let spec = SeedSpec { seed: 1, users: 2, memories_per_user: 3 };
    /// assert_eq!(SeedSpec::from_marker(&spec.marker()), Some(spec));
    /// ```
    pub fn from_marker(text: &str) -> Option<Self> {
        let mut fields = text.strip_prefix(MARKER_PREFIX)?.split_whitespace();
        let mut field = |name: &str| fields.next()?.strip_prefix(name)?.parse().ok();
        Some(Self {
            seed: field("seed=")?,
            users: u32::try_from(field("users=")?).ok()?,
            memories_per_user: u32::try_from(field("memories_per_user=")?).ok()?,
        })
    }

    /// Whether data seeded with `self` contains `other`'s: the same seed
    /// and memories per user, at least as many users.
    pub fn covers(&self, other: &Self) -> bool {
        self.seed == other.seed
            && self.memories_per_user == other.memories_per_user
            && self.users >= other.users
    }

    /// A user's profile text.
    pub fn profile(&self, user: u32) -> String {
        let mut rng = Rng::for_item(&[self.seed, 1, u64::from(user)]);
        format!(
            "Profile of {}: likes {}",
            user_id(user),
            words(&mut rng, 12)
        )
    }

    /// A user's onboarding state.
    pub fn onboarding(&self, user: u32) -> Onboarding {
        let mut rng = Rng::for_item(&[self.seed, 2, u64::from(user)]);
        let step = rng.below(5);
        Onboarding {
            data: serde_json::json!({ "step": step, "interests": words(&mut rng, 3) }),
            completed: step == 4,
        }
    }

    /// A user's seeded memory number `item`.
    pub fn memory(&self, user: u32, item: u32) -> NewMemory {
        let mut rng = Rng::for_item(&[self.seed, 3, u64::from(user), u64::from(item)]);
        let count = 3 + rng.index(10);
        NewMemory::new(
            user_id(user),
            memory_category(item),
            memory_key(item),
            words(&mut rng, count),
        )
    }

    /// All seeded memories of a user.
    pub fn memories(&self, user: u32) -> impl Iterator<Item = NewMemory> + '_ {
        (0..self.memories_per_user).map(move |item| self.memory(user, item))
    }
}

/// The id of seeded user number `user`.
pub fn user_id(user: u32) -> String {
    format!("user-{user:06}")
}

/// The key of a user's seeded memory number `item`.
pub fn memory_key(item: u32) -> String {
    format!("k{item:03}")
}

/// The key of scratch memory `i`, written and deleted by the bench's write
/// workloads (no seeded memory has it).
pub fn scratch_key(i: u64) -> String {
    format!("w{i:02}")
}

/// The key of memory `i` of a `bulk-save` operation (no seeded memory has it).
pub fn bulk_key(i: u64) -> String {
    format!("b{i:05}")
}

/// Delete every memory the bench's workloads wrote ([`scratch_key`],
/// [`bulk_key`]) from the seeded users, restoring the seeded data; the
/// number of rows deleted. One statement, so its cost is one scan of the
/// memories table, not one statement per user touched; sent as a simple
/// query (it binds nothing), which prepares nothing: it runs through a
/// transaction pooler as it does directly.
pub async fn remove_written(db: &Database) -> Result<u64, SeedError> {
    let failed = |source| SeedError::Sql {
        what: "the removal of the rows the bench wrote",
        source,
    };
    const DELETE: &str =
        "DELETE FROM memories WHERE user_id LIKE 'user-%' AND (key LIKE 'w%' OR key LIKE 'b%')";
    // `key` is a reserved word in MySQL, quoted there.
    const DELETE_MYSQL: &str =
        "DELETE FROM memories WHERE user_id LIKE 'user-%' AND (`key` LIKE 'w%' OR `key` LIKE 'b%')";
    let deleted = match db.pool() {
        Pool::Postgres(pool) => sqlx::raw_sql(DELETE)
            .execute(pool)
            .await
            .map(|d| d.rows_affected()),
        Pool::MySql(pool) => sqlx::raw_sql(DELETE_MYSQL)
            .execute(pool)
            .await
            .map(|d| d.rows_affected()),
        Pool::Sqlite(pool) => sqlx::raw_sql(DELETE)
            .execute(pool)
            .await
            .map(|d| d.rows_affected()),
    };
    deleted.map_err(failed)
}

/// The category of a user's seeded memory number `item` (round-robin).
pub fn memory_category(item: u32) -> Category {
    Category::ALL[item as usize % Category::ALL.len()]
}

fn words(rng: &mut Rng, count: usize) -> String {
    let mut text = String::new();
    for i in 0..count {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(WORDS[rng.index(WORDS.len())]);
    }
    text
}

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// Writing memories through the store failed.
    #[error("seeding memories failed: {0}")]
    Store(#[from] StoreError),
    /// Writing profiles, onboarding rows or the marker failed.
    #[error("seeding {what} failed: {source}")]
    Sql {
        /// What was being written.
        what: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
}

/// What [`seed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeded {
    /// The database already held the data asked for: it holds this.
    AlreadySeeded(SeedSpec),
    /// Users were written: the database now holds `holds`.
    Written {
        /// The data the database holds now.
        holds: SeedSpec,
        /// Users written by this call (the others were there).
        users: u32,
        /// How long writing took.
        took: Duration,
    },
}

impl Seeded {
    /// The data the database holds after seeding.
    pub fn holds(&self) -> SeedSpec {
        match *self {
            Self::AlreadySeeded(holds) | Self::Written { holds, .. } => holds,
        }
    }
}

/// The data the marker says the database holds, if any.
pub async fn seeded(db: &Database) -> Result<Option<SeedSpec>, SeedError> {
    let marker = db.profile_direct(MARKER_USER).await;
    let marker = marker.map_err(|source| SeedError::Sql {
        what: "the marker",
        source,
    })?;
    Ok(marker.as_deref().and_then(SeedSpec::from_marker))
}

/// Make the database hold at least `spec`'s data: nothing is written if
/// the marker covers it, only the missing users if it holds fewer users of
/// the same seed and size, everything otherwise. `progress` is called with
/// the number of users written so far.
pub async fn seed(
    db: &Database,
    spec: &SeedSpec,
    mut progress: impl FnMut(u64),
) -> Result<Seeded, SeedError> {
    let held = seeded(db).await?;
    if let Some(held) = held.filter(|held| held.covers(spec)) {
        return Ok(Seeded::AlreadySeeded(held));
    }
    let first = held
        .filter(|held| {
            SeedSpec {
                users: spec.users,
                ..*held
            } == *spec
        })
        .map_or(0, |held| held.users);
    let start = Instant::now();
    let config = StoreConfig {
        rows_per_statement: SEED_ROWS_PER_STATEMENT,
        ..StoreConfig::default()
    };
    let store = MemoryStore::with_config(db.clone(), config)?;
    let users: Vec<u32> = (first..spec.users).collect();
    for chunk in users.chunks(USERS_PER_CHUNK) {
        let profiles: Vec<(String, String)> = chunk
            .iter()
            .map(|u| (user_id(*u), spec.profile(*u)))
            .collect();
        let onboarding: Vec<(String, Onboarding)> = chunk
            .iter()
            .map(|u| (user_id(*u), spec.onboarding(*u)))
            .collect();
        db.save_profiles(&profiles)
            .await
            .map_err(|source| SeedError::Sql {
                what: "profiles",
                source,
            })?;
        db.save_onboardings(&onboarding)
            .await
            .map_err(|source| SeedError::Sql {
                what: "onboarding data",
                source,
            })?;
        let memories: Vec<NewMemory> = chunk.iter().flat_map(|u| spec.memories(*u)).collect();
        for rows in memories.chunks(SEED_ROWS_PER_STATEMENT) {
            store.batch_save_memories(rows).await?;
        }
        progress(chunk.len() as u64);
    }
    let marker = db.save_profile(MARKER_USER, &spec.marker()).await;
    marker.map_err(|source| SeedError::Sql {
        what: "the marker",
        source,
    })?;
    Ok(Seeded::Written {
        holds: *spec,
        users: spec.users - first,
        took: start.elapsed(),
    })
}
