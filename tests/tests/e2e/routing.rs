//! Replica groups: load by latency, locality, capability tags, failover without failed calls.

use std::time::Duration;

use serde_json::json;
use switchboard::{
    CallOptions, Switchboard,
    config::{Config, GroupSettings, Placement, PolicySettings, ServerConfig},
};
use switchboard_tests::testkit_stdio;

use crate::args;

fn replica(name: &str, knobs: &[&str], placement: Placement) -> ServerConfig {
    ServerConfig {
        placement,
        ..switchboard_tests::server_config(testkit_stdio(name, knobs), PolicySettings::default())
    }
}

fn group(config: &mut Config, name: &str, members: &[&str], strategy: &str) {
    config.global.groups.insert(
        name.to_owned(),
        GroupSettings {
            servers: members.iter().map(|s| (*s).to_owned()).collect(),
            strategy: Some(strategy.to_owned()),
        },
    );
}

fn uncached() -> CallOptions {
    CallOptions {
        no_cache: true,
        ..CallOptions::default()
    }
}

/// Calls of `tool` counted by one server itself.
async fn served(sb: &Switchboard, server: &str, tool: &str) -> u64 {
    switchboard_tests::served_calls(sb, server, tool).await
}

/// Runs `total` calls of `pool.add` with `workers` in flight; returns the failures.
async fn load(sb: &Switchboard, total: usize, workers: usize, options: CallOptions) -> Vec<String> {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let runs = (0..workers).map(|_| {
        let sb = sb.clone();
        let next = std::sync::Arc::clone(&next);
        let options = options.clone();
        async move {
            let mut failures = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return failures;
                }
                if let Err(e) = sb
                    .call_with("pool.add", args(json!({"a": i, "b": 0})), options.clone())
                    .await
                {
                    failures.push(e.to_string());
                }
            }
        }
    });
    futures::future::join_all(runs).await.concat()
}

#[tokio::test]
async fn a_slow_replica_gets_less_traffic() {
    let mut config = Config {
        servers: vec![
            replica("fast", &[], Placement::default()),
            replica("slow", &["--latency-ms", "40"], Placement::default()),
        ],
        ..Config::default()
    };
    group(&mut config, "pool", &["fast", "slow"], "p2c");
    let sb = Switchboard::connect(config).await.expect("connect");
    assert!(
        sb.tool("add")
            .expect("the bare name means the group")
            .is_group()
    );
    let failures = load(&sb, 300, 8, uncached()).await;
    assert!(failures.is_empty(), "{failures:?}");
    let fast = served(&sb, "fast", "add").await;
    let slow = served(&sb, "slow", "add").await;
    assert_eq!(fast + slow, 300);
    assert!(slow < fast / 2, "slow {slow} vs fast {fast}");
    assert!(slow > 0, "P2C still probes the slow replica");
    sb.shutdown().await;
}

#[tokio::test]
async fn locality_prefers_the_zone_then_the_region_then_anything() {
    let place = |region: &str, zone: &str| Placement {
        region: Some(region.to_owned()),
        zone: Some(zone.to_owned()),
        ..Placement::default()
    };
    let mut config = Config {
        servers: vec![
            replica("eu-a", &[], place("eu", "eu-a")),
            replica("eu-b", &[], place("eu", "eu-b")),
            replica("us-a", &[], place("us", "us-a")),
        ],
        ..Config::default()
    };
    config.global.region = Some("eu".to_owned());
    config.global.zone = Some("eu-a".to_owned());
    group(&mut config, "pool", &["eu-a", "eu-b", "us-a"], "locality");
    let sb = Switchboard::connect(config).await.expect("connect");
    assert!(load(&sb, 20, 2, uncached()).await.is_empty());
    assert_eq!(served(&sb, "eu-a", "add").await, 20);

    sb.connection("eu-a").expect("server").shutdown().await;
    assert!(load(&sb, 20, 2, uncached()).await.is_empty());
    assert_eq!(served(&sb, "eu-b", "add").await, 20, "same region next");

    sb.connection("eu-b").expect("server").shutdown().await;
    assert!(load(&sb, 20, 2, uncached()).await.is_empty());
    assert_eq!(served(&sb, "us-a", "add").await, 20, "then anywhere");
    sb.shutdown().await;
}

#[tokio::test]
async fn calls_can_require_capability_tags() {
    let tagged = Placement {
        tags: vec!["gpu".to_owned()],
        ..Placement::default()
    };
    let mut config = Config {
        servers: vec![
            replica("cpu", &[], Placement::default()),
            replica("gpu", &[], tagged),
        ],
        ..Config::default()
    };
    group(&mut config, "pool", &["cpu", "gpu"], "round_robin");
    let sb = Switchboard::connect(config).await.expect("connect");
    let options = CallOptions {
        required_tags: vec!["gpu".to_owned()],
        ..uncached()
    };
    assert!(load(&sb, 10, 2, options).await.is_empty());
    assert_eq!(served(&sb, "gpu", "add").await, 10);
    assert_eq!(served(&sb, "cpu", "add").await, 0);
    let options = CallOptions {
        required_tags: vec!["tpu".to_owned()],
        ..uncached()
    };
    let failures = load(&sb, 1, 1, options).await;
    assert!(failures[0].contains("has the tags"), "{failures:?}");
    sb.shutdown().await;
}

#[tokio::test]
async fn a_killed_replica_costs_no_failed_calls_and_gets_traffic_back() {
    killed_replica("round_robin").await;
}

#[tokio::test]
async fn p2c_sends_traffic_back_to_a_restarted_replica() {
    // P2C weighs a failure like a one-second call; the restart resets that estimate.
    killed_replica("p2c").await;
}

async fn killed_replica(strategy: &str) {
    let mut config = Config {
        servers: vec![
            replica("r1", &[], Placement::default()),
            replica("r2", &[], Placement::default()),
        ],
        ..Config::default()
    };
    config.defaults.call_timeout = Duration::from_secs(10);
    group(&mut config, "pool", &["r1", "r2"], strategy);
    let sb = Switchboard::connect(config).await.expect("connect");
    let pid = sb.servers()[0]
        .connection
        .as_ref()
        .and_then(|c| c.pid)
        .expect("pid");
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill r1");
    });
    let failures = load(&sb, 600, 8, uncached()).await;
    killer.await.expect("join");
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );

    // r1 comes back (a new process) and takes traffic again.
    sb.connection("r1")
        .expect("server")
        .wait_ready(Duration::from_secs(10))
        .await
        .expect("r1 reconnects");
    // Recovery includes health: a replica ejected for its failures takes traffic again once
    // the ejection is over (the reconnection resets it at once in the common case).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while sb.servers()[0].health.state != switchboard::HealthState::Healthy {
        assert!(
            tokio::time::Instant::now() < deadline,
            "r1 never became healthy again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = sb.servers()[0].stats.routed;
    assert!(load(&sb, 100, 4, uncached()).await.is_empty());
    let routed = sb.servers()[0].stats.routed - before;
    assert!(
        routed > 0 && served(&sb, "r1", "add").await > 0,
        "{strategy}: traffic returns to the restarted replica: {routed} of 100 calls routed \
         to r1; {:?}",
        sb.servers()[0]
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn replicas_are_detected_by_tool_name_and_schema() {
    let mut config = Config {
        servers: vec![
            replica("a", &[], Placement::default()),
            replica("b", &[], Placement::default()),
        ],
        ..Config::default()
    };
    config.global.detect_replicas = true;
    config.global.detect_strategy = Some("round_robin".to_owned());
    let sb = Switchboard::connect(config).await.expect("connect");
    let entry = sb
        .tool("add")
        .expect("the bare name means the detected group");
    assert!(entry.is_group(), "{entry:?}");
    assert_eq!(entry.name, "replicas.add");
    assert!(!sb.tool("a.add").expect("qualified").is_group());

    for i in 0..40 {
        sb.call_with("add", args(json!({"a": i, "b": 1})), uncached())
            .await
            .expect("call");
    }
    let (a, b) = (served(&sb, "a", "add").await, served(&sb, "b", "add").await);
    assert_eq!(a + b, 40);
    assert!(a >= 10 && b >= 10, "round robin over both: a {a}, b {b}");

    // A tool only one server offers is that server's, and discovery lists a replicated tool
    // once, under its group.
    sb.call("a.add_tool", args(json!({"name": "extra"})))
        .await
        .expect("add_tool");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let extra = loop {
        if let Ok(entry) = sb.tool("extra") {
            break entry;
        }
        assert!(tokio::time::Instant::now() < deadline, "extra never listed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(extra.name, "a.extra");
    assert!(!extra.is_group());
    assert!(sb.tool("add").expect("still a group").is_group());
    let found: Vec<String> = sb
        .discover("add two numbers", 20, &Default::default())
        .into_iter()
        .map(|hit| hit.name)
        .filter(|name| name.ends_with(".add"))
        .collect();
    assert_eq!(found, ["replicas.add"]);

    // Once b offers `extra` too, it joins the group under the same stable name.
    sb.call("b.add_tool", args(json!({"name": "extra"})))
        .await
        .expect("add_tool");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !sb.tool("extra").is_ok_and(|e| e.is_group()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "extra never regrouped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sb.tool("extra").expect("group").name, "replicas.extra");
    assert_eq!(sb.tool("add").expect("group").name, "replicas.add");
    sb.shutdown().await;
}
