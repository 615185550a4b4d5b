//! An example GraphQL service (axum + async-graphql) whose resolvers read
//! one item at a time, over nested lists: `authors { posts { comments {
//! author } } }`, three levels of fan-out below the root. One binary, three
//! modes ([`Mode`]): a statement per item, async-graphql's `DataLoader`,
//! and coalesce `Loader`s running the very same async-graphql loaders
//! through `coalesce::AsyncGraphqlSource`.
//!
//! It runs on SQLite or PostgreSQL, creates and seeds its own tables (a
//! prefix keeps them apart from anyone else's), reads through the SQL
//! toolkit's batched statements and counts every statement it sends
//! (`GET /stats`). `scripts/graphql-bench.sh` loads it over HTTP;
//! `tests/modes.rs` checks that the three modes answer alike.
//!
//! ```text
//! cargo run -p coalesce-graphql -- serve --mode coalesce
//! cargo run -p coalesce-graphql -- serve --mode naive --database-url postgres://postgres@127.0.0.1:5432/test
//! cargo run -p coalesce-graphql -- queries      # the fixed query set, one POST body a line
//! ```

pub mod db;
mod model;
mod queries;
mod repo;
mod schema;
mod seed;
mod server;

pub use queries::{FixedQuery, QUERY_SET};
pub use repo::Mode;
pub use seed::{AUTHORS, COMMENTS_PER_POST, POSTS_PER_AUTHOR};
pub use server::{ServiceError, Settings, serve};
