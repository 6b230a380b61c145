//! Hedging: a second attempt when the first is slow; the first success wins.
//!
//! Only hedge operations that are safe to run twice (read-only or idempotent). [`Hedge`]
//! starts the operation, and if it has not finished after the hedge delay, starts it once
//! more; the first success is returned and the other attempt is cancelled (dropped). An
//! error of one attempt waits for the other; a first attempt that fails before the delay is
//! returned at once (failures are retry's business, slowness is hedging's). The delay is
//! fixed or a latency percentile of recent successful attempts, tracked in a small
//! log-scale histogram of atomics. Each hedge withdraws from the [`RetryBudget`], like a
//! retry (gRPC and failsafe-go share one budget between retries and hedges).

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::Poll;
use std::time::Duration;

use crate::event::{Context, EventKind};
use crate::retry::RetryBudget;

/// When to start the hedge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HedgeDelay {
    /// A fixed delay after the first attempt started.
    Fixed(Duration),
    /// The given percentile (0 to 1) of recent successful attempt latencies (tower's hedge).
    Percentile {
        /// The percentile, e.g. 0.95.
        percentile: f64,
        /// Latencies needed before the percentile is used.
        min_samples: u32,
        /// The delay until then.
        fallback: Duration,
    },
}

/// Settings of a [`Hedge`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HedgeConfig {
    /// When to start the hedge. Default: a fixed 2 s (Polly's hedging `Delay`).
    pub delay: HedgeDelay,
}

impl Default for HedgeConfig {
    fn default() -> Self {
        HedgeConfig {
            delay: HedgeDelay::Fixed(Duration::from_secs(2)),
        }
    }
}

/// Runs a slow operation a second time and takes the first success.
///
/// Cloning is cheap; clones share the latency histogram and the budget.
#[derive(Debug, Clone)]
pub struct Hedge {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: HedgeConfig,
    latency: LatencyHistogram,
    budget: Option<RetryBudget>,
    ctx: Context,
}

impl Hedge {
    /// A hedge without budget, with a default [`Context`] named `"hedge"`.
    pub fn new(config: HedgeConfig) -> Self {
        Hedge::with_context(config, Context::new("hedge"))
    }

    /// A hedge without budget reporting to `ctx`.
    pub fn with_context(config: HedgeConfig, ctx: Context) -> Self {
        Hedge::build(config, None, ctx)
    }

    /// A hedge drawing each hedged attempt from `budget` (and depositing every call).
    pub fn with_budget(config: HedgeConfig, budget: RetryBudget, ctx: Context) -> Self {
        Hedge::build(config, Some(budget), ctx)
    }

    fn build(config: HedgeConfig, budget: Option<RetryBudget>, ctx: Context) -> Self {
        let inner = Inner {
            config,
            latency: LatencyHistogram::new(),
            budget,
            ctx,
        };
        Hedge {
            inner: Arc::new(inner),
        }
    }

    /// The delay the next call would wait before hedging.
    pub fn delay(&self) -> Duration {
        match self.inner.config.delay {
            HedgeDelay::Fixed(delay) => delay,
            HedgeDelay::Percentile {
                percentile,
                min_samples,
                fallback,
            } => self
                .inner
                .latency
                .percentile(percentile, min_samples)
                .unwrap_or(fallback),
        }
    }

    /// Runs `operation`, and once more if the first run is slower than [`Hedge::delay`].
    pub async fn call<T, E, F, Fut>(&self, mut operation: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let inner = &*self.inner;
        if let Some(budget) = &inner.budget {
            budget.deposit();
        }
        let delay = self.delay();
        let start = inner.ctx.now();
        let mut primary = pin!(operation());
        let mut hedge = pin!(None::<Fut>);
        let mut timer = pin!(tokio::time::sleep_until(start + delay));
        let mut hedge_start = start;
        // Whether each attempt is still running, and whether the hedge timer is still armed.
        let (mut primary_running, mut hedge_running, mut armed) = (true, false, true);
        poll_fn(|cx| {
            if primary_running && let Poll::Ready(result) = primary.as_mut().poll(cx) {
                primary_running = false;
                match result {
                    Ok(value) => {
                        inner
                            .latency
                            .record(inner.ctx.now().saturating_duration_since(start));
                        return Poll::Ready(Ok(value));
                    }
                    Err(error) if !hedge_running => return Poll::Ready(Err(error)),
                    Err(_) => {}
                }
            }
            if armed && primary_running && timer.as_mut().poll(cx).is_ready() {
                armed = false;
                if inner.budget.as_ref().is_none_or(RetryBudget::try_withdraw) {
                    inner.ctx.emit(EventKind::HedgeStarted { delay });
                    hedge_start = inner.ctx.now();
                    hedge.set(Some(operation()));
                    hedge_running = true;
                } else {
                    inner.ctx.emit(EventKind::BudgetExhausted);
                }
            }
            if hedge_running
                && let Some(future) = hedge.as_mut().as_pin_mut()
                && let Poll::Ready(result) = future.poll(cx)
            {
                hedge_running = false;
                hedge.set(None);
                match result {
                    Ok(value) => {
                        let now = inner.ctx.now();
                        inner
                            .latency
                            .record(now.saturating_duration_since(hedge_start));
                        inner.ctx.emit(EventKind::HedgeWon);
                        return Poll::Ready(Ok(value));
                    }
                    Err(error) if !primary_running => return Poll::Ready(Err(error)),
                    Err(_) => {}
                }
            }
            Poll::Pending
        })
        .await
    }
}

/// Sub-buckets per power of two.
const SUB: u32 = 4;
const BUCKETS: usize = 168;
/// Counts are halved when they reach this many samples, so old latencies fade.
const DECAY_AT: u32 = 2048;

/// A log-scale histogram of latencies in microseconds, four buckets per power of two
/// (relative error under 25 %), lock-free.
#[derive(Debug)]
struct LatencyHistogram {
    buckets: [AtomicU32; BUCKETS],
    total: AtomicU32,
}

impl LatencyHistogram {
    fn new() -> Self {
        LatencyHistogram {
            buckets: std::array::from_fn(|_| AtomicU32::new(0)),
            total: AtomicU32::new(0),
        }
    }

    fn record(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
        if self.total.fetch_add(1, Ordering::Relaxed) + 1 >= DECAY_AT {
            self.total.store(0, Ordering::Relaxed);
            let mut kept = 0;
            for bucket in &self.buckets {
                let halved = bucket.load(Ordering::Relaxed) / 2;
                bucket.store(halved, Ordering::Relaxed);
                kept += halved;
            }
            self.total.fetch_add(kept, Ordering::Relaxed);
        }
    }

    /// The upper bound of the bucket holding the `percentile`, once `min_samples` are in.
    fn percentile(&self, percentile: f64, min_samples: u32) -> Option<Duration> {
        let counts: [u32; BUCKETS] =
            std::array::from_fn(|index| self.buckets[index].load(Ordering::Relaxed));
        let total: u64 = counts.iter().map(|count| u64::from(*count)).sum();
        if total == 0 || total < u64::from(min_samples) {
            return None;
        }
        let rank = ((percentile.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in counts.iter().enumerate() {
            seen += u64::from(*count);
            if seen >= rank {
                return Some(Duration::from_micros(lower_bound(index + 1)));
            }
        }
        None
    }
}

fn bucket_of(micros: u64) -> usize {
    if micros < u64::from(2 * SUB) {
        return usize::try_from(micros).unwrap_or(0);
    }
    let msb = 63 - micros.leading_zeros();
    let sub = (micros >> (msb - 2)) & u64::from(SUB - 1);
    let index = (msb - 1) as usize * SUB as usize + usize::try_from(sub).unwrap_or(0);
    index.min(BUCKETS - 1)
}

fn lower_bound(index: usize) -> u64 {
    if index < (2 * SUB) as usize {
        return index as u64;
    }
    let msb = index as u32 / SUB + 1;
    let sub = index as u64 % u64::from(SUB);
    (u64::from(SUB) + sub) << (msb - 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_bounded() {
        let mut previous = 0;
        for micros in 0..100_000u64 {
            let index = bucket_of(micros);
            assert!(index >= previous);
            assert!(lower_bound(index) <= micros && micros < lower_bound(index + 1));
            previous = index;
        }
    }

    #[test]
    fn percentile_needs_samples_and_tracks_latency() {
        let histogram = LatencyHistogram::new();
        assert_eq!(histogram.percentile(0.9, 1), None);
        for millis in 1..=100 {
            histogram.record(Duration::from_millis(millis));
        }
        assert_eq!(histogram.percentile(0.9, 101), None);
        let p90 = histogram.percentile(0.9, 10).unwrap_or_default();
        assert!(
            p90 >= Duration::from_millis(90) && p90 <= Duration::from_millis(115),
            "{p90:?}"
        );
    }
}

#[cfg(test)]
mod state_tests {
    use std::cell::Cell;

    use tokio::time::{Instant, sleep};

    use super::*;
    use crate::retry::RetryBudgetConfig;
    use crate::test_support::{Recorder, TestError};

    const MS: Duration = Duration::from_millis(1);

    /// Attempt `n` (from 1) sleeps `delays[n - 1]` and then returns `n`.
    fn attempts<'a>(
        started: &'a Cell<usize>,
        delays: &'a [u64],
    ) -> impl FnMut() -> std::pin::Pin<Box<dyn Future<Output = Result<usize, TestError>> + 'a>>
    {
        move || {
            started.set(started.get() + 1);
            let attempt = started.get();
            let delay = Duration::from_millis(delays[attempt - 1]);
            Box::pin(async move {
                sleep(delay).await;
                Ok(attempt)
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fast_calls_are_not_hedged() {
        let hedge = Hedge::new(HedgeConfig {
            delay: HedgeDelay::Fixed(50 * MS),
        });
        let started = Cell::new(0);
        assert_eq!(hedge.call(attempts(&started, &[10, 10])).await, Ok(1));
        assert_eq!(started.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_calls_are_hedged_and_the_first_success_wins() {
        let (recorder, ctx) = Recorder::context("h");
        let hedge = Hedge::with_context(
            HedgeConfig {
                delay: HedgeDelay::Fixed(50 * MS),
            },
            ctx,
        );
        let started = Cell::new(0);
        let start = Instant::now();
        assert_eq!(hedge.call(attempts(&started, &[500, 20])).await, Ok(2));
        assert_eq!(
            start.elapsed(),
            70 * MS,
            "the slow first attempt is dropped"
        );
        assert_eq!(
            recorder.events(),
            vec![
                EventKind::HedgeStarted { delay: 50 * MS },
                EventKind::HedgeWon
            ]
        );
        let started = Cell::new(0);
        assert_eq!(hedge.call(attempts(&started, &[60, 500])).await, Ok(1));
    }

    #[tokio::test(start_paused = true)]
    async fn errors_before_the_delay_are_returned() {
        let hedge = Hedge::new(HedgeConfig {
            delay: HedgeDelay::Fixed(50 * MS),
        });
        let calls = Cell::new(0);
        let result: Result<(), TestError> = hedge
            .call(|| {
                calls.set(calls.get() + 1);
                async { Err(TestError::FAIL) }
            })
            .await;
        assert_eq!((result, calls.get()), (Err(TestError::FAIL), 1));
    }

    #[tokio::test(start_paused = true)]
    async fn hedges_draw_from_the_budget() {
        let (recorder, ctx) = Recorder::context("h");
        let config = RetryBudgetConfig {
            min_retries_per_sec: 0,
            ..RetryBudgetConfig::default()
        };
        let budget = RetryBudget::new(config);
        let hedge = Hedge::with_budget(
            HedgeConfig {
                delay: HedgeDelay::Fixed(50 * MS),
            },
            budget,
            ctx,
        );
        let started = Cell::new(0);
        let start = Instant::now();
        assert_eq!(hedge.call(attempts(&started, &[500, 20])).await, Ok(1));
        assert_eq!(start.elapsed(), 500 * MS);
        assert_eq!(recorder.events(), vec![EventKind::BudgetExhausted]);
    }

    #[tokio::test(start_paused = true)]
    async fn percentile_delay_follows_latency() {
        let config = HedgeConfig {
            delay: HedgeDelay::Percentile {
                percentile: 0.9,
                min_samples: 10,
                fallback: Duration::from_secs(1),
            },
        };
        let hedge = Hedge::new(config);
        assert_eq!(hedge.delay(), Duration::from_secs(1));
        for _ in 0..20 {
            let started = Cell::new(0);
            assert_eq!(hedge.call(attempts(&started, &[40])).await, Ok(1));
        }
        let delay = hedge.delay();
        assert!(delay >= 40 * MS && delay <= 50 * MS, "{delay:?}");
    }
}
