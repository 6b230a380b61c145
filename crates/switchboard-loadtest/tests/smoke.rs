//! A short run of every scenario (a few hundred calls, no performance assertion), and the
//! binary's outputs and gates.
//!
//! They need the testkit server binary next to the test binary's folder
//! (`target/debug/switchboard-testkit`): `cargo build -p switchboard-testkit` (or
//! `cargo xtask test`) first.

use std::{path::PathBuf, process::Command, sync::Mutex};

use clap::Parser as _;
use switchboard_loadtest::{Options, Report, TargetKind, locate_testkit, run};

/// Runs one at a time: they start processes and measure leaks, descriptors and CPU.
static SERIAL: Mutex<()> = Mutex::new(());

fn testkit() -> PathBuf {
    locate_testkit(None).unwrap_or_else(|error| panic!("{error:#}"))
}

fn smoke(args: &[&str]) -> Report {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let testkit = testkit();
    let mut argv = vec!["switchboard-loadtest", "--quiet", "--testkit"];
    let testkit = testkit.display().to_string();
    argv.push(&testkit);
    argv.extend(args);
    let options = Options::try_parse_from(&argv).expect("valid options");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let report = runtime
        .block_on(run(&options))
        .unwrap_or_else(|error| panic!("{args:?}: {error:#}"));
    assert!(
        report.cleanup.leaked_processes.is_empty(),
        "{args:?} leaked {:?}",
        report.cleanup.leaked_processes
    );
    // The summary renders and the report encodes.
    assert!(!report.render().is_empty());
    serde_json::to_string(&report).expect("JSON");
    report
}

fn target(report: &Report, kind: TargetKind) -> &switchboard_loadtest::report::TargetReport {
    report
        .targets
        .iter()
        .find(|t| t.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} target"))
}

#[test]
fn steady_closed_loop_over_stdio() {
    let report = smoke(&[
        "steady", "--calls", "200", "--warmup", "20", "--rounds", "2",
    ]);
    for kind in [TargetKind::Raw, TargetKind::Stack] {
        let t = target(&report, kind);
        assert_eq!(t.calls, 200, "{kind:?}");
        assert_eq!(t.failed, 0, "{kind:?}: {:?}", t.errors);
        assert_eq!(t.rounds.len(), 2);
        assert!(t.latency.p50_us > 0.0);
        assert!(!t.histogram.is_empty());
    }
    let comparison = report.comparison.expect("comparison");
    assert_eq!(comparison.round_ratios.len(), 2);
    assert!(comparison.throughput_ratio > 0.0);
}

#[test]
fn steady_open_loop_over_http() {
    let report = smoke(&[
        "steady",
        "--transport",
        "http",
        "--rate",
        "1000",
        "--calls",
        "200",
        "--warmup",
        "20",
        "--rounds",
        "2",
    ]);
    for t in &report.targets {
        assert_eq!(t.calls, 200);
        assert_eq!(t.failed, 0, "{:?}", t.errors);
        let service = t.service.expect("open loop reports service time");
        assert!(service.p50_us <= t.latency.p50_us + 1.0);
    }
}

#[test]
fn ramp_steps_up() {
    let report = smoke(&[
        "ramp",
        "--rate",
        "200",
        "--step-duration",
        "300ms",
        "--steps",
        "2",
        "--warmup",
        "20",
        "--p99-target",
        "1s",
    ]);
    let ramp = report.ramp.expect("ramp section");
    assert!(!ramp.steps.is_empty());
    assert_eq!(ramp.highest_passing.len(), 2);
}

#[test]
fn burst_alternates_idle_and_bursts() {
    let report = smoke(&[
        "burst",
        "--burst-size",
        "50",
        "--burst-every",
        "50ms",
        "--calls",
        "200",
        "--warmup",
        "0",
        "--rounds",
        "2",
    ]);
    for t in &report.targets {
        assert_eq!(t.calls, 200);
        assert_eq!(t.failed, 0, "{:?}", t.errors);
    }
}

#[test]
fn soak_reports_memory_and_leaks() {
    let report = smoke(&[
        "soak",
        "--duration",
        "2s",
        "--warmup",
        "50",
        "--concurrency",
        "8",
        "--max-rss-growth",
        "1000",
    ]);
    let soak = report.soak.as_ref().expect("soak section");
    assert!(soak.rss_after_warmup > 0);
    assert!(soak.samples.len() >= 2);
    assert_eq!(report.targets.len(), 1);
    assert!(report.passed(), "{:?}", report.gates);
    assert!(report.gates.iter().any(|g| g.name == "no-leaked-processes"));
}

#[test]
fn faults_are_classified() {
    let report = smoke(&[
        "faults",
        "--calls",
        "200",
        "--rounds",
        "2",
        "--warmup",
        "0",
        "--crash-after",
        "70",
        "--hang-every",
        "20",
        "--deadline",
        "200ms",
    ]);
    for t in &report.targets {
        assert_eq!(t.calls, 200);
        // Injected errors, hangs past the deadline and crashes: which classes show up depends
        // on timing (a crash fails the hangs in flight), but some do.
        assert!(t.failed > 0, "{}: {:?}", t.name, t.errors);
        assert_eq!(t.errors.values().sum::<u64>(), t.failed);
    }
}

#[test]
fn many_servers_build_one_catalog() {
    let report = smoke(&[
        "many-servers",
        "--servers",
        "3",
        "--calls",
        "200",
        "--warmup",
        "0",
    ]);
    let many = report.many_servers.as_ref().expect("many-servers section");
    assert_eq!(many.servers, 3);
    assert!(many.tools >= 3 * 10, "{} tools", many.tools);
    let t = target(&report, TargetKind::Stack);
    assert_eq!(t.calls, 200);
    assert_eq!(t.failed, 0, "{:?}", t.errors);
}

#[test]
fn failover_loses_no_call_over_stdio() {
    let report = smoke(&[
        "failover",
        "--duration",
        "1500ms",
        "--kill-at",
        "500ms",
        "--warmup",
        "100",
        "--concurrency",
        "8",
    ]);
    let failover = report.failover.as_ref().expect("failover section");
    assert_eq!(failover.replicas, 3);
    assert_eq!(failover.killed, "pool-0");
    let kill_at = failover.kill_at_s.expect("a replica was killed");
    assert!((0.4..1.0).contains(&kill_at), "killed at {kill_at} s");
    // Failover is designed to retry a read-only call on another replica: nothing fails.
    assert_eq!(
        failover.failed_after_kill, 0,
        "{:?}",
        failover.errors_after_kill
    );
    assert_eq!(failover.failed, 0);
    assert!(failover.calls_after_kill > 0 && failover.before.count > 0);
    assert!(failover.restarted, "{:?}", failover.note);
    assert!(failover.ready_again_s.is_some(), "{failover:?}");
    assert_eq!(failover.routed_after_ready.len(), 3);
    assert!(failover.share_after_ready.is_some(), "{failover:?}");
    let t = target(&report, TargetKind::Stack);
    assert_eq!(report.targets.len(), 1);
    assert_eq!(t.failed, 0, "{:?}", t.errors);
    let gate = report
        .gates
        .iter()
        .find(|g| g.name == "no-failed-calls-after-kill")
        .expect("failover always gates");
    assert!(gate.passed, "{gate:?}");
}

#[test]
fn failover_restarts_an_http_replica() {
    let report = smoke(&[
        "failover",
        "--transport",
        "http",
        "--calls",
        "600",
        "--warmup",
        "50",
        "--concurrency",
        "8",
    ]);
    let failover = report.failover.as_ref().expect("failover section");
    assert!(failover.kill_at_s.is_some(), "{failover:?}");
    assert!(failover.restarted, "{:?}", failover.note);
    assert_eq!(
        failover.failed_after_kill, 0,
        "{:?}",
        failover.errors_after_kill
    );
}

#[test]
fn cache_counts_every_call_once() {
    let report = smoke(&[
        "cache", "--calls", "400", "--warmup", "50", "--rounds", "2", "--keys", "16",
    ]);
    let cache = report.cache.as_ref().expect("cache section");
    assert_eq!(cache.keys, 16);
    assert!(cache.hits > 0, "{cache:?}");
    let stack = target(&report, TargetKind::Stack);
    assert_eq!(stack.calls, 400);
    assert_eq!(stack.failed, 0, "{:?}", stack.errors);
    // Every cached call is one lookup: a hit or a miss (coalesced calls are misses).
    assert_eq!(cache.hits + cache.misses, stack.calls, "{cache:?}");
    assert!(cache.coalesced <= cache.misses && cache.loads <= cache.misses);
    let raw = target(&report, TargetKind::Raw);
    assert_eq!(raw.calls, 400);
    assert_eq!(raw.failed, 0, "{:?}", raw.errors);
    assert!(report.comparison.is_some());
}

#[test]
fn telemetry_on_against_off() {
    let report = smoke(&[
        "steady",
        "--targets",
        "telemetry",
        "--calls",
        "300",
        "--warmup",
        "30",
        "--rounds",
        "2",
    ]);
    for kind in [TargetKind::Stack, TargetKind::StackOtel] {
        let t = target(&report, kind);
        assert_eq!(t.calls, 300, "{kind:?}");
        assert_eq!(t.failed, 0, "{kind:?}: {:?}", t.errors);
    }
    let telemetry = report.telemetry.as_ref().expect("telemetry section");
    assert_eq!(telemetry.calls, 330);
    assert!(telemetry.spans_exported > 0, "{telemetry:?}");
    assert!(telemetry.metric_exports > 0, "{telemetry:?}");
    let comparison = report.comparison.as_ref().expect("comparison");
    assert_eq!(comparison.baseline, "switchboard");
    assert_eq!(comparison.candidate, "switchboard+otel");
    assert_eq!(comparison.round_ratios.len(), 2);
    assert!(
        report
            .render()
            .contains("switchboard+otel / switchboard throughput")
    );
}

#[test]
fn binary_writes_outputs_and_gates_fail() {
    let testkit = testkit();
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("report.json");
    let svg = dir.path().join("plot.svg");
    let html = dir.path().join("plot.html");
    let run_binary = |extra: &[&std::ffi::OsStr]| {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        Command::new(env!("CARGO_BIN_EXE_switchboard-loadtest"))
            .args([
                "steady", "--quiet", "--calls", "100", "--warmup", "10", "--rounds", "2",
            ])
            .args(extra)
            .env("SWITCHBOARD_TESTKIT", &testkit)
            .output()
            .expect("run the binary")
    };
    let output = run_binary(&[
        "--json-out".as_ref(),
        json.as_os_str(),
        "--plot".as_ref(),
        svg.as_os_str(),
        "--max-p99".as_ref(),
        "1us".as_ref(),
    ]);
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("gate max-p99 1 µs: FAILED"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON written")).expect("JSON");
    assert_eq!(report["targets"].as_array().map(Vec::len), Some(2));
    assert!(report["comparison"]["throughput_ratio"].as_f64().is_some());
    let plot = std::fs::read_to_string(&svg).expect("plot written");
    assert!(
        plot.starts_with("<svg") && plot.contains("polyline"),
        "{plot}"
    );

    let output = run_binary(&[
        "--baseline".as_ref(),
        json.as_os_str(),
        "--plot".as_ref(),
        html.as_os_str(),
        "--max-error-rate".as_ref(),
        "0".as_ref(),
        "--min-ratio".as_ref(),
        "0.01".as_ref(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("against baseline"), "{stdout}");
    assert!(stdout.contains("gate min-ratio 0.01: passed"), "{stdout}");
    let page = std::fs::read_to_string(&html).expect("HTML written");
    assert!(page.starts_with("<!doctype html>") && page.contains("<svg"));
}
