//! Spans: names, kinds, attributes, events, status.

use std::time::Duration;

use opentelemetry::trace::{SpanKind, Status};

use super::{attr, client_span, read_file};
use crate::{
    Attr, CacheDecision, OperationInfo, Outcome, Rejection, Target, Telemetry, Transport,
    semconv as sc, testing::TestTelemetry,
};

#[test]
fn success_span_has_the_semconv_name_and_attributes() {
    let test = TestTelemetry::new();
    let op = test.telemetry().start_operation(&read_file());
    assert!(op.is_enabled());
    op.finish(Outcome::OK);

    let span = client_span(&test, "tools/call read_file");
    let expected = [
        (sc::MCP_METHOD_NAME, "tools/call"),
        (sc::GEN_AI_TOOL_NAME, "read_file"),
        (sc::GEN_AI_OPERATION_NAME, "execute_tool"),
        (sc::MCP_PROTOCOL_VERSION, "2025-06-18"),
        (sc::MCP_SESSION_ID, "session-1"),
        (sc::NETWORK_TRANSPORT, "pipe"),
        (sc::SERVER_NAME, "files"),
    ];
    for (key, value) in expected {
        assert_eq!(attr(&span, key).as_deref(), Some(value), "{key}");
    }
    assert_eq!(attr(&span, sc::ERROR_TYPE), None);
    assert_eq!(attr(&span, sc::RPC_RESPONSE_STATUS_CODE), None);
    assert_eq!(span.status, Status::Unset);
}

#[test]
fn tool_error_sets_error_type_and_error_status() {
    let test = TestTelemetry::new();
    test.telemetry()
        .start_operation(&read_file())
        .finish(Outcome::tool_error());

    let span = client_span(&test, "tools/call read_file");
    assert_eq!(attr(&span, sc::ERROR_TYPE).as_deref(), Some("tool_error"));
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{:?}",
        span.status
    );
}

#[test]
fn timeout_sets_error_type_timeout() {
    let test = TestTelemetry::new();
    test.telemetry()
        .start_operation(&read_file())
        .finish(Outcome::error("timeout"));

    let span = client_span(&test, "tools/call read_file");
    assert_eq!(attr(&span, sc::ERROR_TYPE).as_deref(), Some("timeout"));
    assert_eq!(span.status, Status::error("timeout"));
}

#[test]
fn json_rpc_error_records_the_code_as_error_type_and_status_code() {
    let test = TestTelemetry::new();
    test.telemetry()
        .start_operation(&read_file())
        .finish(Outcome::rpc_error(-32602, "unknown tool: read_file"));

    let span = client_span(&test, "tools/call read_file");
    assert_eq!(attr(&span, sc::ERROR_TYPE).as_deref(), Some("-32602"));
    assert_eq!(
        attr(&span, sc::RPC_RESPONSE_STATUS_CODE).as_deref(),
        Some("-32602")
    );
    assert_eq!(span.status, Status::error("unknown tool: read_file"));
}

#[test]
fn retried_call_has_retry_event_and_one_child_span_per_attempt() {
    let test = TestTelemetry::new();
    let mut op = test.telemetry().start_operation(&read_file());
    op.cache(CacheDecision::Miss);
    op.route("files-a", "lower_cost");
    let first = op.child("attempt", &[Attr::i64("switchboard.attempt", 1)]);
    first.finish(Outcome::error("transport"));
    op.retry(1, Duration::from_millis(250));
    op.route("files-b", "failover");
    let second = op.child("attempt", &[Attr::i64("switchboard.attempt", 2)]);
    second.finish(Outcome::OK);
    op.finish(Outcome::OK);

    let span = client_span(&test, "tools/call read_file");
    let events: Vec<&str> = span.events.events.iter().map(|e| e.name.as_ref()).collect();
    assert_eq!(events, ["cache", "route", "retry", "route"]);
    let retry = &span.events.events[2];
    let retry_attr = |key: &str| {
        retry
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(retry_attr(sc::RETRY_ATTEMPT).as_deref(), Some("1"));
    assert_eq!(retry_attr(sc::RETRY_DELAY_MS).as_deref(), Some("250"));

    let attempts: Vec<_> = test
        .spans()
        .into_iter()
        .filter(|s| s.name == "attempt")
        .collect();
    assert_eq!(attempts.len(), 2);
    for attempt in &attempts {
        assert_eq!(attempt.span_kind, SpanKind::Internal);
        assert_eq!(attempt.parent_span_id, span.span_context.span_id());
        assert_eq!(
            attempt.span_context.trace_id(),
            span.span_context.trace_id()
        );
    }
    assert_eq!(
        attr(&attempts[0], sc::ERROR_TYPE).as_deref(),
        Some("transport")
    );
    assert_eq!(attr(&attempts[1], sc::ERROR_TYPE), None);
}

#[test]
fn cache_decision_is_an_attribute_and_an_event_when_the_cache_was_consulted() {
    let test = TestTelemetry::new();
    for decision in [CacheDecision::Bypass, CacheDecision::Hit] {
        let mut op = test.telemetry().start_operation(&OperationInfo {
            target: Target::Tool(decision.as_str()),
            ..read_file()
        });
        op.cache(decision);
        op.finish(Outcome::OK);
    }

    let bypass = client_span(&test, "tools/call bypass");
    assert_eq!(attr(&bypass, sc::CACHE_DECISION).as_deref(), Some("bypass"));
    assert!(bypass.events.events.is_empty(), "{:?}", bypass.events);
    let hit = client_span(&test, "tools/call hit");
    assert_eq!(attr(&hit, sc::CACHE_DECISION).as_deref(), Some("hit"));
    let events: Vec<&str> = hit.events.events.iter().map(|e| e.name.as_ref()).collect();
    assert_eq!(events, [sc::EVENT_CACHE]);
}

#[test]
fn context_carries_the_operation_span_ids() {
    use opentelemetry::trace::TraceContextExt as _;

    let test = TestTelemetry::new();
    let op = test.telemetry().start_operation(&read_file());
    let cx = op.context();
    let ids = cx.span().span_context().clone();
    op.finish(Outcome::OK);

    let span = client_span(&test, "tools/call read_file");
    assert_eq!(ids.trace_id(), span.span_context.trace_id());
    assert_eq!(ids.span_id(), span.span_context.span_id());
    assert!(!ids.is_remote());
    assert!(ids.is_sampled());
}

#[test]
fn rejection_and_budget_events() {
    let test = TestTelemetry::new();
    let mut op = test.telemetry().start_operation(&read_file());
    op.rejected(Rejection::CircuitOpen);
    op.retry_budget_exhausted();
    op.event(
        "custom",
        &[
            Attr::str("k", "v"),
            Attr::bool("b", true),
            Attr::f64("f", 0.5),
        ],
    );
    op.finish(Outcome::error("unavailable"));

    let span = client_span(&test, "tools/call read_file");
    let events: Vec<&str> = span.events.events.iter().map(|e| e.name.as_ref()).collect();
    assert_eq!(events, ["rejected", "retry_budget_exhausted", "custom"]);
    let reason = &span.events.events[0].attributes[0];
    assert_eq!(reason.key.as_str(), sc::REJECTION_REASON);
    assert_eq!(reason.value.as_str(), "circuit_open");
}

#[test]
fn dropped_operation_ends_as_cancelled() {
    let test = TestTelemetry::new();
    drop(test.telemetry().start_operation(&read_file()));

    let span = client_span(&test, "tools/call read_file");
    assert_eq!(attr(&span, sc::ERROR_TYPE).as_deref(), Some("cancelled"));
}

#[test]
fn span_names_of_other_methods() {
    let test = TestTelemetry::new();
    let t = test.telemetry();
    let prompt = OperationInfo {
        target: Target::Prompt("greet"),
        ..OperationInfo::new(sc::METHOD_PROMPTS_GET, "docs")
    };
    t.start_operation(&prompt).finish(Outcome::OK);
    let resource = OperationInfo {
        target: Target::Resource("file:///etc/hosts"),
        transport: Transport::Http,
        server_address: Some("mcp.example.com"),
        server_port: Some(443),
        ..OperationInfo::new(sc::METHOD_RESOURCES_READ, "files")
    };
    t.start_operation(&resource).finish(Outcome::OK);
    t.start_operation(&OperationInfo::new("tools/list", "files"))
        .finish(Outcome::OK);

    let prompt = client_span(&test, "prompts/get greet");
    assert_eq!(
        attr(&prompt, sc::GEN_AI_PROMPT_NAME).as_deref(),
        Some("greet")
    );
    assert_eq!(attr(&prompt, sc::GEN_AI_OPERATION_NAME), None);

    // The resource URI is on the span but never in its name.
    let resource = client_span(&test, "resources/read");
    assert_eq!(
        attr(&resource, sc::MCP_RESOURCE_URI).as_deref(),
        Some("file:///etc/hosts")
    );
    assert_eq!(
        attr(&resource, sc::NETWORK_TRANSPORT).as_deref(),
        Some("tcp")
    );
    assert_eq!(
        attr(&resource, sc::NETWORK_PROTOCOL_NAME).as_deref(),
        Some("http")
    );
    assert_eq!(
        attr(&resource, sc::SERVER_ADDRESS).as_deref(),
        Some("mcp.example.com")
    );
    assert_eq!(attr(&resource, sc::SERVER_PORT).as_deref(), Some("443"));

    client_span(&test, "tools/list");
}

#[test]
fn disabled_telemetry_records_nothing() {
    let telemetry = Telemetry::disabled();
    assert!(!telemetry.is_enabled());
    let mut op = telemetry.start_operation(&read_file());
    assert!(!op.is_enabled());
    op.retry(1, Duration::from_millis(10));
    op.cache(CacheDecision::Hit);
    let child = op.child("attempt", &[]);
    let mut meta = serde_json::Map::new();
    op.inject_into_meta(&mut meta);
    child.inject_into_meta(&mut meta);
    assert!(meta.is_empty());
    child.finish(Outcome::OK);
    op.finish(Outcome::OK);
    telemetry.record_retry("files", Some("read_file"));
    assert!(telemetry.force_flush().is_ok());
    assert!(telemetry.shutdown().is_ok());

    let off = crate::TelemetryConfig {
        enabled: false,
        ..Default::default()
    };
    assert!(!Telemetry::init(off).expect("init").is_enabled());
}

#[test]
fn invalid_sample_ratio_is_a_config_error() {
    let config = crate::TelemetryConfig {
        trace_sample_ratio: 1.5,
        ..Default::default()
    };
    let error = Telemetry::init(config).expect_err("ratio above 1");
    assert_eq!(
        error.to_string(),
        "invalid telemetry setting `trace_sample_ratio`: 1.5 is not between 0 and 1"
    );
}

#[test]
fn unsampled_operation_still_has_ids_but_records_no_span() {
    let config = crate::TelemetryConfig {
        trace_sample_ratio: 0.0,
        ..Default::default()
    };
    let telemetry = Telemetry::init(config).expect("init");
    let op = telemetry.start_operation(&read_file());
    let mut meta = serde_json::Map::new();
    op.inject_into_meta(&mut meta);
    let traceparent = meta["traceparent"].as_str().expect("traceparent");
    assert!(traceparent.ends_with("-00"), "not sampled: {traceparent}");
    op.finish(Outcome::OK);
}
