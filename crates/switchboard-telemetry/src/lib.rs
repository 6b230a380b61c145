//! OpenTelemetry traces and metrics for MCP clients, following the MCP semantic conventions,
//! plus a tamper-evident audit log.
//!
//! The `switchboard` facade wires this crate into its call path; depend on it directly to
//! instrument your own MCP client the same way. It knows nothing of the other Switchboard
//! crates: servers and tools are plain names, error classes and states are `&'static str`
//! from a closed set.
//!
//! # What it gives
//!
//! - [`Telemetry`]: the handle. [`Telemetry::start_operation`] opens a CLIENT span named
//!   `{mcp.method.name} {target}` with the semconv attributes ([`semconv`]) and returns an
//!   [`Operation`] that records retries, cache decisions, route choices and rejections as
//!   span events and counters, injects W3C trace context into `_meta`
//!   ([`Operation::inject_into_meta`]) and, on [`Operation::finish`], sets `error.type`
//!   and records `mcp.client.operation.duration`. Typed `record_*` methods cover what
//!   happens outside a call: breaker transitions, health, sessions.
//! - Exporters: a Prometheus `/metrics` endpoint (feature `prometheus`), OTLP over
//!   HTTP/protobuf (feature `otlp`) or gRPC (feature `otlp-grpc`), in-memory exporters for
//!   tests (feature `testing`).
//! - [`AuditLog`]: one JSON line per tool call and policy decision, arguments redacted,
//!   hash-chained; [`verify`] names the first edited, deleted or reordered record.
//!
//! A disabled handle ([`Telemetry::disabled`] or `enabled = false`) makes every call a
//! branch on `None`: no allocation, no lock, no clock read.
//!
//! # Example
//!
//! ```
//! use serde_json::{Map, json};
//! use switchboard_telemetry::{
//!     AuditLog, AuditRecord, CacheDecision, CallOutcome, OperationInfo, Outcome, Telemetry,
//!     TelemetryConfig, Transport,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let telemetry = Telemetry::init(TelemetryConfig::default())?;
//!
//! // One tools/call.
//! let info = OperationInfo {
//!     transport: Transport::Stdio,
//!     protocol_version: Some("2025-06-18"),
//!     ..OperationInfo::tool_call("files", "read_file")
//! };
//! let mut op = telemetry.start_operation(&info);
//! op.cache(CacheDecision::Miss);
//! let mut meta = Map::new();
//! op.inject_into_meta(&mut meta); // goes into params._meta
//! assert!(meta["traceparent"].as_str().is_some_and(|tp| tp.starts_with("00-")));
//! op.finish(Outcome::OK);
//!
//! // Its audit record.
//! let dir = tempfile::tempdir()?;
//! let audit = AuditLog::open(dir.path().join("audit.jsonl"))?;
//! audit.append(
//!     AuditRecord::tool_call("files", "read_file", CallOutcome::Ok)
//!         .with_principal("alice")
//!         .with_arguments(json!({ "path": "/etc/hosts", "token": "s3cr3t" })),
//! )?;
//! let summary = switchboard_telemetry::verify(dir.path().join("audit.jsonl"))?;
//! assert_eq!(summary.records, 1);
//!
//! telemetry.shutdown()?;
//! # Ok(())
//! # }
//! ```
//!
//! See `docs/telemetry.md` for every name, attribute and setting.
//!
//! # Features and MSRV
//!
//! - `prometheus`: [`PrometheusConfig`] serves `/metrics` (opentelemetry-prometheus, axum).
//! - `otlp`: [`OtlpConfig`] exports traces and metrics over OTLP/HTTP protobuf.
//! - `otlp-grpc` (implies `otlp`): [`OtlpProtocol::Grpc`] exports over OTLP/gRPC (tonic), on
//!   a one-thread Tokio runtime of its own; `https://` endpoints use TLS (rustls, the system's
//!   roots and [`OtlpConfig::certificate`]).
//! - `testing`: the [`testing`] module (in-memory exporters and lookups).
//!
//! Always there: the [`counting`] exporters, which count what they receive and drop it, for
//! measuring telemetry's own cost without a collector ([`TelemetryBuilder`] takes them).
//!
//! Asking for an exporter whose feature is off is an error at [`Telemetry::init`]. The
//! minimum supported Rust version is the workspace's `rust-version` (1.88).

#![cfg_attr(docsrs, feature(doc_cfg))]

mod audit;
mod config;
pub mod counting;
mod error;
mod intern;
mod operation;
#[cfg(feature = "otlp")]
mod otlp;
#[cfg(feature = "prometheus")]
mod prometheus;
mod propagation;
pub mod semconv;
mod series;
mod telemetry;
#[cfg(any(test, feature = "testing"))]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
#[cfg(test)]
mod tests;

pub use audit::{
    AuditConfig, AuditError, AuditLog, AuditReceipt, AuditRecord, CallOutcome, DEFAULT_REDACT_KEYS,
    Decision, GENESIS, Problem, REDACTED, Redactor, TRACING_TARGET, VerifyError, VerifySummary,
    verify,
};
pub use config::{OtlpConfig, OtlpProtocol, PrometheusConfig, TelemetryConfig};
pub use error::TelemetryError;
pub use opentelemetry::Context;
pub use operation::{
    Attr, AttrValue, CacheDecision, ChildSpan, Operation, OperationInfo, Outcome, Rejection,
    Target, Transport,
};
pub use propagation::{
    BAGGAGE, TRACEPARENT, TRACESTATE, extract_from_meta, inject_context_into_meta,
};
pub use telemetry::{HealthState, SessionInfo, Telemetry, TelemetryBuilder};
