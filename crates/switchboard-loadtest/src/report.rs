//! The report of a run: what `--json-out` writes, what the summary tables show, what the
//! gates (`--max-p99`, `--max-error-rate`, `--min-ratio`, `--max-rss-growth`, and the
//! scenarios' own `no-leaked-processes` and `no-failed-calls-after-kill`) check.

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use anyhow::{Context, Result};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::{Deserialize, Serialize};

use crate::{
    options::{Options, Scenario, Settings},
    record::{Bin, Bucket, Percentiles},
    system::Machine,
    target::TargetKind,
};

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Version of the loadtest.
    pub loadtest_version: String,
    /// The command line, when run from the binary.
    pub command: Option<String>,
    /// `git describe` of the working directory.
    pub git: Option<String>,
    /// Start time, seconds since the Unix epoch.
    pub started_unix_s: u64,
    /// The machine.
    pub machine: Machine,
    /// The resolved settings.
    pub settings: Settings,
    /// One entry per target (raw rmcp first when both run; switchboard before
    /// switchboard+otel).
    pub targets: Vec<TargetReport>,
    /// Switchboard against raw rmcp, or telemetry on against off, when both ran.
    pub comparison: Option<Comparison>,
    /// The steps of `ramp`.
    pub ramp: Option<RampReport>,
    /// Memory over time in `soak`.
    pub soak: Option<SoakReport>,
    /// Catalog and memory figures of `many-servers`.
    pub many_servers: Option<ManyServersReport>,
    /// The kill and what followed, in `failover`.
    pub failover: Option<FailoverReport>,
    /// Hits, misses and coalesced loads of the tool cache, in `cache`.
    pub cache: Option<CacheReport>,
    /// What the counting exporters received, when a target ran with telemetry on.
    pub telemetry: Option<TelemetryReport>,
    /// What was left behind after shutdown.
    pub cleanup: Cleanup,
    /// The gates asked for, and whether they passed.
    pub gates: Vec<Gate>,
    /// The run against a `--baseline` report.
    pub baseline: Option<Vec<BaselineRow>>,
}

/// One target's results over all measured rounds.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    /// Which path.
    pub kind: TargetKind,
    /// Its name in tables.
    pub name: String,
    /// Calls measured.
    pub calls: u64,
    /// Of which answered.
    pub ok: u64,
    /// Of which failed (errors and tool errors).
    pub failed: u64,
    /// `failed / calls`.
    pub error_rate: f64,
    /// Failures by class (`timeout`, `transport`, `server`, `tool_error`, …).
    pub errors: BTreeMap<String, u64>,
    /// Retries reported by the stack (`attempts - 1` of each answer).
    pub retries: u64,
    /// Switchboard's counters over the measured rounds: its policy decisions summed over
    /// servers (`retries`, `breaker_opens`, `rate_limited`, `bulkhead_rejections`,
    /// `timeouts`, `fallbacks`, …) and its tool cache (`cache_hits`, `cache_misses`,
    /// `cache_coalesced`, …). `None` for raw rmcp.
    pub stack_counters: Option<BTreeMap<String, u64>>,
    /// Time under load, all rounds, in seconds.
    pub elapsed_s: f64,
    /// Calls per second under load.
    pub throughput: f64,
    /// Latency of answered calls (open loop: from the intended start).
    pub latency: Percentiles,
    /// Open loop only: latency from the actual send.
    pub service: Option<Percentiles>,
    /// CPU time of the loadtest process per 1000 calls, in milliseconds.
    pub client_cpu_ms_per_1k: Option<f64>,
    /// CPU time of this target's server processes per 1000 calls, in milliseconds.
    pub server_cpu_ms_per_1k: Option<f64>,
    /// Each round.
    pub rounds: Vec<RoundReport>,
    /// Latency histogram (log-spaced bins).
    pub histogram: Vec<Bin>,
    /// Latency over time.
    pub series: Vec<Bucket>,
}

/// One round of one target.
#[derive(Debug, Clone, Serialize)]
pub struct RoundReport {
    /// Round number, from 1.
    pub round: u32,
    /// Calls.
    pub calls: u64,
    /// Failed calls.
    pub failed: u64,
    /// Seconds under load.
    pub elapsed_s: f64,
    /// Calls per second.
    pub throughput: f64,
    /// Median latency.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
}

/// One target against another: Switchboard (`candidate`) against raw rmcp (`baseline`), or
/// Switchboard with telemetry on against off.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    /// The target compared against (reports before this field: raw rmcp).
    #[serde(default = "raw_label")]
    pub baseline: String,
    /// The target compared (reports before this field: switchboard).
    #[serde(default = "stack_label")]
    pub candidate: String,
    /// The candidate's throughput divided by the baseline's, over all rounds.
    pub throughput_ratio: f64,
    /// The same per round (rounds paired in order).
    pub round_ratios: Vec<f64>,
    /// Median of `round_ratios`: less sensitive to one noisy round.
    pub round_ratio_median: f64,
    /// The candidate's p50 minus the baseline's, in microseconds.
    pub added_p50_us: f64,
    /// The same at p90.
    pub added_p90_us: f64,
    /// The same at p99.
    pub added_p99_us: f64,
    /// Median over rounds of the per-round p50 difference.
    pub added_p50_round_median_us: f64,
}

fn raw_label() -> String {
    TargetKind::Raw.label().to_owned()
}

fn stack_label() -> String {
    TargetKind::Stack.label().to_owned()
}

/// Which two targets a comparison pairs, as `(baseline, candidate)`: switchboard against
/// switchboard+otel when both ran, else raw rmcp against switchboard.
pub(crate) fn pair(kinds: &[TargetKind]) -> Option<(TargetKind, TargetKind)> {
    let has = |kind| kinds.contains(&kind);
    if has(TargetKind::Stack) && has(TargetKind::StackOtel) {
        Some((TargetKind::Stack, TargetKind::StackOtel))
    } else if has(TargetKind::Raw) && has(TargetKind::Stack) {
        Some((TargetKind::Raw, TargetKind::Stack))
    } else {
        None
    }
}

/// The steps of a ramp.
#[derive(Debug, Clone, Serialize)]
pub struct RampReport {
    /// The p99 a step must stay under, in microseconds.
    pub p99_target_us: f64,
    /// Every step run.
    pub steps: Vec<RampStep>,
    /// Highest passing rate per target (`None`: not even the first step passed).
    pub highest_passing: BTreeMap<String, Option<f64>>,
}

/// One step of one target in a ramp.
#[derive(Debug, Clone, Serialize)]
pub struct RampStep {
    /// The target.
    pub target: String,
    /// Offered rate, calls per second.
    pub rate: f64,
    /// Answers per second.
    pub achieved: f64,
    /// Median latency from the intended start.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Failed fraction.
    pub error_rate: f64,
    /// p99 within target, under 1% errors, and at least 90% of the rate achieved.
    pub passed: bool,
}

/// Memory and descriptors over a soak.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    /// Resident memory of the loadtest process (which holds the Switchboard) after warm-up.
    pub rss_after_warmup: u64,
    /// Early in the measured run: the median of the samples of its first tenth.
    pub rss_start: u64,
    /// Late in the measured run: the median of the samples of its last tenth.
    pub rss_end: u64,
    /// Once the load has stopped and the run's results are being put together.
    pub rss_after_load: u64,
    /// Largest sample.
    pub rss_max: u64,
    /// `(rss_end - rss_start) / rss_start`, in percent.
    pub growth_percent: f64,
    /// Least-squares slope of the samples, MiB per minute.
    pub slope_mib_per_min: f64,
    /// Samples: seconds since the end of warm-up, bytes.
    pub samples: Vec<(f64, u64)>,
    /// Open descriptors after warm-up.
    pub fds_after_warmup: Option<usize>,
    /// At the end of the load, before shutdown.
    pub fds_end: Option<usize>,
    /// Resident memory of the server processes after warm-up.
    pub server_rss_after_warmup: Option<u64>,
    /// At the end.
    pub server_rss_end: Option<u64>,
}

/// Catalog build and memory with many servers.
#[derive(Debug, Clone, Serialize)]
pub struct ManyServersReport {
    /// Servers started.
    pub servers: usize,
    /// Time to connect to all of them and fetch their catalogs, in milliseconds.
    pub connect_ms: f64,
    /// Tools in the merged catalog.
    pub tools: usize,
    /// Time of one `Switchboard::tools()`, in microseconds.
    pub list_tools_us: f64,
    /// Resident memory of the loadtest process before connecting.
    pub rss_before: Option<u64>,
    /// After connecting.
    pub rss_after: Option<u64>,
    /// Total resident memory of the server processes.
    pub server_rss_total: Option<u64>,
}

/// A replica killed under load, and what followed.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverReport {
    /// Replicas in the group.
    pub replicas: usize,
    /// The group called.
    pub group: String,
    /// Its routing strategy.
    pub strategy: String,
    /// The replica killed (SIGKILL to its process).
    pub killed: String,
    /// Seconds from the start of the measurement to the kill; `None`: the measured load ended
    /// before the kill point, or the kill failed (see `note`).
    pub kill_at_s: Option<f64>,
    /// Failed calls over the whole measurement.
    pub failed: u64,
    /// Calls that ended after the kill.
    pub calls_after_kill: u64,
    /// Of which failed.
    pub failed_after_kill: u64,
    /// Failures after the kill by class.
    pub errors_after_kill: BTreeMap<String, u64>,
    /// Width of the latency windows, in seconds.
    pub window_s: f64,
    /// Latency of the calls that ended in the window before the kill.
    pub before: Percentiles,
    /// Latency of the calls that ended in the window after it: the spike.
    pub after: Percentiles,
    /// Whether the killed replica was started again: by the connection's supervisor (stdio),
    /// or by the loadtest on the same port (HTTP).
    pub restarted: bool,
    /// Seconds from the kill until the replica's connection was ready again with a new session.
    pub ready_again_s: Option<f64>,
    /// Attempts the group's router sent to each replica from then until the end of the load.
    pub routed_after_ready: BTreeMap<String, u64>,
    /// The killed replica's share of those attempts (`1 / replicas` is an even share).
    pub share_after_ready: Option<f64>,
    /// What went wrong with the kill or the restart, if anything.
    pub note: Option<String>,
}

/// The tool cache under load, from the Switchboard target's cache counters over the measured
/// rounds. Every cached call is one lookup, and a lookup is a hit or a miss; a miss either
/// joins a load already in flight for its key (coalesced) or starts one (a load: the one call
/// that reaches a server).
#[derive(Debug, Clone, Serialize)]
pub struct CacheReport {
    /// Distinct argument values.
    pub keys: u64,
    /// Freshness of a cached result, in seconds.
    pub ttl_s: f64,
    /// `hits + misses`: the Switchboard target's calls.
    pub lookups: u64,
    /// Answered from a fresh entry.
    pub hits: u64,
    /// No fresh entry (absent or expired): coalesced or loaded.
    pub misses: u64,
    /// Misses that joined a load in flight for the same key.
    pub coalesced: u64,
    /// Misses that called a server (`misses - coalesced`, from the cache's own counter).
    pub loads: u64,
    /// Calls answered with a stale entry because the load failed.
    pub stale_served: u64,
    /// `hits / lookups`.
    pub hit_ratio: f64,
    /// `coalesced / lookups`.
    pub coalesced_ratio: f64,
    /// `loads / lookups`: the share of calls that reached a server (raw rmcp: 1).
    pub load_ratio: f64,
}

/// What the counting exporters of the `switchboard+otel` target received, warm-up included,
/// after a final flush.
#[derive(Debug, Clone, Serialize)]
pub struct TelemetryReport {
    /// Calls made with telemetry on (warm-up included).
    pub calls: u64,
    /// Spans exported (after a final flush).
    pub spans_exported: u64,
    /// Batches they came in.
    pub span_batches: u64,
    /// `spans_exported / calls` (below the spans a call makes: the batch processor dropped
    /// some, its queue being full).
    pub spans_per_call: f64,
    /// Metric exports (one per interval, and one at the final flush).
    pub metric_exports: u64,
    /// Metrics (instruments with data) in the last export.
    pub metrics_in_last_export: u64,
    /// Seconds between metric exports.
    pub metric_interval_s: f64,
}

/// What remained after shutdown.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Cleanup {
    /// Open descriptors before any server started.
    pub fds_before: Option<usize>,
    /// After shutdown.
    pub fds_after: Option<usize>,
    /// Server processes still alive after shutdown.
    pub leaked_processes: Vec<u32>,
    /// Children that exited but were not reaped yet.
    pub zombies: usize,
    /// stdio process groups the transport still tracks.
    pub live_process_groups: usize,
}

/// One gate.
#[derive(Debug, Clone, Serialize)]
pub struct Gate {
    /// Which (`max-p99`, …).
    pub name: String,
    /// The limit, as given.
    pub limit: String,
    /// The measured value.
    pub value: String,
    /// Whether it passed.
    pub passed: bool,
}

/// One figure of this run against the baseline.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineRow {
    /// What (`switchboard calls/s`, …).
    pub metric: String,
    /// In the baseline.
    pub baseline: f64,
    /// Now.
    pub now: f64,
    /// Change in percent.
    pub change_percent: f64,
}

/// The part of an earlier report `--baseline` reads.
#[derive(Debug, Deserialize)]
struct BaselineReport {
    targets: Vec<BaselineTarget>,
    comparison: Option<Comparison>,
}

#[derive(Debug, Deserialize)]
struct BaselineTarget {
    name: String,
    throughput: f64,
    error_rate: f64,
    latency: Percentiles,
}

impl Report {
    /// The target the gates look at: the candidate of the comparison (switchboard+otel, or
    /// switchboard), else Switchboard, else the only one.
    pub fn subject(&self) -> Option<&TargetReport> {
        let kinds: Vec<TargetKind> = self.targets.iter().map(|t| t.kind).collect();
        let wanted = pair(&kinds).map_or(TargetKind::Stack, |(_, candidate)| candidate);
        self.targets
            .iter()
            .find(|t| t.kind == wanted)
            .or_else(|| self.targets.first())
    }

    /// Whether every gate passed.
    pub fn passed(&self) -> bool {
        self.gates.iter().all(|g| g.passed)
    }

    /// Evaluates the gates asked for in `options` (and, in soak, the leak check; in failover,
    /// no failed calls after the kill).
    pub(crate) fn evaluate_gates(&mut self, options: &Options) {
        let mut gates = Vec::new();
        let subject = self.subject().cloned();
        if let Some(limit) = options.max_p99 {
            let value = subject.as_ref().map(|t| t.latency.p99_us);
            gates.push(Gate {
                name: "max-p99".to_owned(),
                limit: format_us(limit.as_secs_f64() * 1e6),
                value: value.map_or_else(|| "no data".to_owned(), format_us),
                passed: value.is_some_and(|v| v <= limit.as_secs_f64() * 1e6),
            });
        }
        if let Some(limit) = options.max_error_rate {
            let value = subject.as_ref().map(|t| t.error_rate);
            gates.push(Gate {
                name: "max-error-rate".to_owned(),
                limit: format!("{limit}"),
                value: value.map_or_else(|| "no data".to_owned(), |v| format!("{v:.4}")),
                passed: value.is_some_and(|v| v <= limit),
            });
        }
        if let Some(limit) = options.min_ratio {
            let value = self.throughput_ratio();
            gates.push(Gate {
                name: "min-ratio".to_owned(),
                limit: format!("{limit}"),
                value: value.map_or_else(
                    || "no comparison (needs both targets)".to_owned(),
                    |v| format!("{v:.3}"),
                ),
                passed: value.is_some_and(|v| v >= limit),
            });
        }
        if let Some(limit) = options.max_rss_growth {
            let value = self.soak.as_ref().map(|s| s.growth_percent);
            gates.push(Gate {
                name: "max-rss-growth".to_owned(),
                limit: format!("{limit}%"),
                value: value.map_or_else(|| "soak only".to_owned(), |v| format!("{v:.2}%")),
                passed: value.is_some_and(|v| v <= limit),
            });
        }
        if self.settings.scenario == Scenario::Soak {
            gates.push(Gate {
                name: "no-leaked-processes".to_owned(),
                limit: "0".to_owned(),
                value: self.cleanup.leaked_processes.len().to_string(),
                passed: self.cleanup.leaked_processes.is_empty(),
            });
        }
        if self.settings.scenario == Scenario::Failover {
            // The target: an idempotent tool loses no call when one replica dies.
            let killed = self.failover.as_ref().filter(|f| f.kill_at_s.is_some());
            gates.push(Gate {
                name: "no-failed-calls-after-kill".to_owned(),
                limit: "0".to_owned(),
                value: killed.map_or_else(
                    || "no replica was killed".to_owned(),
                    |f| f.failed_after_kill.to_string(),
                ),
                passed: killed.is_some_and(|f| f.failed_after_kill == 0),
            });
        }
        self.gates = gates;
    }

    /// The comparison's candidate throughput over its baseline's: Switchboard over raw rmcp,
    /// or telemetry on over off (ramp: highest passing rates).
    pub fn throughput_ratio(&self) -> Option<f64> {
        if let Some(ramp) = &self.ramp {
            let kinds: Vec<TargetKind> = self.targets.iter().map(|t| t.kind).collect();
            let (baseline, candidate) = pair(&kinds)?;
            let rate = |kind: TargetKind| *ramp.highest_passing.get(kind.label())?;
            return Some(rate(candidate)? / rate(baseline)?);
        }
        self.comparison.as_ref().map(|c| c.throughput_ratio)
    }

    /// Compares with an earlier report.
    pub(crate) fn compare_baseline(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the baseline {}", path.display()))?;
        let baseline: BaselineReport = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a loadtest report", path.display()))?;
        let mut rows = Vec::new();
        let mut row = |metric: String, before: f64, now: f64| {
            let change_percent = if before == 0.0 {
                0.0
            } else {
                (now - before) / before * 100.0
            };
            rows.push(BaselineRow {
                metric,
                baseline: before,
                now,
                change_percent,
            });
        };
        for target in &self.targets {
            let Some(before) = baseline.targets.iter().find(|b| b.name == target.name) else {
                continue;
            };
            let name = &target.name;
            row(
                format!("{name} calls/s"),
                before.throughput,
                target.throughput,
            );
            row(
                format!("{name} p50 µs"),
                before.latency.p50_us,
                target.latency.p50_us,
            );
            row(
                format!("{name} p99 µs"),
                before.latency.p99_us,
                target.latency.p99_us,
            );
            row(
                format!("{name} error rate"),
                before.error_rate,
                target.error_rate,
            );
        }
        // Ratios of different pairs (raw rmcp against switchboard, telemetry off against on)
        // do not compare.
        let comparisons = baseline.comparison.as_ref().zip(self.comparison.as_ref());
        if let Some((before, now)) =
            comparisons.filter(|(b, n)| b.baseline == n.baseline && b.candidate == n.candidate)
        {
            row(
                "throughput ratio".to_owned(),
                before.throughput_ratio,
                now.throughput_ratio,
            );
            row(
                "added p50 µs".to_owned(),
                before.added_p50_us,
                now.added_p50_us,
            );
            row(
                "added p99 µs".to_owned(),
                before.added_p99_us,
                now.added_p99_us,
            );
        }
        self.baseline = Some(rows);
        Ok(())
    }

    /// The summary for people: tables and a few lines.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let s = &self.settings;
        let source = match (&s.config, s.transport) {
            (Some(config), _) => format!("servers of {}", config.display()),
            (None, Some(transport)) => format!("testkit over {}", transport_name(transport)),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            out,
            "{} · {} · {} · {} · deadline {}",
            s.scenario.name(),
            s.tool,
            source,
            shape_text(s),
            format_us(s.deadline.as_secs_f64() * 1e6),
        );
        let load = self
            .machine
            .load_average_start
            .map(|l| format!("load average {:.2} {:.2} {:.2}", l[0], l[1], l[2]))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{} CPUs · {load}{}",
            self.machine.cpus,
            self.git
                .as_deref()
                .map(|g| format!(" · commit {g}"))
                .unwrap_or_default()
        );
        out.push_str(&self.targets_table());
        out.push('\n');
        if let Some(c) = &self.comparison {
            let _ = writeln!(
                out,
                "{} / {} throughput: {:.3} (median of rounds {:.3}; rounds {})",
                c.candidate,
                c.baseline,
                c.throughput_ratio,
                c.round_ratio_median,
                c.round_ratios
                    .iter()
                    .map(|r| format!("{r:.3}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            let _ = writeln!(
                out,
                "added latency: p50 {}, p90 {}, p99 {} (median over rounds of the p50 difference: {})",
                signed_us(c.added_p50_us),
                signed_us(c.added_p90_us),
                signed_us(c.added_p99_us),
                signed_us(c.added_p50_round_median_us),
            );
        }
        for t in &self.targets {
            if let Some(counters) = &t.stack_counters {
                let nonzero: Vec<String> = counters
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(name, n)| format!("{name} {n}"))
                    .collect();
                let _ = writeln!(
                    out,
                    "{} counters: {}",
                    t.name,
                    if nonzero.is_empty() {
                        "all zero".to_owned()
                    } else {
                        nonzero.join(", ")
                    }
                );
            }
        }
        if self.ramp.is_none() && self.targets.iter().any(|t| t.rounds.len() > 1) {
            out.push_str(&self.rounds_table());
            out.push('\n');
        }
        let errors = self.errors_table();
        if !errors.is_empty() {
            out.push_str("errors by class\n");
            out.push_str(&errors);
            out.push('\n');
        }
        if let Some(ramp) = &self.ramp {
            out.push_str(&ramp_table(ramp));
            out.push('\n');
            for (target, rate) in &ramp.highest_passing {
                let _ = writeln!(
                    out,
                    "{target}: highest rate with p99 ≤ {}: {}",
                    format_us(ramp.p99_target_us),
                    rate.map_or_else(|| "none".to_owned(), |r| format!("{r:.0} calls/s")),
                );
            }
            let kinds: Vec<TargetKind> = self.targets.iter().map(|t| t.kind).collect();
            if let (Some(ratio), Some((baseline, candidate))) =
                (self.throughput_ratio(), pair(&kinds))
            {
                let _ = writeln!(
                    out,
                    "{} / {} highest passing rate: {ratio:.3}",
                    candidate.label(),
                    baseline.label()
                );
            }
        }
        if let Some(soak) = &self.soak {
            let _ = writeln!(
                out,
                "memory (loadtest process): {} after warm-up; {} early in the run → {} late in the \
                 run (medians of its first and last tenth; max {}), growth {:+.2}%, slope {:+.3} \
                 MiB/min",
                mib(soak.rss_after_warmup),
                mib(soak.rss_start),
                mib(soak.rss_end),
                mib(soak.rss_max),
                soak.growth_percent,
                soak.slope_mib_per_min,
            );
            if let (Some(a), Some(b)) = (soak.server_rss_after_warmup, soak.server_rss_end) {
                let _ = writeln!(out, "memory (servers): {} → {}", mib(a), mib(b));
            }
            if let (Some(a), Some(b)) = (soak.fds_after_warmup, soak.fds_end) {
                let _ = writeln!(out, "open descriptors: {a} after warm-up → {b} at the end");
            }
        }
        if let Some(m) = &self.many_servers {
            let _ = writeln!(
                out,
                "{} servers: connected with catalogs in {:.1} ms, {} tools, tools() in {:.1} µs",
                m.servers, m.connect_ms, m.tools, m.list_tools_us
            );
            if let (Some(before), Some(after)) = (m.rss_before, m.rss_after) {
                let _ = writeln!(
                    out,
                    "loadtest memory {} → {} ({} per server); servers {} in total",
                    mib(before),
                    mib(after),
                    mib(after.saturating_sub(before) / m.servers.max(1) as u64),
                    m.server_rss_total.map_or_else(|| "?".to_owned(), mib),
                );
            }
        }
        if let Some(f) = &self.failover {
            out.push_str(&failover_section(f));
        }
        if let Some(c) = &self.cache {
            out.push_str(&cache_section(c));
        }
        if let Some(t) = &self.telemetry {
            let _ = writeln!(
                out,
                "telemetry (switchboard+otel): {} spans exported in {} batches for {} calls \
                 ({:.2} per call), {} metric exports ({} metrics in the last, every {})",
                t.spans_exported,
                t.span_batches,
                t.calls,
                t.spans_per_call,
                t.metric_exports,
                t.metrics_in_last_export,
                format_us(t.metric_interval_s * 1e6),
            );
        }
        let c = &self.cleanup;
        let _ = writeln!(
            out,
            "after shutdown: {} leaked server processes, {} zombies, {} process groups tracked, \
             descriptors {} → {}",
            c.leaked_processes.len(),
            c.zombies,
            c.live_process_groups,
            c.fds_before
                .map_or_else(|| "?".to_owned(), |n| n.to_string()),
            c.fds_after
                .map_or_else(|| "?".to_owned(), |n| n.to_string()),
        );
        if let Some(rows) = &self.baseline {
            let mut table = table(&["against baseline", "baseline", "now", "change"]);
            for r in rows {
                table.add_row(vec![
                    r.metric.clone(),
                    format!("{:.1}", r.baseline),
                    format!("{:.1}", r.now),
                    format!("{:+.1}%", r.change_percent),
                ]);
            }
            let _ = writeln!(out, "{table}");
        }
        for gate in &self.gates {
            let _ = writeln!(
                out,
                "gate {} {}: {} (measured {})",
                gate.name,
                gate.limit,
                if gate.passed { "passed" } else { "FAILED" },
                gate.value
            );
        }
        out
    }

    fn targets_table(&self) -> String {
        let mut header = vec![
            "target", "calls", "calls/s", "p50", "p90", "p99", "p99.9", "max", "errors", "retries",
        ];
        let cpu = self
            .targets
            .iter()
            .any(|t| t.client_cpu_ms_per_1k.is_some());
        if cpu {
            header.push("CPU ms/1k (client+server)");
        }
        let counters = self.targets.iter().any(|t| t.stack_counters.is_some());
        if counters {
            header.extend(["cache hits", "breaker opens"]);
        }
        let mut table = table(&header);
        for t in &self.targets {
            let l = &t.latency;
            let mut row = vec![
                t.name.clone(),
                t.calls.to_string(),
                format!("{:.0}", t.throughput),
                format_us(l.p50_us),
                format_us(l.p90_us),
                format_us(l.p99_us),
                format_us(l.p999_us),
                format_us(l.max_us),
                if t.failed == 0 {
                    "0".to_owned()
                } else {
                    format!("{} ({:.2}%)", t.failed, t.error_rate * 100.0)
                },
                t.retries.to_string(),
            ];
            if cpu {
                row.push(format!(
                    "{} + {}",
                    t.client_cpu_ms_per_1k
                        .map_or_else(|| "?".to_owned(), |v| format!("{v:.0}")),
                    t.server_cpu_ms_per_1k
                        .map_or_else(|| "?".to_owned(), |v| format!("{v:.0}")),
                ));
            }
            if counters {
                for name in ["cache_hits", "breaker_opens"] {
                    row.push(
                        t.stack_counters
                            .as_ref()
                            .and_then(|c| c.get(name))
                            .map_or_else(|| "-".to_owned(), u64::to_string),
                    );
                }
            }
            table.add_row(row);
        }
        let mut out = table.to_string();
        if self.targets.iter().any(|t| t.service.is_some()) {
            out.push_str("\nopen loop: latency counts from each call's intended start");
            for t in &self.targets {
                if let Some(s) = &t.service {
                    let _ = write!(
                        out,
                        "; {} service time p50 {} p99 {}",
                        t.name,
                        format_us(s.p50_us),
                        format_us(s.p99_us)
                    );
                }
            }
        }
        out
    }

    fn rounds_table(&self) -> String {
        let mut header = vec!["round".to_owned()];
        for t in &self.targets {
            header.push(format!("{} calls/s", t.name));
            header.push(format!("{} p50", t.name));
            header.push(format!("{} p99", t.name));
        }
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        let mut table = table(&header);
        let rounds = self
            .targets
            .iter()
            .map(|t| t.rounds.len())
            .max()
            .unwrap_or(0);
        for r in 0..rounds {
            let mut row = vec![(r + 1).to_string()];
            for t in &self.targets {
                match t.rounds.get(r) {
                    Some(round) => {
                        row.push(format!("{:.0}", round.throughput));
                        row.push(format_us(round.p50_us));
                        row.push(format_us(round.p99_us));
                    }
                    None => row.extend([String::new(), String::new(), String::new()]),
                }
            }
            table.add_row(row);
        }
        table.to_string()
    }

    fn errors_table(&self) -> String {
        let classes: std::collections::BTreeSet<&String> =
            self.targets.iter().flat_map(|t| t.errors.keys()).collect();
        if classes.is_empty() {
            return String::new();
        }
        let mut header = vec!["class".to_owned()];
        header.extend(self.targets.iter().map(|t| t.name.clone()));
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        let mut table = table(&header);
        for class in classes {
            let mut row = vec![class.clone()];
            for t in &self.targets {
                row.push(t.errors.get(class).copied().unwrap_or(0).to_string());
            }
            table.add_row(row);
        }
        table.to_string()
    }
}

fn failover_section(f: &FailoverReport) -> String {
    let mut out = String::new();
    let Some(kill_at) = f.kill_at_s else {
        let _ = writeln!(
            out,
            "failover: {} was not killed{}",
            f.killed,
            f.note
                .as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_else(|| ": the load ended before the kill point".to_owned())
        );
        return out;
    };
    let _ = writeln!(
        out,
        "failover: group {} of {} replicas ({}), {} killed at {kill_at:.2} s",
        f.group, f.replicas, f.strategy, f.killed
    );
    let window = format_us(f.window_s * 1e6);
    let mut t = table(&["calls ended", "calls", "p50", "p99", "max", "failed"]);
    t.add_row(vec![
        format!("{window} before the kill"),
        f.before.count.to_string(),
        format_us(f.before.p50_us),
        format_us(f.before.p99_us),
        format_us(f.before.max_us),
        String::new(),
    ]);
    t.add_row(vec![
        format!("{window} after the kill"),
        f.after.count.to_string(),
        format_us(f.after.p50_us),
        format_us(f.after.p99_us),
        format_us(f.after.max_us),
        String::new(),
    ]);
    let errors = if f.errors_after_kill.is_empty() {
        String::new()
    } else {
        let classes: Vec<String> = f
            .errors_after_kill
            .iter()
            .map(|(class, n)| format!("{class} {n}"))
            .collect();
        format!(" ({})", classes.join(", "))
    };
    t.add_row(vec![
        "after the kill, all".to_owned(),
        f.calls_after_kill.to_string(),
        String::new(),
        String::new(),
        String::new(),
        format!("{}{errors}", f.failed_after_kill),
    ]);
    let _ = writeln!(out, "{t}");
    let back = match (f.restarted, f.ready_again_s) {
        (true, Some(s)) => format!("ready again {} after the kill", format_us(s * 1e6)),
        (true, None) => "restarted, but not ready again before the end".to_owned(),
        (false, _) => "not restarted".to_owned(),
    };
    let share = f.share_after_ready.map_or_else(String::new, |share| {
        format!(
            "; then {:.1}% of the group's attempts (even share {:.1}%)",
            share * 100.0,
            100.0 / f.replicas.max(1) as f64
        )
    });
    let _ = writeln!(
        out,
        "{}: {back}{share}; failed calls in the whole run: {}{}",
        f.killed,
        f.failed,
        f.note
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    );
    out
}

fn cache_section(c: &CacheReport) -> String {
    let mut t = table(&[
        "cache",
        "lookups",
        "hits",
        "misses",
        "coalesced",
        "loads",
        "stale",
        "hit ratio",
    ]);
    t.add_row(vec![
        format!("{} keys, ttl {}", c.keys, format_us(c.ttl_s * 1e6)),
        c.lookups.to_string(),
        c.hits.to_string(),
        c.misses.to_string(),
        c.coalesced.to_string(),
        c.loads.to_string(),
        c.stale_served.to_string(),
        format!("{:.2}%", c.hit_ratio * 100.0),
    ]);
    format!(
        "{t}\n{:.2}% of the calls reached a server ({:.2}% coalesced into a load in flight)\n",
        c.load_ratio * 100.0,
        c.coalesced_ratio * 100.0
    )
}

fn ramp_table(ramp: &RampReport) -> String {
    let mut table = table(&["target", "rate", "achieved", "p50", "p99", "errors", "step"]);
    for s in &ramp.steps {
        table.add_row(vec![
            s.target.clone(),
            format!("{:.0}/s", s.rate),
            format!("{:.0}/s", s.achieved),
            format_us(s.p50_us),
            format_us(s.p99_us),
            format!("{:.2}%", s.error_rate * 100.0),
            if s.passed { "pass" } else { "FAIL" }.to_owned(),
        ]);
    }
    table.to_string()
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    table
}

fn transport_name(t: crate::options::Transport) -> &'static str {
    match t {
        crate::options::Transport::Stdio => "stdio",
        crate::options::Transport::Http => "HTTP",
    }
}

fn shape_text(s: &Settings) -> String {
    use crate::options::{Budget, Schedule, Shape};
    let shape = match s.shape {
        Shape::Closed { concurrency } => format!("closed loop, {concurrency} in flight"),
        Shape::Open(Schedule::Rate { per_second }) => format!("open loop, {per_second:.0}/s"),
        Shape::Open(Schedule::Burst { size, every }) => {
            format!(
                "bursts of {size} every {}",
                format_us(every.as_secs_f64() * 1e6)
            )
        }
    };
    let budget = match s.budget {
        Budget::Calls(n) => format!("{n} calls"),
        Budget::Time(d) => format_us(d.as_secs_f64() * 1e6),
    };
    if s.scenario == Scenario::Ramp {
        return format!("{shape} and up, steps of {budget}");
    }
    format!("{shape}, {budget} per target in {} round(s)", s.rounds)
}

/// A latency in microseconds, for people: `812 µs`, `10.3 ms`, `1.20 s`.
pub fn format_us(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 10_000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else if us < 1_000_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

fn signed_us(us: f64) -> String {
    if us < 0.0 {
        format!("-{}", format_us(-us))
    } else {
        format!("+{}", format_us(us))
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The median of some numbers (0 when there are none).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_medians() {
        assert_eq!(format_us(812.4), "812 µs");
        assert_eq!(format_us(1234.0), "1.23 ms");
        assert_eq!(format_us(10_300.0), "10.3 ms");
        assert_eq!(format_us(1_200_000.0), "1.20 s");
        assert_eq!(signed_us(-20.0), "-20 µs");
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
