//! The tower form of [`RateLimiter`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

use super::{RateLimitMode, RateLimiter};
use crate::error::RateLimitedError;
use crate::event::EventKind;

/// Puts a [`RateLimiter`] in front of the wrapped service.
///
/// In [`RateLimitMode::Wait`] the service is not ready until a permit is taken (or the wait
/// timeout is reached, after which the next call fails); in [`RateLimitMode::Reject`] a
/// call without a permit fails at once with a [`RateLimitedError`].
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    limiter: RateLimiter,
}

impl RateLimitLayer {
    /// A layer using `limiter` (clones share its limit).
    pub fn new(limiter: RateLimiter) -> Self {
        RateLimitLayer { limiter }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService::new(inner, self.limiter.clone())
    }
}

/// A service behind a [`RateLimiter`].
#[derive(Debug)]
pub struct RateLimitService<S> {
    inner: S,
    limiter: RateLimiter,
    /// A permit was taken in `poll_ready` for the next call.
    reserved: bool,
    /// The wait timed out in `poll_ready`; the next call fails with this.
    rejected: Option<RateLimitedError>,
    wait_start: Option<Instant>,
    /// Allocated on the first wait and reused.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<S> RateLimitService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, limiter: RateLimiter) -> Self {
        RateLimitService {
            inner,
            limiter,
            reserved: false,
            rejected: None,
            wait_start: None,
            sleep: None,
        }
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

    /// Waits for a permit; `Ready` when one is reserved or the wait gave up.
    fn poll_permit(&mut self, cx: &mut TaskContext<'_>) -> Poll<()> {
        let RateLimitMode::Wait { timeout } = self.limiter.inner.config.mode else {
            return Poll::Ready(());
        };
        let inner = &*self.limiter.inner;
        while !self.reserved && self.rejected.is_none() {
            let now = inner.ctx.now();
            match inner.check() {
                Ok(()) => {
                    self.reserved = true;
                    if let Some(start) = self.wait_start.take() {
                        let waited = now.saturating_duration_since(start);
                        inner.ctx.emit(EventKind::RateLimitWaited { waited });
                    }
                }
                Err(denied) => {
                    let start = *self.wait_start.get_or_insert(now);
                    if now + denied.wait > start + timeout {
                        self.wait_start = None;
                        self.rejected = Some(inner.reject(denied));
                        break;
                    }
                    let sleep = self.sleep.get_or_insert_with(|| {
                        Box::pin(tokio::time::sleep_until(now + denied.wait))
                    });
                    sleep.as_mut().reset(now + denied.wait);
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
            }
        }
        Poll::Ready(())
    }
}

impl<S: Clone> Clone for RateLimitService<S> {
    fn clone(&self) -> Self {
        RateLimitService::new(self.inner.clone(), self.limiter.clone())
    }
}

impl<S, Request> Service<Request> for RateLimitService<S>
where
    S: Service<Request>,
    S::Error: From<RateLimitedError>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        if self.poll_permit(cx).is_pending() {
            return Poll::Pending;
        }
        if self.rejected.is_some() {
            return Poll::Ready(Ok(()));
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if let Some(rejection) = self.rejected.take() {
            return ResponseFuture::rejected(rejection);
        }
        if !std::mem::take(&mut self.reserved)
            && let Err(rejection) = self.limiter.try_acquire()
        {
            return ResponseFuture::rejected(rejection);
        }
        ResponseFuture {
            kind: Kind::Running {
                future: self.inner.call(request),
            },
        }
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<F> {
        Running { #[pin] future: F },
        Rejected { rejection: Option<RateLimitedError> },
    }
}

pin_project! {
    /// The response future of [`RateLimitService`].
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

impl<F> ResponseFuture<F> {
    fn rejected(rejection: RateLimitedError) -> Self {
        ResponseFuture {
            kind: Kind::Rejected {
                rejection: Some(rejection),
            },
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: From<RateLimitedError>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Running { future } => future.poll(cx),
            KindProj::Rejected { rejection } => match rejection.take() {
                Some(rejection) => Poll::Ready(Err(rejection.into())),
                None => Poll::Pending,
            },
        }
    }
}
