//! Bulkhead: at most N calls at once, a bounded queue, and a queue timeout.
//!
//! [`Bulkhead`] admits up to [`BulkheadConfig::max_concurrent`] calls; further calls wait
//! in a queue of at most [`BulkheadConfig::max_queued`] places for at most
//! [`BulkheadConfig::queue_timeout`], and are rejected with a [`BulkheadFullError`] when the
//! queue is full or the wait times out. Slots are a tokio `Semaphore` (fair, FIFO).
//! [`BulkheadLayer`] is the tower form.

mod layer;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

pub use self::layer::{BulkheadLayer, BulkheadService, ResponseFuture};
use crate::error::BulkheadFullError;
use crate::event::{BulkheadRejection, Context, EventKind};

/// Settings of a [`Bulkhead`]. Defaults are resilience4j's semaphore bulkhead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkheadConfig {
    /// Calls running at once; 0 is treated as 1. Default: 25 (`maxConcurrentCalls`).
    pub max_concurrent: usize,
    /// Calls waiting for a slot at once. Default: 0 (no queue: reject at once).
    pub max_queued: usize,
    /// The longest wait in the queue. Default: 0 (`maxWaitDuration`).
    pub queue_timeout: Duration,
}

impl Default for BulkheadConfig {
    fn default() -> Self {
        BulkheadConfig {
            max_concurrent: 25,
            max_queued: 0,
            queue_timeout: Duration::ZERO,
        }
    }
}

/// Limits concurrent calls. Cloning is cheap and clones share the slots.
#[derive(Debug, Clone)]
pub struct Bulkhead {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    semaphore: Arc<Semaphore>,
    queued: AtomicUsize,
    config: BulkheadConfig,
    ctx: Context,
}

/// A call slot, given back when dropped.
#[derive(Debug)]
pub struct BulkheadPermit<'a> {
    _permit: SemaphorePermit<'a>,
}

impl Bulkhead {
    /// A bulkhead with a default [`Context`] named `"bulkhead"`.
    pub fn new(config: BulkheadConfig) -> Self {
        Bulkhead::with_context(config, Context::new("bulkhead"))
    }

    /// A bulkhead reporting to `ctx`.
    pub fn with_context(config: BulkheadConfig, ctx: Context) -> Self {
        let config = BulkheadConfig {
            max_concurrent: config.max_concurrent.max(1),
            ..config
        };
        let semaphore = Arc::new(Semaphore::new(config.max_concurrent));
        Bulkhead {
            inner: Arc::new(Inner {
                semaphore,
                queued: AtomicUsize::new(0),
                config,
                ctx,
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &BulkheadConfig {
        &self.inner.config
    }

    /// Free call slots.
    pub fn available(&self) -> usize {
        self.inner.semaphore.available_permits()
    }

    /// Calls waiting in the queue.
    pub fn queued(&self) -> usize {
        self.inner.queued.load(Ordering::Relaxed)
    }

    /// Takes a free slot now or fails; never queues.
    pub fn try_acquire(&self) -> Result<BulkheadPermit<'_>, BulkheadFullError> {
        match self.inner.semaphore.try_acquire() {
            Ok(permit) => Ok(BulkheadPermit { _permit: permit }),
            Err(_) => Err(self
                .inner
                .reject(BulkheadRejection::QueueFull, Duration::ZERO)),
        }
    }

    /// Takes a slot, queueing if allowed.
    pub async fn acquire(&self) -> Result<BulkheadPermit<'_>, BulkheadFullError> {
        self.acquire_until(None).await
    }

    /// Like [`Bulkhead::acquire`], never queueing past `deadline`.
    pub(crate) async fn acquire_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<BulkheadPermit<'_>, BulkheadFullError> {
        let inner = &*self.inner;
        if let Ok(permit) = inner.semaphore.try_acquire() {
            return Ok(BulkheadPermit { _permit: permit });
        }
        inner.reserve_place()?;
        let _place = QueuePlace {
            queued: &inner.queued,
        };
        let start = inner.ctx.now();
        let give_up = start + inner.config.queue_timeout;
        let give_up = deadline.map_or(give_up, |deadline| give_up.min(deadline));
        match tokio::time::timeout_at(give_up, inner.semaphore.acquire()).await {
            Ok(Ok(permit)) => Ok(BulkheadPermit { _permit: permit }),
            Ok(Err(_)) | Err(_) => {
                let waited = inner.ctx.now().saturating_duration_since(start);
                Err(inner.reject(BulkheadRejection::QueueTimeout, waited))
            }
        }
    }

    /// Runs `operation` in a slot.
    pub async fn call<T, E, Fut>(&self, operation: Fut) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
        E: From<BulkheadFullError>,
    {
        let _permit = self.acquire().await?;
        operation.await
    }
}

/// A place in the queue, given back when dropped.
struct QueuePlace<'a> {
    queued: &'a AtomicUsize,
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Inner {
    /// Takes a place in the queue (give it back with a decrement of `queued`) or rejects.
    fn reserve_place(&self) -> Result<(), BulkheadFullError> {
        let before = self.queued.fetch_add(1, Ordering::AcqRel);
        if before >= self.config.max_queued {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(self.reject(BulkheadRejection::QueueFull, Duration::ZERO));
        }
        Ok(())
    }

    fn reject(&self, reason: BulkheadRejection, waited: Duration) -> BulkheadFullError {
        self.ctx.emit(EventKind::BulkheadRejected { reason });
        BulkheadFullError {
            reason,
            max_concurrent: self.config.max_concurrent,
            waited,
        }
    }
}

#[cfg(test)]
mod tests;
