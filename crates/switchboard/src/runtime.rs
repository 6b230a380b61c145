//! Per-server runtime state of the call path: circuit breaker, rate limiter, bulkhead, health,
//! and the counters that `mcpctl health` and the load test show.
//!
//! Every decision of a policy is reported through [`PolicyListener`]: as a `tracing` event
//! (target `switchboard::policy`, with the server) and in the server's [`PolicyCounters`].

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use hdrhistogram::Histogram;
use serde::Serialize;
use switchboard_registry::health::{HealthConfig, HealthSnapshot, HealthTracker, Transition};
use switchboard_resilience::{
    BreakerMetrics, Bulkhead, BulkheadConfig, CircuitBreaker, CircuitBreakerConfig, Context, Event,
    EventKind, Listener, RateLimitConfig, RateLimitMode, RateLimiter, SlidingWindow,
};
use switchboard_telemetry::{Rejection, Telemetry};

use crate::config::{BreakerMode, ServerPolicy};

/// Counters of policy decisions for one server.
#[derive(Debug, Default)]
pub(crate) struct PolicyCounters {
    pub(crate) calls: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) budget_exhausted: AtomicU64,
    pub(crate) breaker_opens: AtomicU64,
    pub(crate) breaker_rejections: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) bulkhead_rejections: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) fallbacks: AtomicU64,
    pub(crate) routed: AtomicU64,
}

/// Counters of policy decisions for one server.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct PolicyStats {
    /// Calls attempted (each attempt counts).
    pub calls: u64,
    /// Attempts that failed in a way that counts against the server.
    pub failures: u64,
    /// Retries scheduled.
    pub retries: u64,
    /// Retries refused because the retry budget was empty.
    pub budget_exhausted: u64,
    /// Times the breaker opened.
    pub breaker_opens: u64,
    /// Calls rejected by an open breaker.
    pub breaker_rejections: u64,
    /// Calls rejected by the rate limiter.
    pub rate_limited: u64,
    /// Calls rejected by the bulkhead.
    pub bulkhead_rejections: u64,
    /// Attempts that timed out.
    pub timeouts: u64,
    /// Calls answered by a fallback.
    pub fallbacks: u64,
    /// Attempts a replica group's router sent to this server.
    pub routed: u64,
}

impl PolicyCounters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> PolicyStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PolicyStats {
            calls: get(&self.calls),
            failures: get(&self.failures),
            retries: get(&self.retries),
            budget_exhausted: get(&self.budget_exhausted),
            breaker_opens: get(&self.breaker_opens),
            breaker_rejections: get(&self.breaker_rejections),
            rate_limited: get(&self.rate_limited),
            bulkhead_rejections: get(&self.bulkhead_rejections),
            timeouts: get(&self.timeouts),
            fallbacks: get(&self.fallbacks),
            routed: get(&self.routed),
        }
    }
}

/// A histogram of 1 µs to 1 hour with 2 significant digits (these bounds are valid, so it is
/// always `Some`).
fn new_histogram() -> Option<Histogram<u64>> {
    Histogram::new_with_bounds(1, 3_600_000_000, 2).ok()
}

/// Turns resilience events of one server into log events, counters and metrics.
#[derive(Debug)]
pub(crate) struct PolicyListener {
    pub(crate) counters: Arc<PolicyCounters>,
    pub(crate) telemetry: Telemetry,
}

impl Listener for PolicyListener {
    fn on_event(&self, event: &Event<'_>) {
        let server = event.name;
        let c = &self.counters;
        match &event.kind {
            EventKind::RetryScheduled { attempt, delay, .. } => {
                PolicyCounters::bump(&c.retries);
                self.telemetry.record_retry(server, None);
                tracing::debug!(target: "switchboard::policy", server, attempt, ?delay, "retry scheduled");
            }
            EventKind::RetryGaveUp { attempts, reason } => {
                tracing::debug!(target: "switchboard::policy", server, attempts, reason = ?reason, "retry gave up");
            }
            EventKind::BudgetExhausted => {
                PolicyCounters::bump(&c.budget_exhausted);
                self.telemetry.record_retry_budget_exhausted(server, None);
                tracing::warn!(target: "switchboard::policy", server, "retry budget exhausted; not retrying");
            }
            EventKind::BreakerTransition { from, to } => {
                if to.as_str() == "open" {
                    PolicyCounters::bump(&c.breaker_opens);
                }
                self.telemetry
                    .record_breaker_transition(server, from.as_str(), to.as_str());
                tracing::warn!(target: "switchboard::policy", server, from = from.as_str(), to = to.as_str(), "circuit breaker transition");
            }
            EventKind::BreakerRejected { .. } => {
                PolicyCounters::bump(&c.breaker_rejections);
                self.telemetry
                    .record_rejection(server, None, Rejection::CircuitOpen);
            }
            EventKind::RateLimitRejected { .. } => {
                PolicyCounters::bump(&c.rate_limited);
                self.telemetry
                    .record_rejection(server, None, Rejection::RateLimited);
            }
            EventKind::BulkheadRejected { .. } => {
                PolicyCounters::bump(&c.bulkhead_rejections);
                self.telemetry
                    .record_rejection(server, None, Rejection::BulkheadFull);
            }
            EventKind::TimedOut { .. } => PolicyCounters::bump(&c.timeouts),
            _ => {}
        }
    }
}

/// The limits of one server, or of one tool that has its own: breaker, rate limiter,
/// bulkhead.
#[derive(Debug)]
pub(crate) struct Limits {
    pub(crate) breaker: Option<CircuitBreaker>,
    pub(crate) limiter: Option<RateLimiter>,
    pub(crate) bulkhead: Bulkhead,
}

impl Limits {
    pub(crate) fn new(policy: &ServerPolicy, context: &Context) -> Self {
        let breaker = (policy.breaker_mode != BreakerMode::Disabled).then(|| {
            let config = CircuitBreakerConfig {
                failure_rate_threshold: policy.failure_rate,
                window: SlidingWindow::Count {
                    size: policy.window,
                },
                minimum_calls: policy.minimum_calls,
                open_duration: policy.open_duration,
                open_duration_multiplier: 2.0,
                max_open_duration: Duration::from_secs(300),
                half_open_calls: policy.half_open_calls,
                ..CircuitBreakerConfig::default()
            };
            let breaker = CircuitBreaker::with_context(config, context.clone());
            match policy.breaker_mode {
                BreakerMode::MetricsOnly => breaker.metrics_only(),
                BreakerMode::ForceOpen => breaker.force_open(),
                BreakerMode::Enabled | BreakerMode::Disabled => {}
            }
            breaker
        });
        let limiter = policy.requests_per_second.map(|rps| {
            let mode = if policy.rate_limit_wait.is_zero() {
                RateLimitMode::Reject
            } else {
                RateLimitMode::Wait {
                    timeout: policy.rate_limit_wait,
                }
            };
            RateLimiter::with_context(
                RateLimitConfig {
                    requests: rps,
                    period: Duration::from_secs(1),
                    burst: policy.burst.unwrap_or(rps),
                    mode,
                },
                context.clone(),
            )
        });
        let bulkhead = Bulkhead::with_context(
            BulkheadConfig {
                max_concurrent: policy.max_concurrent as usize,
                max_queued: policy.max_queued as usize,
                queue_timeout: policy.queue_timeout,
            },
            context.clone(),
        );
        Self {
            breaker,
            limiter,
            bulkhead,
        }
    }
}

/// Limits a tool has of its own (set in `[servers.NAME.tools.TOOL]`), applied on top of the
/// server's: its rate limiter and bulkhead in addition to the server's, its breaker instead of
/// the server's.
#[derive(Debug, Default)]
pub(crate) struct ToolLimits {
    pub(crate) breaker: Option<CircuitBreaker>,
    pub(crate) limiter: Option<RateLimiter>,
    pub(crate) bulkhead: Option<Bulkhead>,
}

impl ToolLimits {
    /// The limits the tool's own settings ask for; `None` when it sets none.
    pub(crate) fn new(
        tool: &crate::config::PolicySettings,
        policy: &ServerPolicy,
        context: &Context,
    ) -> Option<Self> {
        let wants_breaker = tool.breaker != crate::config::BreakerSettings::default();
        let wants_limiter = tool.rate_limit.requests_per_second.is_some();
        let wants_bulkhead = tool.bulkhead != crate::config::BulkheadSettings::default();
        if !(wants_breaker || wants_limiter || wants_bulkhead) {
            return None;
        }
        let limits = Limits::new(policy, context);
        Some(Self {
            breaker: limits.breaker.filter(|_| wants_breaker),
            limiter: limits.limiter.filter(|_| wants_limiter),
            bulkhead: wants_bulkhead.then_some(limits.bulkhead),
        })
    }
}

/// The call-path state of one server.
#[derive(Debug)]
pub(crate) struct ServerRuntime {
    pub(crate) context: Context,
    pub(crate) breaker: Option<CircuitBreaker>,
    pub(crate) limiter: Option<RateLimiter>,
    pub(crate) bulkhead: Bulkhead,
    pub(crate) health: Mutex<HealthTracker>,
    pub(crate) counters: Arc<PolicyCounters>,
    /// Latencies of attempts and probes, in microseconds.
    latency: Mutex<Option<Histogram<u64>>>,
    /// The connection generation health is about: results of attempts made on an older
    /// session say nothing about the current one and are ignored.
    generation: AtomicU64,
}

/// Latency percentiles of one server.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct LatencyView {
    /// Samples (attempts and probes).
    pub count: u64,
    /// Median, in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile, in milliseconds.
    pub p90_ms: f64,
    /// 99th percentile, in milliseconds.
    pub p99_ms: f64,
}

impl ServerRuntime {
    pub(crate) fn new(
        server: &str,
        policy: &ServerPolicy,
        health: HealthConfig,
        telemetry: &Telemetry,
    ) -> Self {
        let counters = Arc::new(PolicyCounters::default());
        let context = Context::new(server.to_owned()).with_listener(Arc::new(PolicyListener {
            counters: Arc::clone(&counters),
            telemetry: telemetry.clone(),
        }));
        let limits = Limits::new(policy, &context);
        Self {
            context,
            breaker: limits.breaker,
            limiter: limits.limiter,
            bulkhead: limits.bulkhead,
            health: Mutex::new(HealthTracker::new(health, tokio::time::Instant::now())),
            counters,
            latency: Mutex::new(new_histogram()),
            generation: AtomicU64::new(0),
        }
    }

    /// Records a finished attempt made on connection `generation`; results from an older
    /// session than the one health was last reset for are ignored.
    pub(crate) fn record_health_on(&self, generation: u64, success: bool) -> Transition {
        if generation < self.generation.load(Ordering::Acquire) {
            return Transition::None;
        }
        self.record_health(success)
    }

    /// Records a finished attempt in the health tracker; returns what changed.
    pub(crate) fn record_health(&self, success: bool) -> Transition {
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(success, tokio::time::Instant::now())
    }

    /// Records the latency of an attempt or a probe.
    pub(crate) fn record_latency(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut histogram = self.latency.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(histogram) = histogram.as_mut() {
            // Values above the histogram's range are clamped rather than dropped.
            let _ = histogram.record(micros.min(histogram.high()));
        }
    }

    /// Latency percentiles so far.
    pub(crate) fn latency(&self) -> LatencyView {
        let histogram = self.latency.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(histogram) = histogram.as_ref() else {
            return LatencyView::default();
        };
        let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
        LatencyView {
            count: histogram.len(),
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
        }
    }

    /// Whether an active probe is due (the server is idle or ejected).
    pub(crate) fn probe_due(&self, jitter: f64) -> bool {
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .probe_due(tokio::time::Instant::now(), jitter)
    }

    /// Starts health afresh for session `generation` (after a reconnection: a new process or
    /// session).
    pub(crate) fn reset_health(&self, generation: u64) {
        self.generation.fetch_max(generation, Ordering::AcqRel);
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reset(tokio::time::Instant::now());
    }

    /// Whether health lets the server take traffic (an ejection whose time is up ends here).
    pub(crate) fn is_available(&self) -> bool {
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_available(tokio::time::Instant::now())
    }

    /// A health snapshot.
    pub(crate) fn health(&self) -> HealthSnapshot {
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .snapshot(tokio::time::Instant::now())
    }

    /// The breaker's metrics, when there is a breaker.
    pub(crate) fn breaker_metrics(&self) -> Option<BreakerMetrics> {
        self.breaker.as_ref().map(CircuitBreaker::metrics)
    }
}
