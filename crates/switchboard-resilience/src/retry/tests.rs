//! Retry state machine, backoff bounds and budget under paused time.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::time::{Instant, sleep};
use tower::{BoxError, Service, ServiceExt};

use super::*;
use crate::error::Error;
use crate::test_support::{Recorder, TestError};

const MS: Duration = Duration::from_millis(1);

fn constant(delay: Duration, max_attempts: u32) -> RetryConfig {
    RetryConfig {
        max_attempts,
        backoff: Backoff::Constant { delay },
        ..RetryConfig::default()
    }
}

/// An operation failing `failures` times with `error`, then returning the attempt number.
fn flaky(
    calls: &Cell<u32>,
    failures: u32,
    error: TestError,
) -> impl Future<Output = Result<u32, TestError>> {
    calls.set(calls.get() + 1);
    let attempt = calls.get();
    async move {
        if attempt <= failures {
            Err(error)
        } else {
            Ok(attempt)
        }
    }
}

#[tokio::test(start_paused = true)]
async fn retries_until_success() {
    let (recorder, ctx) = Recorder::context("r");
    let retry = Retry::with_context(constant(10 * MS, 3), ctx);
    let calls = Cell::new(0);
    let start = Instant::now();
    let result = retry.call(|| flaky(&calls, 2, TestError::FAIL)).await;
    assert_eq!(result, Ok(3));
    assert_eq!(start.elapsed(), 20 * MS);
    assert_eq!(
        recorder.events(),
        vec![
            EventKind::RetryScheduled {
                attempt: 1,
                delay: 10 * MS,
                server_delay: false
            },
            EventKind::RetryScheduled {
                attempt: 2,
                delay: 10 * MS,
                server_delay: false
            },
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_max_attempts() {
    let (recorder, ctx) = Recorder::context("r");
    let retry = Retry::with_context(constant(10 * MS, 3), ctx);
    let calls = Cell::new(0);
    let result = retry.call(|| flaky(&calls, 10, TestError::FAIL)).await;
    assert_eq!(result, Err(TestError::FAIL));
    assert_eq!(calls.get(), 3);
    assert_eq!(
        recorder.events().last(),
        Some(&EventKind::RetryGaveUp {
            attempts: 3,
            reason: GiveUpReason::MaxAttempts
        })
    );
}

#[tokio::test(start_paused = true)]
async fn does_not_retry_what_is_not_retryable() {
    let (recorder, ctx) = Recorder::context("r");
    let retry = Retry::with_context(constant(10 * MS, 5), ctx);
    let calls = Cell::new(0);
    let fatal = TestError {
        retryable: false,
        ..TestError::FAIL
    };
    assert_eq!(retry.call(|| flaky(&calls, 10, fatal)).await, Err(fatal));
    assert_eq!(calls.get(), 1);
    assert_eq!(
        recorder.events(),
        vec![EventKind::RetryGaveUp {
            attempts: 1,
            reason: GiveUpReason::NotRetryable
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn honours_the_server_delay() {
    let (recorder, ctx) = Recorder::context("r");
    let retry = Retry::with_context(constant(10 * MS, 3), ctx);
    let calls = Cell::new(0);
    let throttled = TestError {
        retry_after: Some(Duration::from_secs(2)),
        ..TestError::FAIL
    };
    let start = Instant::now();
    assert_eq!(retry.call(|| flaky(&calls, 1, throttled)).await, Ok(2));
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(
        recorder.events(),
        vec![EventKind::RetryScheduled {
            attempt: 1,
            delay: Duration::from_secs(2),
            server_delay: true
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn server_delay_beyond_the_limit_stops() {
    let retry = Retry::new(RetryConfig {
        max_retry_after: Duration::from_secs(1),
        ..constant(MS, 3)
    });
    let calls = Cell::new(0);
    let throttled = TestError {
        retry_after: Some(Duration::from_secs(2)),
        ..TestError::FAIL
    };
    assert_eq!(
        retry.call(|| flaky(&calls, 1, throttled)).await,
        Err(throttled)
    );
    assert_eq!(calls.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn never_sleeps_past_the_deadline() {
    let (recorder, ctx) = Recorder::context("r");
    let retry = Retry::with_context(constant(Duration::from_secs(1), 10), ctx);
    let calls = Cell::new(0);
    let start = Instant::now();
    let deadline = start + 2500 * MS;
    let result: Result<u32, Error<TestError>> = retry
        .call_until(deadline, || {
            let attempt = flaky(&calls, 10, TestError::FAIL);
            async move { attempt.await.map_err(Error::Inner) }
        })
        .await;
    assert_eq!(result, Err(Error::Inner(TestError::FAIL)));
    assert_eq!(calls.get(), 3);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(
        recorder.events().last(),
        Some(&EventKind::RetryGaveUp {
            attempts: 3,
            reason: GiveUpReason::Deadline
        })
    );
}

#[tokio::test(start_paused = true)]
async fn deadline_cancels_a_running_attempt() {
    let retry = Retry::new(constant(MS, 10));
    let start = Instant::now();
    let result: Result<(), Error<TestError>> = retry
        .call_until(start + 300 * MS, || async {
            sleep(Duration::from_secs(1)).await;
            Ok(())
        })
        .await;
    let Err(error) = result else {
        panic!("expected a deadline")
    };
    assert!(error.is_deadline_exceeded());
    assert_eq!(start.elapsed(), 300 * MS);
}

#[tokio::test(start_paused = true)]
async fn budget_limits_retries_to_a_share_of_requests() {
    let config = RetryBudgetConfig {
        ttl: Duration::from_secs(10),
        min_retries_per_sec: 0,
        retry_ratio: 0.2,
    };
    let budget = RetryBudget::new(config);
    assert!(!budget.try_withdraw());
    for _ in 0..10 {
        budget.deposit();
    }
    assert_eq!(budget.available(), 2);
    assert!(budget.try_withdraw());
    assert!(budget.try_withdraw());
    assert!(!budget.try_withdraw());
    // Deposits and withdrawals expire after the TTL.
    for _ in 0..10 {
        budget.deposit();
    }
    sleep(Duration::from_secs(11)).await;
    assert_eq!(budget.available(), 0);
}

#[tokio::test(start_paused = true)]
async fn budget_has_a_floor_per_second() {
    let config = RetryBudgetConfig {
        ttl: Duration::from_secs(10),
        min_retries_per_sec: 1,
        retry_ratio: 0.0,
    };
    let budget = RetryBudget::new(config);
    for _ in 0..10 {
        assert!(budget.try_withdraw());
    }
    assert!(!budget.try_withdraw());
    sleep(Duration::from_secs(11)).await;
    assert!(budget.try_withdraw());
}

#[tokio::test(start_paused = true)]
async fn budget_keeps_amplification_low_during_an_outage() {
    let (recorder, ctx) = Recorder::context("r");
    let config = RetryBudgetConfig {
        min_retries_per_sec: 0,
        ..RetryBudgetConfig::default()
    };
    let retry = Retry::with_context(constant(MS, 3), ctx).with_budget(RetryBudget::new(config));
    let calls = Cell::new(0);
    for _ in 0..1000 {
        let result = retry
            .call(|| flaky(&calls, u32::MAX, TestError::FAIL))
            .await;
        assert!(result.is_err());
    }
    // Naive retry would make 3000 attempts; the budget allows 20 % more than the requests.
    assert!(calls.get() <= 1200, "{} attempts", calls.get());
    assert!(calls.get() >= 1150, "{} attempts", calls.get());
    assert!(recorder.count(|kind| *kind == EventKind::BudgetExhausted) > 700);
}

#[tokio::test(start_paused = true)]
async fn tower_policy_retries_cloned_requests() {
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = calls.clone();
    let mut service = tower::ServiceBuilder::new()
        .layer(tower::retry::RetryLayer::new(RetryPolicy::new(Retry::new(
            constant(10 * MS, 3),
        ))))
        .service_fn(move |request: u32| {
            let attempt = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            async move {
                if attempt < 3 {
                    Err(BoxError::from("unavailable"))
                } else {
                    Ok(request * 2)
                }
            }
        });
    let Ok(ready) = service.ready().await else {
        panic!("not ready")
    };
    assert!(matches!(ready.call(21).await, Ok(42)));
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[test]
fn exponential_without_jitter_doubles_up_to_the_cap() {
    let backoff = Backoff::Exponential {
        initial: 100 * MS,
        max: 500 * MS,
        multiplier: 2.0,
        jitter: Jitter::None,
    };
    let mut rng = StdRng::seed_from_u64(1);
    let delays: Vec<Duration> = (1..=5)
        .map(|retry| backoff.delay(retry, Duration::ZERO, &mut rng))
        .collect();
    assert_eq!(
        delays,
        vec![100 * MS, 200 * MS, 400 * MS, 500 * MS, 500 * MS]
    );
}

proptest! {
    #[test]
    fn full_jitter_stays_in_zero_to_cap(seed: u64, retry in 1u32..40, initial_ms in 1u64..1000, max_ms in 1u64..100_000) {
        let initial = Duration::from_millis(initial_ms);
        let max = Duration::from_millis(max_ms);
        let backoff = Backoff::Exponential { initial, max, multiplier: 2.0, jitter: Jitter::Full };
        let cap = initial.saturating_mul(2u32.saturating_pow(retry - 1)).min(max);
        let delay = backoff.delay(retry, Duration::ZERO, &mut StdRng::seed_from_u64(seed));
        prop_assert!(delay <= cap, "{delay:?} > {cap:?}");
    }

    #[test]
    fn equal_jitter_stays_in_half_to_cap(seed: u64, retry in 1u32..40, initial_ms in 1u64..1000) {
        let initial = Duration::from_millis(initial_ms);
        let max = Duration::from_secs(30);
        let backoff = Backoff::Exponential { initial, max, multiplier: 2.0, jitter: Jitter::Equal };
        let cap = initial.saturating_mul(2u32.saturating_pow(retry - 1)).min(max);
        let delay = backoff.delay(retry, Duration::ZERO, &mut StdRng::seed_from_u64(seed));
        prop_assert!(delay >= cap / 2 && delay <= cap);
    }

    #[test]
    fn decorrelated_jitter_stays_between_base_and_cap(seed: u64, steps in 1usize..50, initial_ms in 1u64..1000, max_ms in 1000u64..60_000) {
        let initial = Duration::from_millis(initial_ms);
        let max = Duration::from_millis(max_ms);
        let backoff = Backoff::Decorrelated { initial, max };
        let mut rng = StdRng::seed_from_u64(seed);
        let mut previous = Duration::ZERO;
        for retry in 1..=steps {
            let delay = backoff.delay(u32::try_from(retry).unwrap_or(u32::MAX), previous, &mut rng);
            let upper = if previous.is_zero() { initial * 3 } else { previous * 3 };
            prop_assert!(delay >= initial && delay <= max && delay <= upper.max(initial));
            previous = delay;
        }
    }
}
