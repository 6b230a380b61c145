//! Proves that the success path of the full policy stack allocates nothing, with a counting
//! global allocator (this binary holds a single test so no other test allocates meanwhile).

use std::alloc::System;
use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use switchboard_resilience::{
    Bulkhead, BulkheadConfig, BulkheadLayer, CircuitBreaker, CircuitBreakerConfig,
    CircuitBreakerLayer, Pipeline, RateLimitConfig, RateLimitLayer, RateLimitMode, RateLimiter,
    Retry, RetryBudget, RetryBudgetConfig, RetryConfig, RetryPolicy, TimeoutLayer,
};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const CALLS: u64 = 10_000;

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

#[test]
fn success_path_allocates_nothing() -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    runtime.block_on(async {
        let pipeline = Pipeline::new()
            .with_deadline(Duration::from_secs(10))
            .with_retry(retry())
            .with_rate_limiter(generous_limiter())
            .with_circuit_breaker(CircuitBreaker::new(CircuitBreakerConfig::default()))
            .with_bulkhead(Bulkhead::new(BulkheadConfig::default()))
            .with_attempt_timeout(Duration::from_secs(1));
        let mut service = ServiceBuilder::new()
            .layer(TimeoutLayer::from_duration(Duration::from_secs(10)))
            .layer(tower::retry::RetryLayer::new(RetryPolicy::new(retry())))
            .layer(RateLimitLayer::new(generous_limiter()))
            .layer(CircuitBreakerLayer::new(CircuitBreaker::new(
                CircuitBreakerConfig::default(),
            )))
            .layer(BulkheadLayer::new(Bulkhead::new(BulkheadConfig::default())))
            .layer(TimeoutLayer::from_duration(Duration::from_secs(1)))
            .service_fn(|x: u64| async move { inner(x).await.map_err(BoxError::from) });

        // Warm up thread locals (the RNG, tokio's context) before counting.
        for x in 0..100 {
            pipeline.call(|| inner(x)).await?;
            service.ready().await?.call(x).await?;
        }

        let region = Region::new(GLOBAL);
        for x in 0..CALLS {
            assert_eq!(pipeline.call(|| inner(x)).await?, x);
        }
        let pipeline_stats = region.change();

        let region = Region::new(GLOBAL);
        for x in 0..CALLS {
            assert_eq!(service.ready().await?.call(x).await?, x);
        }
        let tower_stats = region.change();

        // No allocation per call: one would show as at least CALLS allocations. A few one-time
        // ones are tolerated — on a slow or loaded machine the measured window can be the first
        // to see lazily initialised state (seen in CI: 4 allocations, 900 bytes, none freed).
        const ONE_TIME: usize = 16;
        assert!(
            pipeline_stats.allocations + pipeline_stats.reallocations <= ONE_TIME,
            "pipeline: {pipeline_stats:?} over {CALLS} calls"
        );
        assert!(
            tower_stats.allocations + tower_stats.reallocations <= ONE_TIME,
            "tower stack: {tower_stats:?} over {CALLS} calls"
        );
        Ok(())
    })
}
