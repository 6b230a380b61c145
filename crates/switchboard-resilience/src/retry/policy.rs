//! [`Retry`] as a `tower::retry::Policy`.

use std::sync::Arc;

use tokio::time::Sleep;

use super::{Attempts, Retry};
use crate::error::Classify;

/// A `tower::retry::Policy` with the logic of [`Retry`]: use it with
/// `tower::retry::RetryLayer::new(RetryPolicy::new(retry))`.
///
/// Requests must be `Clone`. Each request deposits into the budget. The overall deadline is
/// not known to a tower policy: put a [`TimeoutLayer`](crate::TimeoutLayer) outside the retry
/// layer to bound the whole call.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    retry: Arc<Retry>,
    attempts: Option<Attempts>,
}

impl RetryPolicy {
    /// A policy applying `retry`.
    pub fn new(retry: Retry) -> Self {
        RetryPolicy {
            retry: Arc::new(retry),
            attempts: None,
        }
    }
}

impl<Req, Res, E> tower::retry::Policy<Req, Res, E> for RetryPolicy
where
    Req: Clone,
    E: Classify,
{
    type Future = Sleep;

    fn retry(&mut self, _request: &mut Req, result: &mut Result<Res, E>) -> Option<Sleep> {
        let error = result.as_ref().err()?;
        let attempts = self.attempts.get_or_insert_with(|| Attempts::new(None));
        let delay = attempts.next_delay(&self.retry, error)?;
        Some(tokio::time::sleep(delay))
    }

    fn clone_request(&mut self, request: &Req) -> Option<Req> {
        if self.attempts.is_none()
            && let Some(budget) = &self.retry.budget
        {
            budget.deposit();
        }
        Some(request.clone())
    }
}
