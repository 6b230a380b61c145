//! Tests of the telemetry handle through its public API, with the in-memory exporters of
//! [`crate::testing`].

mod exporters;
mod metrics;
mod propagation;
mod series;
mod traces;

use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::trace::SpanData;

use crate::{OperationInfo, Transport, testing::TestTelemetry};

/// `tools/call read_file` on stdio server `files`, protocol 2025-06-18.
fn read_file() -> OperationInfo<'static> {
    OperationInfo {
        transport: Transport::Stdio,
        protocol_version: Some("2025-06-18"),
        session_id: Some("session-1"),
        ..OperationInfo::tool_call("files", "read_file")
    }
}

/// The attribute `key` of `span` as a string, `None` when absent.
fn attr(span: &SpanData, key: &str) -> Option<String> {
    TestTelemetry::attribute(span, key)
}

/// The only span named `name`, which must be a CLIENT span.
#[track_caller]
fn client_span(test: &TestTelemetry, name: &str) -> SpanData {
    let spans: Vec<SpanData> = test
        .spans()
        .into_iter()
        .filter(|s| s.name == name)
        .collect();
    assert_eq!(spans.len(), 1, "spans named {name}: {spans:#?}");
    let span = spans.into_iter().next().expect("one span");
    assert_eq!(span.span_kind, SpanKind::Client);
    span
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<crate::Telemetry>();
    check::<crate::Operation>();
    check::<crate::ChildSpan>();
    check::<crate::AuditLog>();
}
