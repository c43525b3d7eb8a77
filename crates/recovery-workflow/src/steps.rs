//! The generic steps: [`Verify`] a condition, and [`FnStep`] from async closures.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use recovery_core::{RecoveryContext, SwarmError, async_trait};

use crate::step::{StepAction, StepDone, StepFailed};

/// A condition on the target: `Ok` says what holds, `Err` why it does not.
pub type Condition<T> = dyn Fn(&T) -> Result<String, String> + Send + Sync;

/// A step that checks a named condition on the target and fails when it does not hold. Its
/// kind is `verify`; it has nothing to undo.
///
/// By default it checks once. [`with_attempts`](Self::with_attempts) makes it check again after
/// an interval (waiting through [`RecoveryContext::sleep`]) until the condition holds or the
/// attempts are used up: what a step after a restart needs to wait for the component to come
/// up.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use recovery_core::{RecoveryContext, SwarmError};
/// use recovery_workflow::{StepAction, Verify};
///
/// let idle = Verify::new("agents_idle", |busy: &AtomicUsize| match busy.load(Ordering::SeqCst) {
///     0 => Ok("no agent busy".to_owned()),
///     n => Err(format!("{n} agents busy")),
/// });
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let error = SwarmError::CommunicationError("reset".into());
/// let ctx = RecoveryContext::new(Arc::new(AtomicUsize::new(2)));
/// let failed = idle.run(&ctx, &error).await.unwrap_err();
/// assert_eq!(failed.message, "condition `agents_idle` does not hold: 2 agents busy");
/// ctx.target.store(0, Ordering::SeqCst);
/// assert_eq!(idle.run(&ctx, &error).await.unwrap().detail, "condition `agents_idle` holds: no agent busy");
/// # });
/// ```
pub struct Verify<T: ?Sized> {
    name: String,
    condition: Arc<Condition<T>>,
    attempts: u32,
    interval: Duration,
}

impl<T: ?Sized> Verify<T> {
    /// A step that checks `condition`, called `name` in its messages, once.
    pub fn new(
        name: impl Into<String>,
        condition: impl Fn(&T) -> Result<String, String> + Send + Sync + 'static,
    ) -> Self {
        Self::from_arc(name, Arc::new(condition))
    }

    /// As [`new`](Self::new), with a condition already shared.
    pub fn from_arc(name: impl Into<String>, condition: Arc<Condition<T>>) -> Self {
        Self {
            name: name.into(),
            condition,
            attempts: 1,
            interval: Duration::ZERO,
        }
    }

    /// Check up to `attempts` times (at least once), `interval` apart.
    pub fn with_attempts(mut self, attempts: u32, interval: Duration) -> Self {
        self.attempts = attempts.max(1);
        self.interval = interval;
        self
    }

    /// The condition's name.
    pub fn condition_name(&self) -> &str {
        &self.name
    }

    /// How many times it checks at most, and how far apart.
    pub fn attempts(&self) -> (u32, Duration) {
        (self.attempts, self.interval)
    }
}

impl<T: ?Sized> fmt::Debug for Verify<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verify")
            .field("name", &self.name)
            .field("attempts", &self.attempts)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<T: ?Sized + Send + Sync> StepAction<T> for Verify<T> {
    fn kind(&self) -> &str {
        "verify"
    }

    async fn run(
        &self,
        ctx: &RecoveryContext<T>,
        _error: &SwarmError,
    ) -> Result<StepDone, StepFailed> {
        let mut checks = 0;
        loop {
            checks += 1;
            // The condition's result is taken before any await: nothing of `T` is borrowed
            // across the sleep.
            let checked = (self.condition)(&ctx.target);
            match checked {
                Ok(what) => {
                    return Ok(StepDone::new(format!(
                        "condition `{}` holds: {what}",
                        self.name
                    )));
                }
                Err(why) if checks >= self.attempts => {
                    let after = if checks > 1 {
                        format!(" after {checks} checks")
                    } else {
                        String::new()
                    };
                    return Err(StepFailed::new(format!(
                        "condition `{}` does not hold{after}: {why}",
                        self.name
                    )));
                }
                Err(_) => ctx.sleep(self.interval).await,
            }
        }
    }
}

type BoxFuture<O> = Pin<Box<dyn Future<Output = O> + Send>>;
type RunFn<T> =
    dyn Fn(RecoveryContext<T>, SwarmError) -> BoxFuture<Result<StepDone, StepFailed>> + Send + Sync;
type UndoFn<T> =
    dyn Fn(RecoveryContext<T>, StepDone) -> BoxFuture<Result<String, String>> + Send + Sync;

/// A step made of async closures; see [`from_fn`].
pub struct FnStep<T: ?Sized> {
    kind: String,
    run: Box<RunFn<T>>,
    undo: Option<Box<UndoFn<T>>>,
    external: bool,
}

/// A step of kind `kind` that runs the async closure `run`, given a clone of the context and of
/// the error. It has nothing to undo until [`FnStep::with_undo`] gives it an undo.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use recovery_core::{RecoveryContext, SwarmError};
/// use recovery_workflow::{StepAction, StepDone, from_fn};
///
/// type Log = Mutex<Vec<String>>;
/// let step = from_fn("note", |ctx: RecoveryContext<Log>, error: SwarmError| async move {
///     ctx.target.lock().unwrap().push(format!("noted {}", error.kind()));
///     Ok(StepDone::new("noted").with_undo(1_usize))
/// })
/// .with_undo(|ctx: RecoveryContext<Log>, done: StepDone| async move {
///     let n = *done.undo_data::<usize>().ok_or("no undo data")?;
///     ctx.target.lock().unwrap().truncate(n - 1);
///     Ok("note removed".to_owned())
/// });
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let ctx = RecoveryContext::new(Arc::new(Log::default()));
/// let done = step.run(&ctx, &SwarmError::Storage("disk".into())).await.unwrap();
/// assert_eq!(*ctx.target.lock().unwrap(), ["noted Storage"]);
/// assert_eq!(step.undo(&ctx, &done).await.unwrap(), "note removed");
/// assert!(ctx.target.lock().unwrap().is_empty());
/// # });
/// ```
pub fn from_fn<T, F, Fut>(kind: impl Into<String>, run: F) -> FnStep<T>
where
    T: ?Sized + Send + Sync + 'static,
    F: Fn(RecoveryContext<T>, SwarmError) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<StepDone, StepFailed>> + Send + 'static,
{
    FnStep {
        kind: kind.into(),
        run: Box::new(move |ctx, error| Box::pin(run(ctx, error))),
        undo: None,
        external: false,
    }
}

impl<T: ?Sized + Send + Sync + 'static> FnStep<T> {
    /// Undo the step with the async closure `undo`, given a clone of the context and of what
    /// `run` returned.
    pub fn with_undo<G, Fut>(mut self, undo: G) -> Self
    where
        G: Fn(RecoveryContext<T>, StepDone) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, String>> + Send + 'static,
    {
        self.undo = Some(Box::new(move |ctx, done| Box::pin(undo(ctx, done))));
        self
    }

    /// Say that the step needs something outside the process.
    pub fn external(mut self, external: bool) -> Self {
        self.external = external;
        self
    }
}

impl<T: ?Sized> fmt::Debug for FnStep<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnStep")
            .field("kind", &self.kind)
            .field("undo", &self.undo.is_some())
            .field("external", &self.external)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<T: ?Sized + Send + Sync + 'static> StepAction<T> for FnStep<T> {
    fn kind(&self) -> &str {
        &self.kind
    }

    async fn run(
        &self,
        ctx: &RecoveryContext<T>,
        error: &SwarmError,
    ) -> Result<StepDone, StepFailed> {
        (self.run)(ctx.clone(), error.clone()).await
    }

    async fn undo(&self, ctx: &RecoveryContext<T>, done: &StepDone) -> Result<String, String> {
        match &self.undo {
            Some(undo) => undo(ctx.clone(), done.clone()).await,
            None => Ok("nothing to undo".to_owned()),
        }
    }

    fn requires_external_resources(&self) -> bool {
        self.external
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn verify_checks_again_until_it_holds() {
        // Holds from the third check on.
        let checks = Arc::new(AtomicU32::new(0));
        let verify = Verify::new("up", |c: &AtomicU32| {
            if c.fetch_add(1, Ordering::SeqCst) >= 2 {
                Ok("up".to_owned())
            } else {
                Err("down".to_owned())
            }
        })
        .with_attempts(5, Duration::from_secs(1));
        let ctx = RecoveryContext::new(Arc::clone(&checks));
        let started = tokio::time::Instant::now();
        let error = SwarmError::Storage("x".into());
        assert!(verify.run(&ctx, &error).await.is_ok());
        assert_eq!(checks.load(Ordering::SeqCst), 3);
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn verify_gives_up_after_its_attempts() {
        let verify = Verify::new("up", |_: &()| Err("down".to_owned()))
            .with_attempts(3, Duration::from_millis(100));
        let ctx = RecoveryContext::new(Arc::new(()));
        let failed = verify
            .run(&ctx, &SwarmError::Storage("x".into()))
            .await
            .unwrap_err();
        assert_eq!(
            failed.message,
            "condition `up` does not hold after 3 checks: down"
        );
        assert_eq!(failed.retries, 0, "checks are not retries of the operation");
    }
}
