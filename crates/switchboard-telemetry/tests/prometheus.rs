//! End to end: a real Prometheus server scrapes the `/metrics` endpoint and its query API
//! returns Switchboard's series.
//!
//! Needs the `prometheus` binary (Debian package `prometheus`, installed by
//! `cargo xtask setup`; or set `PROMETHEUS_BIN`). The test fails, saying so, when it is
//! missing.

use std::{
    env, fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use switchboard_telemetry::{
    CacheDecision, OperationInfo, Outcome, PrometheusConfig, Telemetry, TelemetryConfig, Transport,
};

/// How long Prometheus gets to start, scrape and answer.
const DEADLINE: Duration = Duration::from_secs(30);

fn prometheus_binary() -> PathBuf {
    let found = match env::var_os("PROMETHEUS_BIN") {
        Some(bin) => Some(PathBuf::from(bin)).filter(|bin| bin.is_file()),
        None => env::var_os("PATH")
            .into_iter()
            .flat_map(|path| env::split_paths(&path).collect::<Vec<_>>())
            .map(|dir| dir.join("prometheus"))
            .find(|candidate| candidate.is_file()),
    };
    match found {
        Some(bin) => bin,
        None => panic!(
            "the `prometheus` binary is not installed, and this test needs a real Prometheus \
             server: run `sudo apt-get install -y prometheus` (Debian/Ubuntu; `cargo xtask setup` \
             does it), or download it from https://prometheus.io/download/ and set PROMETHEUS_BIN \
             to its path (PROMETHEUS_BIN={:?})",
            env::var_os("PROMETHEUS_BIN")
        ),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Kills and reaps Prometheus when the test ends, pass or fail.
struct PrometheusGuard {
    child: Child,
    log: PathBuf,
}

impl PrometheusGuard {
    fn start(dir: &Path, target: &str, port: u16) -> Self {
        let config = dir.join("prometheus.yml");
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: switchboard\n    scrape_interval: 1s\n    \
                 static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("write prometheus.yml");
        let log = dir.join("prometheus.log");
        let log_file = fs::File::create(&log).expect("create log");
        let child = Command::new(prometheus_binary())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .spawn()
            .expect("start prometheus");
        Self { child, log }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for PrometheusGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The series of an instant query, or `None` while Prometheus is not ready.
async fn query(client: &reqwest::Client, base: &str, promql: &str) -> Option<Vec<Value>> {
    let response = client
        .get(format!("{base}/api/v1/query?query={promql}"))
        .send()
        .await
        .ok()?;
    let body: Value = serde_json::from_str(&response.text().await.ok()?).ok()?;
    if body["status"] != "success" {
        return None;
    }
    body["data"]["result"].as_array().cloned()
}

fn series_value(series: &Value) -> Option<f64> {
    series["value"][1].as_str()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_switchboard_metrics() {
    prometheus_binary(); // fail early, with the install hint, when it is missing

    let config = TelemetryConfig {
        prometheus: Some(PrometheusConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            ..PrometheusConfig::default()
        }),
        ..TelemetryConfig::default()
    };
    let telemetry = Telemetry::init(config).expect("telemetry");
    let endpoint = telemetry.prometheus_addr().expect("prometheus endpoint");

    let info = OperationInfo {
        transport: Transport::Stdio,
        protocol_version: Some("2025-06-18"),
        ..OperationInfo::tool_call("files", "read_file")
    };
    for _ in 0..3 {
        let mut op = telemetry.start_operation(&info);
        op.cache(CacheDecision::Miss);
        op.finish(Outcome::OK);
    }
    let mut op = telemetry.start_operation(&info);
    op.retry(1, Duration::from_millis(50));
    op.finish(Outcome::tool_error());
    telemetry.record_breaker_transition("files", "closed", "open");

    // The endpoint itself serves the text format.
    let client = reqwest::Client::new();
    let text = client
        .get(format!("http://{endpoint}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("body");
    for name in [
        "mcp_client_operation_duration_seconds_bucket",
        "switchboard_client_calls_total",
        "switchboard_client_retries_total",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let prometheus = PrometheusGuard::start(dir.path(), &endpoint.to_string(), port);
    let base = format!("http://127.0.0.1:{port}");

    let wanted = [
        ("switchboard_client_calls_total", 4.0),
        ("mcp_client_operation_duration_seconds_count", 4.0),
        ("switchboard_client_retries_total", 1.0),
        ("switchboard_circuit_breaker_transitions_total", 1.0),
    ];
    let started = Instant::now();
    let mut missing: Vec<&str> = wanted.iter().map(|(name, _)| *name).collect();
    while !missing.is_empty() {
        let mut still = Vec::new();
        for (name, total) in wanted.iter().filter(|(name, _)| missing.contains(name)) {
            let series = query(&client, &base, &format!("sum({name})"))
                .await
                .unwrap_or_default();
            if series.first().and_then(series_value) != Some(*total) {
                still.push(*name);
            }
        }
        missing = still;
        if missing.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "prometheus did not return {missing:?} within {DEADLINE:?}\n--- /metrics ---\n{text}\n\
             --- prometheus log ---\n{}",
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The labels come through: server, tool, outcome and error type.
    let calls = query(&client, &base, "switchboard_client_calls_total")
        .await
        .expect("query");
    let tool_error = calls
        .iter()
        .find(|s| s["metric"]["error_type"] == "tool_error")
        .unwrap_or_else(|| panic!("no tool_error series in {calls:#?}"));
    assert_eq!(tool_error["metric"]["switchboard_server_name"], "files");
    assert_eq!(tool_error["metric"]["gen_ai_tool_name"], "read_file");
    assert_eq!(tool_error["metric"]["switchboard_outcome"], "error");
    assert_eq!(series_value(tool_error), Some(1.0));

    drop(prometheus);
    telemetry.shutdown().expect("shutdown");
}
