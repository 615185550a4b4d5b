//! Behaviour of the coalescing engine: batching, failure semantics, cache,
//! statistics, batch metrics, the async-graphql adapter, and property tests against a direct per-key lookup.

#[cfg(feature = "async-graphql")]
mod async_graphql_source;
mod contracts;
mod observe;
mod properties;
mod semantics;
mod source;
mod writer;
