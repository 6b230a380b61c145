//! The scenarios: setting up targets, warm-up, measured rounds, and what each scenario adds.
//!
//! - `steady`, `burst`, `faults`: `Run::setup_default`, warm-up, `Run::measure`.
//! - `ramp`, `soak`, `many-servers`: the same building blocks plus their own section.
//! - `failover`: one replica group, a killer running beside the single measured phase
//!   (`Run::failover`); a recorder marked at the kill keeps the calls around it.
//! - `cache`: `Run::setup_default` with the tool cache on for the Switchboard target, keyed
//!   arguments (`{k}`), and a section from the cache's counters (`cache_report`).
//! - `--targets telemetry` (any scenario that runs both kinds): two Switchboard targets, the
//!   second with a counting telemetry pipeline (module `otel`); `Run::connect` gives it
//!   its handle, `Run::telemetry_report` flushes and reads it.
//!
//! Adding a scenario: a variant of [`Scenario`] with its defaults
//! in [`Settings::resolve`](crate::options::Settings::resolve), a branch in `Run::scenario`
//! that sets up its servers and workload (the building blocks are `Run::setup_testkit`,
//! `Run::connect`, `Run::add_target`, `Run::warm_up`, `Run::measure` and
//! `Run::phase`), and, for figures that are not per-target latency and errors, an optional
//! section in [`Report`].

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, Result};
use switchboard::{
    Switchboard,
    config::{CacheSettings, Config, GroupSettings},
    telemetry::Telemetry,
};
use tokio::time::Instant;

use crate::{
    load,
    options::{Budget, Options, Scenario, Schedule, Settings, Shape, Targets, Transport},
    otel,
    progress::Progress,
    record::{Percentiles, Recorded, Recorder, bins},
    report::{
        CacheReport, Cleanup, Comparison, FailoverReport, ManyServersReport, RampReport, RampStep,
        Report, RoundReport, SoakReport, TargetReport, TelemetryReport, format_us, median, pair,
    },
    servers::{self, HttpServer, Servers, locate_testkit},
    system::{self, Machine},
    target::{CallSpec, Target, TargetKind, Workload},
};

/// The replica group of `failover`; its members are `pool-0`, `pool-1`, ….
const GROUP: &str = "pool";

/// Failover: the latency windows before and after the kill.
const KILL_WINDOW: Duration = Duration::from_secs(1);

/// Failover: how long to wait, after the load, for the killed replica to be ready again.
const READY_GRACE: Duration = Duration::from_secs(10);

/// Runs the scenario the options ask for and returns its report (gates evaluated).
///
/// # Errors
/// Bad options, servers that do not start, unreadable baseline. Servers started before an
/// error are stopped.
pub async fn run(options: &Options) -> Result<Report> {
    let settings = Settings::resolve(options)?;
    // Set up the runtime's SIGCHLD handling now, so that its descriptors are counted as there
    // before the run rather than as leaked by it.
    let _child_signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()).ok();
    let fds_before = system::open_fds();
    let machine = Machine::now();
    let started_unix_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let testkit = match settings.config {
        Some(_) => None,
        None => Some(locate_testkit(options.testkit.as_deref())?),
    };
    let mut run = Run {
        options,
        settings: &settings,
        progress: Progress::new(options.quiet),
        servers: Servers::default(),
        targets: Vec::new(),
        http_pids: Vec::new(),
        pids: BTreeSet::new(),
        origin: Instant::now(),
        bucket: bucket_width(&settings),
        testkit,
        otel: None,
    };
    let outcome = run.scenario().await;
    let cleanup = run.teardown(fds_before).await;
    run.progress.finish();
    let extras = outcome?;
    // A ramp compares the highest passing rates (see `Report::throughput_ratio`), not totals
    // over steps of different rates.
    let comparison = match settings.scenario {
        Scenario::Ramp => None,
        _ => compare(&extras.targets),
    };
    let mut report = Report {
        loadtest_version: env!("CARGO_PKG_VERSION").to_owned(),
        command: None,
        git: std::env::current_dir()
            .ok()
            .and_then(|d| system::git_commit(&d)),
        started_unix_s,
        machine,
        settings: settings.clone(),
        targets: extras.targets,
        comparison,
        ramp: extras.ramp,
        soak: extras.soak,
        many_servers: extras.many_servers,
        failover: extras.failover,
        cache: extras.cache,
        telemetry: extras.telemetry,
        cleanup,
        gates: Vec::new(),
        baseline: None,
    };
    report.machine.load_average_end = system::load_average();
    report.evaluate_gates(options);
    if let Some(path) = &options.baseline {
        report.compare_baseline(path)?;
    }
    Ok(report)
}

/// Width of the time-series intervals: about 200 of them over the planned run.
fn bucket_width(settings: &Settings) -> Duration {
    let targets = match settings.targets {
        Targets::Both | Targets::Telemetry => 2,
        Targets::Stack | Targets::Raw => 1,
    };
    match settings.budget {
        Budget::Time(d) => {
            (d * targets / 200).clamp(Duration::from_millis(20), Duration::from_secs(5))
        }
        Budget::Calls(_) => Duration::from_millis(100),
    }
}

/// What a scenario measured besides the per-target figures.
#[derive(Default)]
struct Extras {
    targets: Vec<TargetReport>,
    ramp: Option<RampReport>,
    soak: Option<SoakReport>,
    many_servers: Option<ManyServersReport>,
    failover: Option<FailoverReport>,
    cache: Option<CacheReport>,
    telemetry: Option<TelemetryReport>,
}

/// One phase of load on one target.
struct Phase {
    recorded: Recorded,
    elapsed: Duration,
    /// Switchboard's counters over the phase (see [`Target::counters`]).
    counters: Option<BTreeMap<String, u64>>,
    client_cpu: Option<Duration>,
    server_cpu: Option<Duration>,
}

impl Phase {
    fn throughput(&self) -> f64 {
        self.recorded.calls() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A target's phases added up.
struct Accumulated {
    kind: TargetKind,
    recorded: Recorded,
    elapsed: Duration,
    rounds: Vec<RoundReport>,
    client_cpu: (Duration, u64),
    server_cpu: (Duration, u64),
    counters: Option<BTreeMap<String, u64>>,
}

impl Accumulated {
    fn new(kind: TargetKind) -> Self {
        Self {
            kind,
            recorded: Recorded::default(),
            elapsed: Duration::ZERO,
            rounds: Vec::new(),
            client_cpu: (Duration::ZERO, 0),
            server_cpu: (Duration::ZERO, 0),
            counters: None,
        }
    }

    fn add(&mut self, round: u32, phase: Phase) {
        let calls = phase.recorded.calls();
        let p = Percentiles::of(&phase.recorded.latency);
        self.rounds.push(RoundReport {
            round,
            calls,
            failed: phase.recorded.failed(),
            elapsed_s: phase.elapsed.as_secs_f64(),
            throughput: phase.throughput(),
            p50_us: p.p50_us,
            p99_us: p.p99_us,
        });
        if let Some(cpu) = phase.client_cpu {
            self.client_cpu.0 += cpu;
            self.client_cpu.1 += calls;
        }
        if let Some(cpu) = phase.server_cpu {
            self.server_cpu.0 += cpu;
            self.server_cpu.1 += calls;
        }
        if let Some(counters) = phase.counters {
            let total = self.counters.get_or_insert_with(BTreeMap::new);
            for (name, n) in counters {
                *total.entry(name).or_default() += n;
            }
        }
        self.elapsed += phase.elapsed;
        self.recorded.merge(phase.recorded);
    }

    fn report(self, open_loop: bool) -> TargetReport {
        let per_1k = |(cpu, calls): (Duration, u64)| {
            (calls > 0).then(|| cpu.as_secs_f64() * 1e3 * 1000.0 / calls as f64)
        };
        let r = self.recorded;
        let calls = r.calls();
        let failed = r.failed();
        TargetReport {
            kind: self.kind,
            name: self.kind.label().to_owned(),
            calls,
            ok: r.ok,
            failed,
            error_rate: if calls == 0 {
                0.0
            } else {
                failed as f64 / calls as f64
            },
            errors: r.errors,
            retries: r.retries,
            stack_counters: self.counters,
            elapsed_s: self.elapsed.as_secs_f64(),
            throughput: calls as f64 / self.elapsed.as_secs_f64().max(1e-9),
            latency: Percentiles::of(&r.latency),
            service: open_loop.then(|| Percentiles::of(&r.service)),
            client_cpu_ms_per_1k: per_1k(self.client_cpu),
            server_cpu_ms_per_1k: per_1k(self.server_cpu),
            rounds: self.rounds,
            histogram: bins(&r.latency),
            series: r.series,
        }
    }
}

/// The state of a run.
struct Run<'a> {
    options: &'a Options,
    settings: &'a Settings,
    progress: Progress,
    servers: Servers,
    targets: Vec<Arc<Target>>,
    /// HTTP server processes of each target.
    http_pids: Vec<Vec<u32>>,
    /// Every server process seen, to check after shutdown.
    pids: BTreeSet<u32>,
    /// Start of the measured part: the time series counts from here.
    origin: Instant,
    bucket: Duration,
    testkit: Option<PathBuf>,
    /// The telemetry handle of the `switchboard+otel` target and what its exporters received.
    otel: Option<(
        Telemetry,
        Arc<switchboard::telemetry::counting::ExportCounts>,
    )>,
}

impl Run<'_> {
    async fn scenario(&mut self) -> Result<Extras> {
        let mut extras = self.scenario_extras().await?;
        extras.telemetry = self.telemetry_report().await;
        Ok(extras)
    }

    async fn scenario_extras(&mut self) -> Result<Extras> {
        let s = self.settings;
        match s.scenario {
            Scenario::Steady | Scenario::Burst | Scenario::Faults => {
                self.setup_default().await?;
                self.warm_up(s.shape).await;
                let targets = self.measure(s.shape).await;
                Ok(Extras {
                    targets,
                    ..Extras::default()
                })
            }
            Scenario::Ramp => {
                self.setup_default().await?;
                self.ramp().await
            }
            Scenario::Soak => {
                self.setup_default().await?;
                self.soak().await
            }
            Scenario::ManyServers => self.many_servers().await,
            Scenario::Failover => self.failover().await,
            Scenario::Cache => {
                self.setup_default().await?;
                self.warm_up(s.shape).await;
                let targets = self.measure(s.shape).await;
                Ok(Extras {
                    cache: cache_report(&targets, s.keys, self.options.cache_ttl),
                    targets,
                    ..Extras::default()
                })
            }
        }
    }

    fn kinds(&self) -> Vec<TargetKind> {
        match self.settings.targets {
            Targets::Both => vec![TargetKind::Raw, TargetKind::Stack],
            Targets::Stack => vec![TargetKind::Stack],
            Targets::Raw => vec![TargetKind::Raw],
            Targets::Telemetry => vec![TargetKind::Stack, TargetKind::StackOtel],
        }
    }

    /// One target per kind, each over its own servers (testkit or `--config`). In `cache`,
    /// the servers cache the tool's results for `--cache-ttl` and the Switchboard targets
    /// call with the cache on.
    async fn setup_default(&mut self) -> Result<()> {
        let s = self.settings;
        let main = CallSpec::new(s.tool.clone(), s.args.clone());
        let mut server_args = s.server_args.clone();
        let workload = if s.scenario == Scenario::Faults {
            let o = self.options;
            server_args.extend([
                format!("--error-rate={}", o.error_rate),
                format!("--tool-error-rate={}", o.tool_error_rate),
                format!("--crash-after={}", o.crash_after.max(1)),
            ]);
            let sleep_ms = u64::try_from(s.deadline.as_millis() * 2).unwrap_or(u64::MAX);
            let calls = vec![
                main,
                CallSpec::new("testkit.hang", serde_json::json!({})),
                CallSpec::new("testkit.sleep", serde_json::json!({ "ms": sleep_ms })),
            ];
            let every = usize::try_from(o.hang_every.max(3)).unwrap_or(usize::MAX);
            let mut pattern = vec![0; every];
            pattern[0] = 1;
            pattern[every / 2] = 2;
            Workload::patterned(calls, pattern)
        } else {
            Workload::single(main)
        };
        let workload = workload.with_keys(s.keys);
        let cached = s.scenario == Scenario::Cache;
        for kind in self.kinds() {
            let mut config = match &s.config {
                Some(path) => servers::load_config(path)?,
                None => {
                    self.setup_testkit(|_| "testkit".to_owned(), 1, &server_args)
                        .await?
                }
            };
            if cached {
                for server in &mut config.servers {
                    server.policies.cache = CacheSettings {
                        enabled: Some(true),
                        ttl: Some(self.options.cache_ttl),
                    };
                }
            }
            let switchboard = self.connect(kind, config).await?;
            let target = Target::new(kind, switchboard, workload.clone(), s.deadline)?;
            if cached && kind != TargetKind::Raw {
                self.push_target(target.with_cache());
            } else {
                self.push_target(target);
            }
        }
        Ok(())
    }

    /// Connects a Switchboard for a target of `kind`: `switchboard+otel` gets a counting
    /// telemetry pipeline (kept to be flushed and read at the end); its `switchboard`
    /// baseline gets none, whatever a `--config` file asks for; other targets get what the
    /// file asks for.
    async fn connect(&mut self, kind: TargetKind, config: Config) -> Result<Switchboard> {
        let telemetry = match kind {
            TargetKind::StackOtel => {
                let (telemetry, exported) = otel::counting()?;
                self.otel = Some((telemetry.clone(), exported));
                Some(telemetry)
            }
            TargetKind::Stack if self.settings.targets == Targets::Telemetry => {
                Some(Telemetry::disabled())
            }
            TargetKind::Raw | TargetKind::Stack => None,
        };
        servers::connect(config, telemetry).await
    }

    /// Starts `count` testkit servers (HTTP) or describes them (stdio), and returns the
    /// configuration of a Switchboard over them; connect it with [`Run::connect`].
    async fn setup_testkit(
        &mut self,
        names: impl Fn(usize) -> String,
        count: usize,
        args: &[String],
    ) -> Result<Config> {
        let testkit = self
            .testkit
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::servers::TESTKIT));
        let transport = self.settings.transport.unwrap_or(Transport::Stdio);
        let before = self.servers.http_pids().len();
        let config = self
            .servers
            .testkit(
                &testkit,
                transport,
                names,
                count,
                args,
                self.settings.deadline,
            )
            .await?;
        self.http_pids
            .push(self.servers.http_pids()[before..].to_vec());
        Ok(config)
    }

    fn add_target(
        &mut self,
        kind: TargetKind,
        switchboard: Switchboard,
        workload: Workload,
    ) -> Result<()> {
        let target = Target::new(kind, switchboard, workload, self.settings.deadline)?;
        self.push_target(target);
        Ok(())
    }

    fn push_target(&mut self, target: Target) {
        if self.http_pids.len() <= self.targets.len() {
            self.http_pids.push(Vec::new());
        }
        self.pids.extend(target.server_pids());
        self.targets.push(Arc::new(target));
    }

    fn server_pids(&self, i: usize) -> Vec<u32> {
        let mut pids = self.http_pids.get(i).cloned().unwrap_or_default();
        if let Some(target) = self.targets.get(i) {
            pids.extend(target.server_pids());
        }
        pids
    }

    /// Runs one phase on target `i`.
    async fn phase(&self, i: usize, shape: Shape, budget: Budget, label: &str) -> Phase {
        let recorder = Arc::new(Recorder::new(self.origin, self.bucket));
        self.phase_on(i, shape, budget, label, recorder).await
    }

    /// Runs one phase on target `i`, recording into `recorder`.
    async fn phase_on(
        &self,
        i: usize,
        shape: Shape,
        budget: Budget,
        label: &str,
        recorder: Arc<Recorder>,
    ) -> Phase {
        let target = Arc::clone(&self.targets[i]);
        let tracker = self.progress.track(label, budget, &recorder);
        let pids = self.server_pids(i);
        let server_before = cpu_of(&pids);
        let counters_before = target.counters();
        let client_before = system::cpu_time("self");
        let elapsed = load::drive(&target, shape, budget, &recorder).await;
        let client_after = system::cpu_time("self");
        let counters = counters_before
            .zip(target.counters())
            .map(|(before, after)| {
                after
                    .into_iter()
                    .map(|(name, n)| {
                        let delta = n.saturating_sub(before.get(&name).copied().unwrap_or(0));
                        (name, delta)
                    })
                    .collect()
            });
        let server_after = if self.server_pids(i) == pids {
            cpu_of(&pids)
        } else {
            None
        };
        drop(tracker);
        let recorded = recorder.finish();
        Phase {
            recorded,
            elapsed,
            counters,
            client_cpu: client_before
                .zip(client_after)
                .map(|(a, b)| b.saturating_sub(a)),
            server_cpu: server_before
                .zip(server_after)
                .map(|(a, b)| b.saturating_sub(a)),
        }
    }

    /// Warms every target up (not measured); the measured part starts when this returns.
    async fn warm_up(&mut self, shape: Shape) {
        let budget = self.settings.warmup;
        if !budget.is_zero() {
            for i in 0..self.targets.len() {
                let label = format!("warm-up {}", self.targets[i].kind.label());
                let phase = self.phase(i, shape, budget, &label).await;
                self.progress.line(&format!(
                    "{label}: {} calls, {:.0} calls/s",
                    phase.recorded.calls(),
                    phase.throughput()
                ));
            }
        }
        self.origin = Instant::now();
    }

    /// The measured rounds: targets alternate, in the opposite order every other round.
    async fn measure(&mut self, shape: Shape) -> Vec<TargetReport> {
        let rounds = self.settings.rounds;
        let per_round = self.settings.budget.split(rounds);
        let mut accumulated: Vec<Accumulated> = self
            .targets
            .iter()
            .map(|t| Accumulated::new(t.kind))
            .collect();
        for round in 1..=rounds {
            let mut order: Vec<usize> = (0..self.targets.len()).collect();
            if round % 2 == 0 {
                order.reverse();
            }
            for i in order {
                let label = format!("round {round}/{rounds} {}", self.targets[i].kind.label());
                let phase = self.phase(i, shape, per_round, &label).await;
                self.progress.line(&phase_line(&label, &phase));
                accumulated[i].add(round, phase);
            }
        }
        let open = matches!(shape, Shape::Open(_));
        accumulated.into_iter().map(|a| a.report(open)).collect()
    }

    async fn ramp(&mut self) -> Result<Extras> {
        let o = self.options;
        let start = match self.settings.shape {
            Shape::Open(Schedule::Rate { per_second }) => per_second,
            _ => 500.0,
        };
        self.warm_up(Shape::Open(Schedule::Rate { per_second: start }))
            .await;
        let target_us = o.p99_target.as_secs_f64() * 1e6;
        let n = self.targets.len();
        let mut alive = vec![true; n];
        let mut best: Vec<Option<f64>> = vec![None; n];
        let mut steps = Vec::new();
        let mut accumulated: Vec<Accumulated> = self
            .targets
            .iter()
            .map(|t| Accumulated::new(t.kind))
            .collect();
        let mut rate = start;
        for step in 1..=o.steps.max(1) {
            let mut order: Vec<usize> = (0..n).collect();
            if step % 2 == 0 {
                order.reverse();
            }
            for i in order {
                if !alive[i] {
                    continue;
                }
                let shape = Shape::Open(Schedule::Rate { per_second: rate });
                let label = format!("step {step} {:.0}/s {}", rate, self.targets[i].kind.label());
                let phase = self
                    .phase(i, shape, Budget::Time(o.step_duration), &label)
                    .await;
                let calls = phase.recorded.calls();
                let p = Percentiles::of(&phase.recorded.latency);
                let error_rate = phase.recorded.failed() as f64 / calls.max(1) as f64;
                let achieved = phase.throughput();
                let passed = calls > 0
                    && p.p99_us <= target_us
                    && error_rate <= 0.01
                    && achieved >= 0.9 * rate;
                self.progress.line(&format!(
                    "{} → {}",
                    phase_line(&label, &phase),
                    if passed { "pass" } else { "fail" }
                ));
                steps.push(RampStep {
                    target: self.targets[i].kind.label().to_owned(),
                    rate,
                    achieved,
                    p50_us: p.p50_us,
                    p99_us: p.p99_us,
                    error_rate,
                    passed,
                });
                if passed {
                    best[i] = Some(rate);
                } else {
                    alive[i] = false;
                }
                accumulated[i].add(step, phase);
            }
            if !alive.iter().any(|a| *a) {
                break;
            }
            rate *= o.ramp_factor;
        }
        let highest_passing = self
            .targets
            .iter()
            .zip(&best)
            .map(|(t, b)| (t.kind.label().to_owned(), *b))
            .collect();
        Ok(Extras {
            targets: accumulated.into_iter().map(|a| a.report(true)).collect(),
            ramp: Some(RampReport {
                p99_target_us: target_us,
                steps,
                highest_passing,
            }),
            ..Extras::default()
        })
    }

    async fn soak(&mut self) -> Result<Extras> {
        let shape = self.settings.shape;
        self.warm_up(shape).await;
        let all_pids: Vec<u32> = (0..self.targets.len())
            .flat_map(|i| self.server_pids(i))
            .collect();
        let rss_after_warmup = system::own_rss().unwrap_or(0);
        let fds_after_warmup = system::open_fds();
        let server_rss_after_warmup = rss_of(&all_pids);
        let samples = Arc::new(Mutex::new(vec![(0.0, rss_after_warmup)]));
        let sampler = {
            let samples = Arc::clone(&samples);
            let origin = self.origin;
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(Duration::from_secs(1));
                ticker.tick().await;
                loop {
                    ticker.tick().await;
                    if let Some(rss) = system::own_rss() {
                        samples
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push((origin.elapsed().as_secs_f64(), rss));
                    }
                }
            })
        };
        let targets = self.measure(shape).await;
        sampler.abort();
        let rss_after_load = system::own_rss().unwrap_or(0);
        let fds_end = system::open_fds();
        let all_pids_end: Vec<u32> = (0..self.targets.len())
            .flat_map(|i| self.server_pids(i))
            .collect();
        let server_rss_end = rss_of(&all_pids_end);
        let mut samples =
            std::mem::take(&mut *samples.lock().unwrap_or_else(PoisonError::into_inner));
        // Growth compares the median of the samples of the first tenth of the measured run
        // with that of the last tenth: the measured phase's own recorder is allocated as it
        // starts, and the end of the run puts its results together; neither is the stack's.
        let (rss_start, rss_end) =
            steady_memory(&samples[1..]).unwrap_or((rss_after_warmup, rss_after_load));
        samples.push((self.origin.elapsed().as_secs_f64(), rss_after_load));
        let rss_max = samples.iter().map(|s| s.1).max().unwrap_or(rss_end);
        let growth_percent = if rss_start == 0 {
            0.0
        } else {
            (rss_end as f64 - rss_start as f64) * 100.0 / rss_start as f64
        };
        Ok(Extras {
            targets,
            soak: Some(SoakReport {
                rss_after_warmup,
                rss_start,
                rss_end,
                rss_after_load,
                rss_max,
                growth_percent,
                slope_mib_per_min: slope_mib_per_min(&samples),
                samples,
                fds_after_warmup,
                fds_end,
                server_rss_after_warmup,
                server_rss_end,
            }),
            ..Extras::default()
        })
    }

    async fn many_servers(&mut self) -> Result<Extras> {
        const LISTINGS: u32 = 100;
        let s = self.settings;
        let count = self.options.servers.max(1);
        let bare_tool = s.tool.rsplit('.').next().unwrap_or("echo").to_owned();
        let rss_before = system::own_rss();
        let started = Instant::now();
        let config = self
            .setup_testkit(|k| format!("s{k}"), count, &s.server_args)
            .await?;
        let switchboard = self.connect(TargetKind::Stack, config).await?;
        let connect = started.elapsed();
        let rss_after = system::own_rss();
        let tools = switchboard.tools().len();
        let listing = Instant::now();
        for _ in 0..LISTINGS {
            std::hint::black_box(switchboard.tools());
        }
        let list_tools = listing.elapsed() / LISTINGS;
        let calls = (0..count)
            .map(|k| CallSpec::new(format!("s{k}.{bare_tool}"), s.args.clone()))
            .collect();
        self.add_target(TargetKind::Stack, switchboard, Workload::round_robin(calls))?;
        let server_rss_total = rss_of(&self.server_pids(0));
        self.progress.line(&format!(
            "{count} servers connected with their catalogs in {:.1} ms ({tools} tools)",
            connect.as_secs_f64() * 1e3
        ));
        self.warm_up(s.shape).await;
        let targets = self.measure(s.shape).await;
        Ok(Extras {
            targets,
            many_servers: Some(ManyServersReport {
                servers: count,
                connect_ms: connect.as_secs_f64() * 1e3,
                tools,
                list_tools_us: list_tools.as_secs_f64() * 1e6,
                rss_before,
                rss_after,
                server_rss_total,
            }),
            ..Extras::default()
        })
    }

    /// `--replicas` testkit servers in the group `pool`, called through `pool.echo`, one
    /// measured phase with a killer beside it: at the kill point it SIGKILLs `pool-0` (stdio:
    /// the connection's process, which the supervisor restarts; HTTP: the server process,
    /// which it starts again on the same port), then watches the replica's connection until
    /// it is ready with a new session.
    async fn failover(&mut self) -> Result<Extras> {
        let s = self.settings;
        let o = self.options;
        let replicas = usize::try_from(o.replicas).context("--replicas is too large")?;
        let name = |k: usize| format!("{GROUP}-{k}");
        let mut config = self.setup_testkit(name, replicas, &s.server_args).await?;
        config.global.groups.insert(
            GROUP.to_owned(),
            GroupSettings {
                servers: (0..replicas).map(name).collect(),
                strategy: Some(o.strategy.clone()),
            },
        );
        let switchboard = self.connect(TargetKind::Stack, config).await?;
        let call = CallSpec::new(s.tool.clone(), s.args.clone());
        let workload = Workload::single(call).with_keys(s.keys);
        self.add_target(TargetKind::Stack, switchboard, workload)?;
        self.warm_up(s.shape).await;

        let target = Arc::clone(&self.targets[0]);
        let victim = name(0);
        let http = match self.http_pids[0].first() {
            Some(&pid) => self.servers.take(pid),
            None => None,
        };
        let killer = Killer {
            target: Arc::clone(&target),
            victim: victim.clone(),
            at: s.kill_at.unwrap_or(Budget::Time(Duration::ZERO)),
            origin: self.origin,
            issued_at_start: target.issued(),
            http,
        };
        let recorder = Arc::new(Recorder::with_window(self.origin, self.bucket, KILL_WINDOW));
        let done = Arc::new(AtomicBool::new(false));
        let label = format!("failover {}", TargetKind::Stack.label());
        let measured = async {
            let phase = self
                .phase_on(0, s.shape, s.budget, &label, Arc::clone(&recorder))
                .await;
            done.store(true, Ordering::Relaxed);
            phase
        };
        let (phase, kill) = tokio::join!(measured, killer.run(&recorder, &done));
        self.progress.line(&phase_line(&label, &phase));
        let routed_end = routed(&target.switchboard);
        if let Some(server) = kill.http {
            if let Some(old) = self.http_pids[0].first_mut() {
                self.pids.insert(*old);
                *old = server.pid();
            }
            self.pids.insert(server.pid());
            self.servers.keep(server);
        }
        let mut accumulated = Accumulated::new(TargetKind::Stack);
        accumulated.add(1, phase);
        let report = accumulated.report(matches!(s.shape, Shape::Open(_)));
        // No mark: nothing was killed, and the report says so.
        let around = recorder.around().unwrap_or_default();
        let routed_after_ready: BTreeMap<String, u64> = kill
            .routed_at_ready
            .map(|at_ready| {
                routed_end
                    .iter()
                    .map(|(server, n)| {
                        let before = at_ready.get(server).copied().unwrap_or(0);
                        (server.clone(), n.saturating_sub(before))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let total: u64 = routed_after_ready.values().sum();
        let failover = FailoverReport {
            replicas,
            group: GROUP.to_owned(),
            strategy: o.strategy.clone(),
            share_after_ready: (total > 0).then(|| {
                routed_after_ready.get(&victim).copied().unwrap_or(0) as f64 / total as f64
            }),
            killed: victim,
            kill_at_s: kill.at.map(|d| d.as_secs_f64()),
            failed: report.failed,
            calls_after_kill: around.calls_after,
            failed_after_kill: around.errors_after.values().sum(),
            errors_after_kill: around.errors_after,
            window_s: KILL_WINDOW.as_secs_f64(),
            before: around.before,
            after: around.after,
            restarted: kill.restarted,
            ready_again_s: kill.ready_again.map(|d| d.as_secs_f64()),
            routed_after_ready,
            note: kill.note,
        };
        Ok(Extras {
            targets: vec![report],
            failover: Some(failover),
            ..Extras::default()
        })
    }

    /// After the scenario: flushes the `switchboard+otel` target's telemetry and reports what
    /// its exporters received.
    async fn telemetry_report(&self) -> Option<TelemetryReport> {
        let (telemetry, exported) = self.otel.clone()?;
        let calls = self
            .targets
            .iter()
            .find(|t| t.kind == TargetKind::StackOtel)
            .map_or(0, |t| t.issued());
        // The SDK's flush blocks until the exporters have run.
        let flushed = tokio::task::spawn_blocking(move || telemetry.force_flush()).await;
        if !matches!(flushed, Ok(Ok(()))) {
            self.progress
                .line(&format!("telemetry flush failed: {flushed:?}"));
        }
        let counts = exported.snapshot();
        Some(TelemetryReport {
            calls,
            spans_exported: counts.spans,
            span_batches: counts.span_batches,
            spans_per_call: counts.spans as f64 / calls.max(1) as f64,
            metric_exports: counts.metric_exports,
            metrics_in_last_export: counts.last_export_metrics,
            metric_interval_s: otel::METRIC_INTERVAL.as_secs_f64(),
        })
    }

    /// Stops everything and checks what is left.
    async fn teardown(&mut self, fds_before: Option<usize>) -> Cleanup {
        for i in 0..self.targets.len() {
            let pids = self.server_pids(i);
            self.pids.extend(pids);
        }
        for target in &self.targets {
            target.switchboard.shutdown().await;
        }
        self.targets.clear();
        if let Some((telemetry, _)) = self.otel.take() {
            // Stops the exporters' threads (the SDK's shutdown blocks).
            let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
        }
        std::mem::take(&mut self.servers).stop().await;
        let deadline = Instant::now() + Duration::from_secs(3);
        let leaked = loop {
            let mut leaked: BTreeSet<u32> = self
                .pids
                .iter()
                .copied()
                .filter(|p| system::is_alive(*p))
                .collect();
            leaked.extend(
                system::child_processes()
                    .into_iter()
                    .filter(|p| system::is_alive(*p)),
            );
            if leaked.is_empty() || Instant::now() >= deadline {
                break leaked;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // Let dropped tasks close their descriptors.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let zombies = system::child_processes()
            .into_iter()
            .filter(|p| !system::is_alive(*p))
            .count();
        Cleanup {
            fds_before,
            fds_after: system::open_fds(),
            leaked_processes: leaked.into_iter().collect(),
            zombies,
            live_process_groups: switchboard::transport::live_process_groups(),
        }
    }
}

/// Kills a replica at a point of the measured load and watches it come back.
struct Killer {
    target: Arc<Target>,
    victim: String,
    /// When: time from `origin`, or calls started since `issued_at_start`.
    at: Budget,
    origin: Instant,
    issued_at_start: u64,
    /// The victim's HTTP server process, if it runs over HTTP.
    http: Option<HttpServer>,
}

/// What the killer did.
struct Kill {
    /// When it killed, from the start of the measurement.
    at: Option<Duration>,
    restarted: bool,
    /// From the kill to the replica's next ready session.
    ready_again: Option<Duration>,
    /// Attempts routed to each member when the replica was ready again.
    routed_at_ready: Option<BTreeMap<String, u64>>,
    /// The HTTP server to stop at the end: the restarted one, or the killed one.
    http: Option<HttpServer>,
    note: Option<String>,
}

impl Killer {
    /// Waits for the kill point (or the end of the load, `done`), kills, marks `recorder`,
    /// and waits until the replica is ready again (at most [`READY_GRACE`] after the load).
    async fn run(self, recorder: &Recorder, done: &AtomicBool) -> Kill {
        let Self {
            target,
            victim,
            at,
            origin,
            issued_at_start,
            mut http,
        } = self;
        let mut kill = Kill {
            at: None,
            restarted: false,
            ready_again: None,
            routed_at_ready: None,
            http: None,
            note: None,
        };
        loop {
            if done.load(Ordering::Relaxed) {
                kill.http = http;
                return kill;
            }
            let due = match at {
                Budget::Time(d) => origin.elapsed() >= d,
                Budget::Calls(n) => target.issued().saturating_sub(issued_at_start) >= n,
            };
            if due {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let connection = match target.switchboard.connection(&victim) {
            Ok(connection) => connection.clone(),
            Err(error) => {
                kill.note = Some(format!("cannot find {victim}: {error}"));
                kill.http = http;
                return kill;
            }
        };
        let before = connection.status();
        let killed = Instant::now();
        match http.as_mut() {
            Some(server) => {
                recorder.mark(killed);
                server.kill().await;
            }
            None => {
                let Some(pid) = before.pid.and_then(|p| i32::try_from(p).ok()) else {
                    kill.note = Some(format!("{victim} has no process id"));
                    return kill;
                };
                recorder.mark(killed);
                let signal = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                if let Err(error) = signal {
                    kill.note = Some(format!("cannot kill {victim} (pid {pid}): {error}"));
                    return kill;
                }
            }
        }
        kill.at = Some(killed.saturating_duration_since(origin));
        kill.http = match http {
            Some(old) => match old.restart().await {
                Ok(new) => {
                    kill.restarted = true;
                    Some(new)
                }
                Err(error) => {
                    kill.note = Some(format!("{victim} could not be restarted: {error:#}"));
                    Some(old)
                }
            },
            None => None,
        };
        let mut load_ended: Option<Instant> = None;
        loop {
            let status = connection.status();
            if status.state == switchboard::transport::ConnectionState::Ready
                && status.generation > before.generation
            {
                kill.ready_again = Some(killed.elapsed());
                kill.routed_at_ready = Some(routed(&target.switchboard));
                // Over stdio the supervisor restarted it.
                kill.restarted = true;
                return kill;
            }
            if done.load(Ordering::Relaxed) {
                let ended = *load_ended.get_or_insert_with(Instant::now);
                if ended.elapsed() > READY_GRACE {
                    return kill;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Attempts each server's router sent to it so far (`PolicyStats::routed`).
fn routed(switchboard: &Switchboard) -> BTreeMap<String, u64> {
    switchboard
        .servers()
        .into_iter()
        .map(|s| (s.name.to_string(), s.stats.routed))
        .collect()
}

/// The cache section, from the counters of the Switchboard target (the first with counters).
fn cache_report(targets: &[TargetReport], keys: u64, ttl: Duration) -> Option<CacheReport> {
    let counters = targets.iter().find_map(|t| t.stack_counters.as_ref())?;
    let get = |name: &str| counters.get(name).copied().unwrap_or(0);
    let (hits, misses) = (get("cache_hits"), get("cache_misses"));
    let lookups = hits + misses;
    let ratio = |n: u64| n as f64 / lookups.max(1) as f64;
    Some(CacheReport {
        keys,
        ttl_s: ttl.as_secs_f64(),
        lookups,
        hits,
        misses,
        coalesced: get("cache_coalesced"),
        loads: get("cache_loads"),
        stale_served: get("cache_stale_served"),
        hit_ratio: ratio(hits),
        coalesced_ratio: ratio(get("cache_coalesced")),
        load_ratio: ratio(get("cache_loads")),
    })
}

fn phase_line(label: &str, phase: &Phase) -> String {
    let p = Percentiles::of(&phase.recorded.latency);
    format!(
        "{label}: {} calls in {:.2} s, {:.0} calls/s, p50 {}, p99 {}, {} errors",
        phase.recorded.calls(),
        phase.elapsed.as_secs_f64(),
        phase.throughput(),
        format_us(p.p50_us),
        format_us(p.p99_us),
        phase.recorded.failed()
    )
}

fn cpu_of(pids: &[u32]) -> Option<Duration> {
    if pids.is_empty() {
        return None;
    }
    pids.iter()
        .map(|p| system::cpu_time(&p.to_string()))
        .sum::<Option<Duration>>()
}

fn rss_of(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter()
        .map(|p| system::rss_bytes(&p.to_string()))
        .sum::<Option<u64>>()
}

/// Resident memory at the start and at the end of a run: the medians of the samples of its
/// first and of its last tenth (at least one sample each). `None` without samples.
fn steady_memory(samples: &[(f64, u64)]) -> Option<(u64, u64)> {
    let window = (samples.len() / 10).max(1);
    let median_of = |part: &[(f64, u64)]| -> Option<u64> {
        let mut values: Vec<u64> = part.iter().map(|s| s.1).collect();
        values.sort_unstable();
        values.get(values.len() / 2).copied()
    };
    let start = median_of(samples.get(..window)?)?;
    let end = median_of(samples.get(samples.len().saturating_sub(window)..)?)?;
    Some((start, end))
}

/// Least-squares slope of (seconds, bytes) samples, in MiB per minute.
fn slope_mib_per_min(samples: &[(f64, u64)]) -> f64 {
    let n = samples.len() as f64;
    if samples.len() < 2 {
        return 0.0;
    }
    let mean_t = samples.iter().map(|s| s.0).sum::<f64>() / n;
    let mean_m = samples.iter().map(|s| s.1 as f64).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (t, m) in samples {
        num += (t - mean_t) * (*m as f64 - mean_m);
        den += (t - mean_t).powi(2);
    }
    if den == 0.0 {
        return 0.0;
    }
    num / den * 60.0 / (1024.0 * 1024.0)
}

/// The comparison's candidate against its baseline (see [`pair`]), when both ran.
fn compare(targets: &[TargetReport]) -> Option<Comparison> {
    let kinds: Vec<TargetKind> = targets.iter().map(|t| t.kind).collect();
    let (baseline, candidate) = pair(&kinds)?;
    let base = targets.iter().find(|t| t.kind == baseline)?;
    let cand = targets.iter().find(|t| t.kind == candidate)?;
    let round_ratios: Vec<f64> = base
        .rounds
        .iter()
        .zip(&cand.rounds)
        .map(|(b, c)| c.throughput / b.throughput.max(1e-9))
        .collect();
    let round_p50: Vec<f64> = base
        .rounds
        .iter()
        .zip(&cand.rounds)
        .map(|(b, c)| c.p50_us - b.p50_us)
        .collect();
    Some(Comparison {
        baseline: base.name.clone(),
        candidate: cand.name.clone(),
        throughput_ratio: cand.throughput / base.throughput.max(1e-9),
        round_ratio_median: median(&round_ratios),
        round_ratios,
        added_p50_us: cand.latency.p50_us - base.latency.p50_us,
        added_p90_us: cand.latency.p90_us - base.latency.p90_us,
        added_p99_us: cand.latency.p99_us - base.latency.p99_us,
        added_p50_round_median_us: median(&round_p50),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_memory_takes_medians_of_the_first_and_last_tenths() {
        let mut samples: Vec<(f64, u64)> = (0..100).map(|t| (f64::from(t), 100)).collect();
        samples[0].1 = 50; // the recorder being allocated
        samples[99].1 = 500; // the results being put together
        samples[95].1 = 110;
        assert_eq!(steady_memory(&samples), Some((100, 100)));
        assert_eq!(steady_memory(&samples[..1]), Some((50, 50)));
        assert_eq!(steady_memory(&[]), None);
    }

    #[test]
    fn slope_of_a_line() {
        let mib = 1024 * 1024;
        let samples: Vec<(f64, u64)> = (0..10)
            .map(|s| (f64::from(s) * 6.0, 100 * mib + s as u64 * mib))
            .collect();
        assert!((slope_mib_per_min(&samples) - 10.0).abs() < 1e-9);
        assert_eq!(slope_mib_per_min(&samples[..1]), 0.0);
    }
}
