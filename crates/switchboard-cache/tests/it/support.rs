//! Shared helpers: a test configuration and loaders that count their runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use switchboard_cache::{Cache, CacheConfig, Error, Loaded, Lookup};

pub(crate) const FRESH: Duration = Duration::from_secs(10);
pub(crate) const STALE: Duration = Duration::from_secs(20);

/// 10 s fresh by default, 20 s stale window, TTLs clamped to 1..=60 s.
pub(crate) fn config() -> CacheConfig {
    CacheConfig {
        max_bytes: 1 << 20,
        default_ttl: FRESH,
        min_ttl: Duration::from_secs(1),
        max_ttl: Duration::from_secs(60),
        stale_if_error: STALE,
    }
}

pub(crate) fn cache() -> Cache<String, String> {
    Cache::new(config())
}

/// Counts loader runs.
#[derive(Clone, Default)]
pub(crate) struct Counter(Arc<AtomicUsize>);

impl Counter {
    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Looks `key` up with a loader that returns `value` for the default TTL.
pub(crate) async fn load_ok(
    cache: &Cache<String, String>,
    key: &str,
    value: &str,
    runs: &Counter,
) -> Result<Lookup<String>, Error> {
    load_with(cache, key, runs, Ok(Loaded::new(value.to_owned()))).await
}

/// Looks `key` up with a loader that fails.
pub(crate) async fn load_err(
    cache: &Cache<String, String>,
    key: &str,
    runs: &Counter,
) -> Result<Lookup<String>, Error> {
    load_with(
        cache,
        key,
        runs,
        Err(std::io::Error::other("upstream down")),
    )
    .await
}

/// Looks `key` up with a loader that returns `result`.
pub(crate) async fn load_with(
    cache: &Cache<String, String>,
    key: &str,
    runs: &Counter,
    result: Result<Loaded<String>, std::io::Error>,
) -> Result<Lookup<String>, Error> {
    let runs = runs.clone();
    cache
        .get_or_load(key.to_owned(), &["server-a"], move || async move {
            runs.bump();
            result
        })
        .await
}

/// Waits, on any runtime, until `condition` holds; panics after 5 s of
/// real time.
pub(crate) async fn wait_until(mut condition: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "condition not met within 5 s"
        );
        tokio::task::yield_now().await;
    }
}
