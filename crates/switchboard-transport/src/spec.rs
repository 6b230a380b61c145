//! What a server is and how to reach it: the input of [`Connection::start`](crate::Connection::start).

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use switchboard_core::ServerName;

use crate::{auth::HttpAuth, handlers::SharedHandlers};

/// Everything needed to connect to one MCP server and keep it connected.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSpec {
    /// The server's configured name.
    pub name: ServerName,
    /// How to reach it.
    pub transport: TransportSpec,
    /// Which protocol lifecycle to use.
    pub protocol: ProtocolMode,
    /// The longest a connection attempt (spawn or connect, plus the handshake) may take.
    /// Default 30 s: `npx`/`uvx` servers can take seconds to start on a cold cache.
    pub handshake_timeout: Duration,
    /// Reconnection back-off and crash budget.
    pub reconnect: ReconnectPolicy,
    /// The longest an orderly close may take before the process group is killed. Default 2 s.
    pub shutdown_timeout: Duration,
    /// The application's answers to server-to-client requests (sampling, elicitation, roots).
    /// Without them those requests are declined and the capabilities are not declared.
    pub handlers: Option<SharedHandlers>,
}

impl ServerSpec {
    /// A spec with default policies.
    pub fn new(name: impl Into<ServerName>, transport: TransportSpec) -> Self {
        Self {
            name: name.into(),
            transport,
            protocol: ProtocolMode::default(),
            handshake_timeout: Duration::from_secs(30),
            reconnect: ReconnectPolicy::default(),
            shutdown_timeout: Duration::from_secs(2),
            handlers: None,
        }
    }

    /// A short name of the transport: `stdio` or `http`.
    pub fn transport_kind(&self) -> &'static str {
        match self.transport {
            TransportSpec::Stdio(_) => "stdio",
            TransportSpec::Http(_) => "http",
        }
    }
}

/// The two transports.
#[derive(Debug, Clone, PartialEq)]
pub enum TransportSpec {
    /// A child process speaking MCP on its stdin and stdout.
    Stdio(StdioSpec),
    /// A streamable-HTTP endpoint.
    Http(HttpSpec),
}

/// A stdio server: the command that starts it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StdioSpec {
    /// The program, looked up on `PATH` when it has no slash.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Variables added to (or overriding) the inherited environment.
    pub env: BTreeMap<String, String>,
    /// Working directory; the caller's when absent.
    pub cwd: Option<PathBuf>,
}

impl StdioSpec {
    /// A command with arguments.
    pub fn new(
        command: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            command: command.into(),
            args: args.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}

/// A streamable-HTTP server.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSpec {
    /// The endpoint, e.g. `https://example.com/mcp`.
    pub url: String,
    /// Static headers sent with every request (values already expanded).
    pub headers: BTreeMap<String, String>,
    /// How requests are authorized: nothing configured (a login stored by
    /// [`login`](crate::auth::login) is used when there is one), a bearer token from an
    /// environment variable, or OAuth 2.1.
    pub auth: HttpAuth,
    /// Most JSON requests in flight at once on this connection (rmcp's default is 16). Default 64.
    pub max_in_flight: usize,
    /// How many times a broken SSE stream is re-opened before the request fails
    /// (rmcp's default is unbounded). Default 3.
    pub sse_max_retries: usize,
    /// First delay between SSE re-opens, doubled each time. Default 250 ms.
    pub sse_retry_base: Duration,
}

impl HttpSpec {
    /// An endpoint with default limits.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            headers: BTreeMap::new(),
            auth: HttpAuth::None,
            max_in_flight: 64,
            sse_max_retries: 3,
            sse_retry_base: Duration::from_millis(250),
        }
    }
}

/// Which MCP lifecycle to use when connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtocolMode {
    /// Probe with the stateless 2026-07-28 `server/discover`, fall back to `initialize`.
    #[default]
    Auto,
    /// Only the `initialize` handshake (protocol revisions up to 2025-11-25).
    Legacy,
    /// Only the stateless 2026-07-28 lifecycle.
    Modern,
}

/// Back-off between reconnection attempts and the crash budget.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectPolicy {
    /// Delay before the first reconnection attempt. Default 100 ms.
    pub initial_backoff: Duration,
    /// Upper bound of the delay. Default 30 s.
    pub max_backoff: Duration,
    /// Connection losses or failed attempts allowed within [`Self::budget_window`] before the
    /// server is marked failed and left alone. Default 5.
    pub crash_budget: u32,
    /// The window of the crash budget. Default 60 s.
    pub budget_window: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            crash_budget: 5,
            budget_window: Duration::from_secs(60),
        }
    }
}
