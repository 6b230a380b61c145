//! A composed stack of policies for a plain async closure.
//!
//! [`Pipeline`] applies, outermost first, the recommended order:
//!
//! 1. **overall deadline**: covers every attempt and every backoff wait;
//! 2. **retry** (with its budget): never sleeps past the deadline;
//! 3. per attempt: **rate limiter** → **circuit breaker** → **bulkhead** → **attempt
//!    timeout** → the operation.
//!
//! Why this order: the deadline bounds the user-visible latency (Envoy's route timeout,
//! gRPC deadlines); retry sits outside the per-attempt policies so each attempt is
//! rate-limited, admitted by the breaker and timed separately (the .NET standard resilience
//! handler and Polly's docs use the same nesting); the rate limiter comes before the breaker
//! so a locally throttled call is not a breaker outcome; the bulkhead is innermost of the
//! admission checks so slots are only held by calls that will run; the attempt timeout
//! counts as a breaker failure and is retried.
//!
//! Any policy can be left out. Policies are cheap handles, so one breaker or limiter can
//! serve several pipelines (for a per-key breaker, build the pipeline per key from a
//! [`BreakerRegistry`](crate::BreakerRegistry) lookup or use the tower layers). An
//! operation error with a [`Classify::retry_after`] penalizes the rate limiter for that
//! long (an upstream 429). Hedging composes outside: `hedge.call(|| pipeline.call(op))`.
//!
//! The success path allocates nothing and takes no lock except the breaker's record.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::breaker::{ByError, CircuitBreaker, ClassifyOutcome};
use crate::bulkhead::Bulkhead;
use crate::error::{Classify, Error};
use crate::event::{Context, TimeoutKind};
use crate::rate_limit::RateLimiter;
use crate::retry::Retry;
use crate::timeout::run_until;

/// Policies applied to each call, in the documented order. Build it with the `with_*`
/// methods; cloning is cheap.
#[derive(Debug, Clone)]
pub struct Pipeline {
    ctx: Context,
    deadline: Option<Duration>,
    retry: Option<Retry>,
    rate_limiter: Option<RateLimiter>,
    breaker: Option<CircuitBreaker>,
    bulkhead: Option<Bulkhead>,
    attempt_timeout: Option<Duration>,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline::new()
    }
}

impl Pipeline {
    /// An empty pipeline (no policy) whose timeouts report to a [`Context`] named
    /// `"pipeline"`.
    pub fn new() -> Self {
        Pipeline::with_context(Context::new("pipeline"))
    }

    /// An empty pipeline whose timeouts report to `ctx`.
    pub fn with_context(ctx: Context) -> Self {
        Pipeline {
            ctx,
            deadline: None,
            retry: None,
            rate_limiter: None,
            breaker: None,
            bulkhead: None,
            attempt_timeout: None,
        }
    }

    /// Bounds each call, all attempts and waits included, to `deadline`.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Retries failed attempts.
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Rate-limits each attempt (and is penalized by server delays).
    pub fn with_rate_limiter(mut self, limiter: RateLimiter) -> Self {
        self.rate_limiter = Some(limiter);
        self
    }

    /// Guards each attempt with a circuit breaker.
    pub fn with_circuit_breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// Runs each attempt in a bulkhead slot.
    pub fn with_bulkhead(mut self, bulkhead: Bulkhead) -> Self {
        self.bulkhead = Some(bulkhead);
        self
    }

    /// Cancels each attempt after `timeout`.
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// Runs `operation` through the policies. Breaker outcomes follow [`ByError`].
    pub async fn call<T, E, F, Fut>(&self, operation: F) -> Result<T, Error<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify,
    {
        self.call_with(ByError, operation).await
    }

    /// Like [`Pipeline::call`], with the breaker counting outcomes by `classifier`.
    pub async fn call_with<T, E, C, F, Fut>(
        &self,
        classifier: C,
        mut operation: F,
    ) -> Result<T, Error<E>>
    where
        C: ClassifyOutcome<T, Error<E>>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify,
    {
        let start = self.ctx.now();
        let deadline = self.deadline.map(|deadline| start + deadline);
        let Some(retry) = &self.retry else {
            return self
                .attempt(&classifier, &mut operation, start, deadline)
                .await;
        };
        let mut attempts = retry.start(deadline);
        loop {
            let error = match self
                .attempt(&classifier, &mut operation, start, deadline)
                .await
            {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            match attempts.next_delay(retry, &error) {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return Err(error),
            }
        }
    }

    async fn attempt<T, E, C, F, Fut>(
        &self,
        classifier: &C,
        operation: &mut F,
        start: Instant,
        deadline: Option<Instant>,
    ) -> Result<T, Error<E>>
    where
        C: ClassifyOutcome<T, Error<E>>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify,
    {
        if let Some(limiter) = &self.rate_limiter {
            limiter.acquire_until(deadline).await?;
        }
        let permit = match &self.breaker {
            Some(breaker) => Some(breaker.try_acquire()?),
            None => None,
        };
        let _slot = match &self.bulkhead {
            Some(bulkhead) => Some(bulkhead.acquire_until(deadline).await?),
            None => None,
        };
        let attempt = async { operation().await.map_err(Error::Inner) };
        let attempt_timer = self.attempt_timeout.map(|timeout| {
            let attempt_start = self.ctx.now();
            (attempt_start, attempt_start + timeout)
        });
        let result = match (attempt_timer, deadline) {
            (Some((_, end)), Some(deadline)) if deadline <= end => {
                run_until(&self.ctx, start, deadline, TimeoutKind::Deadline, attempt).await
            }
            (Some((attempt_start, end)), _) => {
                run_until(&self.ctx, attempt_start, end, TimeoutKind::Attempt, attempt).await
            }
            (None, Some(deadline)) => {
                run_until(&self.ctx, start, deadline, TimeoutKind::Deadline, attempt).await
            }
            (None, None) => attempt.await,
        };
        if let Some(permit) = permit {
            permit.record(classifier.classify(&result));
        }
        if let (Some(limiter), Err(Error::Inner(error))) = (&self.rate_limiter, &result)
            && let Some(delay) = error.retry_after()
        {
            limiter.penalize(delay);
        }
        result
    }
}

#[cfg(test)]
mod tests;
