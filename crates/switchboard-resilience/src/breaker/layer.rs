//! Outcome classifiers and the tower form of [`CircuitBreaker`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::{CircuitBreaker, Ticket};
use crate::error::{CircuitOpenError, Classify, Outcome};

/// Decides how a circuit breaker counts a finished call.
///
/// Implemented by [`ByError`] and by every `Fn(&Result<T, E>) -> Outcome` closure, so a
/// successful value can count as a failure or an error as a success.
pub trait ClassifyOutcome<T, E> {
    /// The outcome of `result`.
    fn classify(&self, result: &Result<T, E>) -> Outcome;
}

impl<T, E, F> ClassifyOutcome<T, E> for F
where
    F: Fn(&Result<T, E>) -> Outcome,
{
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        self(result)
    }
}

/// The default classifier: `Ok` is a success, an error counts as its
/// [`Classify::breaker_outcome`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ByError;

impl<T, E: Classify> ClassifyOutcome<T, E> for ByError {
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(error) => error.breaker_outcome(),
        }
    }
}

/// Puts a [`CircuitBreaker`] in front of the wrapped service.
///
/// Rejected calls fail with a [`CircuitOpenError`] converted into the service's error type
/// (`tower::BoxError` accepts it) and never reach the inner service.
#[derive(Debug, Clone)]
pub struct CircuitBreakerLayer<C = ByError> {
    breaker: CircuitBreaker,
    classifier: C,
}

impl CircuitBreakerLayer {
    /// A layer using `breaker` and the [`ByError`] classifier.
    pub fn new(breaker: CircuitBreaker) -> Self {
        CircuitBreakerLayer {
            breaker,
            classifier: ByError,
        }
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// A layer using `breaker` and `classifier`.
    pub fn with_classifier(breaker: CircuitBreaker, classifier: C) -> Self {
        CircuitBreakerLayer {
            breaker,
            classifier,
        }
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService {
            inner,
            breaker: self.breaker.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

/// A service guarded by a [`CircuitBreaker`].
#[derive(Debug, Clone)]
pub struct CircuitBreakerService<S, C = ByError> {
    inner: S,
    breaker: CircuitBreaker,
    classifier: C,
}

impl<S, C> CircuitBreakerService<S, C> {
    /// Wraps `inner`.
    pub fn new(inner: S, breaker: CircuitBreaker, classifier: C) -> Self {
        CircuitBreakerService {
            inner,
            breaker,
            classifier,
        }
    }

    /// The breaker.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
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

impl<S, C, Request> Service<Request> for CircuitBreakerService<S, C>
where
    S: Service<Request>,
    S::Error: From<CircuitOpenError>,
    C: ClassifyOutcome<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.breaker.acquire_ticket() {
            Ok(ticket) => ResponseFuture {
                state: State::Running {
                    future: self.inner.call(request),
                },
                guard: Guard {
                    breaker: self.breaker.clone(),
                    ticket: Some(ticket),
                },
                classifier: self.classifier.clone(),
            },
            Err(rejection) => ResponseFuture {
                state: State::Rejected {
                    rejection: Some(rejection),
                },
                guard: Guard {
                    breaker: self.breaker.clone(),
                    ticket: None,
                },
                classifier: self.classifier.clone(),
            },
        }
    }
}

/// Records an unfinished admitted call as ignored when dropped.
#[derive(Debug)]
struct Guard {
    breaker: CircuitBreaker,
    ticket: Option<Ticket>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.breaker.finish(ticket, Outcome::Ignored);
        }
    }
}

pin_project! {
    #[project = StateProj]
    #[derive(Debug)]
    enum State<F> {
        Running { #[pin] future: F },
        Rejected { rejection: Option<CircuitOpenError> },
    }
}

pin_project! {
    /// The response future of [`CircuitBreakerService`].
    #[derive(Debug)]
    pub struct ResponseFuture<F, C> {
        #[pin]
        state: State<F>,
        guard: Guard,
        classifier: C,
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: From<CircuitOpenError>,
    C: ClassifyOutcome<T, E>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.state.project() {
            StateProj::Running { future } => {
                let result = match future.poll(cx) {
                    Poll::Ready(result) => result,
                    Poll::Pending => return Poll::Pending,
                };
                if let Some(ticket) = this.guard.ticket.take() {
                    this.guard
                        .breaker
                        .finish(ticket, this.classifier.classify(&result));
                }
                Poll::Ready(result)
            }
            StateProj::Rejected { rejection } => match rejection.take() {
                Some(rejection) => Poll::Ready(Err(rejection.into())),
                None => Poll::Pending,
            },
        }
    }
}
