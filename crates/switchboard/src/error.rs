//! The facade's error type.

use std::time::Duration;

use switchboard_core::{ErrorClass, ServerName};
use switchboard_transport::TransportError;

use crate::config::ConfigError;

/// A failure of a [`Switchboard`](crate::Switchboard) operation.
///
/// A tool that runs and reports a failure (`isError: true`) is not an `Error`: it is a
/// successful call whose [`CallOutput::is_tool_error`](crate::CallOutput::is_tool_error) is true.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No server offers a tool of that name.
    #[error("unknown tool {name:?}{}", suggestion.as_deref().map(|s| format!("; did you mean {s:?}?")).unwrap_or_default())]
    UnknownTool {
        /// The name asked for.
        name: String,
        /// The closest known name, if any is close.
        suggestion: Option<String>,
    },
    /// Several servers offer a tool of that bare name.
    #[error("tool name {name:?} is ambiguous: offered by {}; qualify it as SERVER.{name}", servers.join(", "))]
    AmbiguousTool {
        /// The bare name.
        name: String,
        /// The servers offering it.
        servers: Vec<String>,
    },
    /// Two servers offer the same bare name under naming policy `never`.
    #[error("tool name {name:?} is offered by {}; with naming policy \"never\" tool names must be unique (rename one with tools.{name}.rename)", servers.join(", "))]
    NameCollision {
        /// The bare name.
        name: String,
        /// The servers offering it.
        servers: Vec<String>,
    },
    /// No prompt of that name.
    #[error("unknown prompt {name:?}")]
    UnknownPrompt {
        /// The name asked for.
        name: String,
    },
    /// No server of that name is configured.
    #[error("unknown server {name:?}")]
    UnknownServer {
        /// The name asked for.
        name: String,
    },
    /// The server is disabled in the configuration.
    #[error("server {server} is disabled in the configuration")]
    Disabled {
        /// The server.
        server: ServerName,
    },
    /// No server could read the resource.
    #[error("no server has resource {uri:?}{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    ResourceNotFound {
        /// The URI.
        uri: String,
        /// What the servers said.
        detail: Option<String>,
    },
    /// The call did not finish before its deadline.
    #[error("{operation} on server {server} timed out after {after:?}")]
    Timeout {
        /// The server.
        server: ServerName,
        /// What was asked, e.g. `tools/call echo`.
        operation: String,
        /// The deadline that passed.
        after: Duration,
    },
    /// The arguments are not a JSON object, or do not fit the tool.
    #[error("invalid arguments for {tool}: {message}")]
    InvalidArguments {
        /// The tool.
        tool: String,
        /// What is wrong.
        message: String,
    },
    /// The server could not be reached or answered with an error.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The server's circuit breaker is open: it failed recently, so calls fail fast.
    #[error("server {server} is unavailable: its circuit breaker is {state} after repeated failures{}", retry_text(*retry_after))]
    CircuitOpen {
        /// The server.
        server: ServerName,
        /// `open`, `half_open` (all probes in flight) or `forced_open`.
        state: &'static str,
        /// When the breaker lets a probe call through again.
        retry_after: Option<Duration>,
    },
    /// The server's rate limit allows no more calls now.
    #[error("server {server} is rate-limited here{}", retry_text(Some(*retry_after)))]
    RateLimited {
        /// The server.
        server: ServerName,
        /// When a permit is available.
        retry_after: Duration,
    },
    /// Telemetry or the audit log could not be set up.
    #[error("cannot set up the {what}: {message}")]
    Setup {
        /// `telemetry` or `audit log`.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// Too many calls to the server are in flight (bulkhead full).
    #[error("server {server} has too many calls in flight (bulkhead full)")]
    BulkheadFull {
        /// The server.
        server: ServerName,
    },
}

fn retry_text(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(after) => format!("; next try in {:.1}s", after.as_secs_f64()),
        None => String::new(),
    }
}

impl Error {
    /// The class of this failure.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Config(_) | Self::Setup { .. } => ErrorClass::Config,
            Self::UnknownTool { .. }
            | Self::UnknownPrompt { .. }
            | Self::UnknownServer { .. }
            | Self::ResourceNotFound { .. } => ErrorClass::NotFound,
            Self::AmbiguousTool { .. } | Self::InvalidArguments { .. } => ErrorClass::InvalidInput,
            Self::NameCollision { .. } => ErrorClass::Config,
            Self::Disabled { .. } | Self::CircuitOpen { .. } => ErrorClass::Unavailable,
            Self::RateLimited { .. } | Self::BulkheadFull { .. } => ErrorClass::Overloaded,
            Self::Timeout { .. } => ErrorClass::Timeout,
            Self::Transport(e) => e.class(),
        }
    }

    /// Whether the call certainly never reached the server (so even a non-idempotent call may
    /// be sent again): a local rejection or a server that was not connected.
    pub fn is_not_sent(&self) -> bool {
        match self {
            Self::CircuitOpen { .. }
            | Self::RateLimited { .. }
            | Self::BulkheadFull { .. }
            | Self::Disabled { .. } => true,
            Self::Transport(e) => e.is_not_sent(),
            _ => false,
        }
    }

    /// How long to wait before trying again, when known.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::CircuitOpen { retry_after, .. } => *retry_after,
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            Self::Transport(e) => e.retry_after(),
            _ => None,
        }
    }

    /// Whether the deadline passed.
    pub fn is_timeout(&self) -> bool {
        self.class() == ErrorClass::Timeout
    }

    /// Whether the problem is in what the caller asked (unknown name, bad arguments, bad
    /// configuration) rather than in a server.
    pub fn is_usage(&self) -> bool {
        matches!(
            self.class(),
            ErrorClass::Config | ErrorClass::InvalidInput | ErrorClass::NotFound
        ) && !matches!(self, Self::Transport(_))
    }
}
