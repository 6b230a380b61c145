//! Resilience through the facade against the testkit's fault knobs: breakers, safe retries,
//! retry budgets, fallbacks.

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard::{
    Switchboard,
    config::{
        BreakerMode, BreakerSettings, Config, Fallback, PolicySettings, RetrySettings, ServerConfig,
    },
    core::ErrorClass,
    rmcp::model::CallToolRequestParams,
};
use switchboard_tests::testkit_stdio;

use crate::{args, text_of};

fn server(name: &str, knobs: &[&str], policies: PolicySettings) -> ServerConfig {
    switchboard_tests::server_config(testkit_stdio(name, knobs), policies)
}

async fn start(config: Config) -> Switchboard {
    Switchboard::connect(config).await.expect("connect")
}

fn one_server(server: ServerConfig) -> Config {
    Config {
        servers: vec![server],
        ..Config::default()
    }
}

/// Calls counted by the server itself (the `stats` tool is exempt from the fault knobs).
async fn server_calls(sb: &Switchboard, server: &str, tool: &str) -> u64 {
    switchboard_tests::served_calls(sb, server, tool).await
}

async fn set_error_rate(sb: &Switchboard, server: &str, rate: f64) {
    let mut params = CallToolRequestParams::new("configure");
    params.arguments = args(json!({ "error_rate": rate }));
    sb.connection(server)
        .expect("server")
        .call_tool(params)
        .await
        .expect("configure");
}

#[tokio::test]
async fn a_failing_server_opens_its_breaker_and_probes_close_it() {
    let policies = PolicySettings {
        retry: RetrySettings {
            max_attempts: Some(1),
            ..RetrySettings::default()
        },
        breaker: BreakerSettings {
            minimum_calls: Some(4),
            window: Some(4),
            open_duration: Some(Duration::from_millis(400)),
            half_open_calls: Some(2),
            ..BreakerSettings::default()
        },
        ..PolicySettings::default()
    };
    let sb = start(one_server(server("kit", &["--error-rate", "1"], policies))).await;
    for i in 0..4 {
        let error = sb
            .call("echo", args(json!({"message": format!("x {i}")})))
            .await
            .expect_err("fails");
        assert_eq!(error.class(), ErrorClass::Server, "{error}");
    }
    let started = Instant::now();
    let error = sb
        .call("echo", args(json!({"message": "x"})))
        .await
        .expect_err("open");
    assert!(started.elapsed() < Duration::from_millis(50), "fails fast");
    assert_eq!(error.class(), ErrorClass::Unavailable);
    assert!(error.is_not_sent());
    assert!(
        error.to_string().contains("circuit breaker is open"),
        "{error}"
    );
    assert!(
        error
            .retry_after()
            .is_some_and(|d| d <= Duration::from_millis(400))
    );
    assert_eq!(
        server_calls(&sb, "kit", "echo").await,
        4,
        "the open breaker sent nothing"
    );
    let status = &sb.servers()[0];
    assert_eq!(status.breaker.as_ref().map(|b| b.state), Some("open"));
    assert_eq!(status.stats.breaker_opens, 1);

    // The server recovers; after the open time, half-open probes close the breaker.
    set_error_rate(&sb, "kit", 0.0).await;
    tokio::time::sleep(Duration::from_millis(450)).await;
    for i in 0..3 {
        sb.call("echo", args(json!({"message": format!("ok {i}")})))
            .await
            .expect("recovered");
    }
    assert_eq!(
        sb.servers()[0].breaker.as_ref().map(|b| b.state),
        Some("closed")
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn an_idempotent_tool_survives_thirty_percent_failures() {
    let policies = PolicySettings {
        retry: RetrySettings {
            max_attempts: Some(8),
            initial_backoff: Some(Duration::from_millis(1)),
            max_backoff: Some(Duration::from_millis(5)),
        },
        breaker: BreakerSettings {
            mode: Some(BreakerMode::Disabled),
            ..BreakerSettings::default()
        },
        ..PolicySettings::default()
    };
    let sb = start(one_server(server(
        "kit",
        &["--error-rate", "0.3", "--seed", "7"],
        policies,
    )))
    .await;
    let mut retried = 0;
    for i in 0..200 {
        let out = sb
            .call_with(
                "add",
                args(json!({"a": i, "b": 1})),
                switchboard::CallOptions {
                    no_cache: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap_or_else(|e| panic!("call {i} failed: {e}"));
        assert!(!out.is_tool_error());
        if out.provenance.attempts > 1 {
            retried += 1;
        }
    }
    assert!(
        retried > 20,
        "the server failed only {retried} calls: the knob is not working"
    );
    assert!(sb.servers()[0].stats.retries >= retried);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_non_idempotent_tool_is_never_called_twice() {
    let policies = PolicySettings {
        breaker: BreakerSettings {
            mode: Some(BreakerMode::Disabled),
            ..BreakerSettings::default()
        },
        ..PolicySettings::default()
    };
    let sb = start(one_server(server(
        "kit",
        &["--error-rate", "0.5", "--seed", "3"],
        policies,
    )))
    .await;
    let mut failures = 0;
    for _ in 0..60 {
        match sb.call("increment", None).await {
            Ok(out) => assert_eq!(out.provenance.attempts, 1),
            Err(error) => {
                assert_eq!(error.class(), ErrorClass::Server, "{error}");
                failures += 1;
            }
        }
    }
    assert!(
        failures > 10,
        "only {failures} failures: the knob is not working"
    );
    assert_eq!(
        server_calls(&sb, "kit", "increment").await,
        60,
        "each request sent once"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn the_retry_budget_prevents_a_retry_storm() {
    let policies = PolicySettings {
        retry: RetrySettings {
            max_attempts: Some(5),
            initial_backoff: Some(Duration::from_millis(1)),
            max_backoff: Some(Duration::from_millis(2)),
        },
        breaker: BreakerSettings {
            mode: Some(BreakerMode::Disabled),
            ..BreakerSettings::default()
        },
        ..PolicySettings::default()
    };
    let mut config = one_server(server("kit", &["--error-rate", "1"], policies));
    config.global.retry_budget_ratio = 0.2;
    config.global.retry_budget_min_per_second = 1;
    let sb = start(config).await;
    let requests = 300_u64;
    let calls = (0..requests).map(|i| {
        let sb = sb.clone();
        async move {
            sb.call("echo", args(json!({"message": i.to_string()})))
                .await
        }
    });
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_err), "total outage");
    let attempts = server_calls(&sb, "kit", "echo").await;
    // Floor: min_per_second × ttl (10 s) = 10 retries.
    let bound = (1.2 * requests as f64) as u64 + 10;
    assert!(attempts >= requests, "{attempts}");
    assert!(
        attempts <= bound,
        "{attempts} upstream attempts for {requests} requests > {bound}"
    );
    assert!(sb.servers()[0].stats.budget_exhausted > 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_fallback_answers_degraded() {
    let mut tool_policies = std::collections::BTreeMap::new();
    tool_policies.insert(
        "echo".to_owned(),
        PolicySettings {
            fallback: Some(Fallback::Tool("backup.echo".to_owned())),
            ..PolicySettings::default()
        },
    );
    let mut primary = server("primary", &["--error-rate", "1"], PolicySettings::default());
    primary.tools.policies = tool_policies;
    primary.policies.retry.max_attempts = Some(1);
    let backup = server("backup", &[], PolicySettings::default());
    let config = Config {
        servers: vec![primary, backup],
        ..Config::default()
    };
    let sb = start(config).await;
    let out = sb
        .call("primary.echo", args(json!({"message": "hello"})))
        .await
        .expect("fallback answers");
    assert_eq!(text_of(&out), "hello");
    assert_eq!(out.provenance.server.as_str(), "backup");
    let reason = out.degraded.as_deref().unwrap_or_default();
    assert!(reason.contains("primary.echo failed"), "{reason}");
    assert_eq!(sb.servers()[0].stats.fallbacks, 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_tool_can_have_its_own_rate_limit() {
    let mut kit = server("kit", &[], PolicySettings::default());
    let mut limited = PolicySettings::default();
    limited.rate_limit.requests_per_second = Some(1);
    limited.rate_limit.burst = Some(1);
    limited.rate_limit.wait = Some(Duration::ZERO);
    limited.retry.max_attempts = Some(1);
    kit.tools.policies.insert("echo".to_owned(), limited);
    let sb = start(one_server(kit)).await;
    let uncached = || switchboard::CallOptions {
        no_cache: true,
        ..Default::default()
    };
    sb.call_with("echo", args(json!({"message": "1"})), uncached())
        .await
        .expect("the first call has a permit");
    let error = sb
        .call_with("echo", args(json!({"message": "2"})), uncached())
        .await
        .expect_err("the second is over the limit");
    assert_eq!(error.class(), ErrorClass::Overloaded, "{error}");
    assert!(error.to_string().contains("rate-limited"), "{error}");
    // Other tools of the server are not limited.
    for i in 0..5 {
        sb.call_with("add", args(json!({"a": i, "b": 1})), uncached())
            .await
            .expect("not limited");
    }
    assert_eq!(sb.servers()[0].stats.rate_limited, 1);
    sb.shutdown().await;
}
