//! Server health from real traffic first, active probes second.
//!
//! A [`HealthTracker`] follows one server. Real calls feed it ([`HealthTracker::record`]):
//! consecutive failures beyond `unhealthy_threshold` eject the server for a back-off that grows
//! with each ejection (Envoy's outlier detection); an EWMA of the success rate is kept for
//! display. Active probes are only due for servers that are idle or ejected
//! ([`HealthTracker::probe_due`]), at jittered intervals; `healthy_threshold` consecutive
//! successful probes (or real calls) bring an ejected server back early.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

/// Health checking settings.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    /// Consecutive failures that eject a server. Default 5 (Envoy's `consecutive_5xx`).
    pub unhealthy_threshold: u32,
    /// Consecutive successes (probes or calls) that bring an ejected server back. Default 2.
    pub healthy_threshold: u32,
    /// First ejection time; doubled on each further ejection. Default 5 s.
    pub base_ejection: Duration,
    /// Longest ejection time. Default 5 min.
    pub max_ejection: Duration,
    /// Interval between active probes of an idle or ejected server, ±10 % jitter. Default 10 s.
    pub probe_interval: Duration,
    /// A server with no traffic for this long is probed. Default 30 s.
    pub idle_after: Duration,
    /// When fewer than this share of a group's replicas are healthy, routing ignores health
    /// (panic mode) rather than shedding everything. Default 0.5.
    pub panic_threshold: f64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            unhealthy_threshold: 5,
            healthy_threshold: 2,
            base_ejection: Duration::from_secs(5),
            max_ejection: Duration::from_secs(300),
            probe_interval: Duration::from_secs(10),
            idle_after: Duration::from_secs(30),
            panic_threshold: 0.5,
        }
    }
}

/// A server's health as shown to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Taking traffic.
    Healthy,
    /// Ejected after failures; back at `until`, or earlier after successful probes.
    Ejected,
}

impl HealthState {
    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Ejected => "ejected",
        }
    }
}

/// A snapshot of one server's health.
#[derive(Debug, Clone, Serialize)]
pub struct HealthSnapshot {
    /// Current state.
    pub state: HealthState,
    /// Consecutive failures of real calls or probes.
    pub consecutive_failures: u32,
    /// EWMA of the success rate (1.0 = all succeed).
    pub success_rate: f64,
    /// Times ejected so far.
    pub ejections: u32,
    /// Time left until an ejection ends.
    pub ejected_for: Option<Duration>,
}

/// The health of one server.
#[derive(Debug)]
pub struct HealthTracker {
    config: HealthConfig,
    consecutive_failures: u32,
    consecutive_successes: u32,
    success_rate: f64,
    ejections: u32,
    ejected_until: Option<Instant>,
    last_activity: Instant,
    next_probe: Instant,
}

/// Weight of the newest observation in the success-rate EWMA.
const SUCCESS_ALPHA: f64 = 0.1;

/// What a recorded result changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing changed.
    None,
    /// The server was ejected.
    Ejected,
    /// The server came back.
    Restored,
}

impl HealthTracker {
    /// A healthy tracker.
    pub fn new(config: HealthConfig, now: Instant) -> Self {
        let next_probe = now + config.probe_interval;
        Self {
            config,
            consecutive_failures: 0,
            consecutive_successes: 0,
            success_rate: 1.0,
            ejections: 0,
            ejected_until: None,
            last_activity: now,
            next_probe,
        }
    }

    /// Records the result of a real call or a probe.
    pub fn record(&mut self, success: bool, now: Instant) -> Transition {
        self.last_activity = now;
        self.success_rate =
            self.success_rate * (1.0 - SUCCESS_ALPHA) + if success { SUCCESS_ALPHA } else { 0.0 };
        if success {
            self.consecutive_failures = 0;
            self.consecutive_successes += 1;
            if self.ejected_until.is_some()
                && self.consecutive_successes >= self.config.healthy_threshold
            {
                self.ejected_until = None;
                return Transition::Restored;
            }
            return Transition::None;
        }
        self.consecutive_successes = 0;
        self.consecutive_failures += 1;
        if self.ejected_until.is_none()
            && self.consecutive_failures >= self.config.unhealthy_threshold
        {
            let factor = 2_u32.saturating_pow(self.ejections.min(16));
            let ejection = self
                .config
                .base_ejection
                .saturating_mul(factor)
                .min(self.config.max_ejection);
            self.ejections += 1;
            self.ejected_until = Some(now + ejection);
            self.next_probe = now + self.config.probe_interval.min(ejection);
            return Transition::Ejected;
        }
        Transition::None
    }

    /// Forgets past failures and ends an ejection: for a server that was replaced (a new
    /// process, a new session), whose predecessor's failures say nothing about it.
    pub fn reset(&mut self, now: Instant) {
        self.consecutive_failures = 0;
        self.consecutive_successes = 0;
        self.ejected_until = None;
        self.last_activity = now;
    }

    /// Whether the server may take traffic now (an ejection whose time is up ends here).
    pub fn is_available(&mut self, now: Instant) -> bool {
        match self.ejected_until {
            Some(until) if now >= until => {
                self.ejected_until = None;
                self.consecutive_failures = 0;
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    /// Whether an active probe is due: the server is idle or ejected, and its probe time has
    /// come. Schedules the next probe (jittered by `jitter` in [-1, 1]) when it returns true.
    pub fn probe_due(&mut self, now: Instant, jitter: f64) -> bool {
        let idle = now.duration_since(self.last_activity) >= self.config.idle_after;
        if !(idle || self.ejected_until.is_some()) || now < self.next_probe {
            return false;
        }
        let interval =
            self.config.probe_interval.as_secs_f64() * (1.0 + 0.1 * jitter.clamp(-1.0, 1.0));
        self.next_probe = now + Duration::from_secs_f64(interval.max(0.0));
        true
    }

    /// A snapshot for display.
    pub fn snapshot(&self, now: Instant) -> HealthSnapshot {
        let ejected_for = self
            .ejected_until
            .filter(|until| *until > now)
            .map(|until| until - now);
        HealthSnapshot {
            state: if ejected_for.is_some() {
                HealthState::Ejected
            } else {
                HealthState::Healthy
            },
            consecutive_failures: self.consecutive_failures,
            success_rate: self.success_rate,
            ejections: self.ejections,
            ejected_for,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> HealthConfig {
        HealthConfig {
            unhealthy_threshold: 3,
            healthy_threshold: 2,
            base_ejection: Duration::from_secs(1),
            max_ejection: Duration::from_secs(4),
            probe_interval: Duration::from_millis(500),
            idle_after: Duration::from_secs(10),
            panic_threshold: 0.5,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn consecutive_failures_eject_with_growing_back_off() {
        let start = Instant::now();
        let mut h = HealthTracker::new(config(), start);
        assert_eq!(h.record(false, start), Transition::None);
        assert_eq!(h.record(false, start), Transition::None);
        assert_eq!(h.record(false, start), Transition::Ejected);
        assert!(!h.is_available(start));
        assert!(h.is_available(start + Duration::from_secs(1)));
        // Second ejection lasts twice as long, the third is capped.
        let t = start + Duration::from_secs(2);
        for _ in 0..3 {
            h.record(false, t);
        }
        assert!(!h.is_available(t + Duration::from_millis(1999)));
        assert!(h.is_available(t + Duration::from_secs(2)));
        let t = start + Duration::from_secs(10);
        for _ in 0..3 {
            h.record(false, t);
        }
        assert_eq!(h.snapshot(t).ejected_for, Some(Duration::from_secs(4)));
        assert_eq!(h.snapshot(t).ejections, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn successful_probes_restore_early() {
        let start = Instant::now();
        let mut h = HealthTracker::new(config(), start);
        for _ in 0..3 {
            h.record(false, start);
        }
        assert!(!h.probe_due(start, 0.0));
        let later = start + Duration::from_millis(500);
        assert!(h.probe_due(later, 0.0));
        assert!(!h.probe_due(later, 0.0), "the next probe is scheduled");
        assert_eq!(h.record(true, later), Transition::None);
        assert_eq!(h.record(true, later), Transition::Restored);
        assert!(h.is_available(later));
        assert_eq!(h.snapshot(later).state, HealthState::Healthy);
    }

    #[tokio::test(start_paused = true)]
    async fn only_idle_or_ejected_servers_are_probed() {
        let start = Instant::now();
        let mut h = HealthTracker::new(config(), start);
        h.record(true, start + Duration::from_secs(5));
        assert!(!h.probe_due(start + Duration::from_secs(6), 0.0), "busy");
        assert!(h.probe_due(start + Duration::from_secs(16), 0.0), "idle");
        let snapshot = h.snapshot(start);
        assert!(snapshot.success_rate > 0.99);
    }
}
