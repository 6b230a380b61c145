//! Integration tests of `switchboard-cache` through its public API.
//!
//! Time-dependent tests run on paused Tokio time: `tokio::time::advance`
//! moves the clock the cache judges freshness by.

mod coalescing;
mod freshness;
mod invalidation;
#[cfg(feature = "json")]
mod json;
mod stats;
mod support;
