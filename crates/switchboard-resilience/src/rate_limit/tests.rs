//! Rate limiter decisions under paused time.

use std::time::Duration;

use tokio::time::{Instant, sleep};
use tower::{BoxError, Service, ServiceExt};

use super::*;
use crate::error::Error;
use crate::test_support::{Recorder, TestError};

const MS: Duration = Duration::from_millis(1);

/// 10 per second (one every 100 ms), bursts of 2.
fn ten_per_second(mode: RateLimitMode) -> RateLimitConfig {
    RateLimitConfig {
        requests: 10,
        period: Duration::from_secs(1),
        burst: 2,
        mode,
    }
}

#[tokio::test(start_paused = true)]
async fn reject_mode_fails_at_once_with_retry_after() {
    let (recorder, ctx) = Recorder::context("l");
    let limiter = RateLimiter::with_context(ten_per_second(RateLimitMode::Reject), ctx);
    assert!(limiter.acquire().await.is_ok());
    assert!(limiter.acquire().await.is_ok());
    let start = Instant::now();
    let Err(rejection) = limiter.acquire().await else {
        panic!("burst exhausted")
    };
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(
        rejection,
        RateLimitedError {
            retry_after: 100 * MS,
            penalized: false
        }
    );
    assert_eq!(
        recorder.events(),
        vec![EventKind::RateLimitRejected {
            retry_after: 100 * MS
        }]
    );
    sleep(100 * MS).await;
    assert!(limiter.try_acquire().is_ok());
}

#[tokio::test(start_paused = true)]
async fn wait_mode_waits_for_a_permit() {
    let (recorder, ctx) = Recorder::context("l");
    let mode = RateLimitMode::Wait {
        timeout: Duration::from_secs(1),
    };
    let limiter = RateLimiter::with_context(ten_per_second(mode), ctx);
    let start = Instant::now();
    for _ in 0..4 {
        assert!(limiter.acquire().await.is_ok());
    }
    assert_eq!(start.elapsed(), 200 * MS);
    assert_eq!(
        recorder.count(|kind| *kind == EventKind::RateLimitWaited { waited: 100 * MS }),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn wait_mode_rejects_at_once_when_the_wait_is_too_long() {
    let mode = RateLimitMode::Wait { timeout: 50 * MS };
    let limiter = RateLimiter::new(ten_per_second(mode));
    limiter.drain();
    let start = Instant::now();
    let result: Result<(), Error<TestError>> = limiter.call(async { Ok(()) }).await;
    let Err(error) = result else {
        panic!("expected a rejection")
    };
    assert!(error.is_rate_limited());
    assert_eq!(error.retry_after(), Some(100 * MS));
    assert_eq!(start.elapsed(), Duration::ZERO, "no useless sleep");
}

#[tokio::test(start_paused = true)]
async fn penalty_stops_calls_until_it_passes() {
    let (recorder, ctx) = Recorder::context("l");
    let limiter = RateLimiter::with_context(ten_per_second(RateLimitMode::Reject), ctx);
    limiter.penalize(Duration::from_secs(3));
    limiter.penalize(Duration::from_secs(1));
    let Err(rejection) = limiter.try_acquire() else {
        panic!("penalized")
    };
    assert_eq!(
        rejection,
        RateLimitedError {
            retry_after: Duration::from_secs(3),
            penalized: true
        }
    );
    sleep(Duration::from_secs(3)).await;
    assert!(limiter.try_acquire().is_ok());
    assert_eq!(
        recorder.count(|kind| matches!(kind, EventKind::RateLimitPenalized { .. })),
        2
    );

    let waiting = RateLimiter::new(ten_per_second(RateLimitMode::Wait {
        timeout: Duration::from_secs(5),
    }));
    waiting.penalize(Duration::from_secs(2));
    let start = Instant::now();
    assert!(waiting.acquire().await.is_ok());
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn drain_takes_the_burst() {
    let limiter = RateLimiter::new(ten_per_second(RateLimitMode::Reject));
    limiter.drain();
    assert!(limiter.try_acquire().is_err());
}

#[tokio::test(start_paused = true)]
async fn keyed_limits_are_independent() {
    let (recorder, ctx) = Recorder::context("k");
    let limiter = KeyedRateLimiter::with_context(ten_per_second(RateLimitMode::Reject), ctx);
    for _ in 0..2 {
        assert!(limiter.acquire(&"a").await.is_ok());
    }
    assert!(limiter.acquire(&"a").await.is_err());
    assert!(limiter.acquire(&"b").await.is_ok());
    limiter.penalize(&"b", Duration::from_secs(1));
    assert!(limiter.try_acquire(&"b").is_err());
    assert!(limiter.try_acquire(&"c").is_ok());
    limiter.drain(&"c");
    assert!(limiter.try_acquire(&"c").is_err());
    assert_eq!(limiter.len(), 3);
    sleep(Duration::from_secs(2)).await;
    assert!(limiter.try_acquire(&"b").is_ok());
    sleep(Duration::from_secs(2)).await;
    limiter.retain_recent();
    assert!(limiter.is_empty());
    let rejections = recorder.count(|kind| matches!(kind, EventKind::RateLimitRejected { .. }));
    assert_eq!(rejections, 3);

    let mode = RateLimitMode::Wait {
        timeout: Duration::from_secs(1),
    };
    let waiting = KeyedRateLimiter::new(ten_per_second(mode));
    let start = Instant::now();
    for _ in 0..3 {
        let result: Result<(), Error<TestError>> = waiting.call(&1, async { Ok(()) }).await;
        assert!(result.is_ok());
    }
    assert_eq!(start.elapsed(), 100 * MS);
}

#[tokio::test(start_paused = true)]
async fn tower_layer_rejects_or_waits() {
    let limiter = RateLimiter::new(ten_per_second(RateLimitMode::Reject));
    let mut service = tower::ServiceBuilder::new()
        .layer(RateLimitLayer::new(limiter))
        .service_fn(|x: u32| async move { Ok::<_, BoxError>(x) });
    for _ in 0..2 {
        let Ok(ready) = service.ready().await else {
            panic!("not ready")
        };
        assert!(ready.call(1).await.is_ok());
    }
    let Ok(ready) = service.ready().await else {
        panic!("not ready")
    };
    let Err(error) = ready.call(1).await else {
        panic!("expected a rejection")
    };
    assert!(error.is::<RateLimitedError>());

    let mode = RateLimitMode::Wait {
        timeout: Duration::from_secs(1),
    };
    let mut waiting = tower::ServiceBuilder::new()
        .layer(RateLimitLayer::new(RateLimiter::new(ten_per_second(mode))))
        .service_fn(|x: u32| async move { Ok::<_, BoxError>(x) });
    let start = Instant::now();
    for x in 0..4 {
        let Ok(ready) = waiting.ready().await else {
            panic!("not ready")
        };
        assert!(matches!(ready.call(x).await, Ok(value) if value == x));
    }
    assert_eq!(start.elapsed(), 200 * MS);
}
