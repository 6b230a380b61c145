//! Hot reload: servers added, removed and changed during a stream of calls; no call lost.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use serde_json::json;
use switchboard::{
    CallOptions, LiveSwitchboard,
    config::{Config, PolicySettings},
};
use switchboard_tests::{process_alive, testkit_stdio};

use crate::{args, text_of};

fn config(servers: &[(&str, &[&str])]) -> Config {
    Config {
        servers: servers
            .iter()
            .map(|(name, knobs)| {
                switchboard_tests::server_config(
                    testkit_stdio(name, knobs),
                    PolicySettings::default(),
                )
            })
            .collect(),
        ..Config::default()
    }
}

#[tokio::test]
async fn servers_come_and_go_without_losing_a_call() {
    let live = LiveSwitchboard::start(config(&[("a", &[]), ("b", &[])]), None)
        .await
        .expect("start");
    let a_pid = live.get().servers()[0]
        .connection
        .as_ref()
        .and_then(|c| c.pid);
    let b_pid = live.get().servers()[1]
        .connection
        .as_ref()
        .and_then(|c| c.pid)
        .expect("b");

    // A steady stream of calls to `a`, and one slow call to `b` that is in flight during the
    // reload that removes `b`.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let stream = {
        let (live, stop, done) = (live.clone(), Arc::clone(&stop), Arc::clone(&done));
        tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let options = CallOptions {
                    no_cache: true,
                    ..CallOptions::default()
                };
                match live
                    .get()
                    .call_with("a.add", args(json!({"a": i, "b": 0})), options)
                    .await
                {
                    Ok(_) => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => failures.push(e.to_string()),
                }
            }
            failures
        })
    };
    let slow = {
        let live = live.clone();
        tokio::spawn(async move {
            let options = CallOptions {
                no_cache: true,
                ..CallOptions::default()
            };
            live.get()
                .call_with("b.sleep", args(json!({"ms": 700})), options)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Remove b, add c, keep a.
    let report = live
        .reload(config(&[("a", &[]), ("c", &[])]))
        .await
        .expect("reload");
    assert_eq!(report.kept, vec!["a"]);
    assert_eq!(report.added, vec!["c"]);
    assert_eq!(report.removed, vec!["b"]);
    let out = live
        .get()
        .call("c.echo", args(json!({"message": "new"})))
        .await
        .expect("c works");
    assert_eq!(text_of(&out), "new");
    assert!(
        live.get().tool("b.echo").is_err(),
        "b is gone from the catalog"
    );
    assert_eq!(
        live.get().servers()[0]
            .connection
            .as_ref()
            .and_then(|c| c.pid),
        a_pid,
        "a kept its connection (no restart)"
    );

    // Change c's settings: it reconnects (a new process).
    let c_pid = live.get().servers()[1]
        .connection
        .as_ref()
        .and_then(|c| c.pid);
    let report = live
        .reload(config(&[("a", &[]), ("c", &["--name", "renamed"])]))
        .await
        .expect("reload");
    assert_eq!(report.changed, vec!["c"]);
    let new_c = live.get().servers()[1]
        .connection
        .as_ref()
        .and_then(|c| c.pid);
    assert_ne!(new_c, c_pid);

    let slow = slow.await.expect("join");
    assert!(
        slow.is_ok(),
        "the call in flight on the removed server finished: {slow:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let failures = stream.await.expect("join");
    assert!(failures.is_empty(), "{failures:?}");
    assert!(done.load(Ordering::Relaxed) > 20);

    // The removed server is stopped once its last call finished.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while process_alive(b_pid) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "b was never stopped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    live.get().shutdown().await;
}

#[tokio::test]
async fn the_config_file_is_watched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("switchboard.json");
    let write = |servers: &[&str]| {
        let entries: Vec<String> = servers
            .iter()
            .map(|name| {
                format!(
                    r#""{name}": {{"command": "{}", "args": ["stdio"]}}"#,
                    switchboard_tests::bin("switchboard-testkit").display()
                )
            })
            .collect();
        std::fs::write(
            &path,
            format!(r#"{{"mcpServers": {{{}}}}}"#, entries.join(",")),
        )
        .expect("write");
    };
    write(&["one"]);
    let live = LiveSwitchboard::start(Config::load(&path).expect("load"), None)
        .await
        .expect("start");
    let watcher = live.watch_file(path.clone(), Duration::from_millis(50));
    // Make sure the modification time moves even on coarse file systems.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    write(&["one", "two"]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while live.get().tool("two.echo").is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new server never appeared"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A broken file changes nothing.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::fs::write(&path, "{ not json").expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(live.get().tool("two.echo").is_ok());
    watcher.abort();
    live.get().shutdown().await;
}
