//! Rate limiting on `governor`'s GCRA: direct and keyed limiters that wait or reject, and
//! that can be told to back off after an upstream 429.
//!
//! [`RateLimiter`] limits all calls together; [`KeyedRateLimiter`] limits each key (any
//! `K: Hash + Eq + Clone`) separately with the same quota. In [`RateLimitMode::Wait`] a call
//! waits for a permit up to a timeout (it fails at once when the wait would be longer); in
//! [`RateLimitMode::Reject`] it fails at once. [`RateLimiter::penalize`] stops all calls for
//! a duration (an upstream Retry-After) and [`RateLimiter::drain`] takes every permit that
//! is left. [`RateLimitLayer`] is the tower form.

mod keyed;
mod layer;

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::Quota;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use tokio::time::Instant;

pub use self::keyed::KeyedRateLimiter;
pub use self::layer::{RateLimitLayer, RateLimitService, ResponseFuture};
use crate::clock::GovernorClock;
use crate::error::RateLimitedError;
use crate::event::{Context, EventKind};

/// What a call does when no permit is available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitMode {
    /// Fail at once with a [`RateLimitedError`].
    Reject,
    /// Wait for a permit, at most `timeout`; fail at once if the wait would be longer.
    Wait {
        /// The longest wait.
        timeout: Duration,
    },
}

/// Settings of a rate limiter: `requests` per `period`, bursts up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Permits per period; 0 is treated as 1. Default: 50 (resilience4j `limitForPeriod`).
    pub requests: u32,
    /// The period. Default: 1 s.
    pub period: Duration,
    /// Permits available at once after a quiet time; 0 is treated as 1. Default: 50.
    pub burst: u32,
    /// Wait or reject. Default: wait up to 5 s (resilience4j `timeoutDuration`).
    pub mode: RateLimitMode,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            requests: 50,
            period: Duration::from_secs(1),
            burst: 50,
            mode: RateLimitMode::Wait {
                timeout: Duration::from_secs(5),
            },
        }
    }
}

impl RateLimitConfig {
    /// The GCRA quota: one permit every `period / requests`, `burst` at once.
    pub(crate) fn quota(&self) -> Quota {
        let interval = (self.period / self.requests.max(1)).max(Duration::from_nanos(1));
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(interval)
            .unwrap_or(Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst)
    }
}

type Direct =
    governor::RateLimiter<NotKeyed, InMemoryState, GovernorClock, NoOpMiddleware<Duration>>;

/// A rate limiter for all calls together. Cloning is cheap and clones share the limit.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limiter: Direct,
    clock: GovernorClock,
    config: RateLimitConfig,
    ctx: Context,
    /// Nanoseconds from the clock's epoch until which nothing is admitted.
    blocked_until: AtomicU64,
}

/// Why a check failed: the wait until a permit, and whether a penalty caused it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Denied {
    pub(crate) wait: Duration,
    pub(crate) penalized: bool,
}

impl RateLimiter {
    /// A limiter with a default [`Context`] named `"rate_limiter"`.
    pub fn new(config: RateLimitConfig) -> Self {
        RateLimiter::with_context(config, Context::new("rate_limiter"))
    }

    /// A limiter reporting to `ctx`.
    pub fn with_context(config: RateLimitConfig, ctx: Context) -> Self {
        let clock = GovernorClock::new(ctx.clock().clone());
        let limiter = governor::RateLimiter::direct_with_clock(config.quota(), clock.clone());
        let inner = Inner {
            limiter,
            clock,
            config,
            ctx,
            blocked_until: AtomicU64::new(0),
        };
        RateLimiter {
            inner: Arc::new(inner),
        }
    }

    /// The settings.
    pub fn config(&self) -> &RateLimitConfig {
        &self.inner.config
    }

    /// Takes a permit now or fails, whatever the mode.
    pub fn try_acquire(&self) -> Result<(), RateLimitedError> {
        self.inner
            .check()
            .map_err(|denied| self.inner.reject(denied))
    }

    /// Takes a permit as the mode says: waits for it, or fails at once.
    pub async fn acquire(&self) -> Result<(), RateLimitedError> {
        self.acquire_until(None).await
    }

    /// Like [`RateLimiter::acquire`], never waiting past `deadline`.
    pub(crate) async fn acquire_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<(), RateLimitedError> {
        let inner = &*self.inner;
        acquire_with(&inner.ctx, inner.config.mode, deadline, None, || {
            inner.check()
        })
        .await
    }

    /// Runs `operation` once a permit is taken.
    pub async fn call<T, E, Fut>(&self, operation: Fut) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
        E: From<RateLimitedError>,
    {
        self.acquire().await?;
        operation.await
    }

    /// Admits nothing for `duration` from now (an upstream 429 with Retry-After). A longer
    /// penalty already in force is kept.
    pub fn penalize(&self, duration: Duration) {
        let inner = &*self.inner;
        let until = inner.clock.since_epoch(inner.ctx.now()) + duration;
        inner
            .blocked_until
            .fetch_max(nanos(until), Ordering::AcqRel);
        inner.ctx.emit(EventKind::RateLimitPenalized { duration });
    }

    /// Takes every permit that is available now, so the next call waits for the quota to
    /// refill (resilience4j's `drainPermissionsOnResult`).
    pub fn drain(&self) {
        for _ in 0..self.inner.config.burst.max(1) {
            if self.inner.limiter.check().is_err() {
                break;
            }
        }
    }
}

impl Inner {
    fn check(&self) -> Result<(), Denied> {
        let blocked = self.blocked_until.load(Ordering::Acquire);
        if blocked != 0 {
            let now = nanos(self.clock.since_epoch(self.ctx.now()));
            if blocked > now {
                return Err(Denied {
                    wait: Duration::from_nanos(blocked - now),
                    penalized: true,
                });
            }
        }
        self.limiter.check().map_err(|not_until| Denied {
            wait: not_until.wait_time_from(governor::clock::Clock::now(&self.clock)),
            penalized: false,
        })
    }

    fn reject(&self, denied: Denied) -> RateLimitedError {
        self.ctx.emit(EventKind::RateLimitRejected {
            retry_after: denied.wait,
        });
        RateLimitedError {
            retry_after: denied.wait,
            penalized: denied.penalized,
        }
    }
}

/// Takes a permit through `check` as `mode` says, never waiting past `deadline`; reports
/// waits and rejections (about `key`, when given).
pub(crate) async fn acquire_with(
    ctx: &Context,
    mode: RateLimitMode,
    deadline: Option<Instant>,
    key: Option<&(dyn std::fmt::Debug + Sync)>,
    check: impl Fn() -> Result<(), Denied>,
) -> Result<(), RateLimitedError> {
    let mut denied = match check() {
        Ok(()) => return Ok(()),
        Err(denied) => denied,
    };
    let start = ctx.now();
    let limit = match mode {
        RateLimitMode::Reject => start,
        RateLimitMode::Wait { timeout } => start + timeout,
    };
    let limit = deadline.map_or(limit, |deadline| limit.min(deadline));
    loop {
        let now = ctx.now();
        if now + denied.wait > limit {
            ctx.emit_keyed(
                key.map(|k| k as &dyn std::fmt::Debug),
                EventKind::RateLimitRejected {
                    retry_after: denied.wait,
                },
            );
            return Err(RateLimitedError {
                retry_after: denied.wait,
                penalized: denied.penalized,
            });
        }
        tokio::time::sleep(denied.wait).await;
        denied = match check() {
            Ok(()) => {
                let waited = ctx.now().saturating_duration_since(start);
                ctx.emit_keyed(
                    key.map(|k| k as &dyn std::fmt::Debug),
                    EventKind::RateLimitWaited { waited },
                );
                return Ok(());
            }
            Err(denied) => denied,
        };
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
