//! Resilience policies for async Rust: deadlines and timeouts, retries with backoff and a
//! retry budget, circuit breakers (also keyed), rate limiters on `governor` (also keyed),
//! bulkheads and hedging.
//!
//! The crate is generic: it knows nothing about MCP or any protocol, and works with any
//! `tokio` application. Depend on it directly for the policies; the `switchboard` facade
//! re-exports it.
//!
//! # Shape
//!
//! Every policy is a cheap, cloneable handle with a plain async API (`call`) and, where it
//! fits, a tower layer:
//!
//! | Policy | Plain API | Tower |
//! |---|---|---|
//! | attempt timeout, deadline | [`Timeout`] | [`TimeoutLayer`] |
//! | progress-aware timeout with a hard cap | [`ProgressTimeout`], [`Progress`] | |
//! | retry with backoff, Retry-After, budget | [`Retry`], [`RetryBudget`] | [`RetryPolicy`] for `tower::retry` |
//! | circuit breaker | [`CircuitBreaker`], [`BreakerRegistry`] | [`CircuitBreakerLayer`] |
//! | rate limiter | [`RateLimiter`], [`KeyedRateLimiter`] | [`RateLimitLayer`] |
//! | bulkhead | [`Bulkhead`] | [`BulkheadLayer`] |
//! | hedging | [`Hedge`] | (tower's own `hedge`) |
//! | all of the above in the recommended order | [`Pipeline`] | `tower::ServiceBuilder` |
//!
//! Policies read time through a [`Clock`] ([`TokioClock`] by default) and sleep with
//! `tokio::time`, so tests run under `tokio::time::pause()`. Every decision is reported as
//! an [`Event`] to the [`Listener`] of the policy's [`Context`].
//!
//! Errors: policies are generic over the caller's error type and only need it to hold their
//! rejection (`E: From<CircuitOpenError>` …). [`Error<E>`] holds all of them with `is_*`
//! predicates; [`Classify`] tells the policies what the caller's errors mean.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use switchboard_resilience::{
//!     Bulkhead, BulkheadConfig, CircuitBreaker, CircuitBreakerConfig, Classify, Pipeline,
//!     RateLimitConfig, RateLimiter, Retry, RetryBudget, RetryBudgetConfig, RetryConfig,
//! };
//!
//! #[derive(Debug)]
//! struct Unavailable;
//! impl Classify for Unavailable {}
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let pipeline = Pipeline::new()
//!     .with_deadline(Duration::from_secs(10))
//!     .with_retry(Retry::new(RetryConfig::default()).with_budget(RetryBudget::new(RetryBudgetConfig::default())))
//!     .with_rate_limiter(RateLimiter::new(RateLimitConfig::default()))
//!     .with_circuit_breaker(CircuitBreaker::new(CircuitBreakerConfig::default()))
//!     .with_bulkhead(Bulkhead::new(BulkheadConfig::default()))
//!     .with_attempt_timeout(Duration::from_secs(2));
//!
//! let mut calls = 0;
//! let answer = pipeline
//!     .call(|| {
//!         calls += 1;
//!         let attempt = calls;
//!         async move { if attempt < 2 { Err(Unavailable) } else { Ok(42) } }
//!     })
//!     .await;
//! assert_eq!(answer.ok(), Some(42));
//! assert_eq!(calls, 2);
//! # }
//! ```
//!
//! See `docs/resilience.md` for every setting, its default and the anchor it follows.
//!
//! # Features and MSRV
//!
//! No optional features. The minimum supported Rust version is the workspace's
//! `rust-version` (1.88).

mod breaker;
mod bulkhead;
mod clock;
mod error;
mod event;
mod hedge;
mod pipeline;
mod rate_limit;
mod retry;
#[cfg(test)]
mod test_support;
mod timeout;

pub use self::breaker::{
    BreakerMetrics, BreakerRegistry, ByError, CircuitBreaker, CircuitBreakerConfig,
    CircuitBreakerLayer, CircuitBreakerService, ClassifyOutcome, Permit, SlidingWindow,
};
pub use self::bulkhead::{
    Bulkhead, BulkheadConfig, BulkheadLayer, BulkheadPermit, BulkheadService,
};
pub use self::clock::{Clock, TokioClock};
pub use self::error::{
    BulkheadFullError, CircuitOpenError, Classify, Error, Outcome, RateLimitedError, TimeoutError,
};
pub use self::event::{
    BreakerState, BulkheadRejection, Context, Event, EventKind, GiveUpReason, Listener,
    NoopListener, PolicyKind, TimeoutKind,
};
pub use self::hedge::{Hedge, HedgeConfig, HedgeDelay};
pub use self::pipeline::Pipeline;
pub use self::rate_limit::{
    KeyedRateLimiter, RateLimitConfig, RateLimitLayer, RateLimitMode, RateLimitService, RateLimiter,
};
pub use self::retry::{
    Backoff, Jitter, Retry, RetryBudget, RetryBudgetConfig, RetryConfig, RetryPolicy,
};
pub use self::timeout::{Progress, ProgressTimeout, Timeout, TimeoutLayer, TimeoutService};

/// The response futures of the tower services.
pub mod future {
    pub use crate::breaker::ResponseFuture as CircuitBreakerFuture;
    pub use crate::bulkhead::ResponseFuture as BulkheadFuture;
    pub use crate::rate_limit::ResponseFuture as RateLimitFuture;
    pub use crate::timeout::ResponseFuture as TimeoutFuture;
}
