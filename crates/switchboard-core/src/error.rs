//! Error classification shared by every layer of the call path.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The class of a failed operation.
///
/// Each crate owns its error type; each such error can say which class it falls into, and the
/// class alone decides retry and circuit-breaker behaviour:
///
/// | class | transient (may retry when safe) | counts against a breaker |
/// |---|---|---|
/// | `Transport` | yes | yes |
/// | `Timeout` | yes | yes |
/// | `Overloaded` | yes | yes |
/// | `Protocol` | no | yes |
/// | `Server` | yes | yes |
/// | `ToolError` | no | no |
/// | `InvalidInput` | no | no |
/// | `NotFound` | no | no |
/// | `Unavailable` | yes | no |
/// | `Denied` | no | no |
/// | `Config` | no | no |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The connection failed or was lost (process died, connection refused, session lost).
    Transport,
    /// The deadline or a timeout passed before an answer arrived.
    Timeout,
    /// The server said it is overloaded (HTTP 429/503) or a local limit shed the call.
    Overloaded,
    /// The server answered with something that is not valid MCP.
    Protocol,
    /// The server failed while handling the request (JSON-RPC internal error).
    Server,
    /// The tool ran and reported a failure (`isError: true`).
    ToolError,
    /// The request was rejected as invalid (bad arguments, invalid params).
    InvalidInput,
    /// The tool, resource, prompt or server does not exist.
    NotFound,
    /// The server is not usable right now (still connecting, failed, circuit open); the call was
    /// not sent.
    Unavailable,
    /// A policy refused the call.
    Denied,
    /// The configuration is invalid.
    Config,
}

impl ErrorClass {
    /// Whether a retry could succeed (only ever done for calls that are safe to repeat).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::Transport | Self::Timeout | Self::Overloaded | Self::Server | Self::Unavailable
        )
    }

    /// Whether the failure says something about the server's health, so that it should count
    /// against a circuit breaker or a health score. Tool errors and invalid input never do.
    pub fn counts_as_failure(self) -> bool {
        matches!(
            self,
            Self::Transport | Self::Timeout | Self::Overloaded | Self::Protocol | Self::Server
        )
    }

    /// A short stable name, usable as a metric attribute (`error.type`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transport => "transport",
            Self::Timeout => "timeout",
            Self::Overloaded => "overloaded",
            Self::Protocol => "protocol",
            Self::Server => "server",
            Self::ToolError => "tool_error",
            Self::InvalidInput => "invalid_input",
            Self::NotFound => "not_found",
            Self::Unavailable => "unavailable",
            Self::Denied => "denied",
            Self::Config => "config",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_errors_never_trip_breakers_nor_retry() {
        assert!(!ErrorClass::ToolError.is_transient());
        assert!(!ErrorClass::ToolError.counts_as_failure());
        assert!(!ErrorClass::InvalidInput.counts_as_failure());
    }

    #[test]
    fn names_are_snake_case() {
        assert_eq!(ErrorClass::ToolError.to_string(), "tool_error");
        assert_eq!(
            serde_json::to_string(&ErrorClass::InvalidInput)
                .ok()
                .as_deref(),
            Some("\"invalid_input\"")
        );
    }
}
