//! Decisions reported by the policies.
//!
//! Every policy owns a [`Context`]: its name, its [`Clock`] and its [`Listener`]. Each
//! decision (a retry, a rejection, a state change, a timeout, a hedge) is handed to the
//! listener as an [`Event`] right when it is made, on the caller's task. A telemetry layer
//! turns these into metrics; the default listener ignores them.
//!
//! Successful calls that pass every policy produce no event, so the success path stays cheap.
//! Counters of calls are available from snapshots such as
//! [`CircuitBreaker::metrics`](crate::CircuitBreaker::metrics).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::{Clock, TokioClock};

/// Receives every decision of the policies that share it.
///
/// Calls are synchronous and happen on the task that made the decision: keep them short and
/// do not block.
pub trait Listener: Send + Sync {
    /// Called once for each decision.
    fn on_event(&self, event: &Event<'_>);
}

/// A listener that ignores every event (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopListener;

impl Listener for NoopListener {
    fn on_event(&self, _event: &Event<'_>) {}
}

impl<F> Listener for F
where
    F: Fn(&Event<'_>) + Send + Sync,
{
    fn on_event(&self, event: &Event<'_>) {
        self(event);
    }
}

/// The policy that made a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// [`Retry`](crate::Retry) and its budget.
    Retry,
    /// [`CircuitBreaker`](crate::CircuitBreaker).
    CircuitBreaker,
    /// [`RateLimiter`](crate::RateLimiter) and [`KeyedRateLimiter`](crate::KeyedRateLimiter).
    RateLimiter,
    /// [`Bulkhead`](crate::Bulkhead).
    Bulkhead,
    /// [`Timeout`](crate::Timeout), [`ProgressTimeout`](crate::ProgressTimeout) and deadlines.
    Timeout,
    /// [`Hedge`](crate::Hedge).
    Hedge,
}

impl PolicyKind {
    /// A stable lowercase name, fit for a metric attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Retry => "retry",
            PolicyKind::CircuitBreaker => "circuit_breaker",
            PolicyKind::RateLimiter => "rate_limiter",
            PolicyKind::Bulkhead => "bulkhead",
            PolicyKind::Timeout => "timeout",
            PolicyKind::Hedge => "hedge",
        }
    }
}

/// One decision of one policy instance.
#[derive(Clone, Copy)]
pub struct Event<'a> {
    /// The name of the policy instance, from its [`Context`].
    pub name: &'a str,
    /// The key, for keyed policies such as [`KeyedRateLimiter`](crate::KeyedRateLimiter).
    pub key: Option<&'a dyn fmt::Debug>,
    /// When the decision was made, by the policy's clock.
    pub at: Instant,
    /// What was decided.
    pub kind: EventKind,
}

impl Event<'_> {
    /// The policy that made the decision.
    pub fn policy(&self) -> PolicyKind {
        self.kind.policy()
    }
}

impl fmt::Debug for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("name", &self.name)
            .field("key", &self.key)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Why a retry loop stopped retrying and returned the last error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GiveUpReason {
    /// The error was not retryable ([`Classify::is_retryable`](crate::Classify::is_retryable)).
    NotRetryable,
    /// All attempts were used.
    MaxAttempts,
    /// The retry budget had no retry left.
    BudgetExhausted,
    /// The next attempt could not start before the overall deadline.
    Deadline,
}

/// Which timer expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    /// The per-attempt timeout.
    Attempt,
    /// The overall deadline, which covers all attempts and backoff.
    Deadline,
    /// No progress was reported within the idle timeout of a [`ProgressTimeout`](crate::ProgressTimeout).
    Idle,
    /// The hard cap of a [`ProgressTimeout`](crate::ProgressTimeout) expired despite progress.
    MaxDuration,
}

/// Why a bulkhead rejected a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BulkheadRejection {
    /// All call slots and all queue places were taken.
    QueueFull,
    /// The call waited in the queue for the whole queue timeout.
    QueueTimeout,
}

/// The state of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls pass and outcomes are recorded; the breaker opens when a threshold is crossed.
    Closed,
    /// Calls are rejected until the open duration has passed.
    Open,
    /// A limited number of probe calls pass; their outcomes close or re-open the breaker.
    HalfOpen,
    /// Manually held open: every call is rejected until the breaker is reset.
    ForcedOpen,
    /// Manually held closed: calls pass and are recorded, the breaker never opens.
    ForcedClosed,
    /// Calls pass, nothing is recorded, no event is emitted.
    Disabled,
    /// Calls pass and are recorded, threshold events are emitted, the breaker never opens.
    MetricsOnly,
}

impl BreakerState {
    /// A stable lowercase name, fit for a metric attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
            BreakerState::ForcedOpen => "forced_open",
            BreakerState::ForcedClosed => "forced_closed",
            BreakerState::Disabled => "disabled",
            BreakerState::MetricsOnly => "metrics_only",
        }
    }
}

/// What a policy decided.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// An attempt failed and another one starts after `delay`.
    RetryScheduled {
        /// The number of the attempt that failed, starting at 1.
        attempt: u32,
        /// The wait before the next attempt.
        delay: Duration,
        /// Whether the delay came from the error's `retry_after` rather than the backoff.
        server_delay: bool,
    },
    /// The retry loop stopped and returned the last error.
    RetryGaveUp {
        /// Attempts made, including the first.
        attempts: u32,
        /// Why it stopped.
        reason: GiveUpReason,
    },
    /// A retry or hedge was refused because the retry budget is empty.
    BudgetExhausted,
    /// A circuit breaker changed state.
    BreakerTransition {
        /// The state before.
        from: BreakerState,
        /// The state after.
        to: BreakerState,
    },
    /// A circuit breaker rejected a call.
    BreakerRejected {
        /// The state that rejected the call.
        state: BreakerState,
        /// How long until the breaker admits probe calls, if known.
        retry_after: Option<Duration>,
    },
    /// The failure rate reached the threshold (the breaker opens unless held by a manual mode).
    FailureRateExceeded {
        /// The failure rate, between 0 and 1.
        rate: f64,
    },
    /// The slow-call rate reached the threshold (the breaker opens unless held by a manual mode).
    SlowCallRateExceeded {
        /// The slow-call rate, between 0 and 1.
        rate: f64,
    },
    /// A rate limiter rejected a call.
    RateLimitRejected {
        /// When the limiter will admit a call again.
        retry_after: Duration,
    },
    /// A rate limiter made a call wait before admitting it.
    RateLimitWaited {
        /// How long the call waited.
        waited: Duration,
    },
    /// A rate limiter was told to stop admitting calls (an upstream 429 or Retry-After).
    RateLimitPenalized {
        /// How long the limiter admits nothing.
        duration: Duration,
    },
    /// A bulkhead rejected a call.
    BulkheadRejected {
        /// Why.
        reason: BulkheadRejection,
    },
    /// A timer expired and the operation was cancelled.
    TimedOut {
        /// Which timer.
        kind: TimeoutKind,
        /// How long the operation ran.
        elapsed: Duration,
    },
    /// A hedged attempt was started because the first one was slow.
    HedgeStarted {
        /// The wait before the hedge.
        delay: Duration,
    },
    /// The hedged attempt finished first with a success; the first attempt was cancelled.
    HedgeWon,
}

impl EventKind {
    /// The policy that makes this kind of decision.
    pub fn policy(&self) -> PolicyKind {
        match self {
            EventKind::RetryScheduled { .. }
            | EventKind::RetryGaveUp { .. }
            | EventKind::BudgetExhausted => PolicyKind::Retry,
            EventKind::BreakerTransition { .. }
            | EventKind::BreakerRejected { .. }
            | EventKind::FailureRateExceeded { .. }
            | EventKind::SlowCallRateExceeded { .. } => PolicyKind::CircuitBreaker,
            EventKind::RateLimitRejected { .. }
            | EventKind::RateLimitWaited { .. }
            | EventKind::RateLimitPenalized { .. } => PolicyKind::RateLimiter,
            EventKind::BulkheadRejected { .. } => PolicyKind::Bulkhead,
            EventKind::TimedOut { .. } => PolicyKind::Timeout,
            EventKind::HedgeStarted { .. } | EventKind::HedgeWon => PolicyKind::Hedge,
        }
    }
}

/// What a policy instance shares with the outside: its name, clock and listener.
///
/// Cloning is cheap (three reference-counted pointers).
#[derive(Clone)]
pub struct Context {
    name: Arc<str>,
    clock: Arc<dyn Clock>,
    listener: Arc<dyn Listener>,
}

impl Context {
    /// A context named `name`, with [`TokioClock`] and [`NoopListener`].
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Context {
            name: name.into(),
            clock: Arc::new(TokioClock),
            listener: Arc::new(NoopListener),
        }
    }

    /// Replaces the clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the listener.
    pub fn with_listener(mut self, listener: Arc<dyn Listener>) -> Self {
        self.listener = listener;
        self
    }

    /// The same context under another name.
    pub fn named(&self, name: impl Into<Arc<str>>) -> Self {
        Context {
            name: name.into(),
            clock: self.clock.clone(),
            listener: self.listener.clone(),
        }
    }

    /// The instance name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The current instant by this context's clock.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Reports a decision to the listener.
    pub(crate) fn emit(&self, kind: EventKind) {
        self.emit_keyed(None, kind);
    }

    /// Reports a decision about `key` to the listener.
    pub(crate) fn emit_keyed(&self, key: Option<&dyn fmt::Debug>, kind: EventKind) {
        let event = Event {
            name: &self.name,
            key,
            at: self.clock.now(),
            kind,
        };
        self.listener.on_event(&event);
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("name", &self.name)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn closures_listen_and_events_name_their_policy() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let listener = move |event: &Event<'_>| {
            if let Ok(mut seen) = sink.lock() {
                seen.push((
                    event.name.to_owned(),
                    event.policy(),
                    format!("{:?}", event.key),
                ));
            }
        };
        let ctx = Context::new("server-a").with_listener(Arc::new(listener));
        ctx.emit(EventKind::HedgeWon);
        ctx.emit_keyed(Some(&("server-a", "tool")), EventKind::BudgetExhausted);
        let seen = seen.lock().map(|seen| seen.clone()).unwrap_or_default();
        assert_eq!(
            seen,
            vec![
                ("server-a".to_owned(), PolicyKind::Hedge, "None".to_owned()),
                (
                    "server-a".to_owned(),
                    PolicyKind::Retry,
                    "Some((\"server-a\", \"tool\"))".to_owned()
                ),
            ]
        );
        assert_eq!(PolicyKind::CircuitBreaker.as_str(), "circuit_breaker");
        assert_eq!(BreakerState::HalfOpen.as_str(), "half_open");
    }
}
