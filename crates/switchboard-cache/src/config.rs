//! Cache configuration and its defaults.

use std::time::Duration;

/// Configuration of one [`Cache`](crate::Cache).
///
/// Every field has a documented default; build the struct with
/// `CacheConfig { max_bytes: 1 << 20, ..CacheConfig::default() }`.
///
/// | field | default |
/// |---|---|
/// | `max_bytes` | 64 MiB |
/// | `default_ttl` | 60 s |
/// | `min_ttl` | 0 s |
/// | `max_ttl` | 1 h |
/// | `stale_if_error` | 5 min |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Upper bound of the summed entry weights, in bytes (see
    /// [`Weigh`](crate::Weigh)). Default: 64 MiB.
    ///
    /// As in moka, weights bound the size but do not choose the victim: the
    /// eviction policy (TinyLFU admission, LRU eviction) does.
    pub max_bytes: u64,
    /// Fresh period of a value whose loader gave no TTL
    /// ([`Loaded::new`](crate::Loaded::new)). Default: 60 s.
    pub default_ttl: Duration,
    /// Lower clamp applied to a TTL given by the loader
    /// ([`Loaded::with_ttl`](crate::Loaded::with_ttl)). Default: 0 s.
    pub min_ttl: Duration,
    /// Upper clamp applied to a TTL given by the loader. Default: 1 h.
    ///
    /// If `min_ttl` is larger than `max_ttl`, `max_ttl` wins.
    pub max_ttl: Duration,
    /// Stale window after the fresh period (RFC 5861 `stale-if-error`): while
    /// it lasts, a failed refresh returns the old value marked
    /// [`Served::Stale`](crate::Served::Stale). The entry is dropped at the
    /// end of the window. Zero turns stale serving off. Default: 5 min.
    pub stale_if_error: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_bytes: 64 * 1024 * 1024,
            default_ttl: Duration::from_secs(60),
            min_ttl: Duration::ZERO,
            max_ttl: Duration::from_secs(60 * 60),
            stale_if_error: Duration::from_secs(5 * 60),
        }
    }
}

impl CacheConfig {
    /// Applies `min_ttl` and `max_ttl` to a TTL given by a loader.
    pub(crate) fn clamp_ttl(&self, ttl: Duration) -> Duration {
        ttl.max(self.min_ttl).min(self.max_ttl)
    }
}
