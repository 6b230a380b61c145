//! Fresh period, stale window, expiry and stale-if-error, on paused time.

use std::time::Duration;

use switchboard_cache::{Loaded, Served};
use tokio::time::advance;

use crate::support::{Counter, FRESH, STALE, cache, load_err, load_ok, load_with};

#[tokio::test(start_paused = true)]
async fn fresh_entry_is_a_hit_until_its_ttl_ends() {
    let cache = cache();
    let runs = Counter::default();

    let first = load_ok(&cache, "k", "v1", &runs).await.expect("load");
    assert_eq!(first.served, Served::Fresh);
    assert_eq!(first.value, "v1");

    advance(FRESH - Duration::from_millis(1)).await;
    let hit = load_ok(&cache, "k", "v2", &runs).await.expect("hit");
    assert_eq!((hit.served, hit.value.as_str()), (Served::Hit, "v1"));
    assert_eq!(runs.get(), 1);

    advance(Duration::from_millis(1)).await;
    let refreshed = load_ok(&cache, "k", "v2", &runs).await.expect("refresh");
    assert_eq!(
        (refreshed.served, refreshed.value.as_str()),
        (Served::Fresh, "v2")
    );
    assert_eq!(runs.get(), 2);
}

#[tokio::test(start_paused = true)]
async fn loader_ttl_is_honoured_and_clamped() {
    let cache = cache();
    let runs = Counter::default();
    // (ttl given by the loader, fresh period after clamping to 1..=60 s)
    let cases = [
        (Duration::from_secs(3), Duration::from_secs(3)),
        (Duration::from_millis(10), Duration::from_secs(1)),
        (Duration::from_secs(3600), Duration::from_secs(60)),
    ];
    for (index, (ttl, fresh_for)) in cases.into_iter().enumerate() {
        let key = format!("k{index}");
        let loaded = Ok(Loaded::with_ttl("v".to_owned(), ttl));
        load_with(&cache, &key, &runs, loaded).await.expect("load");

        advance(fresh_for - Duration::from_millis(1)).await;
        let before = cache.peek(&key).await.expect("entry");
        assert_eq!(before.served, Served::Hit, "ttl {ttl:?}");
        advance(Duration::from_millis(1)).await;
        let after = cache.peek(&key).await.expect("entry");
        assert!(after.served.is_stale(), "ttl {ttl:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn uncached_value_is_returned_but_not_stored() {
    let cache = cache();
    let runs = Counter::default();

    let first = load_with(
        &cache,
        "k",
        &runs,
        Ok(Loaded::uncached("error result".to_owned())),
    )
    .await
    .expect("load");
    assert_eq!(first.served, Served::Fresh);
    assert!(cache.peek(&"k".to_owned()).await.is_none());

    load_ok(&cache, "k", "v", &runs).await.expect("load");
    assert_eq!(runs.get(), 2);
}

#[tokio::test(start_paused = true)]
async fn failed_refresh_in_stale_window_serves_stale_value_with_age() {
    let cache = cache();
    let runs = Counter::default();
    load_ok(&cache, "k", "v1", &runs).await.expect("load");

    advance(FRESH + Duration::from_secs(5)).await;
    let stale = load_err(&cache, "k", &runs).await.expect("stale value");
    assert_eq!(stale.value, "v1");
    assert_eq!(
        stale.served,
        Served::Stale {
            age: FRESH + Duration::from_secs(5)
        }
    );
    assert_eq!(runs.get(), 2, "the refresh was attempted");

    // The stale entry stays: a later successful refresh replaces it.
    let refreshed = load_ok(&cache, "k", "v2", &runs).await.expect("refresh");
    assert_eq!(
        (refreshed.served, refreshed.value.as_str()),
        (Served::Fresh, "v2")
    );
}

#[tokio::test(start_paused = true)]
async fn failed_refresh_after_stale_window_is_an_error() {
    let cache = cache();
    let runs = Counter::default();
    load_ok(&cache, "k", "v1", &runs).await.expect("load");

    advance(FRESH + STALE - Duration::from_millis(1)).await;
    assert!(
        load_err(&cache, "k", &runs)
            .await
            .expect("still stale")
            .served
            .is_stale()
    );

    advance(Duration::from_millis(1)).await;
    assert!(cache.peek(&"k".to_owned()).await.is_none(), "expired");
    let error = load_err(&cache, "k", &runs).await.expect_err("expired");
    assert!(error.is_load());
    let source = error.load_error().expect("loader error");
    assert_eq!(source.to_string(), "upstream down");
}

#[tokio::test(start_paused = true)]
async fn zero_stale_window_turns_stale_serving_off() {
    let config = switchboard_cache::CacheConfig {
        stale_if_error: Duration::ZERO,
        ..crate::support::config()
    };
    let cache = switchboard_cache::Cache::<String, String>::new(config);
    let runs = Counter::default();
    load_ok(&cache, "k", "v1", &runs).await.expect("load");

    advance(FRESH).await;
    assert!(load_err(&cache, "k", &runs).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn zero_ttl_is_stale_at_once_but_still_serves_on_error() {
    let config = switchboard_cache::CacheConfig {
        min_ttl: Duration::ZERO,
        ..crate::support::config()
    };
    let cache = switchboard_cache::Cache::<String, String>::new(config);
    let runs = Counter::default();
    load_with(
        &cache,
        "k",
        &runs,
        Ok(Loaded::with_ttl("v1".to_owned(), Duration::ZERO)),
    )
    .await
    .expect("load");

    let again = load_err(&cache, "k", &runs).await.expect("stale");
    assert_eq!(
        again.served,
        Served::Stale {
            age: Duration::ZERO
        }
    );
    assert_eq!(runs.get(), 2);
}
