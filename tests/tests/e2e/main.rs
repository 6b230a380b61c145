//! End-to-end tests of Switchboard and `mcpctl` against real MCP servers: the project's own
//! testkit server, and reference servers installed by `cargo xtask test`.

mod cache;
mod cli;
mod faults;
mod interop;
mod reference;
mod reload;
mod resilience;
mod routing;
mod telemetry;
mod testkit;

use std::time::Duration;

use switchboard::{Switchboard, transport::ServerSpec};

/// Connects a switchboard to the given servers.
pub(crate) async fn connect(specs: Vec<ServerSpec>) -> Switchboard {
    let mut builder = Switchboard::builder().call_timeout(Duration::from_secs(20));
    for spec in specs {
        builder = builder.server(spec);
    }
    builder.build().await.expect("connect")
}

/// Arguments from a JSON literal.
pub(crate) fn args(value: serde_json::Value) -> Option<switchboard::rmcp::model::JsonObject> {
    value.as_object().cloned()
}

/// The text of a call's content blocks, joined.
pub(crate) fn text_of(output: &switchboard::CallOutput) -> String {
    output
        .result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("")
}
