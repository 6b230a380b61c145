//! The tower form of [`Timeout`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

use super::{Timeout, timed_out};
use crate::error::TimeoutError;
use crate::event::TimeoutKind;

/// Applies a [`Timeout`] to every request of the wrapped service.
///
/// The service's error type must hold a [`TimeoutError`] (`tower::BoxError` does).
#[derive(Debug, Clone)]
pub struct TimeoutLayer {
    timeout: Arc<Timeout>,
}

impl TimeoutLayer {
    /// A layer applying `timeout`.
    pub fn new(timeout: Timeout) -> Self {
        TimeoutLayer {
            timeout: Arc::new(timeout),
        }
    }

    /// A layer applying a [`Timeout::new`] of `duration`.
    pub fn from_duration(duration: Duration) -> Self {
        TimeoutLayer::new(Timeout::new(duration))
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = TimeoutService<S>;

    fn layer(&self, inner: S) -> TimeoutService<S> {
        TimeoutService::new(inner, self.timeout.clone())
    }
}

/// A service whose calls are cancelled after a [`Timeout`].
#[derive(Debug, Clone)]
pub struct TimeoutService<S> {
    inner: S,
    timeout: Arc<Timeout>,
}

impl<S> TimeoutService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, timeout: Arc<Timeout>) -> Self {
        TimeoutService { inner, timeout }
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

impl<S, Request> Service<Request> for TimeoutService<S>
where
    S: Service<Request>,
    S::Error: From<TimeoutError>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let start = self.timeout.ctx.now();
        let sleep = tokio::time::sleep_until(start + self.timeout.duration);
        ResponseFuture {
            inner: self.inner.call(request),
            sleep,
            start,
            timeout: self.timeout.clone(),
        }
    }
}

pin_project! {
    /// The response future of [`TimeoutService`].
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Sleep,
        start: Instant,
        timeout: Arc<Timeout>,
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: From<TimeoutError>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(result) = this.inner.poll(cx) {
            return Poll::Ready(result);
        }
        match this.sleep.poll(cx) {
            Poll::Ready(()) => {
                let error = timed_out(&this.timeout.ctx, *this.start, TimeoutKind::Attempt);
                Poll::Ready(Err(error.into()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
