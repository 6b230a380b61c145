//! Request coalescing: one load per key in flight, detached from callers.

use std::sync::Arc;
use std::time::Duration;

use switchboard_cache::{Loaded, Served};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::support::{Counter, cache, load_ok, wait_until};

/// A loader that counts its run, waits for a permit on `gate`, then
/// returns `result`.
fn gated(
    runs: &Counter,
    gate: &Arc<Semaphore>,
    result: Result<&str, &str>,
) -> impl FnOnce() -> futures::future::BoxFuture<'static, Result<Loaded<String>, std::io::Error>> + use<>
{
    let runs = runs.clone();
    let gate = Arc::clone(gate);
    let result = result.map(str::to_owned).map_err(str::to_owned);
    move || {
        Box::pin(async move {
            runs.bump();
            let _permit = gate.acquire().await.expect("gate open");
            result.map(Loaded::new).map_err(std::io::Error::other)
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_misses_run_the_loader_once() {
    let cache = cache();
    let runs = Counter::default();
    let gate = Arc::new(Semaphore::new(0));
    let mut callers = JoinSet::new();
    for _ in 0..1000 {
        let cache = cache.clone();
        let loader = gated(&runs, &gate, Ok("v"));
        callers.spawn(async move { cache.get_or_load("k".to_owned(), &[], loader).await });
    }
    wait_until(|| cache.stats().coalesced == 999).await;
    gate.add_permits(1);

    let (mut fresh, mut coalesced) = (0, 0);
    while let Some(joined) = callers.join_next().await {
        let lookup = joined.expect("caller task").expect("lookup");
        assert_eq!(lookup.value, "v");
        match lookup.served {
            Served::Fresh => fresh += 1,
            Served::Coalesced => coalesced += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((runs.get(), fresh, coalesced), (1, 1, 999));
    assert_eq!(cache.stats().loads, 1);
}

#[tokio::test]
async fn aborted_first_caller_does_not_fail_the_others() {
    let cache = cache();
    let runs = Counter::default();
    let gate = Arc::new(Semaphore::new(0));

    let first = tokio::spawn({
        let cache = cache.clone();
        let loader = gated(&runs, &gate, Ok("v"));
        async move { cache.get_or_load("k".to_owned(), &[], loader).await }
    });
    wait_until(|| runs.get() == 1).await;
    let second = tokio::spawn({
        let cache = cache.clone();
        let loader = gated(&runs, &gate, Ok("never loaded"));
        async move { cache.get_or_load("k".to_owned(), &[], loader).await }
    });
    wait_until(|| cache.stats().coalesced == 1).await;

    first.abort();
    assert!(first.await.expect_err("aborted").is_cancelled());
    gate.add_permits(1);

    let second = second.await.expect("caller task").expect("lookup");
    assert_eq!(
        (second.served, second.value.as_str()),
        (Served::Coalesced, "v")
    );
    assert_eq!(runs.get(), 1);
    let later = load_ok(&cache, "k", "other", &runs).await.expect("hit");
    assert_eq!((later.served, later.value.as_str()), (Served::Hit, "v"));
}

#[tokio::test(start_paused = true)]
async fn timed_out_first_caller_does_not_fail_the_others() {
    let cache = cache();
    let runs = Counter::default();
    let gate = Arc::new(Semaphore::new(0));

    let first = tokio::time::timeout(
        Duration::from_millis(50),
        cache.get_or_load("k".to_owned(), &[], gated(&runs, &gate, Ok("v"))),
    )
    .await;
    assert!(first.is_err(), "first caller timed out");

    let second = tokio::spawn({
        let cache = cache.clone();
        let loader = gated(&runs, &gate, Ok("never loaded"));
        async move { cache.get_or_load("k".to_owned(), &[], loader).await }
    });
    wait_until(|| cache.stats().coalesced == 1).await;
    gate.add_permits(1);

    let second = second.await.expect("caller task").expect("lookup");
    assert_eq!(
        (second.served, second.value.as_str()),
        (Served::Coalesced, "v")
    );
    assert_eq!(runs.get(), 1);
}

#[tokio::test]
async fn load_error_reaches_every_waiter_and_is_not_cached() {
    let cache = cache();
    let runs = Counter::default();
    let gate = Arc::new(Semaphore::new(0));
    let mut callers = JoinSet::new();
    for _ in 0..10 {
        let cache = cache.clone();
        let loader = gated(&runs, &gate, Err("upstream down"));
        callers.spawn(async move { cache.get_or_load("k".to_owned(), &[], loader).await });
    }
    wait_until(|| cache.stats().coalesced == 9).await;
    gate.add_permits(1);

    while let Some(joined) = callers.join_next().await {
        let error = joined.expect("caller task").expect_err("load failed");
        assert!(error.is_load());
        assert_eq!(
            error.load_error().map(ToString::to_string).as_deref(),
            Some("upstream down")
        );
    }
    assert_eq!(runs.get(), 1);
    assert_eq!((cache.stats().loads, cache.stats().load_errors), (1, 1));

    let retried = load_ok(&cache, "k", "v", &runs)
        .await
        .expect("retry loads again");
    assert_eq!(retried.served, Served::Fresh);
    assert_eq!(runs.get(), 2);
}

#[tokio::test]
async fn panicking_loader_fails_its_flight_only() {
    let cache = cache();
    let runs = Counter::default();
    let error = cache
        .get_or_load("k".to_owned(), &[], || async {
            if true {
                panic!("loader bug");
            }
            Ok::<_, std::io::Error>(Loaded::new(String::new()))
        })
        .await
        .expect_err("panicked");
    assert!(error.is_load_aborted());
    assert_eq!(cache.stats().load_errors, 1);

    let next = load_ok(&cache, "k", "v", &runs).await.expect("next load");
    assert_eq!(next.served, Served::Fresh);
}
