//! The full policy stack on the success path against a bare call of the same async fn,
//! both on a current-thread tokio runtime.
//!
//! Stack: overall deadline + retry with budget + rate limiter (generous limit) + circuit
//! breaker + bulkhead + attempt timeout, through [`Pipeline`] (`stack`) and through the
//! tower layers in a `ServiceBuilder` (`tower_stack`, for comparison).

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use switchboard_resilience::{
    Bulkhead, BulkheadConfig, BulkheadLayer, CircuitBreaker, CircuitBreakerConfig,
    CircuitBreakerLayer, Pipeline, RateLimitConfig, RateLimitLayer, RateLimitMode, RateLimiter,
    Retry, RetryBudget, RetryBudgetConfig, RetryConfig, RetryPolicy, TimeoutLayer,
};
use tower::{BoxError, ServiceBuilder, ServiceExt};

async fn inner(x: u64) -> Result<u64, Infallible> {
    Ok(black_box(x))
}

fn generous_limiter() -> RateLimiter {
    RateLimiter::new(RateLimitConfig {
        requests: 1_000_000_000,
        period: Duration::from_secs(1),
        burst: 1_000_000,
        mode: RateLimitMode::Reject,
    })
}

fn retry() -> Retry {
    Retry::new(RetryConfig::default()).with_budget(RetryBudget::new(RetryBudgetConfig::default()))
}

fn stack(c: &mut Criterion) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    else {
        return;
    };
    let (pipeline, service) = runtime.block_on(async {
        let pipeline = Pipeline::new()
            .with_deadline(Duration::from_secs(10))
            .with_retry(retry())
            .with_rate_limiter(generous_limiter())
            .with_circuit_breaker(CircuitBreaker::new(CircuitBreakerConfig::default()))
            .with_bulkhead(Bulkhead::new(BulkheadConfig::default()))
            .with_attempt_timeout(Duration::from_secs(1));
        let service = ServiceBuilder::new()
            .layer(TimeoutLayer::from_duration(Duration::from_secs(10)))
            .layer(tower::retry::RetryLayer::new(RetryPolicy::new(retry())))
            .layer(RateLimitLayer::new(generous_limiter()))
            .layer(CircuitBreakerLayer::new(CircuitBreaker::new(
                CircuitBreakerConfig::default(),
            )))
            .layer(BulkheadLayer::new(Bulkhead::new(BulkheadConfig::default())))
            .layer(TimeoutLayer::from_duration(Duration::from_secs(1)))
            .service_fn(|x: u64| async move { inner(x).await.map_err(BoxError::from) });
        (pipeline, service)
    });

    let mut group = c.benchmark_group("success_path");
    group.bench_function("bare", |b| {
        b.to_async(&runtime).iter(|| inner(black_box(1)))
    });
    group.bench_function("stack", |b| {
        b.to_async(&runtime)
            .iter(|| pipeline.call(|| inner(black_box(1))))
    });
    group.bench_function("tower_stack", |b| {
        b.to_async(&runtime)
            .iter(|| service.clone().oneshot(black_box(1)))
    });
    group.finish();
}

criterion_group!(benches, stack);
criterion_main!(benches);
