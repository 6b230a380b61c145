//! Circuit breaker with count- or time-based sliding windows, a keyed registry and a tower
//! layer.
//!
//! A [`CircuitBreaker`] is closed while the failure rate and the slow-call rate of the
//! recent calls stay below their thresholds. Once [`CircuitBreakerConfig::minimum_calls`]
//! calls are in the window and a rate reaches its threshold, it opens: calls are rejected
//! with a [`CircuitOpenError`] that says until when. After the open duration (growing on
//! repeated opens when [`CircuitBreakerConfig::open_duration_multiplier`] is above 1) it
//! goes half-open and admits [`CircuitBreakerConfig::half_open_calls`] probes; if their rates
//! stay below the thresholds it closes, otherwise it opens again.
//!
//! The caller decides what a failure is: [`Classify::breaker_outcome`] for errors, or any
//! closure with [`CircuitBreaker::call_with`]. Manual modes ([`CircuitBreaker::force_open`],
//! [`CircuitBreaker::force_closed`], [`CircuitBreaker::disable`],
//! [`CircuitBreaker::metrics_only`], [`CircuitBreaker::reset`]) override the automaton.
//!
//! The success path in the closed state takes one atomic load to admit the call and one
//! uncontended lock to record it; nothing is allocated.

mod layer;
mod registry;
mod window;

use std::future::Future;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

pub use self::layer::{
    ByError, CircuitBreakerLayer, CircuitBreakerService, ClassifyOutcome, ResponseFuture,
};
pub use self::registry::BreakerRegistry;
use self::window::{CountWindow, TimeWindow, Totals, Window};
use crate::error::{CircuitOpenError, Classify, Outcome};
use crate::event::{BreakerState, Context, EventKind};

/// The window the rates are computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlidingWindow {
    /// The last `size` calls.
    Count {
        /// Number of calls; 0 is treated as 1.
        size: u32,
    },
    /// The calls of the last `length`, aggregated in `buckets` buckets.
    Time {
        /// Window length.
        length: Duration,
        /// Number of buckets; 0 is treated as 1. resilience4j uses one per second; Polly
        /// and failsafe-go use 10.
        buckets: u32,
    },
}

/// Settings of a [`CircuitBreaker`]. Defaults are resilience4j's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CircuitBreakerConfig {
    /// Opens when the failure rate (0 to 1) is at or above this. Default: 0.5.
    pub failure_rate_threshold: f64,
    /// Opens when the slow-call rate (0 to 1) is at or above this. Default: 1.0 (only when
    /// every call is slow).
    pub slow_call_rate_threshold: f64,
    /// A call at least this long is slow. Default: 60 s.
    pub slow_call_duration: Duration,
    /// The sliding window. Default: the last 100 calls.
    pub window: SlidingWindow,
    /// No rate is computed, and the breaker does not open, below this many calls in the
    /// window; clamped to the size of a count window. Default: 100.
    pub minimum_calls: u32,
    /// How long the breaker stays open the first time. Default: 60 s.
    pub open_duration: Duration,
    /// Each consecutive open (without closing in between) lasts this factor longer. Default:
    /// 1.0 (constant). Values below 1 are treated as 1.
    pub open_duration_multiplier: f64,
    /// The cap on the grown open duration. Default: 10 minutes.
    pub max_open_duration: Duration,
    /// Probe calls admitted while half-open; their outcomes decide. 0 is treated as 1.
    /// Default: 10.
    pub half_open_calls: u32,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        CircuitBreakerConfig {
            failure_rate_threshold: 0.5,
            slow_call_rate_threshold: 1.0,
            slow_call_duration: Duration::from_secs(60),
            window: SlidingWindow::Count { size: 100 },
            minimum_calls: 100,
            open_duration: Duration::from_secs(60),
            open_duration_multiplier: 1.0,
            max_open_duration: Duration::from_secs(600),
            half_open_calls: 10,
        }
    }
}

/// A snapshot of a breaker's state and window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerMetrics {
    /// The state.
    pub state: BreakerState,
    /// Failed calls / calls in the window; `None` below the minimum number of calls.
    pub failure_rate: Option<f64>,
    /// Slow calls / calls in the window; `None` below the minimum number of calls.
    pub slow_call_rate: Option<f64>,
    /// Calls in the window (ignored calls are not counted).
    pub calls: u32,
    /// Failed calls in the window.
    pub failed_calls: u32,
    /// Slow calls in the window.
    pub slow_calls: u32,
    /// Calls rejected since the breaker was created.
    pub not_permitted_calls: u64,
    /// When an open breaker admits probes.
    pub open_until: Option<Instant>,
}

/// A circuit breaker. Cloning is cheap and clones share the state.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: CircuitBreakerConfig,
    ctx: Context,
    /// Mirror of `Shared::state` for the lock-free admission check.
    state: AtomicU8,
    /// Mirror of `Shared::generation`.
    generation: AtomicU64,
    not_permitted: AtomicU64,
    shared: Mutex<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: BreakerState,
    /// Bumped on every transition; outcomes of calls admitted in an earlier generation are
    /// dropped.
    generation: u64,
    window: Window,
    open_until: Option<Instant>,
    /// Opens since the last close, for the growing open duration.
    opens: u32,
    probes: Probes,
}

#[derive(Debug, Default, Clone, Copy)]
struct Probes {
    admitted: u32,
    outcomes: Totals,
}

/// Admission of one call, recorded when it finishes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    generation: u64,
    start: Instant,
    probe: bool,
    /// Disabled breakers record nothing.
    record: bool,
}

/// Up to three events collected under the lock and emitted after it is released, so a
/// listener may call back into the breaker.
#[derive(Default)]
struct Pending([Option<EventKind>; 3]);

impl Pending {
    fn push(&mut self, kind: EventKind) {
        if let Some(slot) = self.0.iter_mut().find(|slot| slot.is_none()) {
            *slot = Some(kind);
        }
    }
}

fn encode(state: BreakerState) -> u8 {
    match state {
        BreakerState::Closed => 0,
        BreakerState::Open => 1,
        BreakerState::HalfOpen => 2,
        BreakerState::ForcedOpen => 3,
        BreakerState::ForcedClosed => 4,
        BreakerState::Disabled => 5,
        BreakerState::MetricsOnly => 6,
    }
}

const CLOSED: u8 = 0;
const FORCED_CLOSED: u8 = 4;
const DISABLED: u8 = 5;
const METRICS_ONLY: u8 = 6;

impl CircuitBreaker {
    /// A closed breaker with a default [`Context`] named `"circuit_breaker"`.
    pub fn new(config: CircuitBreakerConfig) -> Self {
        CircuitBreaker::with_context(config, Context::new("circuit_breaker"))
    }

    /// A closed breaker reporting to `ctx`.
    pub fn with_context(config: CircuitBreakerConfig, ctx: Context) -> Self {
        let window = new_window(&config, ctx.now());
        let shared = Shared {
            state: BreakerState::Closed,
            generation: 0,
            window,
            open_until: None,
            opens: 0,
            probes: Probes::default(),
        };
        let inner = Inner {
            config,
            ctx,
            state: AtomicU8::new(CLOSED),
            generation: AtomicU64::new(0),
            not_permitted: AtomicU64::new(0),
            shared: Mutex::new(shared),
        };
        CircuitBreaker {
            inner: Arc::new(inner),
        }
    }

    /// The settings.
    pub fn config(&self) -> &CircuitBreakerConfig {
        &self.inner.config
    }

    /// The instance name.
    pub fn name(&self) -> &str {
        self.inner.ctx.name()
    }

    /// Runs `operation` if the breaker admits it and records its outcome: `Ok` is a success,
    /// an error counts as its [`Classify::breaker_outcome`].
    pub async fn call<T, E, Fut>(&self, operation: Fut) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
        E: Classify + From<CircuitOpenError>,
    {
        self.call_with(ByError, operation).await
    }

    /// Runs `operation` if the breaker admits it and records the outcome `classifier`
    /// assigns to its result.
    pub async fn call_with<T, E, C, Fut>(&self, classifier: C, operation: Fut) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
        C: ClassifyOutcome<T, E>,
        E: From<CircuitOpenError>,
    {
        let permit = self.try_acquire()?;
        let result = operation.await;
        permit.record(classifier.classify(&result));
        result
    }

    /// Admits one call or rejects it. Record the call's outcome on the [`Permit`]; a permit
    /// dropped unrecorded counts as [`Outcome::Ignored`].
    pub fn try_acquire(&self) -> Result<Permit<'_>, CircuitOpenError> {
        let ticket = self.inner.acquire()?;
        Ok(Permit {
            breaker: &self.inner,
            ticket: Some(ticket),
        })
    }

    pub(crate) fn acquire_ticket(&self) -> Result<Ticket, CircuitOpenError> {
        self.inner.acquire()
    }

    pub(crate) fn finish(&self, ticket: Ticket, outcome: Outcome) {
        self.inner.finish(ticket, outcome);
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.inner.lock().state
    }

    /// A snapshot of the state and the window.
    pub fn metrics(&self) -> BreakerMetrics {
        let now = self.inner.ctx.now();
        let config = &self.inner.config;
        let mut shared = self.inner.lock();
        let totals = shared.window.totals(now);
        let (failure_rate, slow_call_rate) = if totals.calls >= config.minimum_calls() {
            (
                Some(rate(totals.failures, totals.calls)),
                Some(rate(totals.slow, totals.calls)),
            )
        } else {
            (None, None)
        };
        BreakerMetrics {
            state: shared.state,
            failure_rate,
            slow_call_rate,
            calls: totals.calls,
            failed_calls: totals.failures,
            slow_calls: totals.slow,
            not_permitted_calls: self.inner.not_permitted.load(Ordering::Relaxed),
            open_until: shared.open_until,
        }
    }

    /// Holds the breaker open: every call is rejected until another manual call.
    pub fn force_open(&self) {
        self.inner.manual(BreakerState::ForcedOpen);
    }

    /// Holds the breaker closed: calls pass and are recorded, it never opens.
    pub fn force_closed(&self) {
        self.inner.manual(BreakerState::ForcedClosed);
    }

    /// Disables the breaker: calls pass, nothing is recorded, no event is emitted.
    pub fn disable(&self) {
        self.inner.manual(BreakerState::Disabled);
    }

    /// Observes only: calls pass and are recorded, threshold events are emitted, the breaker
    /// never opens.
    pub fn metrics_only(&self) {
        self.inner.manual(BreakerState::MetricsOnly);
    }

    /// Back to automatic operation: closed, with an empty window and the open duration reset.
    pub fn reset(&self) {
        self.inner.manual(BreakerState::Closed);
    }
}

fn new_window(config: &CircuitBreakerConfig, now: Instant) -> Window {
    match config.window {
        SlidingWindow::Count { size } => Window::Count(CountWindow::new(size)),
        SlidingWindow::Time { length, buckets } => {
            Window::Time(TimeWindow::new(length, buckets, now))
        }
    }
}

fn rate(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        f64::from(part) / f64::from(whole)
    }
}

impl CircuitBreakerConfig {
    fn minimum_calls(&self) -> u32 {
        let minimum = self.minimum_calls.max(1);
        match self.window {
            SlidingWindow::Count { size } => minimum.min(size.max(1)),
            SlidingWindow::Time { .. } => minimum,
        }
    }

    fn open_duration(&self, opens: u32) -> Duration {
        let exponent = i32::try_from(opens.saturating_sub(1)).unwrap_or(i32::MAX);
        let grown = self.open_duration.as_secs_f64()
            * self.open_duration_multiplier.max(1.0).powi(exponent);
        let cap = self.max_open_duration.max(self.open_duration);
        if grown.is_finite() && grown < cap.as_secs_f64() {
            Duration::from_secs_f64(grown)
        } else {
            cap
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn acquire(&self) -> Result<Ticket, CircuitOpenError> {
        let state = self.state.load(Ordering::Acquire);
        if matches!(state, CLOSED | FORCED_CLOSED | METRICS_ONLY | DISABLED) {
            return Ok(Ticket {
                generation: self.generation.load(Ordering::Acquire),
                start: self.ctx.now(),
                probe: false,
                record: state != DISABLED,
            });
        }
        let now = self.ctx.now();
        let mut pending = Pending::default();
        let decision = {
            let mut shared = self.lock();
            if shared.state == BreakerState::Open && shared.open_until.is_none_or(|at| now >= at) {
                self.transition(&mut shared, BreakerState::HalfOpen, &mut pending);
            }
            match shared.state {
                BreakerState::HalfOpen
                    if shared.probes.admitted < self.config.half_open_calls.max(1) =>
                {
                    shared.probes.admitted += 1;
                    Ok(Ticket {
                        generation: shared.generation,
                        start: now,
                        probe: true,
                        record: true,
                    })
                }
                BreakerState::HalfOpen | BreakerState::ForcedOpen => Err(CircuitOpenError {
                    state: shared.state,
                    open_until: None,
                    retry_after: None,
                }),
                BreakerState::Open => Err(CircuitOpenError {
                    state: BreakerState::Open,
                    open_until: shared.open_until,
                    retry_after: shared
                        .open_until
                        .map(|at| at.saturating_duration_since(now)),
                }),
                BreakerState::Closed
                | BreakerState::ForcedClosed
                | BreakerState::MetricsOnly
                | BreakerState::Disabled => Ok(Ticket {
                    generation: shared.generation,
                    start: now,
                    probe: false,
                    record: shared.state != BreakerState::Disabled,
                }),
            }
        };
        if let Err(rejection) = &decision {
            self.not_permitted.fetch_add(1, Ordering::Relaxed);
            pending.push(EventKind::BreakerRejected {
                state: rejection.state,
                retry_after: rejection.retry_after,
            });
        }
        self.emit(pending);
        decision
    }

    fn finish(&self, ticket: Ticket, outcome: Outcome) {
        if !ticket.record {
            return;
        }
        let now = self.ctx.now();
        let slow = now.saturating_duration_since(ticket.start) >= self.config.slow_call_duration;
        let failure = outcome == Outcome::Failure;
        let mut pending = Pending::default();
        {
            let mut shared = self.lock();
            if ticket.generation != shared.generation {
                return;
            }
            if outcome == Outcome::Ignored {
                if ticket.probe {
                    shared.probes.admitted = shared.probes.admitted.saturating_sub(1);
                }
                return;
            }
            match shared.state {
                BreakerState::Closed | BreakerState::MetricsOnly | BreakerState::ForcedClosed => {
                    shared.window.record(now, failure, slow);
                    let totals = shared.window.totals(now);
                    if totals.calls >= self.config.minimum_calls()
                        && shared.state != BreakerState::ForcedClosed
                        && self.exceeded(totals, &mut pending)
                        && shared.state == BreakerState::Closed
                    {
                        self.open(&mut shared, now, &mut pending);
                    }
                }
                BreakerState::HalfOpen if ticket.probe => {
                    shared.probes.outcomes.add(failure, slow);
                    let outcomes = shared.probes.outcomes;
                    if outcomes.calls >= self.config.half_open_calls.max(1) {
                        if self.exceeded(outcomes, &mut pending) {
                            self.open(&mut shared, now, &mut pending);
                        } else {
                            shared.opens = 0;
                            shared.window = new_window(&self.config, now);
                            self.transition(&mut shared, BreakerState::Closed, &mut pending);
                        }
                    }
                }
                _ => {}
            }
        }
        self.emit(pending);
    }

    /// Whether a rate reached its threshold; queues the matching events.
    fn exceeded(&self, totals: Totals, pending: &mut Pending) -> bool {
        let failure_rate = rate(totals.failures, totals.calls);
        let slow_rate = rate(totals.slow, totals.calls);
        let mut exceeded = false;
        if failure_rate >= self.config.failure_rate_threshold {
            pending.push(EventKind::FailureRateExceeded { rate: failure_rate });
            exceeded = true;
        }
        if slow_rate >= self.config.slow_call_rate_threshold {
            pending.push(EventKind::SlowCallRateExceeded { rate: slow_rate });
            exceeded = true;
        }
        exceeded
    }

    fn open(&self, shared: &mut Shared, now: Instant, pending: &mut Pending) {
        shared.opens = shared.opens.saturating_add(1);
        shared.open_until = Some(now + self.config.open_duration(shared.opens));
        self.transition(shared, BreakerState::Open, pending);
    }

    fn transition(&self, shared: &mut Shared, to: BreakerState, pending: &mut Pending) {
        let from = shared.state;
        shared.state = to;
        shared.generation += 1;
        shared.probes = Probes::default();
        if to != BreakerState::Open {
            shared.open_until = None;
        }
        self.generation.store(shared.generation, Ordering::Release);
        self.state.store(encode(to), Ordering::Release);
        if from != to {
            pending.push(EventKind::BreakerTransition { from, to });
        }
    }

    fn manual(&self, to: BreakerState) {
        let now = self.ctx.now();
        let mut pending = Pending::default();
        {
            let mut shared = self.lock();
            shared.opens = 0;
            shared.window = new_window(&self.config, now);
            self.transition(&mut shared, to, &mut pending);
        }
        self.emit(pending);
    }

    fn emit(&self, pending: Pending) {
        for kind in pending.0.into_iter().flatten() {
            self.ctx.emit(kind);
        }
    }
}

/// One admitted call. Record its outcome with [`Permit::record`]; dropping it unrecorded
/// (say, the call was cancelled) counts as [`Outcome::Ignored`] and returns a half-open
/// probe slot.
#[derive(Debug)]
#[must_use = "record the outcome of the admitted call"]
pub struct Permit<'a> {
    breaker: &'a Inner,
    ticket: Option<Ticket>,
}

impl Permit<'_> {
    /// Records the outcome of the call; its duration is measured from the admission.
    pub fn record(mut self, outcome: Outcome) {
        if let Some(ticket) = self.ticket.take() {
            self.breaker.finish(ticket, outcome);
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.breaker.finish(ticket, Outcome::Ignored);
        }
    }
}

#[cfg(test)]
mod tests;
