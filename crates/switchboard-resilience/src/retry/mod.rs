//! Retries with backoff, server delays, a retry budget and an overall deadline.
//!
//! [`Retry`] runs an operation again after a retryable error ([`Classify::is_retryable`]),
//! waiting a [`Backoff`] delay or exactly the server's [`Classify::retry_after`]. It stops at
//! [`RetryConfig::max_attempts`], when the shared [`RetryBudget`] is empty, or when the next
//! attempt could not start before the overall deadline (it never sleeps past it). Each stop
//! returns the last error and reports [`EventKind::RetryGaveUp`] with the reason.
//!
//! [`RetryPolicy`] is the same logic as a `tower::retry::Policy`.

mod backoff;
mod budget;
mod policy;

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

pub use self::backoff::{Backoff, Jitter};
pub use self::budget::{RetryBudget, RetryBudgetConfig};
pub use self::policy::RetryPolicy;
use crate::error::{Classify, TimeoutError};
use crate::event::{Context, EventKind, GiveUpReason, TimeoutKind};
use crate::timeout::run_until;

/// Settings of a [`Retry`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryConfig {
    /// Attempts in total, the first included; 0 is treated as 1. Default: 3
    /// (resilience4j `maxAttempts` 3; Polly retries 3 times after the first call; gRPC caps
    /// client attempts at 5).
    pub max_attempts: u32,
    /// The wait between attempts. Default: [`Backoff::default`], Envoy's fully jittered
    /// exponential 25 ms → 250 ms.
    pub backoff: Backoff,
    /// The longest server-provided delay ([`Classify::retry_after`]) that is honoured; a longer
    /// one stops the retries ([`GiveUpReason::Deadline`]). Default: 60 s.
    pub max_retry_after: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            backoff: Backoff::default(),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// Retries an operation after retryable errors.
///
/// Cloning is cheap; clones share the budget and the context.
#[derive(Debug, Clone)]
pub struct Retry {
    config: RetryConfig,
    budget: Option<RetryBudget>,
    ctx: Context,
}

impl Retry {
    /// A retry policy without budget, with a default [`Context`] named `"retry"`.
    pub fn new(config: RetryConfig) -> Self {
        Retry::with_context(config, Context::new("retry"))
    }

    /// A retry policy without budget reporting to `ctx`.
    pub fn with_context(config: RetryConfig, ctx: Context) -> Self {
        Retry {
            config,
            budget: None,
            ctx,
        }
    }

    /// Draws every retry from `budget` (and deposits every call into it).
    pub fn with_budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The settings.
    pub fn config(&self) -> &RetryConfig {
        &self.config
    }

    /// The budget, if any.
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.budget.as_ref()
    }

    /// Runs `operation` until it succeeds or the policy gives up; returns the last error then.
    pub async fn call<T, E, F, Fut>(&self, mut operation: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify,
    {
        let mut attempts = self.start(None);
        loop {
            let error = match operation().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            match attempts.next_delay(self, &error) {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return Err(error),
            }
        }
    }

    /// Like [`Retry::call`], with an overall deadline over all attempts and waits.
    ///
    /// An attempt still running at `deadline` is cancelled with a
    /// [`TimeoutKind::Deadline`] error; no wait extends past `deadline`.
    pub async fn call_until<T, E, F, Fut>(
        &self,
        deadline: Instant,
        mut operation: F,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify + From<TimeoutError>,
    {
        let start = self.ctx.now();
        let mut attempts = self.start(Some(deadline));
        loop {
            let attempt = run_until(
                &self.ctx,
                start,
                deadline,
                TimeoutKind::Deadline,
                operation(),
            );
            let error = match attempt.await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            match attempts.next_delay(self, &error) {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return Err(error),
            }
        }
    }

    /// Starts the bookkeeping of one call: deposits into the budget.
    pub(crate) fn start(&self, deadline: Option<Instant>) -> Attempts {
        if let Some(budget) = &self.budget {
            budget.deposit();
        }
        Attempts::new(deadline)
    }
}

/// The retry state of one call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempts {
    made: u32,
    previous_delay: Duration,
    deadline: Option<Instant>,
}

impl Attempts {
    /// No attempt made yet; nothing deposited.
    pub(crate) fn new(deadline: Option<Instant>) -> Self {
        Attempts {
            made: 0,
            previous_delay: Duration::ZERO,
            deadline,
        }
    }

    /// Decides after a failed attempt: the delay before the next one, or `None` to give up.
    /// Reports the decision.
    pub(crate) fn next_delay<E: Classify>(&mut self, retry: &Retry, error: &E) -> Option<Duration> {
        self.made += 1;
        let give_up = |reason| {
            retry.ctx.emit(EventKind::RetryGaveUp {
                attempts: self.made,
                reason,
            });
            None
        };
        if !error.is_retryable() {
            return give_up(GiveUpReason::NotRetryable);
        }
        if self.made >= retry.config.max_attempts.max(1) {
            return give_up(GiveUpReason::MaxAttempts);
        }
        let server_delay = error.retry_after();
        let delay = match server_delay {
            Some(delay) if delay > retry.config.max_retry_after => {
                return give_up(GiveUpReason::Deadline);
            }
            Some(delay) => delay,
            None => retry
                .config
                .backoff
                .delay(self.made, self.previous_delay, &mut rand::rng()),
        };
        if let Some(deadline) = self.deadline
            && retry.ctx.now() + delay >= deadline
        {
            return give_up(GiveUpReason::Deadline);
        }
        if let Some(budget) = &retry.budget
            && !budget.try_withdraw()
        {
            retry.ctx.emit(EventKind::BudgetExhausted);
            return give_up(GiveUpReason::BudgetExhausted);
        }
        self.previous_delay = delay;
        retry.ctx.emit(EventKind::RetryScheduled {
            attempt: self.made,
            delay,
            server_delay: server_delay.is_some(),
        });
        Some(delay)
    }
}

#[cfg(test)]
mod tests;
