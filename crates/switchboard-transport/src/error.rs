//! Transport errors and their classification.

use std::time::Duration;

use rmcp::{
    ServiceError,
    model::ErrorCode,
    transport::streamable_http_client::{HttpStatusError, InsufficientScopeError},
};
use switchboard_core::{ErrorClass, ServerName};

use crate::ConnectionState;

/// A failure to reach a server or to get an answer from it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// The server is not connected right now; the request was not sent.
    #[error("server {server} is {state}{}", last_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default())]
    NotReady {
        /// The server.
        server: ServerName,
        /// Its state.
        state: ConnectionState,
        /// The last connection error, if any.
        last_error: Option<String>,
    },
    /// The connection was lost while the request was in flight (process exited, session lost).
    #[error("server {server}: connection lost while the request was in flight: {reason}")]
    ConnectionLost {
        /// The server.
        server: ServerName,
        /// What happened, e.g. the exit status of the process.
        reason: String,
    },
    /// The server answered with a JSON-RPC error.
    #[error("server {server} returned error {code}: {message}")]
    Rpc {
        /// The server.
        server: ServerName,
        /// The JSON-RPC error code.
        code: i32,
        /// The error message.
        message: String,
        /// The error's `data`, if any.
        data: Option<serde_json::Value>,
    },
    /// The server is overloaded (HTTP 429 or 503).
    #[error("server {server} is overloaded (HTTP {status}){}", retry_after.map(|d| format!(", retry after {d:?}")).unwrap_or_default())]
    Overloaded {
        /// The server.
        server: ServerName,
        /// The HTTP status.
        status: u16,
        /// The server's `Retry-After`, when it gave one in seconds.
        retry_after: Option<Duration>,
    },
    /// The request could not be sent or its answer could not be received.
    #[error("server {server}: transport failure: {message}")]
    Io {
        /// The server.
        server: ServerName,
        /// What failed, with its causes.
        message: String,
    },
    /// The server answered with something that is not a valid answer to the request.
    #[error("server {server} sent an unexpected response: {message}")]
    Protocol {
        /// The server.
        server: ServerName,
        /// What was wrong.
        message: String,
    },
    /// The request timed out inside rmcp.
    #[error("server {server}: request timed out after {timeout:?}")]
    Timeout {
        /// The server.
        server: ServerName,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// The server refused the request's credentials (HTTP 401), or they lack a scope the
    /// request needs (HTTP 403 `insufficient_scope`). The message names the command that fixes
    /// it; [`login`](crate::auth::login) with the challenge does the same in code.
    #[error("{}", unauthorized_message(server, required_scope.as_deref()))]
    Unauthorized {
        /// The server.
        server: ServerName,
        /// The server's `WWW-Authenticate` challenge, if it sent one.
        challenge: Option<String>,
        /// The scope the server asked for, when it answered `insufficient_scope`.
        required_scope: Option<String>,
    },
}

fn unauthorized_message(server: &ServerName, required_scope: Option<&str>) -> String {
    match required_scope {
        Some("") => format!(
            "server {server} needs more OAuth scopes for this request; run: mcpctl auth login \
             {server}"
        ),
        Some(scope) => format!(
            "server {server} needs the OAuth scope {scope:?} for this request; run: mcpctl auth \
             login {server} --scope {scope:?}"
        ),
        None => format!(
            "server {server} rejected the credentials (HTTP 401); run: mcpctl auth login {server}"
        ),
    }
}

impl TransportError {
    /// The class of this failure.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::NotReady { .. } => ErrorClass::Unavailable,
            Self::ConnectionLost { .. } | Self::Io { .. } => ErrorClass::Transport,
            Self::Overloaded { .. } => ErrorClass::Overloaded,
            Self::Protocol { .. } => ErrorClass::Protocol,
            Self::Timeout { .. } => ErrorClass::Timeout,
            Self::Rpc { code, .. } => classify_rpc_code(*code),
            Self::Unauthorized { .. } => ErrorClass::Denied,
        }
    }

    /// The server concerned.
    pub fn server(&self) -> &ServerName {
        match self {
            Self::NotReady { server, .. }
            | Self::ConnectionLost { server, .. }
            | Self::Rpc { server, .. }
            | Self::Overloaded { server, .. }
            | Self::Io { server, .. }
            | Self::Protocol { server, .. }
            | Self::Timeout { server, .. }
            | Self::Unauthorized { server, .. } => server,
        }
    }

    /// Whether the request certainly never reached the server, so that even a non-idempotent
    /// call may be sent again.
    pub fn is_not_sent(&self) -> bool {
        matches!(self, Self::NotReady { .. })
    }

    /// The delay the server asked for before another attempt.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Overloaded { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the connection itself is gone (the supervisor reconnects).
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, Self::ConnectionLost { .. })
    }

    /// Whether the server refused the credentials themselves (not a missing scope), so that
    /// the session should start over from the credential store.
    pub(crate) fn is_credential_rejected(&self) -> bool {
        matches!(
            self,
            Self::Unauthorized {
                required_scope: None,
                ..
            }
        )
    }

    /// The server's `WWW-Authenticate` challenge, when it refused the request's credentials.
    pub fn auth_challenge(&self) -> Option<&str> {
        match self {
            Self::Unauthorized { challenge, .. } => challenge.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn from_service(server: &ServerName, error: ServiceError) -> Self {
        let server = server.clone();
        if error.auth_challenge().is_some() || error.is_authorization_required() {
            let challenge = error.auth_challenge().map(str::to_owned);
            let required_scope = match &error {
                ServiceError::TransportSend(send) => find_cause::<InsufficientScopeError>(send)
                    .map(|e| e.required_scope.clone().unwrap_or_default()),
                _ => None,
            };
            return Self::Unauthorized {
                server,
                challenge,
                required_scope,
            };
        }
        match error {
            ServiceError::McpError(data) => Self::Rpc {
                server,
                code: data.code.0,
                message: data.message.into_owned(),
                data: data.data,
            },
            ServiceError::Timeout { timeout } => Self::Timeout { server, timeout },
            ServiceError::TransportClosed => Self::ConnectionLost {
                server,
                reason: "the transport closed".to_owned(),
            },
            ServiceError::UnexpectedResponse => Self::Protocol {
                server,
                message: "the response does not match the request".to_owned(),
            },
            ServiceError::TransportSend(error) => {
                if let Some(status) = find_cause::<HttpStatusError>(&error)
                    && matches!(status.status, 429 | 503)
                {
                    return Self::Overloaded {
                        server,
                        status: status.status,
                        retry_after: status
                            .retry_after
                            .as_deref()
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .map(Duration::from_secs),
                    };
                }
                Self::Io {
                    server,
                    message: error_chain(&error),
                }
            }
            other => Self::Io {
                server,
                message: error_chain(&other),
            },
        }
    }

    /// Whether this error says the HTTP endpoint is unreachable (connection refused or reset),
    /// meaning the session is gone.
    pub(crate) fn looks_unreachable(&self) -> bool {
        match self {
            Self::Io { message, .. } => {
                let m = message.to_ascii_lowercase();
                m.contains("connection refused")
                    || m.contains("connection reset")
                    || m.contains("error sending request")
                    || m.contains("transport channel closed")
            }
            _ => false,
        }
    }
}

/// Classes of JSON-RPC error codes.
pub(crate) fn classify_rpc_code(code: i32) -> ErrorClass {
    match ErrorCode(code) {
        ErrorCode::INVALID_PARAMS | ErrorCode::INVALID_REQUEST | ErrorCode::PARSE_ERROR => {
            ErrorClass::InvalidInput
        }
        ErrorCode::METHOD_NOT_FOUND | ErrorCode::RESOURCE_NOT_FOUND => ErrorClass::NotFound,
        ErrorCode::INTERNAL_ERROR => ErrorClass::Server,
        _ => ErrorClass::Server,
    }
}

fn find_cause<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// An error and its causes on one line, `outer: inner: innermost`.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(e) = current {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        current = e.source();
    }
    text
}

/// A failure to establish a connection.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    /// The command could not be started.
    #[error("cannot start {command:?}: {reason}")]
    Spawn {
        /// The command.
        command: String,
        /// Why, e.g. "no such file or directory (is it installed and on PATH?)".
        reason: String,
    },
    /// The process exited before or during the handshake.
    #[error("the server process exited during the handshake ({status}){}", stderr_tail(.stderr))]
    ExitedEarly {
        /// Exit status description.
        status: String,
        /// The last lines it wrote to stderr.
        stderr: Vec<String>,
    },
    /// The server wrote something that is not JSON-RPC on stdout.
    #[error(
        "the server wrote non-JSON output on stdout (stdout is reserved for MCP messages): {line:?}"
    )]
    Garbage {
        /// The first offending line, truncated.
        line: String,
    },
    /// The handshake did not complete in time.
    #[error("no handshake within {0:?}")]
    HandshakeTimeout(Duration),
    /// The handshake failed.
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// The configuration of the server is unusable.
    #[error("invalid server settings: {0}")]
    Invalid(String),
    /// The server needs credentials that are missing, expired or refused; a person has to log
    /// in again.
    #[error("server {server} requires authorization ({reason}); run: mcpctl auth login {server}")]
    Unauthorized {
        /// The server.
        server: String,
        /// What is wrong with the credentials (never a token).
        reason: String,
    },
}

fn stderr_tail(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("; stderr: {}", lines.join(" | "))
    }
}

impl ConnectError {
    /// Whether the failure is in the server's settings rather than in the server, so that
    /// retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Invalid(_) | Self::Unauthorized { .. })
    }

    /// Whether a person has to log in (`mcpctl auth login`) before the server can be reached.
    pub fn needs_login(&self) -> bool {
        matches!(self, Self::Unauthorized { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_codes_map_to_classes() {
        assert_eq!(classify_rpc_code(-32602), ErrorClass::InvalidInput);
        assert_eq!(classify_rpc_code(-32601), ErrorClass::NotFound);
        assert_eq!(classify_rpc_code(-32002), ErrorClass::NotFound);
        assert_eq!(classify_rpc_code(-32603), ErrorClass::Server);
    }

    #[test]
    fn not_ready_is_unsent_and_unavailable() {
        let e = TransportError::NotReady {
            server: "a".into(),
            state: ConnectionState::Failed,
            last_error: Some("boom".into()),
        };
        assert!(e.is_not_sent());
        assert_eq!(e.class(), ErrorClass::Unavailable);
        assert_eq!(e.to_string(), "server a is failed: boom");
    }
}
