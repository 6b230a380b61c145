//! Recording calls: latency histograms (HdrHistogram, nanoseconds, 3 significant digits),
//! errors by class, a time series of per-interval percentiles and, when asked, the calls
//! around one instant (a failover's kill: [`Recorder::mark`]).

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Largest latency recorded: one hour (larger values are clamped).
const MAX_NANOS: u64 = 3_600_000_000_000;

/// How one call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// An answer; `attempts` is what the stack reports (1 for raw rmcp).
    Ok {
        /// Attempts sent.
        attempts: u32,
    },
    /// A failure of this class (`tool_error`, `timeout`, `transport`, …).
    Failed(&'static str),
}

/// A new latency histogram.
pub(crate) fn histogram() -> Histogram<u64> {
    histogram_with(3)
}

fn histogram_with(significant_digits: u8) -> Histogram<u64> {
    match Histogram::new_with_bounds(1, MAX_NANOS, significant_digits) {
        Ok(h) => h,
        // Constant bounds that hdrhistogram accepts: low >= 1, high >= 2 * low, digits <= 5.
        Err(_) => unreachable!("constant histogram bounds are valid"),
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Calls measured.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
}

impl Percentiles {
    /// The percentiles of a histogram in nanoseconds.
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        let us = |ns: u64| ns as f64 / 1000.0;
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            mean_us: h.mean() / 1000.0,
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }
}

/// One interval of the time series.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bucket {
    /// Start of the interval, in seconds from the start of the run.
    pub t_s: f64,
    /// Calls that ended in it.
    pub calls: u64,
    /// Of which failed.
    pub errors: u64,
    /// Median latency.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Largest.
    pub max_us: f64,
}

/// One bin of a latency histogram (log-spaced bins).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Bin {
    /// Upper edge, in microseconds.
    pub le_us: f64,
    /// Calls in the bin.
    pub count: u64,
}

/// Log-spaced bins (ratio 1.25 from 1 µs) of a histogram in nanoseconds.
pub(crate) fn bins(h: &Histogram<u64>) -> Vec<Bin> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut bins: Vec<Bin> = h
        .iter_log(1000, 1.25)
        .map(|v| Bin {
            le_us: v.value_iterated_to() as f64 / 1000.0,
            count: v.count_since_last_iteration(),
        })
        .collect();
    let first = bins.iter().position(|b| b.count > 0).unwrap_or(0);
    bins.drain(..first.saturating_sub(1));
    bins
}

struct SeriesState {
    width: Duration,
    current: Option<u64>,
    hist: Histogram<u64>,
    calls: u64,
    errors: u64,
    done: Vec<Bucket>,
}

impl SeriesState {
    fn record(&mut self, offset: Duration, latency: u64, failed: bool) {
        let index = (offset.as_nanos() / self.width.as_nanos().max(1)) as u64;
        if let Some(current) = self.current
            && index > current
        {
            self.close();
        }
        if self.current.is_none() {
            self.current = Some(index);
        }
        self.calls += 1;
        if failed {
            self.errors += 1;
        } else {
            self.hist.saturating_record(latency);
        }
    }

    fn close(&mut self) {
        let Some(index) = self.current.take() else {
            return;
        };
        let p = Percentiles::of(&self.hist);
        self.done.push(Bucket {
            t_s: (self.width * u32::try_from(index).unwrap_or(u32::MAX)).as_secs_f64(),
            calls: self.calls,
            errors: self.errors,
            p50_us: p.p50_us,
            p99_us: p.p99_us,
            max_us: p.max_us,
        });
        self.hist.reset();
        self.calls = 0;
        self.errors = 0;
    }
}

struct State {
    latency: Histogram<u64>,
    service: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<&'static str, u64>,
    retries: u64,
    series: SeriesState,
    around: Option<AroundState>,
}

/// The calls around a mark: those that ended in the `window` before it and after it, and every
/// failure after it. Until the mark is set, the calls of the last `window` are kept.
struct AroundState {
    window: Duration,
    mark: Option<Instant>,
    /// Before the mark: the last `window`'s calls, when each ended and its latency or the
    /// class of its failure.
    recent: VecDeque<(Instant, Result<u64, &'static str>)>,
    before: Histogram<u64>,
    after: Histogram<u64>,
    calls_after: u64,
    errors_after: BTreeMap<&'static str, u64>,
}

impl AroundState {
    fn record(&mut self, ended: Instant, result: Result<u64, &'static str>) {
        let Some(mark) = self.mark else {
            while self
                .recent
                .front()
                .is_some_and(|(t, _)| *t + self.window < ended)
            {
                self.recent.pop_front();
            }
            self.recent.push_back((ended, result));
            return;
        };
        if ended < mark {
            if ended + self.window >= mark
                && let Ok(latency) = result
            {
                self.before.saturating_record(latency);
            }
            return;
        }
        self.calls_after += 1;
        match result {
            Ok(latency) if ended < mark + self.window => self.after.saturating_record(latency),
            Ok(_) => {}
            Err(class) => *self.errors_after.entry(class).or_default() += 1,
        }
    }

    fn mark(&mut self, at: Instant) {
        if self.mark.is_some() {
            return;
        }
        self.mark = Some(at);
        for (ended, result) in std::mem::take(&mut self.recent) {
            self.record(ended, result);
        }
    }
}

/// The calls around a mark (see [`Recorder::mark`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Around {
    /// Latency of the answered calls that ended in the window before the mark.
    pub(crate) before: Percentiles,
    /// The same in the window after it.
    pub(crate) after: Percentiles,
    /// Calls that ended after the mark.
    pub(crate) calls_after: u64,
    /// Failures after the mark, by class.
    pub(crate) errors_after: BTreeMap<String, u64>,
}

/// Records the calls of one phase. Shared by the tasks making the calls.
pub(crate) struct Recorder {
    state: Mutex<State>,
    done: AtomicU64,
    origin: Instant,
}

impl Recorder {
    /// A recorder whose time series counts from `origin` in intervals of `width`.
    pub(crate) fn new(origin: Instant, width: Duration) -> Self {
        Self {
            state: Mutex::new(State {
                latency: histogram(),
                service: histogram(),
                ok: 0,
                errors: BTreeMap::new(),
                retries: 0,
                series: SeriesState {
                    width: width.max(Duration::from_millis(1)),
                    current: None,
                    hist: histogram_with(2),
                    calls: 0,
                    errors: 0,
                    done: Vec::new(),
                },
                around: None,
            }),
            done: AtomicU64::new(0),
            origin,
        }
    }

    /// A recorder that also keeps the calls around a mark set later ([`Recorder::mark`]):
    /// latency in the `window` before and after it, failures after it.
    pub(crate) fn with_window(origin: Instant, width: Duration, window: Duration) -> Self {
        let recorder = Self::new(origin, width);
        recorder
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .around = Some(AroundState {
            window,
            mark: None,
            recent: VecDeque::new(),
            before: histogram(),
            after: histogram(),
            calls_after: 0,
            errors_after: BTreeMap::new(),
        });
        recorder
    }

    /// Sets the mark (once; later calls do nothing). Without [`Recorder::with_window`], does
    /// nothing.
    pub(crate) fn mark(&self, at: Instant) {
        if let Some(around) = &mut self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .around
        {
            around.mark(at);
        }
    }

    /// The calls around the mark, once it is set.
    pub(crate) fn around(&self) -> Option<Around> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let around = state.around.as_ref().filter(|a| a.mark.is_some())?;
        Some(Around {
            before: Percentiles::of(&around.before),
            after: Percentiles::of(&around.after),
            calls_after: around.calls_after,
            errors_after: around
                .errors_after
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
        })
    }

    /// Records a call meant to start at `intended`, sent at `sent`, ended at `ended`.
    ///
    /// Latency counts from `intended` (so a late start is not forgotten: no coordinated
    /// omission); service time counts from `sent`. Failed calls count in the errors, not in
    /// the latency histograms.
    pub(crate) fn record(
        &self,
        intended: Instant,
        sent: Instant,
        ended: Instant,
        outcome: Outcome,
    ) {
        let latency = nanos(ended.saturating_duration_since(intended));
        let service = nanos(ended.saturating_duration_since(sent));
        let offset = ended.saturating_duration_since(self.origin);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match outcome {
            Outcome::Ok { attempts } => {
                state.ok += 1;
                state.retries += u64::from(attempts.saturating_sub(1));
                state.latency.saturating_record(latency);
                state.service.saturating_record(service);
            }
            Outcome::Failed(class) => *state.errors.entry(class).or_default() += 1,
        }
        if let Some(around) = &mut state.around {
            let result = match outcome {
                Outcome::Ok { .. } => Ok(latency),
                Outcome::Failed(class) => Err(class),
            };
            around.record(ended, result);
        }
        state
            .series
            .record(offset, latency, matches!(outcome, Outcome::Failed(_)));
        drop(state);
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// Calls recorded so far.
    pub(crate) fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// The phase's results.
    pub(crate) fn finish(&self) -> Recorded {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.series.close();
        Recorded {
            latency: state.latency.clone(),
            service: state.service.clone(),
            ok: state.ok,
            errors: state
                .errors
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            retries: state.retries,
            series: std::mem::take(&mut state.series.done),
        }
    }
}

/// What a phase (or, merged, a whole run) recorded.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    /// Latency from the intended start of each successful call.
    pub(crate) latency: Histogram<u64>,
    /// Latency from the actual send.
    pub(crate) service: Histogram<u64>,
    /// Successful calls.
    pub(crate) ok: u64,
    /// Failed calls by class.
    pub(crate) errors: BTreeMap<String, u64>,
    /// Retries reported by the stack.
    pub(crate) retries: u64,
    /// The time series.
    pub(crate) series: Vec<Bucket>,
}

impl Default for Recorded {
    fn default() -> Self {
        Self {
            latency: histogram(),
            service: histogram(),
            ok: 0,
            errors: BTreeMap::new(),
            retries: 0,
            series: Vec::new(),
        }
    }
}

impl Recorded {
    /// Calls recorded.
    pub(crate) fn calls(&self) -> u64 {
        self.ok + self.failed()
    }

    /// Failed calls.
    pub(crate) fn failed(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds another phase's results.
    pub(crate) fn merge(&mut self, other: Self) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
        self.ok += other.ok;
        for (class, n) in other.errors {
            *self.errors.entry(class).or_default() += n;
        }
        self.retries += other.retries;
        self.series.extend(other.series);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_counts_from_the_intended_start() {
        let origin = Instant::now();
        let recorder = Recorder::new(origin, Duration::from_millis(100));
        let intended = origin;
        let sent = origin + Duration::from_millis(40);
        let ended = origin + Duration::from_millis(50);
        recorder.record(intended, sent, ended, Outcome::Ok { attempts: 2 });
        recorder.record(intended, sent, ended, Outcome::Failed("timeout"));
        recorder.record(
            intended,
            sent,
            origin + Duration::from_millis(250),
            Outcome::Ok { attempts: 1 },
        );
        let recorded = recorder.finish();
        assert_eq!(recorded.calls(), 3);
        assert_eq!(recorded.failed(), 1);
        assert_eq!(recorded.retries, 1);
        let latency = Percentiles::of(&recorded.latency);
        let service = Percentiles::of(&recorded.service);
        assert!((latency.p50_us - 50_000.0).abs() < 100.0, "{latency:?}");
        assert!((service.p50_us - 10_000.0).abs() < 20.0, "{service:?}");
        assert_eq!(recorded.series.len(), 2);
        assert_eq!(recorded.series[0].calls, 2);
        assert_eq!(recorded.series[0].errors, 1);
        assert!((recorded.series[1].t_s - 0.2).abs() < 1e-9);
        assert!(!bins(&recorded.latency).is_empty());
    }

    #[test]
    fn calls_around_a_mark() {
        let origin = Instant::now();
        let ms = Duration::from_millis;
        let recorder = Recorder::with_window(origin, ms(100), ms(1000));
        let call = |start: u64, end: u64, outcome| {
            recorder.record(
                origin + ms(start),
                origin + ms(start),
                origin + ms(end),
                outcome,
            );
        };
        let ok = Outcome::Ok { attempts: 1 };
        call(0, 100, ok); // More than a window before the mark: not counted.
        call(1500, 1510, ok);
        call(1600, 1620, Outcome::Failed("transport")); // Before the mark: not counted.
        assert!(recorder.around().is_none());
        recorder.mark(origin + ms(2000));
        call(1990, 2050, Outcome::Failed("transport"));
        call(1990, 2090, ok);
        call(2500, 3500, ok); // After the window: counted as a call, not in the latency.
        let around = recorder.around().expect("marked");
        assert_eq!(around.before.count, 1);
        assert!(
            (around.before.p50_us - 10_000.0).abs() < 20.0,
            "{:?}",
            around.before
        );
        assert_eq!(around.after.count, 1);
        assert!(
            (around.after.max_us - 100_000.0).abs() < 200.0,
            "{:?}",
            around.after
        );
        assert_eq!(around.calls_after, 3);
        assert_eq!(around.errors_after.get("transport"), Some(&1));
    }
}
