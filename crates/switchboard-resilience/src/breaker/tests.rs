//! Circuit breaker state machine, windows against a naive model, registry and layer.

use std::time::Duration;

use proptest::prelude::*;
use tokio::time::{Instant, sleep};
use tower::{BoxError, Service, ServiceExt};

use super::window::{CountWindow, TimeWindow, Totals};
use super::*;
use crate::error::Error;
use crate::test_support::{Recorder, TestError};

const MS: Duration = Duration::from_millis(1);

fn small() -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        window: SlidingWindow::Count { size: 10 },
        minimum_calls: 4,
        open_duration: Duration::from_secs(1),
        half_open_calls: 2,
        ..CircuitBreakerConfig::default()
    }
}

async fn succeed(breaker: &CircuitBreaker) -> Result<(), Error<TestError>> {
    breaker.call(async { Ok(()) }).await
}

async fn fail(breaker: &CircuitBreaker) -> Result<(), Error<TestError>> {
    breaker
        .call(async { Err(Error::Inner(TestError::FAIL)) })
        .await
}

#[tokio::test(start_paused = true)]
async fn opens_at_the_failure_rate_after_minimum_calls() {
    let (recorder, ctx) = Recorder::context("b");
    let breaker = CircuitBreaker::with_context(small(), ctx);
    succeed(&breaker).await.ok();
    fail(&breaker).await.ok();
    fail(&breaker).await.ok();
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "below the minimum number of calls"
    );
    assert_eq!(breaker.metrics().failure_rate, None);
    fail(&breaker).await.ok();
    assert_eq!(breaker.state(), BreakerState::Open);
    let open_since = Instant::now();

    sleep(300 * MS).await;
    let Err(Error::CircuitOpen(rejection)) = succeed(&breaker).await else {
        panic!("expected a rejection")
    };
    assert_eq!(
        rejection.open_until,
        Some(open_since + Duration::from_secs(1))
    );
    assert_eq!(rejection.retry_after, Some(700 * MS));
    let metrics = breaker.metrics();
    assert_eq!(metrics.failure_rate, Some(0.75));
    assert_eq!(
        (
            metrics.calls,
            metrics.failed_calls,
            metrics.not_permitted_calls
        ),
        (4, 3, 1)
    );
    assert_eq!(
        recorder.events(),
        vec![
            EventKind::FailureRateExceeded { rate: 0.75 },
            EventKind::BreakerTransition {
                from: BreakerState::Closed,
                to: BreakerState::Open
            },
            EventKind::BreakerRejected {
                state: BreakerState::Open,
                retry_after: Some(700 * MS)
            },
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn half_open_probes_close_the_breaker() {
    let (recorder, ctx) = Recorder::context("b");
    let breaker = CircuitBreaker::with_context(small(), ctx);
    for _ in 0..4 {
        fail(&breaker).await.ok();
    }
    sleep(Duration::from_secs(1)).await;
    let first = breaker.try_acquire();
    let second = breaker.try_acquire();
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    let Err(third) = breaker.try_acquire() else {
        panic!("only two probes are permitted")
    };
    assert_eq!(third.state, BreakerState::HalfOpen);
    let (Ok(first), Ok(second)) = (first, second) else {
        panic!("probes rejected")
    };
    first.record(Outcome::Success);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    second.record(Outcome::Success);
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.metrics().calls, 0, "closing starts a fresh window");
    let transitions: Vec<_> = recorder
        .events()
        .into_iter()
        .filter_map(|kind| match kind {
            EventKind::BreakerTransition { to, .. } => Some(to),
            _ => None,
        })
        .collect();
    assert_eq!(
        transitions,
        vec![
            BreakerState::Open,
            BreakerState::HalfOpen,
            BreakerState::Closed
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn failed_probes_reopen_for_longer_up_to_the_cap() {
    let config = CircuitBreakerConfig {
        open_duration_multiplier: 2.0,
        max_open_duration: Duration::from_secs(3),
        ..small()
    };
    let breaker = CircuitBreaker::new(config);
    for _ in 0..4 {
        fail(&breaker).await.ok();
    }
    let mut expected = vec![];
    let mut observed = vec![];
    for open_for in [1, 2, 3, 3] {
        expected.push(Duration::from_secs(open_for));
        let opened = Instant::now();
        let Some(until) = breaker.metrics().open_until else {
            panic!("not open")
        };
        observed.push(until - opened);
        sleep(until - opened).await;
        fail(&breaker).await.ok();
        fail(&breaker).await.ok();
        assert_eq!(breaker.state(), BreakerState::Open);
    }
    assert_eq!(observed, expected);
}

#[tokio::test(start_paused = true)]
async fn slow_calls_open_the_breaker() {
    let config = CircuitBreakerConfig {
        slow_call_duration: 100 * MS,
        slow_call_rate_threshold: 0.5,
        ..small()
    };
    let (recorder, ctx) = Recorder::context("b");
    let breaker = CircuitBreaker::with_context(config, ctx);
    for _ in 0..4 {
        let result: Result<(), Error<TestError>> = breaker
            .call(async {
                sleep(150 * MS).await;
                Ok(())
            })
            .await;
        assert!(result.is_ok());
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(breaker.metrics().slow_call_rate, Some(1.0));
    assert_eq!(
        recorder.count(|kind| matches!(kind, EventKind::SlowCallRateExceeded { .. })),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn the_caller_decides_what_a_failure_is() {
    let breaker = CircuitBreaker::new(small());
    // An application error that reports success to the breaker (a tool's own `isError`).
    let tool_error = TestError {
        outcome: Outcome::Success,
        ..TestError::FAIL
    };
    for _ in 0..10 {
        let result: Result<(), Error<TestError>> =
            breaker.call(async { Err(Error::Inner(tool_error)) }).await;
        assert!(result.is_err());
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.metrics().failure_rate, Some(0.0));
    // A successful value counted as a failure by a closure.
    let by_value = |result: &Result<u16, Error<TestError>>| match result {
        Ok(status) if *status >= 500 => Outcome::Failure,
        Ok(_) => Outcome::Success,
        Err(_) => Outcome::Failure,
    };
    for _ in 0..10 {
        let _ = breaker.call_with(by_value, async { Ok(503) }).await;
    }
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn ignored_and_cancelled_calls_are_not_counted() {
    let breaker = CircuitBreaker::new(small());
    let ignored = TestError {
        outcome: Outcome::Ignored,
        ..TestError::FAIL
    };
    for _ in 0..10 {
        let _: Result<(), Error<TestError>> =
            breaker.call(async { Err(Error::Inner(ignored)) }).await;
    }
    assert_eq!(breaker.metrics().calls, 0);
    for _ in 0..4 {
        fail(&breaker).await.ok();
    }
    sleep(Duration::from_secs(1)).await;
    // Two probes admitted and cancelled (dropped) give their slots back.
    for _ in 0..3 {
        let probe = breaker.try_acquire();
        let other = breaker.try_acquire();
        assert!(probe.is_ok() && other.is_ok());
    }
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn outcomes_from_an_earlier_state_are_dropped() {
    let breaker = CircuitBreaker::new(small());
    let Ok(stale) = breaker.try_acquire() else {
        panic!("closed breaker rejected")
    };
    for _ in 0..4 {
        fail(&breaker).await.ok();
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    stale.record(Outcome::Failure);
    assert_eq!(breaker.metrics().calls, 4);
}

#[tokio::test(start_paused = true)]
async fn manual_modes_override_the_automaton() {
    let (recorder, ctx) = Recorder::context("b");
    let breaker = CircuitBreaker::with_context(small(), ctx);

    breaker.force_open();
    let Err(Error::CircuitOpen(rejection)) = succeed(&breaker).await else {
        panic!("forced open")
    };
    assert_eq!(
        (rejection.state, rejection.retry_after),
        (BreakerState::ForcedOpen, None)
    );
    sleep(Duration::from_secs(120)).await;
    assert!(
        succeed(&breaker).await.is_err(),
        "forced open does not time out"
    );

    breaker.force_closed();
    for _ in 0..10 {
        fail(&breaker).await.ok();
    }
    assert_eq!(breaker.state(), BreakerState::ForcedClosed);
    assert_eq!(breaker.metrics().failed_calls, 10);

    breaker.disable();
    for _ in 0..10 {
        fail(&breaker).await.ok();
    }
    assert_eq!(breaker.metrics().calls, 0, "disabled records nothing");

    breaker.metrics_only();
    for _ in 0..4 {
        fail(&breaker).await.ok();
    }
    assert_eq!(breaker.state(), BreakerState::MetricsOnly);
    assert!(recorder.count(|kind| matches!(kind, EventKind::FailureRateExceeded { .. })) >= 1);

    breaker.reset();
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.metrics().calls, 0);
    for _ in 0..4 {
        fail(&breaker).await.ok();
    }
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn time_window_forgets_old_failures() {
    let config = CircuitBreakerConfig {
        window: SlidingWindow::Time {
            length: Duration::from_secs(10),
            buckets: 10,
        },
        minimum_calls: 4,
        ..CircuitBreakerConfig::default()
    };
    let breaker = CircuitBreaker::new(config);
    for _ in 0..3 {
        fail(&breaker).await.ok();
    }
    sleep(Duration::from_secs(11)).await;
    assert_eq!(breaker.metrics().calls, 0);
    fail(&breaker).await.ok();
    assert_eq!(breaker.state(), BreakerState::Closed);
    for _ in 0..3 {
        succeed(&breaker).await.ok();
    }
    assert_eq!(breaker.metrics().failure_rate, Some(0.25));
}

#[tokio::test(start_paused = true)]
async fn registry_keeps_one_breaker_per_key_with_overrides() {
    let strict = CircuitBreakerConfig {
        minimum_calls: 1,
        ..small()
    };
    let registry = BreakerRegistry::new(small(), 16).with_override("flaky", strict);
    let a = registry.get(&"a");
    assert!(registry.get(&"a").name().ends_with("/\"a\""));
    fail(&registry.get(&"flaky")).await.ok();
    assert_eq!(registry.get(&"flaky").state(), BreakerState::Open);
    fail(&a).await.ok();
    assert_eq!(registry.get(&"a").state(), BreakerState::Closed);
    assert_eq!(
        registry.get(&"a").metrics().calls,
        1,
        "the same breaker is returned"
    );
    assert_eq!(registry.len(), 2);
    assert_eq!(registry.snapshot().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn registry_evicts_least_recently_used_closed_breakers_only() {
    let config = CircuitBreakerConfig {
        minimum_calls: 1,
        ..small()
    };
    let registry = BreakerRegistry::new(config, 2);
    fail(&registry.get(&1)).await.ok();
    assert_eq!(registry.get(&1).state(), BreakerState::Open);
    registry.get(&2);
    registry.get(&3);
    assert!(
        registry.peek(&1).is_some(),
        "open breakers are never evicted"
    );
    assert!(
        registry.peek(&2).is_none(),
        "the least recently used closed breaker goes"
    );
    assert_eq!(registry.len(), 2);
    registry.get(&4);
    assert!(registry.peek(&3).is_none());
    registry.get(&1).force_open();
    registry.get(&4).force_open();
    registry.get(&5);
    assert_eq!(registry.len(), 3, "grows only while every breaker is open");
}

#[tokio::test(start_paused = true)]
async fn tower_layer_rejects_while_open() {
    let breaker = CircuitBreaker::new(CircuitBreakerConfig {
        minimum_calls: 1,
        ..small()
    });
    let mut service = tower::ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(breaker.clone()))
        .service_fn(|fail: bool| async move {
            if fail {
                Err(BoxError::from("boom"))
            } else {
                Ok("ok")
            }
        });
    let Ok(ready) = service.ready().await else {
        panic!("not ready")
    };
    assert!(ready.call(true).await.is_err());
    assert_eq!(breaker.state(), BreakerState::Open);
    let Ok(ready) = service.ready().await else {
        panic!("not ready")
    };
    let Err(error) = ready.call(false).await else {
        panic!("expected a rejection")
    };
    assert!(error.is::<CircuitOpenError>());
}

/// A naive model: every outcome with its time, filtered on demand.
#[derive(Debug, Default)]
struct Model {
    outcomes: Vec<(Duration, bool, bool)>,
}

impl Model {
    fn totals(outcomes: &[(Duration, bool, bool)]) -> Totals {
        let mut totals = Totals::default();
        for &(_, failure, slow) in outcomes {
            totals.add(failure, slow);
        }
        totals
    }

    fn last(&self, n: usize) -> Totals {
        Model::totals(&self.outcomes[self.outcomes.len().saturating_sub(n)..])
    }

    fn within(&self, now: Duration, bucket: Duration, buckets: u32) -> Totals {
        let current = now.as_nanos() / bucket.as_nanos();
        let kept: Vec<_> = self
            .outcomes
            .iter()
            .copied()
            .filter(|(at, _, _)| current - at.as_nanos() / bucket.as_nanos() < u128::from(buckets))
            .collect();
        Model::totals(&kept)
    }
}

proptest! {
    #[test]
    fn count_window_matches_the_model(size in 1u32..20, outcomes in prop::collection::vec((any::<bool>(), any::<bool>()), 0..200)) {
        let mut window = CountWindow::new(size);
        let mut model = Model::default();
        for (failure, slow) in outcomes {
            window.record(failure, slow);
            model.outcomes.push((Duration::ZERO, failure, slow));
            prop_assert_eq!(window.totals(), model.last(size as usize));
        }
    }

    #[test]
    fn time_window_matches_the_model(
        buckets in 1u32..12,
        bucket_ms in 1u64..500,
        steps in prop::collection::vec((0u64..3000, any::<bool>(), any::<bool>(), any::<bool>()), 0..200),
    ) {
        let epoch = Instant::now();
        let bucket = Duration::from_millis(bucket_ms);
        let mut window = TimeWindow::new(bucket * buckets, buckets, epoch);
        let mut model = Model::default();
        let mut now = Duration::ZERO;
        for (advance_ms, record, failure, slow) in steps {
            now += Duration::from_millis(advance_ms);
            if record {
                window.record(epoch + now, failure, slow);
                model.outcomes.push((now, failure, slow));
            }
            prop_assert_eq!(window.totals(epoch + now), model.within(now, bucket, buckets));
        }
    }
}
