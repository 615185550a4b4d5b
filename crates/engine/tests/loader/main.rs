//! Behaviour of the coalescing engine: batching, failure semantics, cache,
//! statistics, batch metrics, and property tests against a direct per-key lookup.

mod contracts;
mod observe;
mod properties;
mod semantics;
mod source;
mod writer;
