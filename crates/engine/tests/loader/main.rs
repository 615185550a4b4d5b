//! Behaviour of the coalescing engine: batching, failure semantics, cache,
//! statistics, and property tests against a direct per-key lookup.

mod properties;
mod semantics;
mod source;
mod writer;
