//! Load generators: closed loop (fixed concurrency) and open loop (calls start on a schedule,
//! latency counted from the scheduled start).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{task::JoinSet, time::Instant};

use crate::{
    options::{Budget, Schedule, Shape},
    record::{Outcome, Recorder},
    target::Target,
};

/// Runs one phase of load against `target`, recording into `recorder`; returns the time from
/// the phase's start to its last answer.
pub(crate) async fn drive(
    target: &Arc<Target>,
    shape: Shape,
    budget: Budget,
    recorder: &Arc<Recorder>,
) -> Duration {
    match shape {
        Shape::Closed { concurrency } => closed(target, concurrency, budget, recorder).await,
        Shape::Open(schedule) => open(target, schedule, budget, recorder).await,
    }
}

/// A failed call occupies its closed-loop worker for at least this long, so that instant
/// failures (a dead session, an open circuit) cannot turn the loop into a busy spin.
const FAILURE_FLOOR: Duration = Duration::from_millis(1);

/// `concurrency` workers, each starting its next call when the previous one answers. Latency
/// counts from each call's send (this loop cannot fall behind a schedule; it slows down
/// instead, which is why its latency hides queueing: use the open loop for latency SLOs).
/// A worker whose call failed waits until [`FAILURE_FLOOR`] has passed since its send.
///
/// Each call also consumes a unit of the task's cooperative budget: calls answered without
/// waiting (cache hits) never return `Pending`, and workers making only such calls would keep
/// the runtime's threads to themselves until the phase ends, starving everything else on them
/// (the cache's loads, the answers other workers wait for). Calls that wait on I/O never use
/// the budget up, so this costs them nothing.
async fn closed(
    target: &Arc<Target>,
    concurrency: usize,
    budget: Budget,
    recorder: &Arc<Recorder>,
) -> Duration {
    let start = Instant::now();
    let issued = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let target = Arc::clone(target);
        let recorder = Arc::clone(recorder);
        let issued = Arc::clone(&issued);
        workers.spawn(async move {
            loop {
                let more = match budget {
                    Budget::Calls(n) => issued.fetch_add(1, Ordering::Relaxed) < n,
                    Budget::Time(d) => start.elapsed() < d,
                };
                if !more {
                    break;
                }
                let sent = Instant::now();
                let outcome = target.call().await;
                recorder.record(sent, sent, Instant::now(), outcome);
                if matches!(outcome, Outcome::Failed(_)) {
                    tokio::time::sleep_until(sent + FAILURE_FLOOR).await;
                }
                tokio::task::coop::consume_budget().await;
            }
        });
    }
    while workers.join_next().await.is_some() {}
    start.elapsed()
}

/// Starts call `n` at `start + schedule.offset(n)`, each in its own task, whatever the state
/// of earlier calls. Latency counts from that intended start, so a dispatcher or a runtime
/// that falls behind shows up in the figures instead of thinning the load (no coordinated
/// omission).
///
/// The dispatcher is a blocking thread sleeping with `std::thread::sleep` (tens of
/// microseconds late on Linux) rather than a task on tokio's timer, whose 1 ms resolution
/// would add up to a millisecond to every intended-start latency at sub-millisecond spacing.
/// Being late never shifts the schedule: calls that are due start at once.
async fn open(
    target: &Arc<Target>,
    schedule: Schedule,
    budget: Budget,
    recorder: &Arc<Recorder>,
) -> Duration {
    let start = Instant::now();
    let runtime = tokio::runtime::Handle::current();
    let target = Arc::clone(target);
    let recorder = Arc::clone(recorder);
    let dispatcher = tokio::task::spawn_blocking(move || {
        let mut calls = JoinSet::new();
        let mut n: u64 = 0;
        loop {
            let offset = schedule.offset(n);
            let more = match budget {
                Budget::Calls(limit) => n < limit,
                Budget::Time(d) => offset < d,
            };
            if !more {
                break;
            }
            let intended = start + offset;
            let now = Instant::now();
            if now < intended {
                std::thread::sleep(intended - now);
            }
            let target = Arc::clone(&target);
            let recorder = Arc::clone(&recorder);
            calls.spawn_on(
                async move {
                    let sent = Instant::now();
                    let outcome = target.call().await;
                    recorder.record(intended, sent, Instant::now(), outcome);
                },
                &runtime,
            );
            n += 1;
            while calls.try_join_next().is_some() {}
        }
        calls
    });
    // The dispatcher only fails by panicking; its calls are then dropped (aborted).
    if let Ok(mut calls) = dispatcher.await {
        while calls.join_next().await.is_some() {}
    }
    start.elapsed()
}
