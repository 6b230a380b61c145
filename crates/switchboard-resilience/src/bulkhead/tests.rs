//! Bulkhead admission, queueing and rejection under paused time.

use std::time::Duration;

use tokio::time::{Instant, sleep};
use tower::{BoxError, ServiceExt};

use super::*;
use crate::error::Error;
use crate::test_support::{Recorder, TestError};

const MS: Duration = Duration::from_millis(1);

async fn hold(bulkhead: &Bulkhead, duration: Duration) -> Result<(), Error<TestError>> {
    bulkhead
        .call(async {
            sleep(duration).await;
            Ok(())
        })
        .await
}

#[tokio::test(start_paused = true)]
async fn rejects_beyond_the_limit_without_a_queue() {
    let (recorder, ctx) = Recorder::context("b");
    let bulkhead = Bulkhead::with_context(
        BulkheadConfig {
            max_concurrent: 2,
            ..BulkheadConfig::default()
        },
        ctx,
    );
    let (first, second, third) = tokio::join!(
        hold(&bulkhead, 100 * MS),
        hold(&bulkhead, 100 * MS),
        hold(&bulkhead, 100 * MS)
    );
    assert!(first.is_ok() && second.is_ok());
    let Err(Error::BulkheadFull(rejection)) = third else {
        panic!("expected a rejection")
    };
    assert_eq!(rejection.reason, BulkheadRejection::QueueFull);
    assert_eq!(rejection.max_concurrent, 2);
    assert_eq!(
        recorder.events(),
        vec![EventKind::BulkheadRejected {
            reason: BulkheadRejection::QueueFull
        }]
    );
    assert_eq!(bulkhead.available(), 2);
}

#[tokio::test(start_paused = true)]
async fn queued_calls_wait_for_a_slot() {
    let config = BulkheadConfig {
        max_concurrent: 1,
        max_queued: 1,
        queue_timeout: Duration::from_secs(1),
    };
    let bulkhead = Bulkhead::new(config);
    let start = Instant::now();
    let (first, second, third) = tokio::join!(
        hold(&bulkhead, 100 * MS),
        hold(&bulkhead, 100 * MS),
        hold(&bulkhead, 100 * MS)
    );
    assert!(first.is_ok() && second.is_ok());
    assert!(matches!(
        third,
        Err(Error::BulkheadFull(BulkheadFullError {
            reason: BulkheadRejection::QueueFull,
            ..
        }))
    ));
    assert_eq!(start.elapsed(), 200 * MS);
    assert_eq!(bulkhead.queued(), 0);
}

#[tokio::test(start_paused = true)]
async fn queue_wait_times_out() {
    let config = BulkheadConfig {
        max_concurrent: 1,
        max_queued: 4,
        queue_timeout: 50 * MS,
    };
    let bulkhead = Bulkhead::new(config);
    let (first, second) = tokio::join!(hold(&bulkhead, 100 * MS), hold(&bulkhead, 10 * MS));
    assert!(first.is_ok());
    let Err(Error::BulkheadFull(rejection)) = second else {
        panic!("expected a timeout")
    };
    assert_eq!(
        (rejection.reason, rejection.waited),
        (BulkheadRejection::QueueTimeout, 50 * MS)
    );
    assert!(bulkhead.try_acquire().is_ok());
}

#[tokio::test(start_paused = true)]
async fn tower_layer_limits_concurrency() {
    let config = BulkheadConfig {
        max_concurrent: 1,
        max_queued: 1,
        queue_timeout: Duration::from_secs(1),
    };
    let service = tower::ServiceBuilder::new()
        .layer(BulkheadLayer::new(Bulkhead::new(config)))
        .service_fn(|delay: Duration| async move {
            sleep(delay).await;
            Ok::<_, BoxError>(delay)
        });
    let start = Instant::now();
    let (first, second, third) = tokio::join!(
        service.clone().oneshot(100 * MS),
        service.clone().oneshot(100 * MS),
        service.clone().oneshot(100 * MS)
    );
    assert!(first.is_ok() && second.is_ok());
    let Err(error) = third else {
        panic!("expected a rejection")
    };
    assert!(error.is::<BulkheadFullError>());
    assert_eq!(start.elapsed(), 200 * MS);
}
