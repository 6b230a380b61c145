//! Errors of the policies and the traits that classify the caller's errors.
//!
//! Each policy has its own small rejection error ([`TimeoutError`], [`CircuitOpenError`],
//! [`RateLimitedError`], [`BulkheadFullError`]). Policies are generic over the caller's
//! error type `E` and only ask that it can hold their rejection (`E: From<TimeoutError>` and
//! so on), so stacked policies return one flat error type. [`Error<E>`] is such a type for
//! any `E`: the caller's error plus every rejection.
//!
//! Display texts are lowercase and are not a stable API; match on variants and use the
//! `is_*` predicates instead.

use std::time::Duration;

use tokio::time::Instant;

use crate::event::{BreakerState, BulkheadRejection, TimeoutKind};

/// A timer expired before the operation finished; the operation was cancelled (dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{} timed out after {elapsed:?}", kind_text(*.kind))]
pub struct TimeoutError {
    /// Which timer expired.
    pub kind: TimeoutKind,
    /// How long the operation ran before it was cancelled.
    pub elapsed: Duration,
}

fn kind_text(kind: TimeoutKind) -> &'static str {
    match kind {
        TimeoutKind::Attempt => "attempt",
        TimeoutKind::Deadline => "operation deadline",
        TimeoutKind::Idle => "operation without progress",
        TimeoutKind::MaxDuration => "operation at its hard cap",
    }
}

/// A circuit breaker rejected the call without running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit {}: call not permitted{}", state.as_str(), retry_text(*.retry_after))]
pub struct CircuitOpenError {
    /// The state that rejected the call: open, half-open (all probes in flight) or forced open.
    pub state: BreakerState,
    /// When the breaker admits probe calls again; `None` when forced open or half-open.
    pub open_until: Option<Instant>,
    /// How long from the rejection until `open_until`.
    pub retry_after: Option<Duration>,
}

fn retry_text(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(after) => format!(", retry after {after:?}"),
        None => String::new(),
    }
}

/// A rate limiter rejected the call without running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limited: {}, retry after {retry_after:?}", if *.penalized { "upstream asked to back off" } else { "no permit available" })]
pub struct RateLimitedError {
    /// How long until the limiter admits a call.
    pub retry_after: Duration,
    /// Whether the limiter was penalized (an upstream 429) rather than out of permits.
    pub penalized: bool,
}

/// A bulkhead rejected the call without running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bulkhead full: {}", match .reason {
    BulkheadRejection::QueueFull => format!("{max_concurrent} calls running and the queue is full"),
    BulkheadRejection::QueueTimeout => format!("no call slot freed within {waited:?}"),
})]
pub struct BulkheadFullError {
    /// Why the call was rejected.
    pub reason: BulkheadRejection,
    /// The configured maximum of concurrent calls.
    pub max_concurrent: usize,
    /// How long the call waited in the queue.
    pub waited: Duration,
}

/// The error of a policy stack: the caller's error `E` or a rejection by a policy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error<E> {
    /// The operation itself failed.
    #[error(transparent)]
    Inner(E),
    /// A timer expired and the operation was cancelled.
    #[error(transparent)]
    Timeout(#[from] TimeoutError),
    /// A circuit breaker rejected the call.
    #[error(transparent)]
    CircuitOpen(#[from] CircuitOpenError),
    /// A rate limiter rejected the call.
    #[error(transparent)]
    RateLimited(#[from] RateLimitedError),
    /// A bulkhead rejected the call.
    #[error(transparent)]
    BulkheadFull(#[from] BulkheadFullError),
}

impl<E> Error<E> {
    /// Whether the operation itself failed (rather than a policy rejecting it).
    pub fn is_inner(&self) -> bool {
        matches!(self, Error::Inner(_))
    }

    /// Whether a timer expired: attempt timeout, overall deadline or idle timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_))
    }

    /// Whether the overall deadline expired.
    pub fn is_deadline_exceeded(&self) -> bool {
        matches!(
            self,
            Error::Timeout(TimeoutError {
                kind: TimeoutKind::Deadline,
                ..
            })
        )
    }

    /// Whether a circuit breaker rejected the call.
    pub fn is_circuit_open(&self) -> bool {
        matches!(self, Error::CircuitOpen(_))
    }

    /// Whether a rate limiter rejected the call.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, Error::RateLimited(_))
    }

    /// Whether a bulkhead rejected the call.
    pub fn is_bulkhead_full(&self) -> bool {
        matches!(self, Error::BulkheadFull(_))
    }

    /// Whether a policy rejected the call before it ran (breaker, limiter or bulkhead).
    pub fn is_rejected(&self) -> bool {
        self.is_circuit_open() || self.is_rate_limited() || self.is_bulkhead_full()
    }

    /// The operation's own error, if that is what this is.
    pub fn inner(&self) -> Option<&E> {
        match self {
            Error::Inner(error) => Some(error),
            _ => None,
        }
    }

    /// The operation's own error, or `self` back if a policy produced it.
    pub fn into_inner(self) -> Result<E, Self> {
        match self {
            Error::Inner(error) => Ok(error),
            other => Err(other),
        }
    }
}

impl<E: Classify> Error<E> {
    /// How long to wait before trying again, when known: the rejection's own hint or the
    /// operation error's [`Classify::retry_after`].
    pub fn retry_after(&self) -> Option<Duration> {
        Classify::retry_after(self)
    }
}

/// How a circuit breaker counts a finished call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Counts as a success.
    Success,
    /// Counts as a failure.
    Failure,
    /// Not counted at all (a half-open probe slot is returned).
    Ignored,
}

/// Tells the policies what an error means. Implement it for your error type.
///
/// Every method has a default: every error is retryable, has no server delay and counts as a
/// circuit-breaker failure. [`Error<E>`] implements it by delegating to `E` for
/// [`Error::Inner`] and by a fixed rule for rejections (see each method).
///
/// An application error that should not trip a breaker (say, a tool that ran and reported
/// its own error) returns [`Outcome::Success`] or [`Outcome::Ignored`] from
/// [`breaker_outcome`](Classify::breaker_outcome); a successful value that should count as a
/// failure needs a classifier closure, see [`CircuitBreaker::call_with`](crate::CircuitBreaker::call_with).
pub trait Classify {
    /// Whether another attempt may succeed. Default: `true`.
    fn is_retryable(&self) -> bool {
        true
    }

    /// A delay the server asked for (HTTP `Retry-After`, gRPC pushback). Default: `None`.
    ///
    /// Retry waits exactly this long instead of its backoff, and a
    /// [`Pipeline`](crate::Pipeline) also penalizes its rate limiter for that long.
    fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// How a circuit breaker counts this error. Default: [`Outcome::Failure`].
    fn breaker_outcome(&self) -> Outcome {
        Outcome::Failure
    }
}

/// Retry: attempt and idle timeouts, rate-limit and bulkhead rejections are retryable; an
/// expired deadline is not, and neither is an open circuit (the point of a breaker is to fail
/// fast while the dependency is known to be down). Breakers: rejected calls never ran, so
/// they are [`Outcome::Ignored`]; timeouts count as failures.
impl<E: Classify> Classify for Error<E> {
    fn is_retryable(&self) -> bool {
        match self {
            Error::Inner(error) => error.is_retryable(),
            Error::Timeout(timeout) => timeout.kind != TimeoutKind::Deadline,
            Error::CircuitOpen(_) => false,
            Error::RateLimited(_) | Error::BulkheadFull(_) => true,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Inner(error) => error.retry_after(),
            Error::CircuitOpen(open) => open.retry_after,
            Error::RateLimited(limited) => Some(limited.retry_after),
            Error::Timeout(_) | Error::BulkheadFull(_) => None,
        }
    }

    fn breaker_outcome(&self) -> Outcome {
        match self {
            Error::Inner(error) => error.breaker_outcome(),
            Error::Timeout(_) => Outcome::Failure,
            Error::CircuitOpen(_) | Error::RateLimited(_) | Error::BulkheadFull(_) => {
                Outcome::Ignored
            }
        }
    }
}

/// Boxed errors (as used by tower) are classified like [`Error<E>`] when they hold one of this
/// crate's rejections, and take every default otherwise.
impl Classify for Box<dyn std::error::Error + Send + Sync> {
    fn is_retryable(&self) -> bool {
        if self.is::<CircuitOpenError>() {
            return false;
        }
        match self.downcast_ref::<TimeoutError>() {
            Some(timeout) => timeout.kind != TimeoutKind::Deadline,
            None => true,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        if let Some(open) = self.downcast_ref::<CircuitOpenError>() {
            return open.retry_after;
        }
        self.downcast_ref::<RateLimitedError>()
            .map(|limited| limited.retry_after)
    }

    fn breaker_outcome(&self) -> Outcome {
        if self.is::<CircuitOpenError>()
            || self.is::<RateLimitedError>()
            || self.is::<BulkheadFullError>()
        {
            return Outcome::Ignored;
        }
        Outcome::Failure
    }
}

/// I/O errors take every default.
impl Classify for std::io::Error {}

impl Classify for std::convert::Infallible {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_why_and_when() {
        let timeout = TimeoutError {
            kind: TimeoutKind::Attempt,
            elapsed: Duration::from_secs(2),
        };
        assert_eq!(timeout.to_string(), "attempt timed out after 2s");
        let open = CircuitOpenError {
            state: BreakerState::Open,
            open_until: None,
            retry_after: Some(Duration::from_secs(30)),
        };
        assert_eq!(
            open.to_string(),
            "circuit open: call not permitted, retry after 30s"
        );
        let limited = RateLimitedError {
            retry_after: Duration::from_millis(100),
            penalized: true,
        };
        assert_eq!(
            limited.to_string(),
            "rate limited: upstream asked to back off, retry after 100ms"
        );
        let full = BulkheadFullError {
            reason: BulkheadRejection::QueueTimeout,
            max_concurrent: 4,
            waited: Duration::from_secs(1),
        };
        assert_eq!(
            full.to_string(),
            "bulkhead full: no call slot freed within 1s"
        );
        let error: Error<std::io::Error> = Error::Inner(std::io::Error::other("connection reset"));
        assert_eq!(error.to_string(), "connection reset");
        assert!(error.is_inner() && !error.is_timeout() && !error.is_rejected());
    }

    #[test]
    fn rejections_classify_for_retry_and_breaker() {
        let open: Error<std::io::Error> = Error::CircuitOpen(CircuitOpenError {
            state: BreakerState::Open,
            open_until: None,
            retry_after: Some(Duration::from_secs(3)),
        });
        assert!(!open.is_retryable());
        assert_eq!(open.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(open.breaker_outcome(), Outcome::Ignored);
        let deadline: Error<std::io::Error> = Error::Timeout(TimeoutError {
            kind: TimeoutKind::Deadline,
            elapsed: Duration::ZERO,
        });
        assert!(!deadline.is_retryable() && deadline.is_deadline_exceeded());
        assert_eq!(deadline.breaker_outcome(), Outcome::Failure);
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(RateLimitedError {
            retry_after: Duration::from_secs(1),
            penalized: false,
        });
        assert_eq!(Classify::retry_after(&boxed), Some(Duration::from_secs(1)));
        assert_eq!(boxed.breaker_outcome(), Outcome::Ignored);
    }
}
