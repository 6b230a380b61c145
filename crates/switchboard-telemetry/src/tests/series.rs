//! Operations of one kind share a prepared series; what they record stays their own.

use super::{attr, read_file};
use crate::{
    CacheDecision, OperationInfo, Outcome, Target, semconv as sc, series::MAX_SERIES,
    testing::TestTelemetry,
};

const SERVER: (&str, &str) = (sc::SERVER_NAME, "files");
const TOOL: (&str, &str) = (sc::GEN_AI_TOOL_NAME, "read_file");

#[test]
fn one_kind_of_operation_is_prepared_once() {
    let test = TestTelemetry::new();
    let t = test.telemetry();
    for session in ["session-1", "session-2"] {
        let info = OperationInfo {
            session_id: Some(session),
            ..read_file()
        };
        t.start_operation(&info).finish(Outcome::OK);
    }
    assert_eq!(
        t.series_len(),
        1,
        "the session id is not part of the series"
    );

    let sessions: Vec<Option<String>> = test
        .spans()
        .iter()
        .map(|span| attr(span, sc::MCP_SESSION_ID))
        .collect();
    assert_eq!(
        sessions,
        [Some("session-1".to_owned()), Some("session-2".to_owned())],
        "each span keeps its own session id"
    );

    let other_tool = OperationInfo {
        target: Target::Tool("write_file"),
        ..read_file()
    };
    t.start_operation(&other_tool).finish(Outcome::OK);
    let other_version = OperationInfo {
        protocol_version: Some("2025-11-25"),
        ..read_file()
    };
    t.start_operation(&other_version).finish(Outcome::OK);
    assert_eq!(t.series_len(), 3);
    assert!(test.span("tools/call write_file").is_some());
    let m = test.metrics();
    let version = |v| {
        m.histogram_count(
            sc::METRIC_OPERATION_DURATION,
            &[TOOL, (sc::MCP_PROTOCOL_VERSION, v)],
        )
    };
    assert_eq!((version("2025-06-18"), version("2025-11-25")), (2, 1));
}

#[test]
fn resources_share_a_series_but_keep_their_uri() {
    let test = TestTelemetry::new();
    let t = test.telemetry();
    for uri in ["file:///a", "file:///b"] {
        let info = OperationInfo {
            target: Target::Resource(uri),
            ..OperationInfo::new(sc::METHOD_RESOURCES_READ, "files")
        };
        t.start_operation(&info).finish(Outcome::OK);
    }
    assert_eq!(t.series_len(), 1);
    let uris: Vec<Option<String>> = test
        .spans()
        .iter()
        .map(|span| attr(span, sc::MCP_RESOURCE_URI))
        .collect();
    assert_eq!(
        uris,
        [Some("file:///a".to_owned()), Some("file:///b".to_owned())]
    );
    assert!(
        test.spans()
            .iter()
            .all(|span| span.name == "resources/read"),
        "the URI never goes in the span name"
    );
}

#[test]
fn only_what_was_recorded_is_exported() {
    let test = TestTelemetry::new();
    let t = test.telemetry();
    t.start_operation(&read_file())
        .finish(Outcome::error("timeout"));
    let m = test.metrics();
    assert_eq!(
        m.data_points(sc::METRIC_CALLS),
        1,
        "no `ok` series before a call succeeded"
    );
    assert_eq!(m.data_points(sc::METRIC_OPERATION_DURATION), 1);
    assert_eq!(m.data_points(sc::METRIC_CACHE_LOOKUPS), 0);

    let mut op = t.start_operation(&read_file());
    op.cache(CacheDecision::Hit);
    op.finish(Outcome::OK);
    t.record_cache("files", Some("read_file"), CacheDecision::Hit);
    let m = test.metrics();
    assert_eq!(
        m.data_points(sc::METRIC_CACHE_LOOKUPS),
        1,
        "one decision, one series, however it was recorded"
    );
    assert_eq!(
        m.sum(
            sc::METRIC_CACHE_LOOKUPS,
            &[SERVER, TOOL, (sc::CACHE_DECISION, "hit")]
        ),
        2
    );
    assert_eq!(m.data_points(sc::METRIC_CALLS), 2);
    assert_eq!(m.data_points(sc::METRIC_IN_FLIGHT), 1);
    assert_eq!(m.sum(sc::METRIC_IN_FLIGHT, &[SERVER]), 0);
}

#[test]
fn past_the_cache_bound_operations_still_record() {
    let test = TestTelemetry::new();
    let t = test.telemetry();
    let tools: Vec<String> = (0..MAX_SERIES + 5).map(|i| format!("tool_{i}")).collect();
    for tool in &tools {
        let info = OperationInfo::tool_call("files", tool);
        t.start_operation(&info).finish(Outcome::OK);
    }
    // The last tools again, now past the bound.
    for tool in &tools[MAX_SERIES..] {
        let mut op = t.start_operation(&OperationInfo::tool_call("files", tool));
        op.cache(CacheDecision::Miss);
        op.finish(Outcome::OK);
    }
    assert_eq!(t.series_len(), MAX_SERIES);

    let m = test.metrics();
    let calls = |tool: &str| {
        m.sum(
            sc::METRIC_CALLS,
            &[(sc::GEN_AI_TOOL_NAME, tool), (sc::OUTCOME, "ok")],
        )
    };
    assert_eq!(calls("tool_0"), 1);
    assert_eq!(calls(&tools[MAX_SERIES + 4]), 2);
    assert_eq!(
        m.sum(sc::METRIC_CACHE_LOOKUPS, &[(sc::CACHE_DECISION, "miss")]),
        5
    );
    assert_eq!(m.sum(sc::METRIC_IN_FLIGHT, &[SERVER]), 0);
    assert!(
        test.span(&format!("tools/call {}", tools[MAX_SERIES + 4]))
            .is_some()
    );
}
