//! Counters that moka does not keep, and their snapshot type.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a cache's counters, taken by [`Cache::stats`](crate::Cache::stats).
///
/// Counters only grow. One `get_or_load` call adds to exactly one of `hits`
/// and `misses`; a miss may in addition add to `coalesced` (it joined another
/// caller's load) and `stale_served` (the refresh failed and the stale value
/// was returned).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Calls answered from a fresh local entry.
    pub hits: u64,
    /// Calls that found no fresh local entry (absent, expired or stale).
    pub misses: u64,
    /// Calls answered with a stale value because the refresh failed.
    pub stale_served: u64,
    /// Calls that joined a load already in flight for the same key.
    pub coalesced: u64,
    /// Loader runs.
    pub loads: u64,
    /// Loader runs that failed (returned an error or panicked).
    pub load_errors: u64,
    /// Entries evicted to keep the cache under its size bound.
    pub evictions: u64,
    /// Entries removed because their stale window ended.
    pub expirations: u64,
    /// Loads answered by the second level instead of the loader.
    pub second_level_hits: u64,
    /// Second-level reads or writes that failed (including values rejected
    /// for their size); the cache carried on without the second level.
    pub second_level_errors: u64,
}

impl Stats {
    /// `hits / (hits + misses)`, or 0 before the first call.
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

/// The live counters behind [`Stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) stale_served: AtomicU64,
    pub(crate) coalesced: AtomicU64,
    pub(crate) loads: AtomicU64,
    pub(crate) load_errors: AtomicU64,
    pub(crate) evictions: AtomicU64,
    pub(crate) expirations: AtomicU64,
    pub(crate) second_level_hits: AtomicU64,
    pub(crate) second_level_errors: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Stats {
            hits: read(&self.hits),
            misses: read(&self.misses),
            stale_served: read(&self.stale_served),
            coalesced: read(&self.coalesced),
            loads: read(&self.loads),
            load_errors: read(&self.load_errors),
            evictions: read(&self.evictions),
            expirations: read(&self.expirations),
            second_level_hits: read(&self.second_level_hits),
            second_level_errors: read(&self.second_level_errors),
        }
    }
}
