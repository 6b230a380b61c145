//! Helpers shared by the unit tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Classify, Outcome};
use crate::event::{Context, Event, EventKind, Listener};

/// Records every event kind.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    events: Mutex<Vec<EventKind>>,
}

impl Recorder {
    /// A recorder and a context named `name` reporting to it.
    pub(crate) fn context(name: &str) -> (Arc<Recorder>, Context) {
        let recorder = Arc::new(Recorder::default());
        let ctx = Context::new(name).with_listener(recorder.clone());
        (recorder, ctx)
    }

    pub(crate) fn events(&self) -> Vec<EventKind> {
        self.events
            .lock()
            .map(|events| events.clone())
            .unwrap_or_default()
    }

    pub(crate) fn count(&self, matches: impl Fn(&EventKind) -> bool) -> usize {
        self.events().iter().filter(|kind| matches(kind)).count()
    }
}

impl Listener for Recorder {
    fn on_event(&self, event: &Event<'_>) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event.kind);
        }
    }
}

/// An operation error with a chosen classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TestError {
    pub(crate) retryable: bool,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) outcome: Outcome,
}

impl TestError {
    /// Retryable, no server delay, a breaker failure.
    pub(crate) const FAIL: TestError = TestError {
        retryable: true,
        retry_after: None,
        outcome: Outcome::Failure,
    };
}

impl Classify for TestError {
    fn is_retryable(&self) -> bool {
        self.retryable
    }

    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    fn breaker_outcome(&self) -> Outcome {
        self.outcome
    }
}

impl std::fmt::Display for TestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("test error")
    }
}

impl std::error::Error for TestError {}
