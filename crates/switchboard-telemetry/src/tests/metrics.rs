//! Metrics: names, attribute keys and values.

use std::{collections::BTreeSet, time::Duration};

use super::read_file;
use crate::{
    CacheDecision, HealthState, Outcome, Rejection, SessionInfo, Transport, semconv as sc,
    testing::TestTelemetry,
};

const DURATION: &str = sc::METRIC_OPERATION_DURATION;
const TOOL: (&str, &str) = (sc::GEN_AI_TOOL_NAME, "read_file");
const SERVER: (&str, &str) = (sc::SERVER_NAME, "files");

fn keys(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|&k| k.to_owned()).collect()
}

#[test]
fn success_records_duration_and_an_ok_call() {
    let test = TestTelemetry::new();
    test.telemetry()
        .start_operation(&read_file())
        .finish(Outcome::OK);
    let m = test.metrics();

    assert_eq!(
        m.histogram_count(
            DURATION,
            &[SERVER, TOOL, (sc::MCP_METHOD_NAME, "tools/call")]
        ),
        1
    );
    assert_eq!(m.histogram_bounds(DURATION), sc::DURATION_BUCKETS);
    assert_eq!(
        m.attribute_keys(DURATION),
        keys(&[
            sc::MCP_METHOD_NAME,
            sc::SERVER_NAME,
            sc::GEN_AI_TOOL_NAME,
            sc::GEN_AI_OPERATION_NAME,
            sc::MCP_PROTOCOL_VERSION,
            sc::NETWORK_TRANSPORT,
        ]),
        "no session id, no error.type on success"
    );
    assert_eq!(
        m.sum(sc::METRIC_CALLS, &[SERVER, TOOL, (sc::OUTCOME, "ok")]),
        1
    );
    assert_eq!(m.sum(sc::METRIC_CALLS, &[(sc::OUTCOME, "error")]), 0);
    assert_eq!(m.sum(sc::METRIC_IN_FLIGHT, &[SERVER]), 0);
}

#[test]
fn tool_error_is_counted_with_its_error_type() {
    let test = TestTelemetry::new();
    test.telemetry()
        .start_operation(&read_file())
        .finish(Outcome::tool_error());
    let m = test.metrics();

    assert_eq!(
        m.histogram_count(DURATION, &[TOOL, (sc::ERROR_TYPE, "tool_error")]),
        1
    );
    let calls = [TOOL, (sc::OUTCOME, "error"), (sc::ERROR_TYPE, "tool_error")];
    assert_eq!(m.sum(sc::METRIC_CALLS, &calls), 1);
}

#[test]
fn timeout_is_counted_with_its_error_type() {
    let test = TestTelemetry::new();
    let t = test.telemetry();
    t.start_operation(&read_file())
        .finish(Outcome::error("timeout"));
    t.start_operation(&read_file()).finish(Outcome::OK);
    let m = test.metrics();

    assert_eq!(
        m.histogram_count(DURATION, &[TOOL, (sc::ERROR_TYPE, "timeout")]),
        1
    );
    assert_eq!(m.histogram_count(DURATION, &[TOOL]), 2);
    assert_eq!(m.sum(sc::METRIC_CALLS, &[(sc::ERROR_TYPE, "timeout")]), 1);
    assert_eq!(m.sum(sc::METRIC_CALLS, &[(sc::OUTCOME, "ok")]), 1);
}

#[test]
fn json_rpc_error_has_status_code_on_the_histogram() {
    let test = TestTelemetry::new();
    test.telemetry()
        .start_operation(&read_file())
        .finish(Outcome::rpc_error(-32603, "boom"));
    let m = test.metrics();

    let wanted = [
        (sc::ERROR_TYPE, "-32603"),
        (sc::RPC_RESPONSE_STATUS_CODE, "-32603"),
    ];
    assert_eq!(m.histogram_count(DURATION, &wanted), 1);
}

#[test]
fn retried_call_counts_retries() {
    let test = TestTelemetry::new();
    let mut op = test.telemetry().start_operation(&read_file());
    op.retry(1, Duration::from_millis(100));
    op.retry(2, Duration::from_millis(200));
    op.finish(Outcome::OK);
    test.telemetry().record_retry("files", Some("read_file"));
    let m = test.metrics();

    assert_eq!(m.sum(sc::METRIC_RETRIES, &[SERVER, TOOL]), 3);
    assert_eq!(
        m.attribute_keys(sc::METRIC_RETRIES),
        keys(&[sc::SERVER_NAME, sc::GEN_AI_TOOL_NAME])
    );
    assert_eq!(
        m.histogram_count(DURATION, &[TOOL]),
        1,
        "one call, however many attempts"
    );
}

#[test]
fn in_flight_counts_open_operations_per_server() {
    let test = TestTelemetry::new();
    let first = test.telemetry().start_operation(&read_file());
    let second = test.telemetry().start_operation(&read_file());
    assert_eq!(test.metrics().sum(sc::METRIC_IN_FLIGHT, &[SERVER]), 2);
    first.finish(Outcome::OK);
    assert_eq!(test.metrics().sum(sc::METRIC_IN_FLIGHT, &[SERVER]), 1);
    drop(second);
    assert_eq!(test.metrics().sum(sc::METRIC_IN_FLIGHT, &[SERVER]), 0);
}

#[test]
fn operation_helpers_count_cache_route_rejections_and_budget() {
    let test = TestTelemetry::new();
    let mut op = test.telemetry().start_operation(&read_file());
    op.cache(CacheDecision::Stale);
    op.route("files-b", "failover");
    op.rejected(Rejection::RateLimited);
    op.retry_budget_exhausted();
    op.finish(Outcome::error("overloaded"));
    let m = test.metrics();

    let cache = [SERVER, TOOL, (sc::CACHE_DECISION, "stale")];
    assert_eq!(m.sum(sc::METRIC_CACHE_LOOKUPS, &cache), 1);
    let route = [
        (sc::ROUTE_GROUP, "files"),
        (sc::ROUTE_REPLICA, "files-b"),
        (sc::ROUTE_REASON, "failover"),
    ];
    assert_eq!(m.sum(sc::METRIC_ROUTE_CHOICES, &route), 1);
    let rejected = [SERVER, TOOL, (sc::REJECTION_REASON, "rate_limited")];
    assert_eq!(m.sum(sc::METRIC_REJECTIONS, &rejected), 1);
    assert_eq!(m.sum(sc::METRIC_RETRY_BUDGET_EXHAUSTED, &[SERVER, TOOL]), 1);
}

#[test]
fn typed_recorders_outside_operations() {
    let test = TestTelemetry::new();
    let t = test.telemetry();
    t.record_breaker_state("files", "closed");
    t.record_breaker_transition("files", "closed", "open");
    t.record_breaker_transition("files", "open", "half_open");
    t.record_health("files", HealthState::Degraded);
    t.record_cache("files", Some("read_file"), CacheDecision::Hit);
    t.record_cache("files", Some("read_file"), CacheDecision::Coalesced);
    t.record_cache("files", None, CacheDecision::Miss);
    t.record_rejection("files", None, Rejection::BulkheadFull);
    t.record_retry_budget_exhausted("files", None);
    t.record_route("files", "files-a", "lower_cost");
    let session = SessionInfo {
        server: "files",
        transport: Transport::Stdio,
        protocol_version: Some("2025-11-25"),
    };
    t.record_session_duration(&session, Duration::from_secs(42), None);
    let m = test.metrics();

    let state = |s| m.gauge(sc::METRIC_BREAKER_STATE, &[SERVER, (sc::BREAKER_STATE, s)]);
    assert_eq!(
        (state("closed"), state("open"), state("half_open")),
        (Some(0), Some(0), Some(1))
    );
    let opened = [
        SERVER,
        (sc::BREAKER_FROM, "closed"),
        (sc::BREAKER_TO, "open"),
    ];
    assert_eq!(m.sum(sc::METRIC_BREAKER_TRANSITIONS, &opened), 1);
    assert_eq!(m.sum(sc::METRIC_BREAKER_TRANSITIONS, &[SERVER]), 2);

    let health = |s| m.gauge(sc::METRIC_SERVER_HEALTH, &[SERVER, (sc::HEALTH_STATE, s)]);
    assert_eq!(health("degraded"), Some(1));
    assert_eq!(
        (health("healthy"), health("unhealthy"), health("unknown")),
        (Some(0), Some(0), Some(0))
    );

    let cache = |d| m.sum(sc::METRIC_CACHE_LOOKUPS, &[SERVER, (sc::CACHE_DECISION, d)]);
    assert_eq!((cache("hit"), cache("coalesced"), cache("miss")), (1, 1, 1));
    assert_eq!(
        m.sum(
            sc::METRIC_REJECTIONS,
            &[(sc::REJECTION_REASON, "bulkhead_full")]
        ),
        1
    );
    assert_eq!(m.sum(sc::METRIC_RETRY_BUDGET_EXHAUSTED, &[SERVER]), 1);
    assert_eq!(
        m.sum(sc::METRIC_ROUTE_CHOICES, &[(sc::ROUTE_REPLICA, "files-a")]),
        1
    );
    let session = [
        SERVER,
        (sc::NETWORK_TRANSPORT, "pipe"),
        (sc::MCP_PROTOCOL_VERSION, "2025-11-25"),
    ];
    assert_eq!(m.histogram_count(sc::METRIC_SESSION_DURATION, &session), 1);
}

#[test]
fn every_metric_name_and_its_attribute_keys() {
    let test = TestTelemetry::new();
    let t = test.telemetry();
    let mut op = t.start_operation(&read_file());
    op.retry(1, Duration::ZERO);
    op.retry_budget_exhausted();
    op.cache(CacheDecision::Hit);
    op.route("files-a", "only");
    op.rejected(Rejection::Denied);
    op.finish(Outcome::OK);
    t.record_breaker_transition("files", "closed", "open");
    t.record_health("files", HealthState::Healthy);
    let session = SessionInfo {
        server: "files",
        transport: Transport::Unknown,
        protocol_version: None,
    };
    t.record_session_duration(&session, Duration::from_secs(1), Some("transport"));
    let m = test.metrics();

    let expected: BTreeSet<String> = [
        sc::METRIC_OPERATION_DURATION,
        sc::METRIC_SESSION_DURATION,
        sc::METRIC_CALLS,
        sc::METRIC_RETRIES,
        sc::METRIC_RETRY_BUDGET_EXHAUSTED,
        sc::METRIC_REJECTIONS,
        sc::METRIC_IN_FLIGHT,
        sc::METRIC_BREAKER_STATE,
        sc::METRIC_BREAKER_TRANSITIONS,
        sc::METRIC_CACHE_LOOKUPS,
        sc::METRIC_SERVER_HEALTH,
        sc::METRIC_ROUTE_CHOICES,
    ]
    .iter()
    .map(|&n| n.to_owned())
    .collect();
    assert_eq!(m.names(), expected);

    // Bounded attributes only: names and closed-set values, never arguments or free text.
    let server_tool = [sc::SERVER_NAME, sc::GEN_AI_TOOL_NAME];
    let cases: [(&str, &[&str]); 10] = [
        (
            sc::METRIC_CALLS,
            &[
                sc::SERVER_NAME,
                sc::GEN_AI_TOOL_NAME,
                sc::MCP_METHOD_NAME,
                sc::OUTCOME,
            ],
        ),
        (sc::METRIC_RETRIES, &server_tool),
        (sc::METRIC_RETRY_BUDGET_EXHAUSTED, &server_tool),
        (
            sc::METRIC_REJECTIONS,
            &[sc::SERVER_NAME, sc::GEN_AI_TOOL_NAME, sc::REJECTION_REASON],
        ),
        (sc::METRIC_IN_FLIGHT, &[sc::SERVER_NAME]),
        (
            sc::METRIC_BREAKER_STATE,
            &[sc::SERVER_NAME, sc::BREAKER_STATE],
        ),
        (
            sc::METRIC_BREAKER_TRANSITIONS,
            &[sc::SERVER_NAME, sc::BREAKER_FROM, sc::BREAKER_TO],
        ),
        (
            sc::METRIC_CACHE_LOOKUPS,
            &[sc::SERVER_NAME, sc::GEN_AI_TOOL_NAME, sc::CACHE_DECISION],
        ),
        (
            sc::METRIC_SERVER_HEALTH,
            &[sc::SERVER_NAME, sc::HEALTH_STATE],
        ),
        (
            sc::METRIC_ROUTE_CHOICES,
            &[sc::ROUTE_GROUP, sc::ROUTE_REPLICA, sc::ROUTE_REASON],
        ),
    ];
    for (name, expected) in cases {
        assert_eq!(m.attribute_keys(name), keys(expected), "{name}");
    }
    assert_eq!(
        m.attribute_keys(sc::METRIC_SESSION_DURATION),
        keys(&[sc::SERVER_NAME, sc::ERROR_TYPE])
    );
}
