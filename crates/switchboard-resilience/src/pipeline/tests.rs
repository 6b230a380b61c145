//! The composed pipeline under paused time.

use std::cell::Cell;
use std::time::Duration;

use tokio::time::{Instant, sleep};

use super::*;
use crate::breaker::{CircuitBreakerConfig, SlidingWindow};
use crate::bulkhead::BulkheadConfig;
use crate::error::Outcome;
use crate::event::{BreakerState, EventKind, GiveUpReason};
use crate::rate_limit::{RateLimitConfig, RateLimitMode};
use crate::retry::{Backoff, RetryConfig};
use crate::test_support::{Recorder, TestError};

const MS: Duration = Duration::from_millis(1);

fn retry(max_attempts: u32) -> Retry {
    Retry::new(RetryConfig {
        max_attempts,
        backoff: Backoff::Constant { delay: 10 * MS },
        ..RetryConfig::default()
    })
}

fn breaker() -> CircuitBreaker {
    CircuitBreaker::new(CircuitBreakerConfig {
        window: SlidingWindow::Count { size: 4 },
        minimum_calls: 4,
        open_duration: Duration::from_secs(30),
        ..CircuitBreakerConfig::default()
    })
}

#[tokio::test(start_paused = true)]
async fn retries_then_opens_the_breaker_and_fails_fast() {
    let breaker = breaker();
    let pipeline = Pipeline::new()
        .with_retry(retry(2))
        .with_circuit_breaker(breaker.clone());
    let calls = Cell::new(0);
    let operation = || {
        calls.set(calls.get() + 1);
        async { Err::<(), _>(TestError::FAIL) }
    };
    for _ in 0..2 {
        let result = pipeline.call(operation).await;
        assert_eq!(result, Err(Error::Inner(TestError::FAIL)));
    }
    assert_eq!(calls.get(), 4);
    assert_eq!(breaker.state(), BreakerState::Open);
    let start = Instant::now();
    let Err(error) = pipeline.call(operation).await else {
        panic!("expected a rejection")
    };
    assert!(error.is_circuit_open());
    assert_eq!(calls.get(), 4, "the operation is not called while open");
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "an open circuit is not retried"
    );
}

#[tokio::test(start_paused = true)]
async fn attempt_timeouts_are_retried_within_the_deadline() {
    let (recorder, ctx) = Recorder::context("p");
    let pipeline = Pipeline::with_context(ctx)
        .with_deadline(Duration::from_secs(1))
        .with_retry(retry(10))
        .with_attempt_timeout(300 * MS);
    let start = Instant::now();
    let result: Result<(), Error<TestError>> = pipeline
        .call(|| async {
            sleep(Duration::from_secs(5)).await;
            Ok(())
        })
        .await;
    let Err(error) = result else {
        panic!("expected a deadline")
    };
    assert!(error.is_deadline_exceeded());
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "the deadline covers all attempts"
    );
    let attempts = recorder.count(|kind| {
        matches!(
            kind,
            EventKind::TimedOut {
                kind: TimeoutKind::Attempt,
                ..
            }
        )
    });
    assert_eq!(attempts, 3);
    let deadlines = recorder.count(|kind| {
        matches!(
            kind,
            EventKind::TimedOut {
                kind: TimeoutKind::Deadline,
                ..
            }
        )
    });
    assert_eq!(deadlines, 1);
}

#[tokio::test(start_paused = true)]
async fn server_delay_penalizes_the_rate_limiter() {
    let (recorder, ctx) = Recorder::context("l");
    let config = RateLimitConfig {
        mode: RateLimitMode::Wait {
            timeout: Duration::from_secs(10),
        },
        ..RateLimitConfig::default()
    };
    let limiter = RateLimiter::with_context(config, ctx);
    let pipeline = Pipeline::new()
        .with_retry(retry(3))
        .with_rate_limiter(limiter.clone());
    let calls = Cell::new(0);
    let start = Instant::now();
    let result = pipeline
        .call(|| {
            calls.set(calls.get() + 1);
            let first = calls.get() == 1;
            async move {
                if first {
                    Err(TestError {
                        retry_after: Some(Duration::from_secs(2)),
                        ..TestError::FAIL
                    })
                } else {
                    Ok("ok")
                }
            }
        })
        .await;
    assert_eq!(result, Ok("ok"));
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(
        recorder.events(),
        vec![EventKind::RateLimitPenalized {
            duration: Duration::from_secs(2)
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn rejections_are_not_breaker_failures() {
    let breaker = breaker();
    let bulkhead = Bulkhead::new(BulkheadConfig {
        max_concurrent: 1,
        ..BulkheadConfig::default()
    });
    let pipeline = Pipeline::new()
        .with_circuit_breaker(breaker.clone())
        .with_bulkhead(bulkhead);
    let slow = || async {
        sleep(100 * MS).await;
        Ok::<_, TestError>(())
    };
    let results = futures::future::join_all((0..8).map(|_| pipeline.call(slow))).await;
    assert_eq!(results.iter().filter(|result| result.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .filter_map(|result| result.as_ref().err())
            .all(Error::is_bulkhead_full)
    );
    let metrics = breaker.metrics();
    assert_eq!(
        (metrics.state, metrics.calls, metrics.failed_calls),
        (BreakerState::Closed, 1, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn classifier_decides_breaker_outcomes() {
    let breaker = breaker();
    let pipeline = Pipeline::new().with_circuit_breaker(breaker.clone());
    // A tool that ran and reported its own error (`isError`) is a success for the breaker.
    let tool_error_is_fine = |_: &Result<&str, Error<TestError>>| Outcome::Success;
    for _ in 0..8 {
        let result = pipeline
            .call_with(tool_error_is_fine, || async {
                Ok::<_, TestError>("isError")
            })
            .await;
        assert!(result.is_ok());
    }
    assert_eq!(breaker.metrics().failed_calls, 0);
}

#[tokio::test(start_paused = true)]
async fn retry_stops_when_the_budget_is_empty() {
    let (recorder, ctx) = Recorder::context("r");
    let budget = crate::retry::RetryBudget::new(crate::retry::RetryBudgetConfig {
        min_retries_per_sec: 0,
        ..crate::retry::RetryBudgetConfig::default()
    });
    let retry = Retry::with_context(RetryConfig::default(), ctx).with_budget(budget);
    let pipeline = Pipeline::new().with_retry(retry);
    let result = pipeline
        .call(|| async { Err::<(), _>(TestError::FAIL) })
        .await;
    assert!(result.is_err());
    assert_eq!(
        recorder.events(),
        vec![
            EventKind::BudgetExhausted,
            EventKind::RetryGaveUp {
                attempts: 1,
                reason: GiveUpReason::BudgetExhausted
            }
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn bulkhead_queue_respects_the_deadline() {
    let config = BulkheadConfig {
        max_concurrent: 1,
        max_queued: 1,
        queue_timeout: Duration::from_secs(10),
    };
    let bulkhead = Bulkhead::new(config);
    let blocker = Pipeline::new().with_bulkhead(bulkhead.clone());
    let pipeline = Pipeline::new()
        .with_deadline(100 * MS)
        .with_bulkhead(bulkhead);
    let hog = || async {
        sleep(Duration::from_secs(1)).await;
        Ok::<_, TestError>(())
    };
    let start = Instant::now();
    let (held, (queued, waited)) = tokio::join!(blocker.call(hog), async {
        let result = pipeline.call(|| async { Ok::<_, TestError>(()) }).await;
        (result, start.elapsed())
    });
    assert!(held.is_ok());
    let Err(error) = queued else {
        panic!("expected a rejection")
    };
    assert!(error.is_bulkhead_full());
    assert_eq!(waited, 100 * MS);
}

#[tokio::test(start_paused = true)]
async fn tower_stack_composes_with_service_builder() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

    use crate::breaker::CircuitBreakerLayer;
    use crate::bulkhead::BulkheadLayer;
    use crate::rate_limit::RateLimitLayer;
    use crate::retry::RetryPolicy;
    use crate::timeout::TimeoutLayer;

    let breaker = breaker();
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let mut service = ServiceBuilder::new()
        .layer(TimeoutLayer::from_duration(Duration::from_secs(10)))
        .layer(tower::retry::RetryLayer::new(RetryPolicy::new(retry(2))))
        .layer(RateLimitLayer::new(RateLimiter::new(
            RateLimitConfig::default(),
        )))
        .layer(CircuitBreakerLayer::new(breaker.clone()))
        .layer(BulkheadLayer::new(Bulkhead::new(BulkheadConfig::default())))
        .layer(TimeoutLayer::from_duration(100 * MS))
        .service_fn(move |fail: bool| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if fail {
                    sleep(Duration::from_secs(1)).await;
                }
                Ok::<_, BoxError>("ok")
            }
        });
    for _ in 0..2 {
        let Ok(ready) = service.ready().await else {
            panic!("not ready")
        };
        let Err(error) = ready.call(true).await else {
            panic!("expected a timeout")
        };
        assert!(error.is::<crate::error::TimeoutError>());
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "each call is attempted twice"
    );
    assert_eq!(breaker.state(), BreakerState::Open);
    let Ok(ready) = service.ready().await else {
        panic!("not ready")
    };
    let Err(error) = ready.call(false).await else {
        panic!("expected a rejection")
    };
    assert!(error.is::<crate::error::CircuitOpenError>());
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}
