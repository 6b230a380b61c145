//! Supervised rmcp connections to MCP servers over stdio and streamable HTTP.
//!
//! A [`Connection`] turns a [`ServerSpec`] into one long-lived rmcp session that every caller
//! shares, and keeps it alive:
//!
//! - **stdio** servers are spawned in their own process group with stderr piped into the log
//!   (tagged with the server), their exit status is captured, and the whole group is killed on
//!   shutdown, on reconnection and on drop ([`kill_all_process_groups`] for signal handlers and
//!   panic hooks), so no orphan or zombie is left behind;
//! - **streamable HTTP** servers get static headers, credentials (a bearer token from an
//!   environment variable, or OAuth 2.1 with tokens kept in a [`TokenStore`](auth::TokenStore)
//!   and refreshed before they expire; see [`auth`]), a configurable in-flight cap and a
//!   bounded SSE reconnect policy;
//! - both protocol eras go through rmcp's lifecycles (`initialize` up to 2025-11-25, the
//!   stateless 2026-07-28 `server/discover`), under a handshake timeout;
//! - when a session is lost, requests in flight fail at once with a typed error and the
//!   connection is re-established with exponential back-off and full jitter, within a crash
//!   budget after which the server is marked failed;
//! - server notifications arrive as [`ServerEvent`]s, and server-to-client requests (sampling,
//!   elicitation, roots — and their 2026-07-28 `input_required` form) go to the application's
//!   [`ClientHandlers`], declined cleanly without them.
//!
//! ```no_run
//! use std::time::Duration;
//! use switchboard_transport::{Connection, ServerSpec, StdioSpec, TransportSpec};
//!
//! # async fn demo() -> Result<(), switchboard_transport::TransportError> {
//! let spec = ServerSpec::new(
//!     "everything",
//!     TransportSpec::Stdio(StdioSpec::new("npx", ["-y", "@modelcontextprotocol/server-everything"])),
//! );
//! let connection = Connection::start(spec);
//! connection.wait_ready(Duration::from_secs(30)).await?;
//! let tools = connection.list_tools().await?;
//! println!("{} tools", tools.len());
//! connection.shutdown().await;
//! # Ok(()) }
//! ```

pub mod auth;
mod connection;
mod error;
mod events;
mod handlers;
mod http;
mod process;
mod spec;

pub use auth::{HttpAuth, OAuthGrant, OAuthSpec, Secret};
pub use connection::{Connection, ConnectionState, ConnectionStatus};
pub use error::{ConnectError, TransportError, error_chain};
pub use events::{ServerEvent, ServerEventKind};
pub use handlers::{
    ClientHandlers, SharedHandlers, elicitation_defaults, fill_elicitation_defaults,
};
pub use process::{ExitInfo, kill_all_process_groups, live_process_groups};
pub use spec::{HttpSpec, ProtocolMode, ReconnectPolicy, ServerSpec, StdioSpec, TransportSpec};

pub use rmcp;
