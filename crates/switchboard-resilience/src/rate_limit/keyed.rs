//! A rate limiter per key.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use tokio::time::Instant;

use super::{Denied, RateLimitConfig, acquire_with};
use crate::clock::GovernorClock;
use crate::error::RateLimitedError;
use crate::event::{Context, EventKind};

type Keyed<K> =
    governor::RateLimiter<K, DashMapStateStore<K>, GovernorClock, NoOpMiddleware<Duration>>;

/// A rate limiter with one GCRA state per key, all with the same quota.
///
/// Keys are kept until [`KeyedRateLimiter::retain_recent`] drops the ones whose state is
/// indistinguishable from a fresh one; call it periodically when keys churn. Cloning is
/// cheap and clones share the state.
pub struct KeyedRateLimiter<K: Hash + Eq + Clone> {
    inner: Arc<Inner<K>>,
}

struct Inner<K: Hash + Eq + Clone> {
    limiter: Keyed<K>,
    clock: GovernorClock,
    config: RateLimitConfig,
    ctx: Context,
    /// Penalties in force, by key; `penalized` counts them so the common case skips the lock.
    penalties: Mutex<HashMap<K, Instant>>,
    penalized: AtomicUsize,
}

impl<K: Hash + Eq + Clone> Clone for KeyedRateLimiter<K> {
    fn clone(&self) -> Self {
        KeyedRateLimiter {
            inner: self.inner.clone(),
        }
    }
}

impl<K> KeyedRateLimiter<K>
where
    K: Hash + Eq + Clone + fmt::Debug + Sync,
{
    /// A keyed limiter with a default [`Context`] named `"rate_limiter"`.
    pub fn new(config: RateLimitConfig) -> Self {
        KeyedRateLimiter::with_context(config, Context::new("rate_limiter"))
    }

    /// A keyed limiter reporting to `ctx`; events carry the key.
    pub fn with_context(config: RateLimitConfig, ctx: Context) -> Self {
        let clock = GovernorClock::new(ctx.clock().clone());
        let limiter = governor::RateLimiter::dashmap_with_clock(config.quota(), clock.clone());
        let inner = Inner {
            limiter,
            clock,
            config,
            ctx,
            penalties: Mutex::new(HashMap::new()),
            penalized: AtomicUsize::new(0),
        };
        KeyedRateLimiter {
            inner: Arc::new(inner),
        }
    }

    /// The settings.
    pub fn config(&self) -> &RateLimitConfig {
        &self.inner.config
    }

    /// Takes a permit for `key` now or fails, whatever the mode.
    pub fn try_acquire(&self, key: &K) -> Result<(), RateLimitedError> {
        self.inner.check(key).map_err(|denied| {
            let retry_after = denied.wait;
            self.inner
                .ctx
                .emit_keyed(Some(key), EventKind::RateLimitRejected { retry_after });
            RateLimitedError {
                retry_after,
                penalized: denied.penalized,
            }
        })
    }

    /// Takes a permit for `key` as the mode says: waits for it, or fails at once.
    pub async fn acquire(&self, key: &K) -> Result<(), RateLimitedError> {
        let inner = &*self.inner;
        acquire_with(&inner.ctx, inner.config.mode, None, Some(key), || {
            inner.check(key)
        })
        .await
    }

    /// Runs `operation` once a permit for `key` is taken.
    pub async fn call<T, E, Fut>(&self, key: &K, operation: Fut) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
        E: From<RateLimitedError>,
    {
        self.acquire(key).await?;
        operation.await
    }

    /// Admits nothing for `key` for `duration` from now. A longer penalty is kept.
    pub fn penalize(&self, key: &K, duration: Duration) {
        let until = self.inner.ctx.now() + duration;
        {
            let mut penalties = self.inner.lock();
            let entry = penalties.entry(key.clone()).or_insert(until);
            *entry = (*entry).max(until);
            self.inner
                .penalized
                .store(penalties.len(), Ordering::Release);
        }
        self.inner
            .ctx
            .emit_keyed(Some(key), EventKind::RateLimitPenalized { duration });
    }

    /// Takes every permit of `key` that is available now.
    pub fn drain(&self, key: &K) {
        for _ in 0..self.inner.config.burst.max(1) {
            if self.inner.limiter.check_key(key).is_err() {
                break;
            }
        }
    }

    /// Forgets keys whose state equals a fresh one, and expired penalties.
    pub fn retain_recent(&self) {
        self.inner.limiter.retain_recent();
        self.inner.limiter.shrink_to_fit();
        let now = self.inner.ctx.now();
        let mut penalties = self.inner.lock();
        penalties.retain(|_, until| *until > now);
        self.inner
            .penalized
            .store(penalties.len(), Ordering::Release);
    }

    /// The number of keys with state.
    pub fn len(&self) -> usize {
        self.inner.limiter.len()
    }

    /// Whether no key has state.
    pub fn is_empty(&self) -> bool {
        self.inner.limiter.is_empty()
    }
}

impl<K: Hash + Eq + Clone> Inner<K> {
    fn lock(&self) -> MutexGuard<'_, HashMap<K, Instant>> {
        self.penalties
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn check(&self, key: &K) -> Result<(), Denied> {
        if self.penalized.load(Ordering::Acquire) != 0 {
            let now = self.ctx.now();
            if let Some(until) = self.lock().get(key).copied()
                && until > now
            {
                return Err(Denied {
                    wait: until - now,
                    penalized: true,
                });
            }
        }
        self.limiter.check_key(key).map_err(|not_until| Denied {
            wait: not_until.wait_time_from(governor::clock::Clock::now(&self.clock)),
            penalized: false,
        })
    }
}

impl<K: Hash + Eq + Clone> fmt::Debug for KeyedRateLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiter")
            .field("config", &self.inner.config)
            .field("ctx", &self.inner.ctx)
            .finish_non_exhaustive()
    }
}
