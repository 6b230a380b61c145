//! Counters: hits, misses, stale served, coalesced, loads, errors,
//! evictions and expirations.

use std::time::Duration;

use switchboard_cache::{Cache, CacheConfig, Loaded};
use tokio::time::advance;

use crate::support::{Counter, FRESH, cache, load_err, load_ok};

#[tokio::test(start_paused = true)]
async fn counters_follow_a_lookup_sequence() {
    let cache = cache();
    let runs = Counter::default();

    load_ok(&cache, "k", "v", &runs).await.expect("miss, load");
    load_ok(&cache, "k", "v", &runs).await.expect("hit");
    load_ok(&cache, "k", "v", &runs).await.expect("hit");
    load_err(&cache, "other", &runs)
        .await
        .expect_err("miss, failed load");
    advance(FRESH).await;
    load_err(&cache, "k", &runs)
        .await
        .expect("miss, failed refresh, stale served");

    let stats = cache.stats();
    // (hits, misses, stale_served, coalesced, loads, load_errors)
    let observed = (
        stats.hits,
        stats.misses,
        stats.stale_served,
        stats.coalesced,
        stats.loads,
        stats.load_errors,
    );
    assert_eq!(observed, (2, 3, 1, 0, 3, 2));
    assert!((stats.hit_ratio() - 0.4).abs() < 1e-9);
}

#[tokio::test]
async fn size_bound_evicts_and_counts() {
    let config = CacheConfig {
        max_bytes: 8 * 1024,
        ..crate::support::config()
    };
    let cache: Cache<String, String> = Cache::new(config);
    for index in 0..200 {
        let value = "x".repeat(200);
        cache
            .insert(format!("key-{index}"), &[], Loaded::new(value))
            .await;
    }
    cache.run_pending_tasks().await;

    assert!(
        cache.weighted_size() <= 8 * 1024,
        "size {}",
        cache.weighted_size()
    );
    assert!(cache.stats().evictions > 0, "{:?}", cache.stats());
}

#[tokio::test]
async fn end_of_stale_window_counts_as_expiration() {
    let config = CacheConfig {
        default_ttl: Duration::from_millis(20),
        stale_if_error: Duration::from_millis(20),
        min_ttl: Duration::ZERO,
        ..crate::support::config()
    };
    let cache: Cache<String, String> = Cache::new(config);
    cache
        .insert("k".to_owned(), &[], Loaded::new("v".to_owned()))
        .await;

    // moka expires entries on its own (real) clock, through a timer wheel
    // whose finest slots are about a second wide.
    let start = std::time::Instant::now();
    while cache.stats().expirations == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "not expired within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        cache.run_pending_tasks().await;
    }
    assert_eq!(cache.entry_count(), 0);
    assert_eq!(cache.stats().expirations, 1);
}
