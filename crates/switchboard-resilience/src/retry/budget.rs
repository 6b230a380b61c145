//! A Finagle-style retry budget shared by retries and hedges.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::{Clock, TokioClock};

/// Settings of a [`RetryBudget`].
///
/// Defaults follow Finagle and tower's `TpsBudget::default()`: deposits live 10 s, 20 % of
/// requests may be retried, on top of a floor of 10 retries per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudgetConfig {
    /// How long a deposit (a request) or a withdrawal (a retry) counts. Default: 10 s.
    pub ttl: Duration,
    /// Retries allowed per second whatever the traffic. Default: 10.
    pub min_retries_per_sec: u32,
    /// Share of requests that may be retried, between 0 and 1000. Default: 0.2.
    pub retry_ratio: f64,
}

impl Default for RetryBudgetConfig {
    fn default() -> Self {
        RetryBudgetConfig {
            ttl: Duration::from_secs(10),
            min_retries_per_sec: 10,
            retry_ratio: 0.2,
        }
    }
}

const SLOTS: usize = 10;
/// One retry costs this many units; a request deposits `retry_ratio` times it.
const UNIT: i64 = 1000;

/// Limits retries (and hedges) to a share of recent requests so they cannot multiply load
/// during an outage.
///
/// Every request deposits [`RetryBudgetConfig::retry_ratio`] of a retry; every retry
/// withdraws one. Deposits and withdrawals expire after [`RetryBudgetConfig::ttl`] (a ring of
/// ten slots). A reserve of `min_retries_per_sec · ttl` retries is always available.
/// Depositing is lock-free; only moving to a new slot takes a lock.
///
/// Cloning is cheap and clones share the budget, so one budget can serve all the policies
/// that call one server.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    inner: Arc<BudgetInner>,
}

#[derive(Debug)]
struct BudgetInner {
    clock: Arc<dyn Clock>,
    epoch: Instant,
    slot_nanos: u64,
    deposit: i64,
    reserve: i64,
    slots: [AtomicI64; SLOTS],
    /// The sequence number of the slot being written.
    current: AtomicU64,
    rotate: Mutex<()>,
}

impl RetryBudget {
    /// A budget on [`TokioClock`].
    pub fn new(config: RetryBudgetConfig) -> Self {
        RetryBudget::with_clock(config, Arc::new(TokioClock))
    }

    /// A budget on `clock`.
    pub fn with_clock(config: RetryBudgetConfig, clock: Arc<dyn Clock>) -> Self {
        let ttl_nanos = u64::try_from(config.ttl.as_nanos()).unwrap_or(u64::MAX);
        let slot_nanos = (ttl_nanos / SLOTS as u64).max(1);
        let ratio = config.retry_ratio.clamp(0.0, 1000.0);
        let deposit = (ratio * UNIT as f64).round() as i64;
        let ttl_secs = i64::try_from(config.ttl.as_secs())
            .unwrap_or(i64::MAX)
            .max(1);
        let reserve = i64::from(config.min_retries_per_sec)
            .saturating_mul(ttl_secs)
            .saturating_mul(UNIT);
        let epoch = clock.now();
        let inner = BudgetInner {
            clock,
            epoch,
            slot_nanos,
            deposit,
            reserve,
            slots: Default::default(),
            current: AtomicU64::new(0),
            rotate: Mutex::new(()),
        };
        RetryBudget {
            inner: Arc::new(inner),
        }
    }

    /// Records one request.
    pub fn deposit(&self) {
        let slot = self.inner.slot(self.inner.clock.now());
        self.inner.slots[slot].fetch_add(self.inner.deposit, Ordering::Relaxed);
    }

    /// Takes one retry from the budget; `false` (and nothing taken) when it is empty.
    pub fn try_withdraw(&self) -> bool {
        let slot = self.inner.slot(self.inner.clock.now());
        if self.inner.balance() < UNIT {
            return false;
        }
        self.inner.slots[slot].fetch_sub(UNIT, Ordering::Relaxed);
        true
    }

    /// The number of retries currently available (at least zero).
    pub fn available(&self) -> u64 {
        self.inner.slot(self.inner.clock.now());
        u64::try_from(self.inner.balance() / UNIT).unwrap_or(0)
    }
}

impl BudgetInner {
    /// The index of the slot for `now`, clearing expired slots first.
    fn slot(&self, now: Instant) -> usize {
        let since =
            u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        let sequence = since / self.slot_nanos;
        let mut current = self.current.load(Ordering::Acquire);
        if sequence > current {
            self.rotate(sequence);
            current = sequence;
        }
        (current % SLOTS as u64) as usize
    }

    fn rotate(&self, sequence: u64) {
        let _guard = self
            .rotate
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.current.load(Ordering::Acquire);
        if sequence <= current {
            return;
        }
        let expired = (sequence - current).min(SLOTS as u64);
        for step in 1..=expired {
            self.slots[((current + step) % SLOTS as u64) as usize].store(0, Ordering::Relaxed);
        }
        self.current.store(sequence, Ordering::Release);
    }

    fn balance(&self) -> i64 {
        let recorded: i64 = self
            .slots
            .iter()
            .map(|slot| slot.load(Ordering::Relaxed))
            .sum();
        recorded.saturating_add(self.reserve)
    }
}
