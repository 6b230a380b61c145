//! The time source of every policy.
//!
//! Policies read the time through [`Clock`] and sleep with `tokio::time`, so a test that
//! calls `tokio::time::pause()` (or uses `#[tokio::test(start_paused = true)]`) controls
//! both. [`TokioClock`] is the default.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// A monotonic time source.
///
/// Implement it to drive policies from another clock; most code uses [`TokioClock`].
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The default clock: `tokio::time::Instant::now()`, which follows `tokio::time::pause()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Adapts a [`Clock`] to `governor`'s clock: instants are durations since an epoch.
#[derive(Debug, Clone)]
pub(crate) struct GovernorClock {
    clock: Arc<dyn Clock>,
    epoch: Instant,
}

impl GovernorClock {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        let epoch = clock.now();
        GovernorClock { clock, epoch }
    }

    /// The duration since the epoch of `at` (zero before the epoch).
    pub(crate) fn since_epoch(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.epoch)
    }
}

impl governor::clock::Clock for GovernorClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.since_epoch(self.clock.now())
    }
}
