//! Timeout, deadline and progress-timeout state machines under paused time.

use std::time::Duration;

use tokio::time::{Instant, sleep};
use tower::{BoxError, Service, ServiceExt};

use super::*;
use crate::error::Error;
use crate::test_support::{Recorder, TestError};

const MS: Duration = Duration::from_millis(1);

#[tokio::test(start_paused = true)]
async fn attempt_timeout_cancels_at_the_duration() {
    let (recorder, ctx) = Recorder::context("t");
    let timeout = Timeout::with_context(100 * MS, ctx);
    let start = Instant::now();
    let result: Result<(), Error<TestError>> = timeout
        .call(async {
            sleep(Duration::from_secs(5)).await;
            Ok(())
        })
        .await;
    assert_eq!(start.elapsed(), 100 * MS);
    let Err(Error::Timeout(error)) = result else {
        panic!("expected a timeout: {result:?}")
    };
    assert_eq!(
        error,
        TimeoutError {
            kind: TimeoutKind::Attempt,
            elapsed: 100 * MS
        }
    );
    assert!(Error::<TestError>::Timeout(error).is_timeout());
    assert_eq!(
        recorder.events(),
        vec![EventKind::TimedOut {
            kind: TimeoutKind::Attempt,
            elapsed: 100 * MS
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn fast_operation_passes_untouched() {
    let (recorder, ctx) = Recorder::context("t");
    let timeout = Timeout::with_context(100 * MS, ctx);
    let result: Result<u32, Error<TestError>> = timeout.call(async { Ok(7) }).await;
    assert_eq!(result, Ok(7));
    let failed: Result<u32, Error<TestError>> = timeout
        .call(async { Err(Error::Inner(TestError::FAIL)) })
        .await;
    assert_eq!(failed, Err(Error::Inner(TestError::FAIL)));
    assert!(recorder.events().is_empty());
}

#[tokio::test(start_paused = true)]
async fn call_until_reports_a_deadline() {
    let timeout = Timeout::new(Duration::from_secs(1));
    let deadline = Instant::now() + 30 * MS;
    let result: Result<(), Error<TestError>> = timeout
        .call_until(deadline, async {
            sleep(Duration::from_secs(5)).await;
            Ok(())
        })
        .await;
    let Err(error) = result else {
        panic!("expected a deadline")
    };
    assert!(error.is_deadline_exceeded());
    assert_eq!(Instant::now(), deadline);
}

#[tokio::test(start_paused = true)]
async fn progress_resets_the_idle_timer() {
    let timeout = ProgressTimeout::new(100 * MS, Duration::from_secs(10));
    let start = Instant::now();
    let result: Result<&str, Error<TestError>> = timeout
        .call(|progress| async move {
            for _ in 0..10 {
                sleep(80 * MS).await;
                progress.notify();
            }
            Ok("done")
        })
        .await;
    assert_eq!(result, Ok("done"));
    assert_eq!(start.elapsed(), 800 * MS);
}

#[tokio::test(start_paused = true)]
async fn silence_times_out_as_idle() {
    let (recorder, ctx) = Recorder::context("p");
    let timeout = ProgressTimeout::with_context(100 * MS, Duration::from_secs(10), ctx);
    let start = Instant::now();
    let result: Result<(), Error<TestError>> = timeout
        .call(|progress| async move {
            sleep(50 * MS).await;
            progress.notify();
            sleep(Duration::from_secs(60)).await;
            Ok(())
        })
        .await;
    assert_eq!(start.elapsed(), 150 * MS);
    let Err(Error::Timeout(error)) = result else {
        panic!("expected a timeout")
    };
    assert_eq!(error.kind, TimeoutKind::Idle);
    assert_eq!(
        recorder.count(|kind| matches!(kind, EventKind::TimedOut { .. })),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn hard_cap_holds_despite_progress() {
    let timeout = ProgressTimeout::new(100 * MS, 500 * MS);
    let start = Instant::now();
    let result: Result<(), Error<TestError>> = timeout
        .call(|progress| async move {
            loop {
                sleep(10 * MS).await;
                progress.notify();
            }
        })
        .await;
    assert_eq!(start.elapsed(), 500 * MS);
    let Err(Error::Timeout(error)) = result else {
        panic!("expected a timeout")
    };
    assert_eq!(error.kind, TimeoutKind::MaxDuration);
}

#[tokio::test(start_paused = true)]
async fn tower_layer_times_out_slow_calls() {
    let mut service = tower::ServiceBuilder::new()
        .layer(TimeoutLayer::from_duration(50 * MS))
        .service_fn(|delay: Duration| async move {
            sleep(delay).await;
            Ok::<_, BoxError>(delay)
        });
    let fast = service.ready().await.map(|ready| ready.call(10 * MS));
    let Ok(fast) = fast else { panic!("not ready") };
    assert!(matches!(fast.await, Ok(delay) if delay == 10 * MS));
    let Ok(ready) = service.ready().await else {
        panic!("not ready")
    };
    let Err(error) = ready.call(Duration::from_secs(1)).await else {
        panic!("expected a timeout")
    };
    let timeout = error.downcast_ref::<TimeoutError>();
    assert_eq!(
        timeout.map(|timeout| timeout.kind),
        Some(TimeoutKind::Attempt)
    );
}
