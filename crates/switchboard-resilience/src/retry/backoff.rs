//! Backoff delays between attempts.

use std::time::Duration;

use rand::Rng;

/// How randomness is applied to an exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Jitter {
    /// No randomness: exactly `min(max, initial · multiplier^n)`.
    None,
    /// Full jitter: uniform in `[0, min(max, initial · multiplier^n)]` (AWS, Envoy).
    Full,
    /// Equal jitter: half the delay fixed, half uniform random.
    Equal,
}

/// The wait before each retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backoff {
    /// The same delay before every retry.
    Constant {
        /// The delay.
        delay: Duration,
    },
    /// `min(max, initial · multiplier^(n-1))` before retry `n`, with [`Jitter`].
    Exponential {
        /// The delay before the first retry (before jitter).
        initial: Duration,
        /// The cap on any delay.
        max: Duration,
        /// The growth factor per retry; values below 1 are treated as 1.
        multiplier: f64,
        /// The randomness applied.
        jitter: Jitter,
    },
    /// Decorrelated jitter (M. Brooker): `min(max, uniform(initial, previous · 3))`.
    Decorrelated {
        /// The smallest delay, and the first "previous" delay.
        initial: Duration,
        /// The cap on any delay.
        max: Duration,
    },
}

/// Exponential, 25 ms doubling to at most 250 ms, full jitter: Envoy's retry back-off
/// (base interval 25 ms, max interval 10× the base, fully jittered).
impl Default for Backoff {
    fn default() -> Self {
        Backoff::Exponential {
            initial: Duration::from_millis(25),
            max: Duration::from_millis(250),
            multiplier: 2.0,
            jitter: Jitter::Full,
        }
    }
}

impl Backoff {
    /// The delay before retry number `retry` (1 for the first retry), given the previous
    /// delay (ignored except by [`Backoff::Decorrelated`], where zero means "none yet").
    pub fn delay<R: Rng + ?Sized>(&self, retry: u32, previous: Duration, rng: &mut R) -> Duration {
        match *self {
            Backoff::Constant { delay } => delay,
            Backoff::Exponential {
                initial,
                max,
                multiplier,
                jitter,
            } => {
                let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
                let grown = initial.as_secs_f64() * multiplier.max(1.0).powi(exponent);
                let capped = if grown.is_finite() && grown < max.as_secs_f64() {
                    Duration::from_secs_f64(grown)
                } else {
                    max
                };
                match jitter {
                    Jitter::None => capped,
                    Jitter::Full => uniform(rng, Duration::ZERO, capped),
                    Jitter::Equal => capped / 2 + uniform(rng, Duration::ZERO, capped / 2),
                }
            }
            Backoff::Decorrelated { initial, max } => {
                let previous = if previous.is_zero() {
                    initial
                } else {
                    previous
                };
                let upper = previous.saturating_mul(3).min(max).max(initial);
                uniform(rng, initial, upper).min(max)
            }
        }
    }
}

/// A uniform duration in `[low, high]` (nanosecond resolution).
fn uniform<R: Rng + ?Sized>(rng: &mut R, low: Duration, high: Duration) -> Duration {
    let low = nanos(low);
    let high = nanos(high).max(low);
    Duration::from_nanos(rng.random_range(low..=high))
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
