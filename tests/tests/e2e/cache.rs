//! The tool-result cache, coalescing and batching through the facade.

use std::time::Duration;

use serde_json::json;
use switchboard::{
    BatchCall, BatchOptions, CacheState, Switchboard,
    config::{CacheSettings, Config, PolicySettings, RetrySettings, ServerConfig},
    transport::ServerSpec,
};
use switchboard_tests::{ServerProcess, http_spec, testkit_stdio};

use crate::{args, text_of};

fn server(spec: ServerSpec, policies: PolicySettings) -> ServerConfig {
    switchboard_tests::server_config(spec, policies)
}

async fn echo_calls(sb: &Switchboard, server: &str) -> u64 {
    switchboard_tests::served_calls(sb, server, "echo").await
}

#[tokio::test]
async fn read_only_results_are_cached_with_canonical_keys() {
    let config = Config {
        servers: vec![server(testkit_stdio("kit", &[]), PolicySettings::default())],
        ..Config::default()
    };
    let sb = Switchboard::connect(config).await.expect("connect");
    let first = sb
        .call("add", args(json!({"a": 1, "b": 2})))
        .await
        .expect("call");
    assert_eq!(first.cache, CacheState::Miss);
    let second = sb
        .call("add", args(json!({"b": 2.0, "a": 1})))
        .await
        .expect("call");
    assert_eq!(
        second.cache,
        CacheState::Hit,
        "same arguments in another order and form"
    );
    assert_eq!(second.result, first.result);
    let other = sb
        .call("add", args(json!({"a": 1, "b": 3})))
        .await
        .expect("call");
    assert_eq!(other.cache, CacheState::Miss);
    // Not read-only: never cached.
    let a = sb.call("increment", None).await.expect("call");
    let b = sb.call("increment", None).await.expect("call");
    assert_eq!(a.cache, CacheState::Bypass);
    assert_ne!(text_of(&a), text_of(&b));
    // Tool errors are never cached.
    sb.call("fail", args(json!({"message": "x"})))
        .await
        .expect("call");
    let again = sb
        .call("fail", args(json!({"message": "x"})))
        .await
        .expect("call");
    assert_eq!(again.cache, CacheState::Miss);
    let stats = sb.cache_stats().expect("cache on");
    assert!(stats.hits >= 1);
    sb.clear_cache(Some("kit")).await.expect("clear");
    let after = sb
        .call("add", args(json!({"a": 1, "b": 2})))
        .await
        .expect("call");
    assert_eq!(after.cache, CacheState::Miss);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_thousand_identical_calls_reach_the_server_once() {
    let config = Config {
        servers: vec![server(
            testkit_stdio("kit", &["--latency-ms", "300"]),
            PolicySettings::default(),
        )],
        ..Config::default()
    };
    let sb = Switchboard::connect(config).await.expect("connect");
    let calls = (0..1000).map(|_| {
        let sb = sb.clone();
        async move { sb.call("echo", args(json!({"message": "same"}))).await }
    });
    let results = futures::future::join_all(calls).await;
    let mut coalesced = 0;
    for r in &results {
        let out = r.as_ref().expect("call");
        assert_eq!(text_of(out), "same");
        if out.cache == CacheState::Coalesced {
            coalesced += 1;
        }
    }
    assert!(coalesced >= 990, "{coalesced}");
    assert_eq!(echo_calls(&sb, "kit").await, 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_cancelled_first_caller_does_not_fail_the_others() {
    let config = Config {
        servers: vec![server(
            testkit_stdio("kit", &["--latency-ms", "300"]),
            PolicySettings::default(),
        )],
        ..Config::default()
    };
    let sb = Switchboard::connect(config).await.expect("connect");
    let first = {
        let sb = sb.clone();
        tokio::spawn(async move { sb.call("echo", args(json!({"message": "m"}))).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = {
        let sb = sb.clone();
        tokio::spawn(async move { sb.call("echo", args(json!({"message": "m"}))).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    first.abort();
    let out = second
        .await
        .expect("join")
        .expect("the second caller still gets the answer");
    assert_eq!(text_of(&out), "m");
    assert_eq!(out.cache, CacheState::Coalesced);
    assert_eq!(echo_calls(&sb, "kit").await, 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_killed_server_is_answered_from_stale_cache_marked_stale() {
    let mut http = ServerProcess::testkit_http(&[]);
    let policies = PolicySettings {
        cache: CacheSettings {
            ttl: Some(Duration::from_millis(200)),
            ..CacheSettings::default()
        },
        retry: RetrySettings {
            max_attempts: Some(1),
            ..RetrySettings::default()
        },
        ..PolicySettings::default()
    };
    let config = Config {
        servers: vec![server(http_spec("web", &http.url), policies)],
        ..Config::default()
    };
    let sb = Switchboard::connect(config).await.expect("connect");
    let fresh = sb
        .call("echo", args(json!({"message": "keep"})))
        .await
        .expect("call");
    assert_eq!(fresh.cache, CacheState::Miss);
    http.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stale = sb
        .call_with(
            "echo",
            args(json!({"message": "keep"})),
            switchboard::CallOptions {
                timeout: Some(Duration::from_secs(3)),
                ..Default::default()
            },
        )
        .await
        .expect("stale answer");
    assert_eq!(text_of(&stale), "keep");
    assert!(matches!(stale.cache, CacheState::Stale { age } if age >= Duration::from_millis(200)));
    assert!(
        stale
            .degraded
            .as_deref()
            .is_some_and(|d| d.contains("cached answer"))
    );
    assert_eq!(sb.cache_stats().map(|s| s.stale_served), Some(1));
    sb.shutdown().await;
}

#[tokio::test]
async fn call_many_groups_deduplicates_and_keeps_order() {
    let config = Config {
        servers: vec![
            server(
                testkit_stdio("a", &["--latency-ms", "50"]),
                PolicySettings::default(),
            ),
            server(testkit_stdio("b", &[]), PolicySettings::default()),
        ],
        ..Config::default()
    };
    let sb = Switchboard::connect(config).await.expect("connect");
    let mut calls = Vec::new();
    for i in 0..20 {
        calls.push(BatchCall {
            tool: if i % 2 == 0 { "a.echo" } else { "b.echo" }.to_owned(),
            arguments: args(json!({"message": format!("m{}", i % 10)})),
        });
    }
    calls.push(BatchCall {
        tool: "a.nope".to_owned(),
        arguments: None,
    });
    let results = sb
        .call_many(
            calls.clone(),
            BatchOptions {
                max_concurrency_per_server: 4,
                call: switchboard::CallOptions {
                    no_cache: true,
                    ..Default::default()
                },
            },
        )
        .await;
    assert_eq!(results.len(), 21);
    for (call, result) in calls.iter().zip(&results).take(20) {
        let out = result.as_ref().expect("call");
        let expected = call
            .arguments
            .as_ref()
            .and_then(|a| a["message"].as_str())
            .unwrap_or("");
        assert_eq!(text_of(out), expected);
    }
    assert!(results[20].is_err(), "one bad call does not fail the batch");
    // 10 distinct (server, message) pairs of each server … but messages repeat: a gets
    // m0, m2, …, m8 twice each → 5 distinct calls.
    assert_eq!(echo_calls(&sb, "a").await, 5);
    assert_eq!(echo_calls(&sb, "b").await, 5);
    sb.shutdown().await;
}

#[tokio::test]
async fn two_instances_share_entries_and_invalidations_through_redis() {
    let redis = switchboard_tests::RedisServer::start();
    let instance = || {
        let mut config = Config {
            servers: vec![server(testkit_stdio("kit", &[]), PolicySettings::default())],
            ..Config::default()
        };
        config.global.cache_redis_url = Some(redis.url.clone());
        Switchboard::connect(config)
    };
    let a = instance().await.expect("a");
    let b = instance().await.expect("b");
    let first = a
        .call("echo", args(json!({"message": "shared"})))
        .await
        .expect("a calls");
    assert_eq!(first.cache, CacheState::Miss);
    let second = b
        .call("echo", args(json!({"message": "shared"})))
        .await
        .expect("b calls");
    assert_eq!(
        second.cache,
        CacheState::Hit,
        "b is answered from the shared level"
    );
    assert_eq!(echo_calls(&b, "kit").await, 0, "b's server was not called");

    a.clear_cache(Some("kit")).await.expect("invalidate");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let out = b
            .call("echo", args(json!({"message": "shared"})))
            .await
            .expect("b calls");
        if out.cache == CacheState::Miss {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the invalidation never reached b"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(echo_calls(&b, "kit").await, 1);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn principals_never_share_cached_answers() {
    let config = Config {
        servers: vec![server(testkit_stdio("kit", &[]), PolicySettings::default())],
        ..Config::default()
    };
    let sb = Switchboard::connect(config).await.expect("connect");
    let as_user = |who: &str| switchboard::CallOptions {
        principal: Some(who.to_owned()),
        ..Default::default()
    };
    let a = sb
        .call_with("echo", args(json!({"message": "m"})), as_user("alice"))
        .await
        .expect("alice");
    assert_eq!(a.cache, CacheState::Miss);
    let b = sb
        .call_with("echo", args(json!({"message": "m"})), as_user("bob"))
        .await
        .expect("bob");
    assert_eq!(b.cache, CacheState::Miss, "bob does not get alice's entry");
    let again = sb
        .call_with("echo", args(json!({"message": "m"})), as_user("alice"))
        .await
        .expect("alice again");
    assert_eq!(again.cache, CacheState::Hit);
    sb.shutdown().await;
}

async fn reads(sb: &Switchboard, server: &str) -> u64 {
    switchboard_tests::served_calls(sb, server, "resources/read").await
}

#[tokio::test]
async fn resource_reads_follow_the_servers_ttl() {
    use switchboard::transport::ProtocolMode;
    let connect = |knobs: &'static [&'static str]| {
        let mut spec = testkit_stdio("kit", knobs);
        spec.protocol = ProtocolMode::Modern;
        Switchboard::connect(Config {
            servers: vec![server(spec, PolicySettings::default())],
            ..Config::default()
        })
    };
    // The server says the result is fresh for 60 s: read once.
    let sb = connect(&["--resource-ttl-ms", "60000"])
        .await
        .expect("connect");
    for _ in 0..3 {
        let read = sb.read_resource("testkit://items/7").await.expect("read");
        assert_eq!(read.provenance.server.as_str(), "kit");
    }
    assert_eq!(reads(&sb, "kit").await, 1, "served from the cache");
    // Another URI is another entry.
    sb.read_resource("testkit://items/8").await.expect("read");
    assert_eq!(reads(&sb, "kit").await, 2);
    sb.shutdown().await;

    // Without a ttlMs every read goes to the server.
    let sb = connect(&[]).await.expect("connect");
    for _ in 0..3 {
        sb.read_resource("testkit://items/7").await.expect("read");
    }
    assert_eq!(reads(&sb, "kit").await, 3);
    sb.shutdown().await;
}
