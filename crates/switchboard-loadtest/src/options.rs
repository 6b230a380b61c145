//! Command-line options and the settings each scenario derives from them.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use serde::Serialize;

/// The scenarios.
///
/// Each is a variant here, a branch in [`crate::scenario`] and, where it measures more than
/// per-target latency and errors, a section in [`crate::report::Report`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Fixed load (closed loop at `--concurrency`, or open loop at `--rate`), raw rmcp and
    /// Switchboard alternating in rounds.
    Steady,
    /// Open loop, the rate stepped up until p99 exceeds `--p99-target`.
    Ramp,
    /// Bursts of `--burst-size` calls every `--burst-every`, idle in between.
    Burst,
    /// A long run: memory growth after warm-up, leaked processes and descriptors at the end.
    Soak,
    /// Injected failures: JSON-RPC errors, tool errors, hangs past the deadline, crashes.
    Faults,
    /// `--servers` testkit servers behind one Switchboard: catalog build time, memory, load.
    ManyServers,
    /// `--replicas` testkit servers in one replica group, Switchboard only; one replica is
    /// killed (SIGKILL) at `--kill-at`: failed calls, the latency spike, the time until the
    /// replica is back and its share of the traffic afterwards.
    Failover,
    /// A read-only tool over `--keys` argument values with the tool cache on (ttl
    /// `--cache-ttl`), against raw rmcp making the same calls: hit ratio and coalescing.
    Cache,
}

impl Scenario {
    /// The scenario's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Steady => "steady",
            Self::Ramp => "ramp",
            Self::Burst => "burst",
            Self::Soak => "soak",
            Self::Faults => "faults",
            Self::ManyServers => "many-servers",
            Self::Failover => "failover",
            Self::Cache => "cache",
        }
    }
}

/// How the loadtest reaches the testkit servers it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// One child process per server, MCP over stdin/stdout.
    Stdio,
    /// One `switchboard-testkit http` process per server, streamable HTTP on loopback.
    Http,
}

/// Which call paths to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Targets {
    /// Raw rmcp and the full Switchboard stack, alternating in rounds.
    Both,
    /// Only `Switchboard::call_with`.
    Stack,
    /// Only the raw rmcp `Peer`.
    Raw,
    /// Switchboard with telemetry off and with telemetry on (OpenTelemetry SDK, counting
    /// exporters), alternating in rounds.
    Telemetry,
}

/// Drives load through raw rmcp and through the full Switchboard stack, side by side, and
/// reports throughput, latency percentiles and errors by class.
///
/// Budgets (`--duration`, `--calls`, `--warmup`) are per target: with both targets, each gets
/// the whole budget, split over `--rounds`.
#[derive(Debug, Clone, Parser)]
#[command(name = "switchboard-loadtest", version, max_term_width = 100)]
pub struct Options {
    /// What to run.
    #[arg(value_enum, default_value = "steady")]
    pub scenario: Scenario,

    /// Transport of the testkit servers the loadtest starts.
    #[arg(long, value_enum, default_value = "stdio", help_heading = "Servers")]
    pub transport: Transport,
    /// The `switchboard-testkit` binary (default: next to this binary, then target/debug).
    #[arg(long, env = "SWITCHBOARD_TESTKIT", help_heading = "Servers")]
    pub testkit: Option<PathBuf>,
    /// Extra argument for every testkit server, e.g. `--server-arg=--latency-ms=1` (repeatable).
    #[arg(
        long = "server-arg",
        allow_hyphen_values = true,
        help_heading = "Servers"
    )]
    pub server_args: Vec<String>,
    /// Target the servers of this configuration file instead of starting testkit servers
    /// (it is loaded once per target, so stdio servers run once per target).
    #[arg(long, requires = "tool", help_heading = "Servers")]
    pub config: Option<PathBuf>,
    /// The tool to call, e.g. `everything.echo` (with `--config`; default `testkit.echo`).
    #[arg(long, help_heading = "Servers")]
    pub tool: Option<String>,
    /// The tool's arguments as a JSON object; `{i}` in a string becomes the call's number, `{k}`
    /// a key in `0..--keys` drawn pseudo-randomly per call.
    #[arg(long, help_heading = "Servers")]
    pub args: Option<String>,
    /// Distinct values of `{k}` in `--args` (cache: distinct argument values).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..), help_heading = "Servers")]
    pub keys: u64,
    /// Which call paths to drive (default: `both`; `stack` for soak, many-servers and
    /// failover; `telemetry`: Switchboard with telemetry off against on).
    #[arg(long, value_enum, help_heading = "Servers")]
    pub targets: Option<Targets>,
    /// Number of testkit servers (many-servers).
    #[arg(long, default_value_t = 8, help_heading = "Servers")]
    pub servers: usize,

    /// Closed loop: this many calls in flight (default 64; faults: 16).
    #[arg(long, conflicts_with = "rate", help_heading = "Load")]
    pub concurrency: Option<usize>,
    /// Open loop: calls started per second, e.g. `2000` or `2000/s` (ramp: the first step).
    #[arg(long, value_parser = parse_rate, help_heading = "Load")]
    pub rate: Option<f64>,
    /// Measured time per target, e.g. `10s`, `2m` (default 10s; soak 2m; many-servers 5s).
    #[arg(long, value_parser = parse_duration, conflicts_with = "calls", help_heading = "Load")]
    pub duration: Option<Duration>,
    /// Measured calls per target, instead of `--duration`.
    #[arg(long, help_heading = "Load")]
    pub calls: Option<u64>,
    /// Warm-up per target, not measured: a duration (`1s`) or a number of calls (`200`).
    #[arg(long, value_parser = parse_budget, help_heading = "Load")]
    pub warmup: Option<Budget>,
    /// Rounds the measured budget is split into; the targets alternate every round.
    #[arg(long, help_heading = "Load")]
    pub rounds: Option<u32>,
    /// Deadline of every call (default 10s; faults: 250ms).
    #[arg(long, value_parser = parse_duration, help_heading = "Load")]
    pub deadline: Option<Duration>,

    /// Ramp: a step passes while its p99 stays at or below this.
    #[arg(long, value_parser = parse_duration, default_value = "10ms", help_heading = "Ramp")]
    pub p99_target: Duration,
    /// Ramp: each step's rate is the previous one times this.
    #[arg(long, default_value_t = 1.25, help_heading = "Ramp")]
    pub ramp_factor: f64,
    /// Ramp: length of each step.
    #[arg(long, value_parser = parse_duration, default_value = "2s", help_heading = "Ramp")]
    pub step_duration: Duration,
    /// Ramp: most steps.
    #[arg(long, default_value_t = 20, help_heading = "Ramp")]
    pub steps: u32,

    /// Burst: calls started at once.
    #[arg(long, default_value_t = 200, help_heading = "Burst")]
    pub burst_size: u64,
    /// Burst: time from one burst's start to the next.
    #[arg(long, value_parser = parse_duration, default_value = "1s", help_heading = "Burst")]
    pub burst_every: Duration,

    /// Faults: fraction of calls the server answers with a JSON-RPC error.
    #[arg(long, default_value_t = 0.05, help_heading = "Faults")]
    pub error_rate: f64,
    /// Faults: fraction of calls the server answers with `isError: true`.
    #[arg(long, default_value_t = 0.05, help_heading = "Faults")]
    pub tool_error_rate: f64,
    /// Faults: every server process exits on its Nth call (and is restarted).
    #[arg(long, default_value_t = 5000, help_heading = "Faults")]
    pub crash_after: u64,
    /// Faults: one call in this many never answers (`hang`), one more sleeps past the deadline.
    /// (Each holds its worker for the whole deadline: at 100, hangs would take most of the
    /// workers' time.)
    #[arg(long, default_value_t = 1000, help_heading = "Faults")]
    pub hang_every: u64,

    /// Failover: replicas in the group.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(2..), help_heading = "Failover")]
    pub replicas: u64,
    /// Failover: how the group picks a replica (`round_robin`, `p2c`, `weighted`, `priority`,
    /// `locality`).
    #[arg(long, default_value = "round_robin", help_heading = "Failover")]
    pub strategy: String,
    /// Failover: when to kill a replica, from the start of the measurement: a duration (`2s`)
    /// or a number of calls (`5000`). Default: a third of the measured budget.
    #[arg(long, value_parser = parse_budget, help_heading = "Failover")]
    pub kill_at: Option<Budget>,

    /// Cache: freshness of a cached result.
    #[arg(long, value_parser = parse_duration, default_value = "1s", help_heading = "Cache")]
    pub cache_ttl: Duration,

    /// Hide the progress bar and the per-round lines.
    #[arg(short, long, help_heading = "Output")]
    pub quiet: bool,
    /// Write the full report as JSON to this file.
    #[arg(long, help_heading = "Output")]
    pub json_out: Option<PathBuf>,
    /// Write a latency plot (histogram and latency over time) to this `.svg` or `.html` file.
    #[arg(long, help_heading = "Output")]
    pub plot: Option<PathBuf>,
    /// A JSON report of an earlier run to compare with (e.g. from another commit).
    #[arg(long, help_heading = "Output")]
    pub baseline: Option<PathBuf>,

    /// Fail (exit 3) when the Switchboard target's p99 is above this.
    #[arg(long, value_parser = parse_duration, help_heading = "Gates")]
    pub max_p99: Option<Duration>,
    /// Fail (exit 3) when the Switchboard target's error rate (0..1) is above this.
    #[arg(long, help_heading = "Gates")]
    pub max_error_rate: Option<f64>,
    /// Fail (exit 3) when Switchboard's throughput divided by raw rmcp's (with `--targets
    /// telemetry`: telemetry on divided by off) is below this.
    #[arg(long, help_heading = "Gates")]
    pub min_ratio: Option<f64>,
    /// Fail (exit 3) when resident memory grew more than this many percent after warm-up (soak).
    #[arg(long, help_heading = "Gates")]
    pub max_rss_growth: Option<f64>,
}

/// An amount of load: a number of calls or a length of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// This many calls.
    Calls(u64),
    /// Until this much time has passed.
    #[serde(serialize_with = "as_seconds")]
    Time(Duration),
}

impl Budget {
    /// The budget divided into `parts` (at least one call or one millisecond each).
    pub(crate) fn split(self, parts: u32) -> Self {
        let parts = parts.max(1);
        match self {
            Self::Calls(n) => Self::Calls((n / u64::from(parts)).max(1)),
            Self::Time(d) => Self::Time((d / parts).max(Duration::from_millis(1))),
        }
    }

    /// Whether the budget is empty.
    pub(crate) fn is_zero(self) -> bool {
        match self {
            Self::Calls(n) => n == 0,
            Self::Time(d) => d.is_zero(),
        }
    }
}

fn as_seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// The shape of the load.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// Closed loop: this many workers, each sending its next call when the last one answers.
    Closed {
        /// Calls in flight.
        concurrency: usize,
    },
    /// Open loop: calls start on a schedule, whether earlier ones have answered or not.
    Open(Schedule),
}

/// When the calls of an open loop start.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Evenly spaced, this many per second.
    Rate {
        /// Calls per second.
        per_second: f64,
    },
    /// `size` calls at once every `every`.
    Burst {
        /// Calls per burst.
        size: u64,
        /// Period.
        #[serde(serialize_with = "as_seconds")]
        every: Duration,
    },
}

impl Schedule {
    /// When call `n` (from 0) is meant to start, from the start of the phase.
    pub(crate) fn offset(self, n: u64) -> Duration {
        match self {
            Self::Rate { per_second } => Duration::from_secs_f64(n as f64 / per_second.max(1e-9)),
            Self::Burst { size, every } => {
                every.saturating_mul(u32::try_from(n / size.max(1)).unwrap_or(u32::MAX))
            }
        }
    }
}

/// The testkit's `--latency-ms` in the cache scenario, unless a `--server-arg` sets it.
pub const CACHE_SERVER_LATENCY_MS: u64 = 2;

/// The settings of one run: options resolved with the scenario's defaults.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// The scenario.
    pub scenario: Scenario,
    /// Which call paths are driven.
    pub targets: Targets,
    /// The load's shape.
    pub shape: Shape,
    /// Measured budget per target.
    pub budget: Budget,
    /// Warm-up per target.
    pub warmup: Budget,
    /// Rounds.
    pub rounds: u32,
    /// Deadline of every call, in seconds.
    #[serde(serialize_with = "as_seconds")]
    pub deadline: Duration,
    /// The transport of testkit servers (`None` with `--config`).
    pub transport: Option<Transport>,
    /// The configuration file, if one is targeted.
    pub config: Option<PathBuf>,
    /// The tool called.
    pub tool: String,
    /// Its arguments (a template: `{i}` is the call's number, `{k}` a key in `0..keys`).
    pub args: serde_json::Value,
    /// Distinct values of `{k}`.
    pub keys: u64,
    /// Extra testkit arguments (cache: with `--latency-ms=2` unless given).
    pub server_args: Vec<String>,
    /// Failover: when a replica is killed, from the start of the measurement.
    pub kill_at: Option<Budget>,
}

impl Settings {
    /// Resolves the options with the scenario's defaults.
    ///
    /// # Errors
    /// Inconsistent options (e.g. `--config` with a scenario that needs testkit servers).
    pub fn resolve(options: &Options) -> Result<Self> {
        let scenario = options.scenario;
        if options.config.is_some()
            && matches!(
                scenario,
                Scenario::Faults | Scenario::ManyServers | Scenario::Failover | Scenario::Cache
            )
        {
            bail!(
                "the {} scenario starts its own testkit servers; it cannot use --config",
                scenario.name()
            );
        }
        let targets = options.targets.unwrap_or(match scenario {
            Scenario::Soak | Scenario::ManyServers | Scenario::Failover => Targets::Stack,
            _ => Targets::Both,
        });
        if scenario == Scenario::ManyServers && targets != Targets::Stack {
            bail!("many-servers measures the Switchboard stack only; drop --targets");
        }
        if scenario == Scenario::Failover && targets != Targets::Stack {
            bail!(
                "failover measures the Switchboard stack only (raw rmcp has no replicas); drop --targets"
            );
        }
        let default_concurrency = if scenario == Scenario::Faults { 16 } else { 64 };
        let shape = match scenario {
            Scenario::Burst => Shape::Open(Schedule::Burst {
                size: options.burst_size.max(1),
                every: options.burst_every,
            }),
            Scenario::Ramp => Shape::Open(Schedule::Rate {
                per_second: options.rate.unwrap_or(500.0),
            }),
            _ => match options.rate {
                Some(per_second) => Shape::Open(Schedule::Rate { per_second }),
                None => Shape::Closed {
                    concurrency: options.concurrency.unwrap_or(default_concurrency).max(1),
                },
            },
        };
        let default_duration = match scenario {
            Scenario::Soak => Duration::from_secs(120),
            Scenario::ManyServers => Duration::from_secs(5),
            Scenario::Ramp => options.step_duration,
            _ => Duration::from_secs(10),
        };
        let budget = match (scenario, options.calls, options.duration) {
            (Scenario::Ramp, _, _) => Budget::Time(options.step_duration),
            (_, Some(calls), _) => Budget::Calls(calls),
            (_, None, Some(duration)) => Budget::Time(duration),
            (_, None, None) => Budget::Time(default_duration),
        };
        let warmup = options.warmup.unwrap_or(match scenario {
            Scenario::Soak => Budget::Time(Duration::from_secs(10)),
            _ => Budget::Time(Duration::from_secs(1)),
        });
        let rounds = match scenario {
            Scenario::Soak | Scenario::ManyServers | Scenario::Ramp | Scenario::Failover => 1,
            _ => options.rounds.unwrap_or(5).max(1),
        };
        let deadline = options.deadline.unwrap_or(match scenario {
            Scenario::Faults => Duration::from_millis(250),
            _ => Duration::from_secs(10),
        });
        let tool = match (&options.tool, &options.config) {
            (Some(tool), _) => tool.clone(),
            (None, None) if scenario == Scenario::Failover => "pool.echo".to_owned(),
            (None, None) => "testkit.echo".to_owned(),
            (None, Some(_)) => bail!("--config needs --tool NAME"),
        };
        let args = match &options.args {
            Some(text) => serde_json::from_str(text).context("--args is not valid JSON")?,
            None if scenario == Scenario::Cache => serde_json::json!({ "message": "key-{k}" }),
            None if options.config.is_none() => serde_json::json!({ "message": "m{i}" }),
            None => serde_json::json!({}),
        };
        if !args.is_object() {
            bail!("--args must be a JSON object");
        }
        if !(0.0..=1.0).contains(&options.error_rate)
            || !(0.0..=1.0).contains(&options.tool_error_rate)
        {
            bail!("--error-rate and --tool-error-rate must be between 0 and 1");
        }
        if scenario == Scenario::Ramp && options.ramp_factor <= 1.0 {
            bail!("--ramp-factor must be above 1");
        }
        let kill_at = (scenario == Scenario::Failover).then(|| {
            options.kill_at.unwrap_or(match budget {
                Budget::Calls(n) => Budget::Calls(n / 3),
                Budget::Time(d) => Budget::Time(d / 3),
            })
        });
        match (kill_at, budget) {
            (Some(Budget::Calls(at)), Budget::Calls(n)) if at >= n => {
                bail!("--kill-at {at} must be below --calls {n}")
            }
            (Some(Budget::Time(at)), Budget::Time(d)) if at >= d => {
                bail!("--kill-at must be before the end of --duration")
            }
            _ => {}
        }
        let mut server_args = options.server_args.clone();
        if scenario == Scenario::Cache && !server_args.iter().any(|a| a.starts_with("--latency-ms"))
        {
            // A server that answers at once leaves the cache little to save.
            server_args.push(format!("--latency-ms={CACHE_SERVER_LATENCY_MS}"));
        }
        Ok(Self {
            scenario,
            targets,
            shape,
            budget,
            warmup,
            rounds,
            deadline,
            transport: options.config.is_none().then_some(options.transport),
            config: options.config.clone(),
            tool,
            args,
            keys: options.keys,
            server_args,
            kill_at,
        })
    }
}

/// Parses a duration: a number followed by `us`, `ms`, `s`, `m` or `h` (`1.5s`, `250ms`).
///
/// # Errors
/// A missing or unknown unit, or a bad number.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{text:?} needs a unit: us, ms, s, m or h"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{number:?} is not a number"))?;
    let seconds = match unit.trim() {
        "us" | "µs" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown unit {other:?}: use us, ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| e.to_string())
}

/// Parses a budget: a duration (`2s`) or a number of calls (`200`).
///
/// # Errors
/// Neither a duration nor a whole number.
pub fn parse_budget(text: &str) -> Result<Budget, String> {
    match text.trim().parse::<u64>() {
        Ok(calls) => Ok(Budget::Calls(calls)),
        Err(_) => parse_duration(text).map(Budget::Time),
    }
}

/// Parses a rate: `2000` or `2000/s`.
///
/// # Errors
/// Not a positive number.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches("/s");
    match number.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate.is_finite() => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a positive rate (e.g. 2000 or 2000/s)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_budgets_and_rates_parse() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("40us"), Ok(Duration::from_micros(40)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("10 parsecs").is_err());
        assert_eq!(parse_budget("200"), Ok(Budget::Calls(200)));
        assert_eq!(parse_budget("2s"), Ok(Budget::Time(Duration::from_secs(2))));
        assert_eq!(parse_rate("2000/s"), Ok(2000.0));
        assert!(parse_rate("0").is_err());
    }

    #[test]
    fn schedules_place_calls() {
        let rate = Schedule::Rate { per_second: 1000.0 };
        assert_eq!(rate.offset(0), Duration::ZERO);
        assert_eq!(rate.offset(1500), Duration::from_millis(1500));
        let burst = Schedule::Burst {
            size: 10,
            every: Duration::from_millis(100),
        };
        assert_eq!(burst.offset(9), Duration::ZERO);
        assert_eq!(burst.offset(10), Duration::from_millis(100));
        assert_eq!(burst.offset(25), Duration::from_millis(200));
    }

    #[test]
    fn scenarios_get_their_defaults() {
        let parse = |args: &[&str]| {
            let argv = std::iter::once("switchboard-loadtest").chain(args.iter().copied());
            Options::try_parse_from(argv)
                .map_err(|e| e.to_string())
                .and_then(|o| Settings::resolve(&o).map_err(|e| e.to_string()))
        };
        let steady = parse(&[]).expect("defaults");
        assert_eq!(steady.shape, Shape::Closed { concurrency: 64 });
        assert_eq!(steady.targets, Targets::Both);
        assert_eq!(steady.rounds, 5);
        let soak = parse(&["soak"]).expect("soak");
        assert_eq!(soak.targets, Targets::Stack);
        assert_eq!(soak.budget, Budget::Time(Duration::from_secs(120)));
        let faults = parse(&["faults"]).expect("faults");
        assert_eq!(faults.deadline, Duration::from_millis(250));
        let open = parse(&["--rate", "300/s", "--calls", "100"]).expect("open");
        assert_eq!(
            open.shape,
            Shape::Open(Schedule::Rate { per_second: 300.0 })
        );
        let failover = parse(&["failover", "--duration", "6s"]).expect("failover");
        assert_eq!(failover.targets, Targets::Stack);
        assert_eq!(failover.tool, "pool.echo");
        assert_eq!(failover.rounds, 1);
        assert_eq!(failover.kill_at, Some(Budget::Time(Duration::from_secs(2))));
        let by_calls = parse(&["failover", "--calls", "900"]).expect("failover by calls");
        assert_eq!(by_calls.kill_at, Some(Budget::Calls(300)));
        assert!(parse(&["failover", "--targets", "both"]).is_err());
        assert!(parse(&["failover", "--calls", "900", "--kill-at", "900"]).is_err());
        let cache = parse(&["cache"]).expect("cache");
        assert_eq!(cache.targets, Targets::Both);
        assert_eq!(cache.args["message"], "key-{k}");
        assert_eq!(cache.keys, 256);
        assert_eq!(cache.server_args, ["--latency-ms=2"]);
        let slow = parse(&["cache", "--server-arg=--latency-ms=5"]).expect("cache");
        assert_eq!(slow.server_args, ["--latency-ms=5"]);
        assert_eq!(steady.kill_at, None);
        assert!(steady.server_args.is_empty());
        assert!(parse(&["faults", "--config", "x.json", "--tool", "a.b"]).is_err());
        assert!(parse(&["--config", "x.json"]).is_err());
        assert!(parse(&["--args", "[1]"]).is_err());
    }
}
