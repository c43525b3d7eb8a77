//! tower integration (feature `tower`): [`BackoffPolicy`], a `tower::retry::Policy` that waits
//! by this crate's schedule and jitter, and `tower::retry::budget::Budget` for [`RetryBudget`],
//! so that one budget can be shared by several tower services and by the standalone `retry`.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use recovery_backoff::{BackoffConfig, BackoffPolicy, Jitter, RetryBudget};
//! use tower::retry::RetryLayer;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let budget = Arc::new(RetryBudget::default());
//! let policy = BackoffPolicy::new(BackoffConfig::default())
//!     .jitter(Jitter::Full)
//!     .when(|e: &std::io::Error| e.kind() != std::io::ErrorKind::PermissionDenied)
//!     .budget(budget.clone());
//! let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
//! let service = ServiceBuilder::new().layer(RetryLayer::new(policy)).service_fn({
//!     let calls = calls.clone();
//!     move |name: &'static str| {
//!         let n = calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
//!         async move {
//!             if n < 2 { Err(std::io::Error::other("connection reset")) } else { Ok(name.len()) }
//!         }
//!     }
//! });
//! assert_eq!(service.oneshot("frame-7").await.unwrap(), 7);
//! assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 3);
//! # }
//! ```
//!
//! tower's rules hold as they are: `Retry` clones the service for each retry and polls it
//! ready again before calling it, so a retry never skips readiness. It clones the policy for
//! each request: a clone starts its own schedule (every request gets `max_retries`), while the
//! budget, behind an `Arc`, is shared.

use std::sync::Arc;

use tower::retry::Policy;
use tower::retry::budget::Budget;

use crate::{Backoff, BackoffConfig, Jitter, RetryBudget};

/// A `tower::retry::Policy` that retries failed requests after this crate's delays: at most
/// `max_retries` times per request, only errors the predicate accepts (all by default), and only
/// while the budget, if any, allows. Successes are not retried.
pub struct BackoffPolicy<E> {
    config: BackoffConfig,
    jitter: Jitter,
    seed: Option<u64>,
    when: Arc<dyn Fn(&E) -> bool + Send + Sync>,
    budget: Option<Arc<dyn Budget + Send + Sync>>,
    /// This request's schedule, from its first response on.
    schedule: Option<Backoff>,
}

impl<E> BackoffPolicy<E> {
    /// Retry every error after `config`'s delays, with its jitter factor (proportional
    /// jitter); no budget.
    pub fn new(config: BackoffConfig) -> Self {
        Self {
            jitter: Jitter::Proportional(config.jitter_factor),
            config,
            seed: None,
            when: Arc::new(|_| true),
            budget: None,
            schedule: None,
        }
    }

    /// The jitter to apply.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Retry only the errors `when` accepts.
    pub fn when(mut self, when: impl Fn(&E) -> bool + Send + Sync + 'static) -> Self {
        self.when = Arc::new(when);
        self
    }

    /// Draw retries from `budget`, shared with whoever else holds it: one deposit per request,
    /// one withdrawal per retry, and no retry when it is empty.
    pub fn budget(mut self, budget: Arc<impl Budget + Send + Sync + 'static>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Draw the jitter from a generator seeded with `seed`, so that every request's delays
    /// repeat.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }
}

impl<E> Clone for BackoffPolicy<E> {
    /// A policy for another request: the same settings and budget, a schedule of its own.
    fn clone(&self) -> Self {
        Self {
            config: self.config,
            jitter: self.jitter,
            seed: self.seed,
            when: Arc::clone(&self.when),
            budget: self.budget.clone(),
            schedule: None,
        }
    }
}

impl<E> std::fmt::Debug for BackoffPolicy<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackoffPolicy")
            .field("config", &self.config)
            .field("jitter", &self.jitter)
            .field("budget", &self.budget.is_some())
            .finish_non_exhaustive()
    }
}

impl<Req: Clone, Res, E> Policy<Req, Res, E> for BackoffPolicy<E> {
    type Future = tokio::time::Sleep;

    fn retry(&mut self, _req: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        if self.schedule.is_none() {
            // The request's first response: its one deposit.
            if let Some(budget) = &self.budget {
                budget.deposit();
            }
            let schedule = Backoff::new(&self.config, self.jitter);
            self.schedule = Some(match self.seed {
                Some(seed) => schedule.with_seed(seed),
                None => schedule,
            });
        }
        let error = result.as_ref().err()?;
        if !(self.when)(error) {
            return None;
        }
        let delay = self.schedule.as_mut()?.next()?;
        if let Some(budget) = &self.budget {
            if !budget.withdraw() {
                return None;
            }
        }
        Some(tokio::time::sleep(delay))
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

impl Budget for RetryBudget {
    fn deposit(&self) {
        RetryBudget::deposit(self);
    }

    fn withdraw(&self) -> bool {
        RetryBudget::withdraw(self)
    }
}
