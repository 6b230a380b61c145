//! Sliding windows of call outcomes: O(1) record and snapshot.
//!
//! The count-based window is a ring of the last N outcomes with running totals. The
//! time-based window is a ring of buckets, each covering `length / buckets`, with running
//! totals; when a bucket ages out its totals are subtracted (resilience4j's partial
//! aggregation). Advancing skips at most one full ring, so every operation is bounded by the
//! number of buckets and is O(1) amortized.

use std::time::Duration;

use tokio::time::Instant;

/// Totals over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) calls: u32,
    pub(crate) failures: u32,
    pub(crate) slow: u32,
}

impl Totals {
    pub(crate) fn add(&mut self, failure: bool, slow: bool) {
        self.calls += 1;
        self.failures += u32::from(failure);
        self.slow += u32::from(slow);
    }

    fn subtract(&mut self, other: Totals) {
        self.calls -= other.calls;
        self.failures -= other.failures;
        self.slow -= other.slow;
    }
}

const FAILURE: u8 = 1;
const SLOW: u8 = 2;
const PRESENT: u8 = 4;

/// The last `size` outcomes.
#[derive(Debug, Clone)]
pub(crate) struct CountWindow {
    ring: Box<[u8]>,
    next: usize,
    totals: Totals,
}

impl CountWindow {
    pub(crate) fn new(size: u32) -> Self {
        let size = usize::try_from(size.max(1)).unwrap_or(1);
        CountWindow {
            ring: vec![0; size].into_boxed_slice(),
            next: 0,
            totals: Totals::default(),
        }
    }

    pub(crate) fn record(&mut self, failure: bool, slow: bool) {
        let evicted = self.ring[self.next];
        if evicted & PRESENT != 0 {
            self.totals.subtract(Totals {
                calls: 1,
                failures: u32::from(evicted & FAILURE != 0),
                slow: u32::from(evicted & SLOW != 0),
            });
        }
        self.ring[self.next] =
            PRESENT | if failure { FAILURE } else { 0 } | if slow { SLOW } else { 0 };
        self.next = (self.next + 1) % self.ring.len();
        self.totals.add(failure, slow);
    }

    pub(crate) fn totals(&self) -> Totals {
        self.totals
    }
}

/// Outcomes of the last `length`, in `buckets` buckets.
#[derive(Debug, Clone)]
pub(crate) struct TimeWindow {
    buckets: Box<[Totals]>,
    bucket_nanos: u64,
    epoch: Instant,
    /// The sequence number (time since `epoch` / bucket length) of the newest bucket.
    current: u64,
    totals: Totals,
}

impl TimeWindow {
    pub(crate) fn new(length: Duration, buckets: u32, epoch: Instant) -> Self {
        let count = u64::from(buckets.max(1));
        let length_nanos = u64::try_from(length.as_nanos()).unwrap_or(u64::MAX);
        let bucket_nanos = (length_nanos / count).max(1);
        let buckets = vec![Totals::default(); usize::try_from(count).unwrap_or(1)];
        TimeWindow {
            buckets: buckets.into_boxed_slice(),
            bucket_nanos,
            epoch,
            current: 0,
            totals: Totals::default(),
        }
    }

    /// Ages out the buckets that are older than the window at `now`.
    fn advance(&mut self, now: Instant) {
        let since =
            u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        let sequence = since / self.bucket_nanos;
        if sequence <= self.current {
            return;
        }
        let len = self.buckets.len() as u64;
        let expired = (sequence - self.current).min(len);
        for step in 1..=expired {
            let index = ((self.current + step) % len) as usize;
            let old = std::mem::take(&mut self.buckets[index]);
            self.totals.subtract(old);
        }
        self.current = sequence;
    }

    /// Records an outcome at `now` (an earlier `now` than the newest bucket counts there).
    pub(crate) fn record(&mut self, now: Instant, failure: bool, slow: bool) {
        self.advance(now);
        let index = (self.current % self.buckets.len() as u64) as usize;
        self.buckets[index].add(failure, slow);
        self.totals.add(failure, slow);
    }

    pub(crate) fn totals(&mut self, now: Instant) -> Totals {
        self.advance(now);
        self.totals
    }
}

/// Either window.
#[derive(Debug, Clone)]
pub(crate) enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Window {
    pub(crate) fn record(&mut self, now: Instant, failure: bool, slow: bool) {
        match self {
            Window::Count(window) => window.record(failure, slow),
            Window::Time(window) => window.record(now, failure, slow),
        }
    }

    pub(crate) fn totals(&mut self, now: Instant) -> Totals {
        match self {
            Window::Count(window) => window.totals(),
            Window::Time(window) => window.totals(now),
        }
    }
}
