//! Answers with their provenance.

use std::time::Duration;

use serde::Serialize;

use crate::ServerName;

/// Where an answer came from and what it took to get it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// The server that answered.
    pub server: ServerName,
    /// Time from the call's start to its answer, all attempts included.
    #[serde(serialize_with = "as_micros")]
    pub latency: Duration,
    /// How many attempts were sent (1 when the first one answered).
    pub attempts: u32,
}

impl Provenance {
    /// Provenance of an answer from `server` after one attempt.
    pub fn new(server: ServerName, latency: Duration) -> Self {
        Self {
            server,
            latency,
            attempts: 1,
        }
    }
}

fn as_micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A value together with its [`Provenance`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome<T> {
    /// The answer.
    pub value: T,
    /// Where it came from.
    pub provenance: Provenance,
}

impl<T> Outcome<T> {
    /// Pairs a value with its provenance.
    pub fn new(value: T, provenance: Provenance) -> Self {
        Self { value, provenance }
    }

    /// Transforms the value, keeping the provenance.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        Outcome {
            value: f(self.value),
            provenance: self.provenance,
        }
    }
}
