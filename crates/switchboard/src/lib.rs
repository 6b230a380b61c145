//! Switchboard: one resilient, observable MCP client for many MCP servers.
//!
//! A [`Switchboard`] connects to every configured server concurrently (stdio processes and
//! streamable-HTTP endpoints, through [`switchboard_transport`]), keeps the connections
//! supervised, and merges their tools, prompts and resources into one catalog in which a tool
//! is `server.tool` (or its bare name, when only one server offers it). Every call has a
//! deadline — per call, per tool, per server, or the default of 60 s — and every answer says
//! which server gave it and how long it took.
//!
//! ```no_run
//! use switchboard::Switchboard;
//!
//! # async fn demo() -> Result<(), switchboard::Error> {
//! let switchboard = Switchboard::load("mcp.json".as_ref()).await?;
//! for server in switchboard.servers() {
//!     println!("{} is {}", server.name, server.state());
//! }
//! let arguments = serde_json::json!({ "message": "hello" });
//! let output = switchboard
//!     .call("testkit.echo", arguments.as_object().cloned())
//!     .await?;
//! println!("{:?} from {} in {:?}", output.result.content, output.provenance.server, output.provenance.latency);
//! switchboard.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Servers can also be given in code:
//!
//! ```no_run
//! use switchboard::{Switchboard, transport::{ServerSpec, StdioSpec, TransportSpec}};
//!
//! # async fn demo() -> Result<(), switchboard::Error> {
//! let switchboard = Switchboard::builder()
//!     .server(ServerSpec::new("time", TransportSpec::Stdio(StdioSpec::new("uvx", ["mcp-server-time"]))))
//!     .call_timeout(std::time::Duration::from_secs(10))
//!     .build()
//!     .await?;
//! # Ok(()) }
//! ```

pub mod args;
mod batch;
mod call;
mod catalog;
pub mod config;
mod discover;
mod error;
mod observe;
mod reload;
mod runtime;
mod switchboard;
mod tool_cache;

pub use batch::{BatchCall, BatchOptions};
pub use call::{CacheState, CallOptions, CallOutput};
pub use catalog::{PromptEntry, ResourceEntry, TemplateEntry, ToolEntry};
pub use discover::{DiscoverOptions, Discovered};
pub use error::Error;
pub use reload::{LiveSwitchboard, ReloadReport};
pub use runtime::{LatencyView, PolicyStats};
pub use switchboard::{BreakerView, Outcome, ServerStatus, Switchboard, SwitchboardBuilder};
pub use switchboard_cache::Stats as CacheStats;
pub use switchboard_core as core;
pub use switchboard_registry::health::{HealthSnapshot, HealthState};
pub use switchboard_telemetry as telemetry;
pub use switchboard_transport as transport;
pub use switchboard_transport::rmcp;
