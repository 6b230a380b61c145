//! Choosing one replica of a group for each call.
//!
//! A [`Router`] holds the replicas of one group (servers that offer the same tools) with their
//! live load: a peak-EWMA latency estimate and the calls in flight. [`Router::pick`] chooses a
//! replica for a call by the group's [`Strategy`], skipping replicas already tried for this call,
//! replicas whose health says they are out, and replicas that lack the tags the call needs.
//! Every choice comes with a reason, so that it can be recorded on the call's span.
//!
//! The default strategy is power-of-two-choices over peak-EWMA latency weighted by in-flight
//! calls (Finagle's and agentgateway's balancer): two random candidates, the cheaper one wins,
//! so a slow replica gets less traffic without starving.

use std::{
    collections::BTreeSet,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use rand::Rng;
use serde::{Deserialize, Serialize};

/// How a group chooses among its replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Power of two choices over peak-EWMA latency × (in-flight + 1). The default.
    #[default]
    P2c,
    /// Each replica in turn.
    RoundRobin,
    /// Random, in proportion to each replica's weight.
    Weighted,
    /// The first available replica in priority order (lowest number first); the others are
    /// failover targets.
    Priority,
    /// Replicas in the caller's zone, else its region, else any; P2C within the chosen tier.
    Locality,
}

impl Strategy {
    /// The strategy's configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::P2c => "p2c",
            Self::RoundRobin => "round_robin",
            Self::Weighted => "weighted",
            Self::Priority => "priority",
            Self::Locality => "locality",
        }
    }
}

/// A replica's static description.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplicaInfo {
    /// Its name (the server name).
    pub name: String,
    /// Relative weight for [`Strategy::Weighted`] (default 1; 0 takes no traffic unless nothing
    /// else is available).
    pub weight: u32,
    /// Priority for [`Strategy::Priority`]; lower goes first.
    pub priority: u32,
    /// Region, for [`Strategy::Locality`].
    pub region: Option<String>,
    /// Zone within the region, for [`Strategy::Locality`].
    pub zone: Option<String>,
    /// Operator tags and declared capabilities; a call can require some.
    pub tags: BTreeSet<String>,
}

impl ReplicaInfo {
    /// A replica with weight 1 and no placement.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            weight: 1,
            ..Self::default()
        }
    }
}

/// What a call asks of the router.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteRequest<'a> {
    /// Replicas already tried for this call (indices), never chosen again.
    pub exclude: &'a [usize],
    /// The caller's region.
    pub region: Option<&'a str>,
    /// The caller's zone.
    pub zone: Option<&'a str>,
    /// Tags a replica must all have.
    pub required_tags: &'a [String],
}

/// Why a replica was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The only candidate.
    Only,
    /// Power of two choices: it had the lower cost of two random candidates.
    LowerCost,
    /// Its turn in round robin.
    Turn,
    /// Drawn by weight.
    Weight,
    /// The first available by priority.
    Priority,
    /// In the caller's zone.
    SameZone,
    /// In the caller's region (no replica available in the zone).
    SameRegion,
    /// Outside the caller's region (none available nearer).
    Remote,
    /// Chosen although unhealthy: most replicas look unhealthy (panic mode), so health is
    /// ignored rather than shedding all traffic.
    Panic,
}

impl Reason {
    /// A short stable name, for span attributes and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Only => "only",
            Self::LowerCost => "lower_cost",
            Self::Turn => "turn",
            Self::Weight => "weight",
            Self::Priority => "priority",
            Self::SameZone => "same_zone",
            Self::SameRegion => "same_region",
            Self::Remote => "remote",
            Self::Panic => "panic",
        }
    }
}

/// A routing decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    /// Index of the chosen replica.
    pub replica: usize,
    /// Why.
    pub reason: Reason,
}

/// Decay time of the latency estimate (Finagle's default).
const EWMA_DECAY: Duration = Duration::from_secs(10);
/// Latency assumed for a replica with no measurement yet, so that new replicas get traffic.
const DEFAULT_LATENCY: Duration = Duration::from_millis(1);

/// Live load of one replica.
#[derive(Debug)]
struct Load {
    /// Peak-EWMA latency in nanoseconds.
    ewma_ns: AtomicU64,
    /// When the estimate was last updated, as nanoseconds since the router's epoch.
    stamp_ns: AtomicU64,
    in_flight: AtomicU32,
    /// Whether health allows traffic.
    available: std::sync::atomic::AtomicBool,
}

/// The replicas of one group and their load.
#[derive(Debug)]
pub struct Router {
    strategy: Strategy,
    replicas: Vec<ReplicaInfo>,
    load: Vec<Load>,
    epoch: Instant,
    next: AtomicUsize,
    panic_threshold: f64,
    rng: Mutex<rand::rngs::SmallRng>,
}

impl Router {
    /// A router over `replicas`. `panic_threshold` (default 0.5 in the config): when fewer than
    /// this share of the replicas are available, health is ignored.
    pub fn new(strategy: Strategy, replicas: Vec<ReplicaInfo>, panic_threshold: f64) -> Self {
        let load = replicas
            .iter()
            .map(|_| Load {
                ewma_ns: AtomicU64::new(duration_ns(DEFAULT_LATENCY)),
                stamp_ns: AtomicU64::new(0),
                in_flight: AtomicU32::new(0),
                available: std::sync::atomic::AtomicBool::new(true),
            })
            .collect();
        Self {
            strategy,
            replicas,
            load,
            epoch: Instant::now(),
            next: AtomicUsize::new(0),
            panic_threshold,
            rng: Mutex::new(rand::SeedableRng::from_os_rng()),
        }
    }

    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The replicas.
    pub fn replicas(&self) -> &[ReplicaInfo] {
        &self.replicas
    }

    /// Marks a replica available or not (from health checking).
    pub fn set_available(&self, replica: usize, available: bool) {
        if let Some(load) = self.load.get(replica) {
            load.available.store(available, Ordering::Relaxed);
        }
    }

    /// Whether health allows traffic to a replica.
    pub fn is_available(&self, replica: usize) -> bool {
        self.load
            .get(replica)
            .is_some_and(|l| l.available.load(Ordering::Relaxed))
    }

    /// Calls in flight on a replica.
    pub fn in_flight(&self, replica: usize) -> u32 {
        self.load
            .get(replica)
            .map_or(0, |l| l.in_flight.load(Ordering::Relaxed))
    }

    /// The current latency estimate of a replica.
    pub fn latency(&self, replica: usize) -> Duration {
        self.load.get(replica).map_or(Duration::ZERO, |l| {
            Duration::from_nanos(l.ewma_ns.load(Ordering::Relaxed))
        })
    }

    /// Marks the start of a call on `replica`; the guard records its latency when finished.
    pub fn start(&self, replica: usize) -> CallGuard<'_> {
        if let Some(load) = self.load.get(replica) {
            load.in_flight.fetch_add(1, Ordering::Relaxed);
        }
        CallGuard {
            router: self,
            replica,
            started: Instant::now(),
            done: false,
        }
    }

    fn observe(&self, replica: usize, rtt: Duration) {
        let Some(load) = self.load.get(replica) else {
            return;
        };
        let now = duration_ns(self.epoch.elapsed());
        let rtt = duration_ns(rtt);
        let last = load.stamp_ns.swap(now, Ordering::Relaxed);
        let old = load.ewma_ns.load(Ordering::Relaxed);
        let new = if rtt > old {
            // Peak: jump up at once, decay slowly.
            rtt
        } else {
            let elapsed = now.saturating_sub(last) as f64;
            let w = (-elapsed / duration_ns(EWMA_DECAY) as f64).exp();
            (old as f64 * w + rtt as f64 * (1.0 - w)) as u64
        };
        load.ewma_ns.store(new, Ordering::Relaxed);
    }

    /// Forgets what was measured of a replica (its server restarted: a new process, a new
    /// session): it starts again from the default latency estimate.
    pub fn reset(&self, replica: usize) {
        if let Some(load) = self.load.get(replica) {
            load.ewma_ns
                .store(duration_ns(DEFAULT_LATENCY), Ordering::Relaxed);
            load.stamp_ns
                .store(duration_ns(self.epoch.elapsed()), Ordering::Relaxed);
        }
    }

    /// Peak-EWMA latency × (calls in flight + 1). The estimate decays with the time since the
    /// replica's last finished call, as if it had been answering in no time since (Finagle's
    /// peak EWMA): a replica that stopped getting calls after a slow or failed one is tried
    /// again in time instead of being ignored for good.
    fn cost(&self, replica: usize) -> f64 {
        let load = &self.load[replica];
        let now = duration_ns(self.epoch.elapsed());
        let idle = now.saturating_sub(load.stamp_ns.load(Ordering::Relaxed)) as f64;
        let decay = (-idle / duration_ns(EWMA_DECAY) as f64).exp();
        let ewma = load.ewma_ns.load(Ordering::Relaxed) as f64 * decay;
        ewma * f64::from(load.in_flight.load(Ordering::Relaxed) + 1)
    }

    /// Chooses a replica for a call, or `None` when every replica is excluded or lacks a
    /// required tag.
    pub fn pick(&self, request: &RouteRequest<'_>) -> Option<Pick> {
        let eligible: Vec<usize> = (0..self.replicas.len())
            .filter(|i| !request.exclude.contains(i))
            .filter(|&i| {
                request
                    .required_tags
                    .iter()
                    .all(|t| self.replicas[i].tags.contains(t))
            })
            .collect();
        if eligible.is_empty() {
            return None;
        }
        let healthy: Vec<usize> = eligible
            .iter()
            .copied()
            .filter(|&i| self.is_available(i))
            .collect();
        let total_available = (0..self.replicas.len())
            .filter(|&i| self.is_available(i))
            .count();
        let panic = (total_available as f64) < self.panic_threshold * self.replicas.len() as f64;
        let (candidates, panicking) = if healthy.is_empty() || panic {
            (eligible, true)
        } else {
            (healthy, false)
        };
        let pick = self.choose(&candidates, request)?;
        Some(if panicking && !self.is_available(pick.replica) {
            Pick {
                replica: pick.replica,
                reason: Reason::Panic,
            }
        } else {
            pick
        })
    }

    fn choose(&self, candidates: &[usize], request: &RouteRequest<'_>) -> Option<Pick> {
        if self.strategy == Strategy::Locality {
            // Locality says how near the choice is, even when there is one candidate.
            return self.locality(candidates, request);
        }
        if let [only] = candidates {
            return Some(Pick {
                replica: *only,
                reason: Reason::Only,
            });
        }
        match self.strategy {
            Strategy::P2c => self.p2c(candidates),
            Strategy::RoundRobin => {
                let turn = self.next.fetch_add(1, Ordering::Relaxed);
                Some(Pick {
                    replica: candidates[turn % candidates.len()],
                    reason: Reason::Turn,
                })
            }
            Strategy::Weighted => self.weighted(candidates),
            Strategy::Priority => candidates
                .iter()
                .min_by_key(|&&i| (self.replicas[i].priority, i))
                .map(|&replica| Pick {
                    replica,
                    reason: Reason::Priority,
                }),
            Strategy::Locality => self.locality(candidates, request),
        }
    }

    fn p2c(&self, candidates: &[usize]) -> Option<Pick> {
        let (a, b) = {
            let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
            let a = rng.random_range(0..candidates.len());
            let mut b = rng.random_range(0..candidates.len() - 1);
            if b >= a {
                b += 1;
            }
            (candidates[a], candidates[b])
        };
        let replica = if self.cost(b) < self.cost(a) { b } else { a };
        Some(Pick {
            replica,
            reason: Reason::LowerCost,
        })
    }

    fn weighted(&self, candidates: &[usize]) -> Option<Pick> {
        let total: u64 = candidates
            .iter()
            .map(|&i| u64::from(self.replicas[i].weight))
            .sum();
        if total == 0 {
            return self.p2c(candidates);
        }
        let mut draw = self
            .rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .random_range(0..total);
        for &i in candidates {
            let w = u64::from(self.replicas[i].weight);
            if draw < w {
                return Some(Pick {
                    replica: i,
                    reason: Reason::Weight,
                });
            }
            draw -= w;
        }
        None
    }

    fn locality(&self, candidates: &[usize], request: &RouteRequest<'_>) -> Option<Pick> {
        let same = |i: usize, zone: bool| {
            let r = &self.replicas[i];
            let region_ok = request.region.is_some() && r.region.as_deref() == request.region;
            if zone {
                region_ok && request.zone.is_some() && r.zone.as_deref() == request.zone
            } else {
                region_ok
            }
        };
        let tiers = [
            (
                Reason::SameZone,
                candidates
                    .iter()
                    .copied()
                    .filter(|&i| same(i, true))
                    .collect::<Vec<_>>(),
            ),
            (
                Reason::SameRegion,
                candidates
                    .iter()
                    .copied()
                    .filter(|&i| same(i, false))
                    .collect(),
            ),
            (Reason::Remote, candidates.to_vec()),
        ];
        let (reason, tier) = tiers.into_iter().find(|(_, t)| !t.is_empty())?;
        let replica = match tier.as_slice() {
            [only] => *only,
            many => self.p2c(many)?.replica,
        };
        Some(Pick { replica, reason })
    }
}

/// An in-flight call on a replica; records its latency and ends the in-flight count.
#[derive(Debug)]
pub struct CallGuard<'a> {
    router: &'a Router,
    replica: usize,
    started: Instant,
    done: bool,
}

impl CallGuard<'_> {
    /// Ends the call; its latency updates the replica's estimate. A failure counts as the
    /// replica's timeout-sized latency only if the caller passes one (`penalty`), so that
    /// fast-failing replicas do not look attractive.
    pub fn finish(mut self, penalty: Option<Duration>) {
        let rtt = self.started.elapsed().max(penalty.unwrap_or_default());
        self.router.observe(self.replica, rtt);
        self.end();
    }

    fn end(&mut self) {
        if !self.done {
            self.done = true;
            if let Some(load) = self.router.load.get(self.replica) {
                load.in_flight.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        self.end();
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replicas(n: usize) -> Vec<ReplicaInfo> {
        (0..n).map(|i| ReplicaInfo::new(format!("r{i}"))).collect()
    }

    #[test]
    fn p2c_prefers_the_faster_replica() {
        let router = Router::new(Strategy::P2c, replicas(2), 0.5);
        router.observe(0, Duration::from_millis(100));
        router.observe(1, Duration::from_millis(1));
        let mut counts = [0; 2];
        for _ in 0..1000 {
            counts[router.pick(&RouteRequest::default()).expect("pick").replica] += 1;
        }
        assert_eq!(
            counts,
            [0, 1000],
            "with two replicas P2C compares both every time"
        );
    }

    #[test]
    fn a_penalised_replica_is_tried_again_after_a_reset_or_in_time() {
        let mut router = Router::new(Strategy::P2c, replicas(2), 0.5);
        // Pretend the router has been up for two minutes, so that stamps can go back one.
        if let Some(earlier) = router.epoch.checked_sub(Duration::from_secs(120)) {
            router.epoch = earlier;
        }
        let router = router;
        let pick = || router.pick(&RouteRequest::default()).expect("pick").replica;
        // A failure weighs like a one-second call.
        router.observe(0, Duration::from_secs(1));
        router.observe(1, Duration::from_micros(500));
        assert!((0..100).all(|_| pick() == 1));
        // Its server restarted.
        router.reset(0);
        router.observe(1, Duration::from_millis(2));
        assert!((0..100).all(|_| pick() == 0), "fresh estimate wins");

        // Without a restart, the estimate decays while the replica gets no calls: a minute
        // after its last call the penalty is down to 1 s × e⁻⁶ ≈ 2.5 ms.
        router.observe(0, Duration::from_secs(1));
        assert!((0..100).all(|_| pick() == 1));
        let minute_ago = router.load[0]
            .stamp_ns
            .load(Ordering::Relaxed)
            .saturating_sub(duration_ns(Duration::from_secs(60)));
        router.load[0].stamp_ns.store(minute_ago, Ordering::Relaxed);
        router.load[1]
            .ewma_ns
            .store(duration_ns(Duration::from_millis(5)), Ordering::Relaxed);
        assert!((0..100).all(|_| pick() == 0), "decayed estimate wins");
    }

    #[test]
    fn p2c_spreads_by_in_flight_load() {
        let router = Router::new(Strategy::P2c, replicas(3), 0.5);
        let _busy: Vec<_> = (0..10).map(|_| router.start(0)).collect();
        let mut counts = [0; 3];
        for _ in 0..3000 {
            counts[router.pick(&RouteRequest::default()).expect("pick").replica] += 1;
        }
        assert!(counts[0] < 100, "{counts:?}");
        assert!(counts[1] > 1000 && counts[2] > 1000, "{counts:?}");
    }

    #[test]
    fn excluded_and_untagged_replicas_are_skipped() {
        let mut r = replicas(3);
        r[2].tags.insert("gpu".to_owned());
        let router = Router::new(Strategy::RoundRobin, r, 0.5);
        let tags = vec!["gpu".to_owned()];
        let pick = router
            .pick(&RouteRequest {
                required_tags: &tags,
                ..RouteRequest::default()
            })
            .expect("pick");
        assert_eq!(
            pick,
            Pick {
                replica: 2,
                reason: Reason::Only
            }
        );
        assert!(
            router
                .pick(&RouteRequest {
                    exclude: &[2],
                    required_tags: &tags,
                    ..RouteRequest::default()
                })
                .is_none()
        );
        let pick = router
            .pick(&RouteRequest {
                exclude: &[0, 1],
                ..RouteRequest::default()
            })
            .expect("pick");
        assert_eq!(pick.replica, 2);
    }

    #[test]
    fn unhealthy_replicas_are_avoided_until_most_are_unhealthy() {
        let router = Router::new(Strategy::RoundRobin, replicas(4), 0.5);
        router.set_available(0, false);
        for _ in 0..20 {
            assert_ne!(
                router.pick(&RouteRequest::default()).expect("pick").replica,
                0
            );
        }
        router.set_available(1, false);
        router.set_available(2, false);
        // 1 of 4 available < 50 %: panic mode ignores health.
        let mut seen = BTreeSet::new();
        for _ in 0..20 {
            let pick = router.pick(&RouteRequest::default()).expect("pick");
            seen.insert(pick.replica);
            if pick.replica != 3 {
                assert_eq!(pick.reason, Reason::Panic);
            }
        }
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn locality_prefers_zone_then_region_then_any() {
        let mut r = replicas(3);
        r[0].region = Some("eu".into());
        r[0].zone = Some("eu-a".into());
        r[1].region = Some("eu".into());
        r[1].zone = Some("eu-b".into());
        r[2].region = Some("us".into());
        let router = Router::new(Strategy::Locality, r, 0.0);
        let request = RouteRequest {
            region: Some("eu"),
            zone: Some("eu-a"),
            ..RouteRequest::default()
        };
        assert_eq!(
            router.pick(&request),
            Some(Pick {
                replica: 0,
                reason: Reason::SameZone
            })
        );
        let request = RouteRequest {
            exclude: &[0],
            ..request
        };
        assert_eq!(
            router.pick(&request),
            Some(Pick {
                replica: 1,
                reason: Reason::SameRegion
            })
        );
        let request = RouteRequest {
            exclude: &[0, 1],
            ..request
        };
        assert_eq!(
            router.pick(&request),
            Some(Pick {
                replica: 2,
                reason: Reason::Remote
            })
        );
    }

    #[test]
    fn priority_and_weights() {
        let mut r = replicas(3);
        r[0].priority = 2;
        r[1].priority = 1;
        r[2].priority = 3;
        let router = Router::new(Strategy::Priority, r.clone(), 0.5);
        assert_eq!(
            router.pick(&RouteRequest::default()).map(|p| p.replica),
            Some(1)
        );
        assert_eq!(
            router
                .pick(&RouteRequest {
                    exclude: &[1],
                    ..RouteRequest::default()
                })
                .map(|p| p.replica),
            Some(0)
        );
        r[0].weight = 0;
        r[1].weight = 3;
        r[2].weight = 1;
        let router = Router::new(Strategy::Weighted, r, 0.5);
        let mut counts = [0; 3];
        for _ in 0..4000 {
            counts[router.pick(&RouteRequest::default()).expect("pick").replica] += 1;
        }
        assert_eq!(counts[0], 0);
        assert!(counts[1] > 2500 && counts[2] > 700, "{counts:?}");
    }

    #[test]
    fn guard_tracks_in_flight_and_latency() {
        let router = Router::new(Strategy::P2c, replicas(1), 0.5);
        let guard = router.start(0);
        assert_eq!(router.in_flight(0), 1);
        guard.finish(Some(Duration::from_millis(50)));
        assert_eq!(router.in_flight(0), 0);
        assert!(router.latency(0) >= Duration::from_millis(50));
        {
            let _dropped = router.start(0);
            assert_eq!(router.in_flight(0), 1);
        }
        assert_eq!(router.in_flight(0), 0);
    }
}
