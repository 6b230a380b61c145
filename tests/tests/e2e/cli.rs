//! `mcpctl` as a person or a script uses it: output, exit codes, no processes left behind.

use std::{
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use switchboard_tests::{bin, children_of, process_alive};

fn config_dir(extra_args: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let testkit = bin("switchboard-testkit");
    let config = format!(
        r#"{{"mcpServers": {{"kit": {{"command": "{}", "args": ["stdio"{extra_args}]}}}}}}"#,
        testkit.display()
    );
    std::fs::write(dir.path().join("mcp.json"), config).expect("write config");
    dir
}

fn mcpctl(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin("mcpctl"))
        .current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("MCPCTL_CONFIG")
        .output()
        .expect("run mcpctl")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn servers_tools_and_call_for_people() {
    let dir = config_dir("");
    let out = mcpctl(dir.path(), &["servers"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("kit") && text.contains("ready") && text.contains("stdio"),
        "{text}"
    );

    let out = mcpctl(dir.path(), &["tools"]);
    let text = stdout(&out);
    assert!(
        text.contains("kit.echo") && text.contains("read-only"),
        "{text}"
    );

    let out = mcpctl(dir.path(), &["call", "kit.add", "a=2", "b=40"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("42"), "{}", stdout(&out));
    assert!(stderr(&out).contains("ok from kit"), "{}", stderr(&out));

    let out = mcpctl(
        dir.path(),
        &["call", "echo", "--args", r#"{"message": "json args"}"#],
    );
    assert_eq!(stdout(&out).trim(), "json args");

    let save = dir.path().join("saved");
    let out = mcpctl(
        dir.path(),
        &["call", "image", "--save-dir", save.to_str().expect("utf8")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("saved to"), "{}", stdout(&out));
    assert!(save.join("image-1.png").is_file());

    let out = mcpctl(dir.path(), &["read", "testkit://static/hello"]);
    assert_eq!(stdout(&out).trim(), "hello from testkit");
    let out = mcpctl(dir.path(), &["prompt", "greet", "name=Ada"]);
    assert!(stdout(&out).contains("Ada"), "{}", stdout(&out));
    let out = mcpctl(dir.path(), &["resources"]);
    assert!(
        stdout(&out).contains("testkit://items/{id}"),
        "{}",
        stdout(&out)
    );
    let out = mcpctl(dir.path(), &["prompts"]);
    assert!(stdout(&out).contains("kit.greet"), "{}", stdout(&out));
}

#[test]
fn json_output_for_scripts() {
    let dir = config_dir("");
    let out = mcpctl(dir.path(), &["--json", "call", "kit.echo", "message=hi"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(value["provenance"]["server"], "kit");
    assert_eq!(value["result"]["content"][0]["text"], "hi");

    for command in [&["servers"][..], &["tools"], &["resources"], &["prompts"]] {
        let mut args = vec!["--json"];
        args.extend_from_slice(command);
        let out = mcpctl(dir.path(), &args);
        assert_eq!(out.status.code(), Some(0), "{command:?}: {}", stderr(&out));
        let _: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{command:?} is not JSON: {e}"));
    }
}

#[test]
fn exit_codes_are_documented_ones() {
    let dir = config_dir("");
    let out = mcpctl(dir.path(), &["call", "fail", "message=bad"]);
    assert_eq!(out.status.code(), Some(1), "tool error: {}", stderr(&out));

    let out = mcpctl(dir.path(), &["call", "ehco"]);
    assert_eq!(out.status.code(), Some(2), "unknown tool");
    assert!(
        stderr(&out).contains("did you mean \"echo\""),
        "{}",
        stderr(&out)
    );

    let out = mcpctl(dir.path(), &["call", "kit.add", "a=two"]);
    assert_eq!(out.status.code(), Some(2), "bad argument");
    assert!(
        stderr(&out).contains("\"two\" is not a number"),
        "{}",
        stderr(&out)
    );

    let out = mcpctl(dir.path(), &["call", "hang", "--timeout", "300ms"]);
    assert_eq!(out.status.code(), Some(3), "timeout: {}", stderr(&out));
    assert!(
        stderr(&out).contains("timed out after 300ms"),
        "{}",
        stderr(&out)
    );

    let out = mcpctl(dir.path(), &["--config", "does-not-exist.json", "servers"]);
    assert_eq!(out.status.code(), Some(2), "missing config");

    std::fs::write(
        dir.path().join("bad.json"),
        "{\"mcpServers\": {\"x\": {\"args\": []}}}",
    )
    .expect("write");
    let out = mcpctl(dir.path(), &["--config", "bad.json", "servers"]);
    assert_eq!(out.status.code(), Some(2), "invalid config");
    assert!(
        stderr(&out).contains("neither \"command\" nor \"url\""),
        "{}",
        stderr(&out)
    );

    let empty = tempfile::tempdir().expect("tempdir");
    let out = Command::new(bin("mcpctl"))
        .current_dir(empty.path())
        .env("HOME", empty.path())
        .env("XDG_CONFIG_HOME", empty.path())
        .env_remove("MCPCTL_CONFIG")
        .arg("servers")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no configuration found"),
        "{}",
        stderr(&out)
    );

    let crashing = config_dir(r#", "--fail-start""#);
    let out = mcpctl(crashing.path(), &["call", "kit.echo", "message=x"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "failed server: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("refusing to start"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn call_leaves_no_child_processes() {
    let dir = config_dir("");
    let out = mcpctl(dir.path(), &["--json", "servers"]);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let pid = value[0]["connection"]["pid"].as_u64().expect("pid") as u32;
    assert!(
        !process_alive(pid),
        "the server of a finished mcpctl is still running"
    );
}

#[test]
fn interrupt_leaves_no_child_processes() {
    let dir = config_dir("");
    let mut child = Command::new(bin("mcpctl"))
        .current_dir(dir.path())
        .args(["call", "hang", "--timeout", "60s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run mcpctl");
    let started = Instant::now();
    let server = loop {
        if let Some(&pid) = children_of(child.id()).first() {
            break pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no server process appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // Let the call reach the server.
    std::thread::sleep(Duration::from_millis(500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("interrupt");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    assert!(started.elapsed() < Duration::from_secs(15));
    let gone = Instant::now();
    while process_alive(server) {
        assert!(
            gone.elapsed() < Duration::from_secs(2),
            "server {server} outlived mcpctl"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn discover_ranks_tools_for_a_task() {
    let dir = config_dir("");
    let out = mcpctl(
        dir.path(),
        &["discover", "add two numbers and return the sum", "-k", "3"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let first_row = stdout(&out)
        .lines()
        .find(|l| l.contains("kit."))
        .unwrap_or_default()
        .to_owned();
    assert!(first_row.contains("kit.add"), "{}", stdout(&out));
    let out = mcpctl(dir.path(), &["--json", "discover", "show an image"]);
    let hits: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(hits[0]["name"], "kit.image", "{hits}");
    assert!(hits[0]["reason"].as_array().is_some_and(|r| !r.is_empty()));
}

#[test]
fn the_audit_log_records_calls_and_verify_catches_tampering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        r#"{{"mcpServers": {{"kit": {{"command": "{}", "args": ["stdio"]}}}},
            "switchboard": {{"audit": {{"file": "audit.jsonl", "redact_keys": ["message"]}}}}}}"#,
        bin("switchboard-testkit").display()
    );
    std::fs::write(dir.path().join("mcp.json"), config).expect("write config");
    for args in [
        &["call", "kit.echo", "message=secret words"][..],
        &["call", "kit.add", "a=1", "b=2"],
        &["call", "kit.fail", "message=x"],
    ] {
        mcpctl(dir.path(), args);
    }
    let log = dir.path().join("audit.jsonl");
    let text = std::fs::read_to_string(&log).expect("audit log");
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        !text.contains("secret words"),
        "arguments are redacted: {text}"
    );
    let out = mcpctl(dir.path(), &["audit", "verify", "audit.jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("3 records"), "{}", stdout(&out));

    // Edit the second record: verify names it.
    let edited = text.replacen("\"add\"", "\"sub\"", 1);
    std::fs::write(&log, edited).expect("tamper");
    let out = mcpctl(dir.path(), &["audit", "verify", "audit.jsonl"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));

    // Delete the first record instead.
    let deleted: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(&log, deleted).expect("tamper");
    let out = mcpctl(dir.path(), &["audit", "verify", "audit.jsonl"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[test]
fn metrics_and_health_show_each_server() {
    let dir = config_dir("");
    let out = mcpctl(dir.path(), &["metrics"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("kit"), "{}", stdout(&out));
    let out = mcpctl(dir.path(), &["--json", "health"]);
    let servers: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(servers[0]["health"]["state"], "healthy");
    assert!(
        servers[0]["latency"]["count"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "probed: {servers}"
    );
}
