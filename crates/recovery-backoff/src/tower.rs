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
pub struct BackoffPolicy<E, W = fn(&E) -> bool> {
    config: BackoffConfig,
    jitter: Jitter,
    seed: Option<u64>,
    /// The predicate: a plain function, or a closure of the caller's (cloned with the policy,
    /// for each request, so keep it cheap to clone).
    when: W,
    error: std::marker::PhantomData<fn(&E)>,
    budget: Option<Arc<dyn Budget + Send + Sync>>,
    /// This request's schedule, from its first retry on.
    schedule: Option<Backoff>,
    /// The request had its first response (and its deposit).
    answered: bool,
}

fn every_error<E>(_: &E) -> bool {
    true
}

impl<E> BackoffPolicy<E> {
    /// Retry every error after `config`'s delays, with its jitter factor (proportional
    /// jitter); no budget.
    pub fn new(config: BackoffConfig) -> Self {
        Self {
            jitter: Jitter::Proportional(config.jitter_factor),
            config,
            seed: None,
            when: every_error::<E>,
            error: std::marker::PhantomData,
            budget: None,
            schedule: None,
            answered: false,
        }
    }

    /// Retry only the errors `when` accepts.
    pub fn when<W2: Fn(&E) -> bool>(self, when: W2) -> BackoffPolicy<E, W2> {
        BackoffPolicy {
            config: self.config,
            jitter: self.jitter,
            seed: self.seed,
            when,
            error: std::marker::PhantomData,
            budget: self.budget,
            schedule: None,
            answered: false,
        }
    }
}

impl<E, W> BackoffPolicy<E, W> {
    /// The jitter to apply.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
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

impl<E, W: Clone> Clone for BackoffPolicy<E, W> {
    /// A policy for another request: the same settings and budget, a schedule of its own.
    fn clone(&self) -> Self {
        Self {
            config: self.config,
            jitter: self.jitter,
            seed: self.seed,
            when: self.when.clone(),
            error: std::marker::PhantomData,
            budget: self.budget.clone(),
            schedule: None,
            answered: false,
        }
    }
}

impl<E, W> std::fmt::Debug for BackoffPolicy<E, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackoffPolicy")
            .field("config", &self.config)
            .field("jitter", &self.jitter)
            .field("budget", &self.budget.is_some())
            .finish_non_exhaustive()
    }
}

impl<Req: Clone, Res, E, W: Fn(&E) -> bool> Policy<Req, Res, E> for BackoffPolicy<E, W> {
    type Future = tokio::time::Sleep;

    fn retry(&mut self, _req: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        if !self.answered {
            // The request's first response: its one deposit.
            self.answered = true;
            if let Some(budget) = &self.budget {
                budget.deposit();
            }
        }
        // A success costs nothing more: no schedule is built, no random number drawn.
        let error = result.as_ref().err()?;
        if !(self.when)(error) {
            return None;
        }
        let (config, jitter, seed) = (&self.config, self.jitter, self.seed);
        let schedule = self.schedule.get_or_insert_with(|| {
            let schedule = Backoff::new(config, jitter);
            match seed {
                Some(seed) => schedule.with_seed(seed),
                None => schedule,
            }
        });
        let delay = schedule.next()?;
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
