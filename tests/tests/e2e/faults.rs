//! Faults: killed servers, hangs, garbage, missing commands, servers down at start.

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard::{
    CallOptions,
    core::ErrorClass,
    transport::{ConnectionState, ServerSpec, StdioSpec, TransportSpec, live_process_groups},
};
use switchboard_tests::{ServerProcess, free_port, http_spec, process_alive, testkit_stdio};

use crate::{args, connect, text_of};

async fn wait_ready(sb: &switchboard::Switchboard, server: &str) {
    sb.connection(server)
        .expect("server")
        .wait_ready(Duration::from_secs(10))
        .await
        .expect("ready again");
}

/// A switchboard without retries, to see the transport's own behaviour.
async fn connect_without_retries(specs: Vec<ServerSpec>) -> switchboard::Switchboard {
    let mut config = switchboard::config::Config::default();
    config.defaults.call_timeout = Duration::from_secs(20);
    config.defaults.policies.retry.max_attempts = Some(1);
    for spec in specs {
        config
            .servers
            .push(switchboard_tests::server_config(spec, Default::default()));
    }
    switchboard::Switchboard::connect(config)
        .await
        .expect("connect")
}

#[tokio::test]
async fn killed_mid_call_fails_fast_then_reconnects() {
    let sb = connect_without_retries(vec![testkit_stdio("kit", &[])]).await;
    let pid = sb.servers()[0]
        .connection
        .as_ref()
        .and_then(|c| c.pid)
        .expect("pid");
    let slow = {
        let sb = sb.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let result = sb.call("sleep", args(json!({"ms": 10_000}))).await;
            (result, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the server");
    let (result, elapsed) = slow.await.expect("join");
    let error = result.expect_err("the call must fail");
    assert_eq!(error.class(), ErrorClass::Transport, "{error}");
    assert!(error.to_string().contains("connection lost"), "{error}");
    assert!(
        elapsed < Duration::from_secs(3),
        "took {elapsed:?}, deadline was 20 s"
    );

    wait_ready(&sb, "kit").await;
    let status = sb.servers()[0].connection.clone().expect("status");
    assert_eq!(status.generation, 2);
    assert_ne!(status.pid, Some(pid));
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("SIGKILL")),
        "{status:?}"
    );
    let out = sb
        .call("echo", args(json!({"message": "back"})))
        .await
        .expect("call after reconnect");
    assert_eq!(text_of(&out), "back");
    sb.shutdown().await;
    assert!(!process_alive(pid));
}

#[tokio::test]
async fn crash_after_n_calls_is_survived() {
    let sb = connect(vec![testkit_stdio("kit", &["--crash-after", "3"])]).await;
    for i in 0..2 {
        sb.call("echo", args(json!({"message": i.to_string()})))
            .await
            .expect("before the crash");
    }
    // A non-idempotent call that reached the crashing server is not replayed: a typed error.
    let error = sb.call("increment", None).await.expect_err("crash");
    assert_eq!(error.class(), ErrorClass::Transport, "{error}");
    wait_ready(&sb, "kit").await;
    // The new process counts from zero again; an idempotent call survives the next crash,
    // retried on the process that replaces it.
    for i in 0..2 {
        sb.call("echo", args(json!({"message": format!("again {i}")})))
            .await
            .expect("after the crash");
    }
    let out = sb
        .call("echo", args(json!({"message": "crash again"})))
        .await
        .expect("retried after the crash");
    assert!(out.provenance.attempts > 1, "{out:?}");
    sb.shutdown().await;
}

#[tokio::test]
async fn hang_times_out_at_the_deadline_and_the_connection_stays_usable() {
    let sb = connect(vec![testkit_stdio("kit", &[])]).await;
    let started = Instant::now();
    let error = sb
        .call_with(
            "hang",
            None,
            CallOptions {
                timeout: Some(Duration::from_millis(500)),
                ..Default::default()
            },
        )
        .await
        .expect_err("hang must time out");
    let elapsed = started.elapsed();
    assert!(error.is_timeout(), "{error}");
    assert!(
        error.to_string().contains("timed out after 500ms"),
        "{error}"
    );
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    let out = sb
        .call("echo", args(json!({"message": "alive"})))
        .await
        .expect("still usable");
    assert_eq!(text_of(&out), "alive");
    assert_eq!(
        sb.servers()[0].connection.as_ref().map(|c| c.generation),
        Some(1)
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn garbage_on_stdout_is_reported_clearly() {
    let mut spec = testkit_stdio("noisy", &["--garbage-stdout"]);
    spec.handshake_timeout = Duration::from_secs(2);
    spec.reconnect.crash_budget = 0;
    let sb = connect(vec![spec]).await;
    let status = sb.servers()[0].connection.clone().expect("status");
    assert_ne!(status.state, ConnectionState::Ready);
    let error = status.last_error.unwrap_or_default();
    assert!(error.contains("non-JSON output on stdout"), "{error}");
    assert!(error.contains("this is not json"), "{error}");
    sb.shutdown().await;
}

#[tokio::test]
async fn a_missing_command_is_reported_clearly() {
    let spec = ServerSpec::new(
        "ghost",
        TransportSpec::Stdio(StdioSpec::new("switchboard-no-such-command", ["x"])),
    );
    let sb = connect(vec![spec, testkit_stdio("kit", &[])]).await;
    let ghost = sb.servers()[0].connection.clone().expect("status");
    assert_ne!(ghost.state, ConnectionState::Ready);
    assert_eq!(
        ghost.last_error.as_deref(),
        Some(
            "cannot start \"switchboard-no-such-command\": command not found (is it installed and on PATH?)"
        )
    );
    // The other server is unaffected.
    sb.call("kit.echo", args(json!({"message": "ok"})))
        .await
        .expect("other server");
    sb.shutdown().await;
}

#[tokio::test]
async fn a_server_that_exits_at_start_shows_its_stderr() {
    let mut spec = testkit_stdio("quitter", &["--fail-start"]);
    spec.reconnect.crash_budget = 0;
    let sb = connect(vec![spec]).await;
    let status = sb.servers()[0].connection.clone().expect("status");
    assert_eq!(status.state, ConnectionState::Failed);
    let error = status.last_error.unwrap_or_default();
    assert!(error.contains("exit code 1"), "{error}");
    assert!(error.contains("refusing to start"), "{error}");
    sb.shutdown().await;
}

#[tokio::test]
async fn http_server_down_at_start_is_failed_and_others_work() {
    let port = free_port();
    let mut down = http_spec("down", &format!("http://127.0.0.1:{port}/mcp"));
    down.reconnect.crash_budget = 0;
    let sb = connect(vec![down, testkit_stdio("kit", &[])]).await;
    let servers = sb.servers();
    let down = servers[0].connection.clone().expect("status");
    assert_eq!(down.state, ConnectionState::Failed, "{down:?}");
    assert!(down.last_error.is_some());
    let error = sb.call("down.echo", None).await.expect_err("server down");
    assert_eq!(error.class(), ErrorClass::Unavailable, "{error}");
    sb.call("kit.echo", args(json!({"message": "ok"})))
        .await
        .expect("other server");
    sb.shutdown().await;
}

#[tokio::test]
async fn http_server_restart_is_survived() {
    let mut server = ServerProcess::testkit_http(&[]);
    let port: u16 = server
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches("/mcp").parse().ok())
        .expect("port");
    let sb = connect(vec![http_spec("web", &server.url)]).await;
    sb.call("echo", args(json!({"message": "one"})))
        .await
        .expect("first call");
    let in_flight = {
        let sb = sb.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let r = sb
                .call_with(
                    "sleep",
                    args(json!({"ms": 10_000})),
                    CallOptions {
                        timeout: Some(Duration::from_secs(8)),
                        ..Default::default()
                    },
                )
                .await;
            (r, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();
    let (result, elapsed) = in_flight.await.expect("join");
    assert!(result.is_err(), "the in-flight call cannot succeed");
    assert!(elapsed <= Duration::from_secs(9), "{elapsed:?}");
    let _server = ServerProcess::testkit_http_on(port, &[]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match sb.call("echo", args(json!({"message": "two"}))).await {
            Ok(out) => {
                assert_eq!(text_of(&out), "two");
                break;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "never recovered: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn shutdown_leaves_no_process_groups() {
    let sb = connect(vec![testkit_stdio("a", &[]), testkit_stdio("b", &[])]).await;
    let pids: Vec<u32> = sb
        .servers()
        .iter()
        .filter_map(|s| s.connection.as_ref().and_then(|c| c.pid))
        .collect();
    assert_eq!(pids.len(), 2);
    sb.shutdown().await;
    for pid in pids {
        assert!(!process_alive(pid), "{pid} survived shutdown");
    }
    // Other tests run concurrently in this process, so only check that ours are gone.
    let _ = live_process_groups();
}
