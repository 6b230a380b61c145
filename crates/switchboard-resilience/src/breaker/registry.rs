//! Circuit breakers by key, created on first use, with bounded memory.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};

use super::{BreakerMetrics, CircuitBreaker, CircuitBreakerConfig};
use crate::event::{BreakerState, Context};

/// One [`CircuitBreaker`] per key (a server, a (server, tool) pair, a tenant), created on
/// first use from the registry's config or a per-key override.
///
/// Memory is bounded by `max_keys`: inserting a new key into a full registry evicts the
/// least recently used breaker that is *closed* (or disabled, forced closed or metrics-only).
/// Open, half-open and forced-open breakers are never evicted, so a failing key cannot be
/// reset by churn; when every breaker is in such a state the registry grows past `max_keys`
/// until some of them close. An evicted key starts over with a fresh closed breaker.
///
/// Breakers are named `"{registry name}/{key:?}"` in their events.
pub struct BreakerRegistry<K> {
    config: CircuitBreakerConfig,
    overrides: HashMap<K, CircuitBreakerConfig>,
    ctx: Context,
    max_keys: usize,
    entries: Mutex<Entries<K>>,
}

struct Entries<K> {
    map: HashMap<K, Entry>,
    tick: u64,
}

struct Entry {
    breaker: CircuitBreaker,
    last_used: u64,
}

impl<K> BreakerRegistry<K>
where
    K: Hash + Eq + Clone + fmt::Debug,
{
    /// A registry of at most `max_keys` breakers (see the eviction rule) with a default
    /// [`Context`] named `"circuit_breaker"`.
    pub fn new(config: CircuitBreakerConfig, max_keys: usize) -> Self {
        BreakerRegistry::with_context(config, max_keys, Context::new("circuit_breaker"))
    }

    /// Like [`BreakerRegistry::new`], with breakers reporting to `ctx` (renamed per key).
    pub fn with_context(config: CircuitBreakerConfig, max_keys: usize, ctx: Context) -> Self {
        BreakerRegistry {
            config,
            overrides: HashMap::new(),
            ctx,
            max_keys: max_keys.max(1),
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                tick: 0,
            }),
        }
    }

    /// Uses `config` instead of the registry's config for `key`.
    pub fn with_override(mut self, key: K, config: CircuitBreakerConfig) -> Self {
        self.overrides.insert(key, config);
        self
    }

    /// The breaker of `key`, created if needed.
    pub fn get(&self, key: &K) -> CircuitBreaker {
        let mut entries = self.lock();
        entries.tick += 1;
        let tick = entries.tick;
        if let Some(entry) = entries.map.get_mut(key) {
            entry.last_used = tick;
            return entry.breaker.clone();
        }
        if entries.map.len() >= self.max_keys {
            evict_one(&mut entries.map);
        }
        let config = self.overrides.get(key).copied().unwrap_or(self.config);
        let ctx = self.ctx.named(format!("{}/{key:?}", self.ctx.name()));
        let breaker = CircuitBreaker::with_context(config, ctx);
        entries.map.insert(
            key.clone(),
            Entry {
                breaker: breaker.clone(),
                last_used: tick,
            },
        );
        breaker
    }

    /// The breaker of `key` if it exists.
    pub fn peek(&self, key: &K) -> Option<CircuitBreaker> {
        self.lock().map.get(key).map(|entry| entry.breaker.clone())
    }

    /// Forgets `key`'s breaker.
    pub fn remove(&self, key: &K) -> Option<CircuitBreaker> {
        self.lock().map.remove(key).map(|entry| entry.breaker)
    }

    /// The number of breakers held.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether no breaker is held.
    pub fn is_empty(&self) -> bool {
        self.lock().map.is_empty()
    }

    /// The metrics of every breaker, in no particular order.
    pub fn snapshot(&self) -> Vec<(K, BreakerMetrics)> {
        let breakers: Vec<(K, CircuitBreaker)> = self
            .lock()
            .map
            .iter()
            .map(|(key, entry)| (key.clone(), entry.breaker.clone()))
            .collect();
        breakers
            .into_iter()
            .map(|(key, breaker)| (key, breaker.metrics()))
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Entries<K>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Removes the least recently used evictable breaker, if any.
fn evict_one<K: Hash + Eq + Clone>(map: &mut HashMap<K, Entry>) {
    let victim = map
        .iter()
        .filter(|(_, entry)| {
            !matches!(
                entry.breaker.state(),
                BreakerState::Open | BreakerState::HalfOpen | BreakerState::ForcedOpen
            )
        })
        .min_by_key(|(_, entry)| entry.last_used)
        .map(|(key, _)| key.clone());
    if let Some(key) = victim {
        map.remove(&key);
    }
}

impl<K: fmt::Debug> fmt::Debug for BreakerRegistry<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerRegistry")
            .field("config", &self.config)
            .field("max_keys", &self.max_keys)
            .finish_non_exhaustive()
    }
}
