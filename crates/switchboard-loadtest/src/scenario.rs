//! The scenarios: setting up targets, warm-up, measured rounds, and what each scenario adds.
//!
//! Adding a scenario (`failover` and `cache` are the next ones): a variant of
//! [`Scenario`](crate::options::Scenario) with its defaults in
//! [`Settings::resolve`](crate::options::Settings::resolve), a branch in [`Run::scenario`]
//! that sets up its servers and workload (the building blocks are [`Run::setup_testkit`],
//! [`Run::warm_up`], [`Run::measure`] and [`Run::phase`]), and, for figures that are not
//! per-target latency and errors, an optional section in [`Report`].

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::Result;
use switchboard::Switchboard;
use tokio::time::Instant;

use crate::{
    load,
    options::{Budget, Options, Scenario, Schedule, Settings, Shape, Targets, Transport},
    progress::Progress,
    record::{Percentiles, Recorded, Recorder, bins},
    report::{
        Cleanup, Comparison, ManyServersReport, RampReport, RampStep, Report, RoundReport,
        SoakReport, TargetReport, format_us, median,
    },
    servers::{Servers, locate_testkit},
    system::{self, Machine},
    target::{CallSpec, Target, TargetKind, Workload},
};

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
    let targets = if settings.targets == Targets::Both {
        2
    } else {
        1
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
}

impl Run<'_> {
    async fn scenario(&mut self) -> Result<Extras> {
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
        }
    }

    fn kinds(&self) -> Vec<TargetKind> {
        match self.settings.targets {
            Targets::Both => vec![TargetKind::Raw, TargetKind::Stack],
            Targets::Stack => vec![TargetKind::Stack],
            Targets::Raw => vec![TargetKind::Raw],
        }
    }

    /// One target per kind, each over its own servers (testkit or `--config`).
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
        for kind in self.kinds() {
            let switchboard = match &s.config {
                Some(path) => self.servers.config(path).await?,
                None => {
                    self.setup_testkit(|_| "testkit".to_owned(), 1, &server_args)
                        .await?
                }
            };
            self.add_target(kind, switchboard, workload.clone())?;
        }
        Ok(())
    }

    /// Starts `count` testkit servers behind a new Switchboard.
    async fn setup_testkit(
        &mut self,
        names: impl Fn(usize) -> String,
        count: usize,
        args: &[String],
    ) -> Result<Switchboard> {
        let testkit = self
            .testkit
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::servers::TESTKIT));
        let transport = self.settings.transport.unwrap_or(Transport::Stdio);
        let before = self.servers.http_pids().len();
        let switchboard = self
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
        Ok(switchboard)
    }

    fn add_target(
        &mut self,
        kind: TargetKind,
        switchboard: Switchboard,
        workload: Workload,
    ) -> Result<()> {
        if self.http_pids.len() <= self.targets.len() {
            self.http_pids.push(Vec::new());
        }
        let target = Target::new(kind, switchboard, workload, self.settings.deadline)?;
        self.pids.extend(target.server_pids());
        self.targets.push(Arc::new(target));
        Ok(())
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
        let target = Arc::clone(&self.targets[i]);
        let recorder = Arc::new(Recorder::new(self.origin, self.bucket));
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
        let rss_end = system::own_rss().unwrap_or(0);
        let fds_end = system::open_fds();
        let all_pids_end: Vec<u32> = (0..self.targets.len())
            .flat_map(|i| self.server_pids(i))
            .collect();
        let server_rss_end = rss_of(&all_pids_end);
        let mut samples =
            std::mem::take(&mut *samples.lock().unwrap_or_else(PoisonError::into_inner));
        samples.push((self.origin.elapsed().as_secs_f64(), rss_end));
        let rss_max = samples.iter().map(|s| s.1).max().unwrap_or(rss_end);
        let growth_percent = if rss_after_warmup == 0 {
            0.0
        } else {
            (rss_end as f64 - rss_after_warmup as f64) * 100.0 / rss_after_warmup as f64
        };
        Ok(Extras {
            targets,
            soak: Some(SoakReport {
                rss_after_warmup,
                rss_end,
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
        let switchboard = self
            .setup_testkit(|k| format!("s{k}"), count, &s.server_args)
            .await?;
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

/// Switchboard against raw rmcp, when both ran.
fn compare(targets: &[TargetReport]) -> Option<Comparison> {
    let raw = targets.iter().find(|t| t.kind == TargetKind::Raw)?;
    let stack = targets.iter().find(|t| t.kind == TargetKind::Stack)?;
    let round_ratios: Vec<f64> = raw
        .rounds
        .iter()
        .zip(&stack.rounds)
        .map(|(r, s)| s.throughput / r.throughput.max(1e-9))
        .collect();
    let round_p50: Vec<f64> = raw
        .rounds
        .iter()
        .zip(&stack.rounds)
        .map(|(r, s)| s.p50_us - r.p50_us)
        .collect();
    Some(Comparison {
        throughput_ratio: stack.throughput / raw.throughput.max(1e-9),
        round_ratio_median: median(&round_ratios),
        round_ratios,
        added_p50_us: stack.latency.p50_us - raw.latency.p50_us,
        added_p90_us: stack.latency.p90_us - raw.latency.p90_us,
        added_p99_us: stack.latency.p99_us - raw.latency.p99_us,
        added_p50_round_median_us: median(&round_p50),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
