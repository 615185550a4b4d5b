//! Serial equivalence (issue 19): each batched read, upsert and delete of
//! the toolkit must answer every caller, and leave the table, as the
//! per-item statements it replaces would, run one by one in batch order
//! under the database's own comparison rules (collation, PAD SPACE,
//! `CHAR(n)`, NULL, integer widths); and one bad item must fail only its
//! own caller.
//!
//! - `twins`: twin tables, the naive per-item statements, the comparison.
//! - `properties`: random batches on every backend, direct and through
//!   the engine's `Loader` / `Writer`.
//! - `defects`: one failing-first test per defect of the issue (1 to 5).
//! - `isolation`: one bad caller among good ones, per error class
//!   (defect 6), through the per-item calls of `assumed_api`.
//! - `keys_and_names`: key types and identifiers (defect 7).

#[path = "../common/mod.rs"]
mod common;

mod assumed_api;
mod backend;
mod defects;
mod isolation;
mod keys_and_names;
mod kinds;
mod properties;
mod rows;
mod twins;

use backend::Backend;

/// PostgreSQL's case-insensitive text type (the `citext` contrib module).
pub const CITEXT: &str = "CREATE EXTENSION IF NOT EXISTS citext";

/// A PostgreSQL ICU collation that ignores case and accents (`e`, `E`,
/// `é` are one key): nondeterministic, so equality is the collation's,
/// not the bytes'.
pub const ICU_CI_AI: &str = "CREATE COLLATION IF NOT EXISTS coalesce_ci_ai \
     (provider = icu, locale = 'und-u-ks-level1', deterministic = false)";

/// Run `sql` once per process: tests running at once may race to create
/// the same extension, and the loser's error means it exists now.
pub async fn setup<DB: Backend>(pool: &sqlx::Pool<DB>, sql: &str) {
    let mut last = None;
    for _ in 0..3 {
        match DB::run(pool, sql.to_owned()).await {
            Ok(()) => return,
            Err(error) => last = Some(error),
        }
    }
    panic!("{}: {sql}: {last:?}", DB::NAME);
}
