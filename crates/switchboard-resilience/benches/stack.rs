//! The full policy stack on the success path against a bare call of the same async fn,
//! both on a current-thread tokio runtime.
//!
//! Stack: overall deadline + retry with budget + rate limiter (generous limit) + circuit
//! breaker + bulkhead + attempt timeout, through [`Pipeline`].

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use switchboard_resilience::{
    Bulkhead, BulkheadConfig, CircuitBreaker, CircuitBreakerConfig, Pipeline, RateLimitConfig,
    RateLimitMode, RateLimiter, Retry, RetryBudget, RetryBudgetConfig, RetryConfig,
};

async fn inner(x: u64) -> Result<u64, Infallible> {
    Ok(black_box(x))
}

fn stack(c: &mut Criterion) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    else {
        return;
    };
    let pipeline = runtime.block_on(async {
        Pipeline::new()
            .with_deadline(Duration::from_secs(10))
            .with_retry(
                Retry::new(RetryConfig::default())
                    .with_budget(RetryBudget::new(RetryBudgetConfig::default())),
            )
            .with_rate_limiter(RateLimiter::new(RateLimitConfig {
                requests: 1_000_000_000,
                period: Duration::from_secs(1),
                burst: 1_000_000,
                mode: RateLimitMode::Reject,
            }))
            .with_circuit_breaker(CircuitBreaker::new(CircuitBreakerConfig::default()))
            .with_bulkhead(Bulkhead::new(BulkheadConfig::default()))
            .with_attempt_timeout(Duration::from_secs(1))
    });

    let mut group = c.benchmark_group("success_path");
    group.bench_function("bare", |b| {
        b.to_async(&runtime).iter(|| inner(black_box(1)))
    });
    group.bench_function("stack", |b| {
        b.to_async(&runtime)
            .iter(|| pipeline.call(|| inner(black_box(1))))
    });
    group.finish();
}

criterion_group!(benches, stack);
criterion_main!(benches);
