//! Per-attempt timeouts, overall deadlines and progress-aware timeouts.
//!
//! * [`Timeout`] cancels one attempt after a fixed duration ([`TimeoutKind::Attempt`]), or
//!   an operation at a fixed instant ([`Timeout::call_until`], [`TimeoutKind::Deadline`]).
//! * [`ProgressTimeout`] cancels an operation that reports no [`Progress`] for an idle
//!   duration, and always at a hard cap (the MCP rule: a sender *may* reset the timer on a
//!   progress notification but *should* enforce a maximum timeout).
//! * [`TimeoutLayer`] is the tower form of [`Timeout`].
//!
//! Cancelling means dropping the operation's future. Timers are `tokio::time` timers, which
//! are not heap-allocated and are only registered if the operation is still pending.

mod layer;

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

pub use self::layer::{ResponseFuture, TimeoutLayer, TimeoutService};
use crate::clock::Clock;
use crate::error::TimeoutError;
use crate::event::{Context, EventKind, TimeoutKind};

/// Cancels an operation that runs longer than a fixed duration.
///
/// There is no default duration; the MCP spec asks senders to set one on every request.
/// Polly's default is 30 s, resilience4j's TimeLimiter 1 s.
#[derive(Debug, Clone)]
pub struct Timeout {
    duration: Duration,
    ctx: Context,
}

impl Timeout {
    /// A timeout of `duration` with a default [`Context`] named `"timeout"`.
    pub fn new(duration: Duration) -> Self {
        Timeout::with_context(duration, Context::new("timeout"))
    }

    /// A timeout of `duration` reporting to `ctx`.
    pub fn with_context(duration: Duration, ctx: Context) -> Self {
        Timeout { duration, ctx }
    }

    /// The timeout duration.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Runs `operation`, cancelling it after the timeout ([`TimeoutKind::Attempt`]).
    pub async fn call<T, E, Fut>(&self, operation: Fut) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
        E: From<TimeoutError>,
    {
        let start = self.ctx.now();
        run_until(
            &self.ctx,
            start,
            start + self.duration,
            TimeoutKind::Attempt,
            operation,
        )
        .await
    }

    /// Runs `operation`, cancelling it at `deadline` ([`TimeoutKind::Deadline`]).
    pub async fn call_until<T, E, Fut>(&self, deadline: Instant, operation: Fut) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
        E: From<TimeoutError>,
    {
        let start = self.ctx.now();
        run_until(&self.ctx, start, deadline, TimeoutKind::Deadline, operation).await
    }
}

/// Runs `operation` until `at`, then cancels it and reports a timeout of `kind`.
pub(crate) async fn run_until<T, E, Fut>(
    ctx: &Context,
    start: Instant,
    at: Instant,
    kind: TimeoutKind,
    operation: Fut,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
    E: From<TimeoutError>,
{
    match tokio::time::timeout_at(at, operation).await {
        Ok(result) => result,
        Err(_elapsed) => Err(timed_out(ctx, start, kind).into()),
    }
}

/// Reports a timeout and builds its error.
pub(crate) fn timed_out(ctx: &Context, start: Instant, kind: TimeoutKind) -> TimeoutError {
    let elapsed = ctx.now().saturating_duration_since(start);
    ctx.emit(EventKind::TimedOut { kind, elapsed });
    TimeoutError { kind, elapsed }
}

/// Cancels an operation that reports no progress for `idle`, and any operation at `max`.
///
/// The operation receives a [`Progress`] handle; each [`Progress::notify`] restarts the idle
/// timer. The hard cap `max` holds whatever the progress.
#[derive(Debug, Clone)]
pub struct ProgressTimeout {
    idle: Duration,
    max: Duration,
    ctx: Context,
}

impl ProgressTimeout {
    /// Cancels after `idle` without progress, and after `max` in any case.
    pub fn new(idle: Duration, max: Duration) -> Self {
        ProgressTimeout::with_context(idle, max, Context::new("progress_timeout"))
    }

    /// Like [`ProgressTimeout::new`], reporting to `ctx`.
    pub fn with_context(idle: Duration, max: Duration, ctx: Context) -> Self {
        ProgressTimeout { idle, max, ctx }
    }

    /// Runs the operation built by `operation` from a fresh [`Progress`] handle.
    ///
    /// Fails with [`TimeoutKind::Idle`] when no progress arrives for the idle duration and
    /// with [`TimeoutKind::MaxDuration`] at the hard cap.
    pub async fn call<T, E, F, Fut>(&self, operation: F) -> Result<T, E>
    where
        F: FnOnce(Progress) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: From<TimeoutError>,
    {
        let start = self.ctx.now();
        let hard_cap = start + self.max;
        let progress = Progress::new(self.ctx.clock().clone(), start);
        let mut operation = pin!(operation(progress.clone()));
        let mut sleep = pin!(tokio::time::sleep_until(hard_cap.min(start + self.idle)));
        poll_fn(|cx| {
            if let Poll::Ready(result) = operation.as_mut().poll(cx) {
                return Poll::Ready(result);
            }
            loop {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let now = self.ctx.now();
                if now >= hard_cap {
                    return Poll::Ready(Err(
                        timed_out(&self.ctx, start, TimeoutKind::MaxDuration).into()
                    ));
                }
                let next = hard_cap.min(progress.last() + self.idle);
                if next <= now {
                    return Poll::Ready(Err(timed_out(&self.ctx, start, TimeoutKind::Idle).into()));
                }
                sleep.as_mut().reset(next);
            }
        })
        .await
    }
}

/// A cheap handle an operation uses to report progress to its [`ProgressTimeout`].
///
/// Clone it into whatever receives progress notifications.
#[derive(Debug, Clone)]
pub struct Progress {
    state: Arc<ProgressState>,
}

#[derive(Debug)]
struct ProgressState {
    clock: Arc<dyn Clock>,
    epoch: Instant,
    /// Nanoseconds from `epoch` to the last progress.
    last: AtomicU64,
}

impl Progress {
    fn new(clock: Arc<dyn Clock>, epoch: Instant) -> Self {
        Progress {
            state: Arc::new(ProgressState {
                clock,
                epoch,
                last: AtomicU64::new(0),
            }),
        }
    }

    /// Records progress now, restarting the idle timer.
    pub fn notify(&self) {
        let since = self
            .state
            .clock
            .now()
            .saturating_duration_since(self.state.epoch);
        let nanos = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX);
        self.state.last.fetch_max(nanos, Ordering::Relaxed);
    }

    /// The instant of the last progress (the start if none).
    pub fn last(&self) -> Instant {
        self.state.epoch + Duration::from_nanos(self.state.last.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests;
