//! Telemetry through the facade: spans and metrics per the MCP semantic conventions, trace
//! context reaching the server, and the audit log with `mcpctl audit verify`.

use std::time::Duration;

use serde_json::json;
use switchboard::{
    CallOptions, Switchboard,
    config::{BreakerMode, Config, PolicySettings},
    telemetry::testing::TestTelemetry,
};
use switchboard_tests::testkit_stdio;

use crate::args;

async fn instrumented(knobs: &[&str], policies: PolicySettings) -> (Switchboard, TestTelemetry) {
    let test = TestTelemetry::new();
    let config = Config {
        servers: vec![switchboard_tests::server_config(
            testkit_stdio("kit", knobs),
            policies,
        )],
        ..Config::default()
    };
    let sb = Switchboard::connect_with(config, Some(test.telemetry().clone()))
        .await
        .expect("connect");
    (sb, test)
}

fn attr(test: &TestTelemetry, span: &str, key: &str) -> Option<String> {
    let span = test.span(span).unwrap_or_else(|| {
        let names: Vec<String> = test.spans().iter().map(|s| s.name.to_string()).collect();
        panic!("no span {span:?} in {names:?}")
    });
    TestTelemetry::attribute(&span, key)
}

#[tokio::test]
async fn success_tool_error_and_timeout_follow_the_semantic_conventions() {
    let (sb, test) = instrumented(&[], PolicySettings::default()).await;
    sb.call("echo", args(json!({"message": "hi"})))
        .await
        .expect("echo");
    assert_eq!(
        attr(&test, "tools/call echo", "mcp.method.name").as_deref(),
        Some("tools/call")
    );
    assert_eq!(
        attr(&test, "tools/call echo", "gen_ai.tool.name").as_deref(),
        Some("echo")
    );
    assert_eq!(
        attr(&test, "tools/call echo", "gen_ai.operation.name").as_deref(),
        Some("execute_tool")
    );
    assert_eq!(
        attr(&test, "tools/call echo", "network.transport").as_deref(),
        Some("pipe")
    );
    assert_eq!(
        attr(&test, "tools/call echo", "mcp.protocol.version").as_deref(),
        Some("2026-07-28")
    );
    assert_eq!(attr(&test, "tools/call echo", "error.type"), None);

    sb.call("fail", args(json!({"message": "no"})))
        .await
        .expect("fail");
    assert_eq!(
        attr(&test, "tools/call fail", "error.type").as_deref(),
        Some("tool_error")
    );

    let error = sb
        .call_with(
            "hang",
            None,
            CallOptions {
                timeout: Some(Duration::from_millis(200)),
                ..CallOptions::default()
            },
        )
        .await
        .expect_err("timeout");
    assert!(error.is_timeout());
    assert_eq!(
        attr(&test, "tools/call hang", "error.type").as_deref(),
        Some("timeout")
    );

    let metrics = test.metrics();
    let duration = "mcp.client.operation.duration";
    assert_eq!(
        metrics.histogram_count(duration, &[("gen_ai.tool.name", "echo")]),
        1
    );
    assert_eq!(
        metrics.histogram_count(duration, &[("error.type", "tool_error")]),
        1
    );
    assert_eq!(
        metrics.histogram_count(duration, &[("error.type", "timeout")]),
        1
    );
    assert_eq!(
        metrics.histogram_bounds(duration),
        vec![
            0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0
        ]
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn a_retried_call_has_retry_events_and_counts() {
    let mut policies = PolicySettings::default();
    policies.breaker.mode = Some(BreakerMode::Disabled);
    policies.retry.max_attempts = Some(10);
    let (sb, test) = instrumented(&["--error-rate", "0.5", "--seed", "11"], policies).await;
    let mut retried = None;
    for i in 0..20 {
        let out = sb
            .call_with(
                "add",
                args(json!({"a": i, "b": 0})),
                CallOptions {
                    no_cache: true,
                    ..CallOptions::default()
                },
            )
            .await
            .expect("retried until it worked");
        if out.provenance.attempts > 1 {
            retried = Some(out.provenance.attempts);
        }
    }
    assert!(
        retried.is_some(),
        "no call needed a retry: the knob is not working"
    );
    let spans = test.spans();
    let retry_events = spans
        .iter()
        .filter(|s| s.name == "tools/call add")
        .flat_map(|s| s.events.iter())
        .filter(|e| e.name.contains("retry"))
        .count();
    assert!(retry_events >= 1, "no retry events on the spans");
    assert!(test.metrics().sum("switchboard.client.retries", &[]) >= 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn the_server_receives_the_trace_context_of_the_client_span() {
    let (sb, test) = instrumented(&[], PolicySettings::default()).await;
    let out = sb
        .call_with(
            "last_meta",
            None,
            CallOptions {
                no_cache: true,
                ..CallOptions::default()
            },
        )
        .await
        .expect("last_meta");
    let received = out
        .result
        .structured_content
        .as_ref()
        .and_then(|m| {
            m.get("traceparent")
                .or_else(|| m.get("meta").and_then(|m| m.get("traceparent")))
        })
        .and_then(|t| t.as_str())
        .unwrap_or_else(|| panic!("no traceparent in {:?}", out.result.structured_content))
        .to_owned();
    let span = test.span("tools/call last_meta").expect("client span");
    let context = span.span_context;
    let expected = format!("00-{}-{}-01", context.trace_id(), context.span_id());
    assert_eq!(received, expected);
    sb.shutdown().await;
}
