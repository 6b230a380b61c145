//! The tower form of [`Bulkhead`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;
use tokio::sync::OwnedSemaphorePermit;
use tower::{Layer, Service};

use super::{Bulkhead, Inner};
use crate::error::BulkheadFullError;
use crate::event::BulkheadRejection;

/// Puts a [`Bulkhead`] in front of the wrapped service.
///
/// The service is always ready; a call takes a slot, waits in the bulkhead's queue (the only
/// case that allocates: one boxed wait), or fails with a [`BulkheadFullError`].
#[derive(Debug, Clone)]
pub struct BulkheadLayer {
    bulkhead: Bulkhead,
}

impl BulkheadLayer {
    /// A layer using `bulkhead` (clones share its slots).
    pub fn new(bulkhead: Bulkhead) -> Self {
        BulkheadLayer { bulkhead }
    }
}

impl<S> Layer<S> for BulkheadLayer {
    type Service = BulkheadService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BulkheadService {
            inner,
            bulkhead: self.bulkhead.clone(),
        }
    }
}

/// A service behind a [`Bulkhead`].
#[derive(Debug, Clone)]
pub struct BulkheadService<S> {
    inner: S,
    bulkhead: Bulkhead,
}

impl<S> BulkheadService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, bulkhead: Bulkhead) -> Self {
        BulkheadService { inner, bulkhead }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

type Wait = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, BulkheadFullError>> + Send>>;

impl<S, Request> Service<Request> for BulkheadService<S>
where
    S: Service<Request>,
    S::Error: From<BulkheadFullError>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let inner = &self.bulkhead.inner;
        let (permit, wait) = match inner.semaphore.clone().try_acquire_owned() {
            Ok(permit) => (Some(permit), None),
            Err(_) => match inner.reserve_place() {
                Ok(()) => (
                    None,
                    Some(queue_wait(OwnedPlace {
                        inner: inner.clone(),
                    })),
                ),
                Err(rejection) => {
                    return ResponseFuture {
                        kind: Kind::Rejected {
                            rejection: Some(rejection),
                        },
                    };
                }
            },
        };
        ResponseFuture {
            kind: Kind::Admitted {
                future: self.inner.call(request),
                permit,
                wait,
            },
        }
    }
}

/// A place in the queue, given back when dropped.
struct OwnedPlace {
    inner: Arc<Inner>,
}

impl Drop for OwnedPlace {
    fn drop(&mut self) {
        self.inner
            .queued
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Waits in the queue for a slot, at most the queue timeout.
fn queue_wait(place: OwnedPlace) -> Wait {
    Box::pin(async move {
        let inner = &place.inner;
        let start = inner.ctx.now();
        let acquire = inner.semaphore.clone().acquire_owned();
        match tokio::time::timeout(inner.config.queue_timeout, acquire).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => {
                let waited = inner.ctx.now().saturating_duration_since(start);
                Err(inner.reject(BulkheadRejection::QueueTimeout, waited))
            }
        }
    })
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Admitted {
            #[pin]
            future: F,
            permit: Option<OwnedSemaphorePermit>,
            wait: Option<Wait>,
        },
        Rejected { rejection: Option<BulkheadFullError> },
    }
}

pin_project! {
    /// The response future of [`BulkheadService`].
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: From<BulkheadFullError>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Admitted {
                future,
                permit,
                wait,
            } => {
                if let Some(waiting) = wait {
                    match waiting.as_mut().poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(slot)) => {
                            *permit = Some(slot);
                            *wait = None;
                        }
                        Poll::Ready(Err(rejection)) => {
                            *wait = None;
                            return Poll::Ready(Err(rejection.into()));
                        }
                    }
                }
                let result = future.poll(cx);
                if result.is_ready() {
                    *permit = None;
                }
                result
            }
            KindProj::Rejected { rejection } => match rejection.take() {
                Some(rejection) => Poll::Ready(Err(rejection.into())),
                None => Poll::Pending,
            },
        }
    }
}
