//! The step trait, what a step reports, and a step's place in a workflow.

use std::any::Any;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use recovery_core::{RecoveryContext, SwarmError, async_trait};
use serde::{Deserialize, Serialize};

/// One action a workflow can run: take a checkpoint, restart a component, change the
/// configuration, verify a condition.
///
/// Object safe: a workflow holds its steps as `Arc<dyn StepAction<T>>`. The concrete actions
/// that use other strategies' capabilities live outside this crate; this crate has
/// [`Verify`](crate::Verify) and [`FnStep`](crate::FnStep).
///
/// Contract:
/// - `run` reports `Ok` only for an effect that really happened, and puts in
///   [`StepDone::undo`] whatever `undo` needs to reverse it (the old configuration values, the
///   checkpoint taken).
/// - `undo` is called only with a `StepDone` its own `run` returned, at most once, and only when
///   a later step failed with [`OnFailure::Compensate`].
/// - Both may be dropped at any await (the manager's deadline): hold no lock across an await,
///   and wait only through [`RecoveryContext::sleep`].
#[async_trait]
pub trait StepAction<T: ?Sized + Send + Sync>: Send + Sync {
    /// The kind of action (`"checkpoint"`, `"restart"`, `"verify"`); it goes into
    /// [`StepOutcome::action`](recovery_core::StepOutcome::action).
    fn kind(&self) -> &str;

    /// Carry out the step.
    async fn run(
        &self,
        ctx: &RecoveryContext<T>,
        error: &SwarmError,
    ) -> Result<StepDone, StepFailed>;

    /// Undo what `run` did (compensation); `Ok` says what was undone, `Err` why it could not
    /// be. The default has nothing to undo and succeeds.
    async fn undo(&self, _ctx: &RecoveryContext<T>, _done: &StepDone) -> Result<String, String> {
        Ok("nothing to undo".to_owned())
    }

    /// Whether the step needs something outside the process (a disk, a network, a person).
    /// Default false.
    fn requires_external_resources(&self) -> bool {
        false
    }
}

/// What a step that succeeded reports.
///
/// ```
/// use recovery_workflow::StepDone;
///
/// let done = StepDone::new("timeout raised to 600 s")
///     .with_undo(("task_timeout_secs", 300_u64))
///     .with_retries(0);
/// assert_eq!(done.undo_data::<(&str, u64)>(), Some(&("task_timeout_secs", 300)));
/// assert_eq!(done.undo_data::<String>(), None);
/// ```
#[derive(Clone)]
pub struct StepDone {
    /// What the step did, for people.
    pub detail: String,
    /// Re-runs of the failed operation the step made (a retry step's); summed by
    /// [`RecoveryResult::retries_made`](recovery_core::RecoveryResult::retries_made).
    pub retries: u32,
    /// What [`StepAction::undo`] needs to reverse the step, if anything.
    pub undo: Option<Arc<dyn Any + Send + Sync>>,
}

impl StepDone {
    /// A success described by `detail`, no retries, nothing kept for undo.
    pub fn new(detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            retries: 0,
            undo: None,
        }
    }

    /// Set the retries made.
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Keep `data` for [`StepAction::undo`].
    pub fn with_undo<V: Any + Send + Sync>(mut self, data: V) -> Self {
        self.undo = Some(Arc::new(data));
        self
    }

    /// The data kept for undo, if there is some of type `V`.
    pub fn undo_data<V: Any>(&self) -> Option<&V> {
        self.undo.as_deref().and_then(|d| d.downcast_ref::<V>())
    }
}

impl fmt::Debug for StepDone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepDone")
            .field("detail", &self.detail)
            .field("retries", &self.retries)
            .field("undo", &self.undo.is_some())
            .finish()
    }
}

/// Why a step failed, and the retries it made before it did.
///
/// ```
/// use recovery_workflow::StepFailed;
///
/// let failed = StepFailed::new("agent still unreachable").with_retries(3);
/// assert_eq!(failed.to_string(), "agent still unreachable");
/// let from_text: StepFailed = "disk full".into();
/// assert_eq!(from_text.retries, 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StepFailed {
    /// Why, for people.
    pub message: String,
    /// Re-runs of the failed operation the step made before it gave up.
    pub retries: u32,
}

impl StepFailed {
    /// A failure with `message` and no retries.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retries: 0,
        }
    }

    /// Set the retries made.
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }
}

impl From<String> for StepFailed {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&str> for StepFailed {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

/// What the workflow does when a step fails.
///
/// In TOML: `on_failure = "stop" | "skip" | "compensate"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Stop: the later steps do not run. The default.
    #[default]
    Stop,
    /// Record the failure and go on with the next step.
    Skip,
    /// Undo every earlier step that succeeded, latest first, then stop.
    Compensate,
}

impl OnFailure {
    /// The policy as TOML writes it: `stop`, `skip` or `compensate`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Skip => "skip",
            Self::Compensate => "compensate",
        }
    }
}

impl fmt::Display for OnFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an [`OnFailure`] from a word that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("on_failure `{value}` is not one of: stop, skip, compensate")]
pub struct UnknownOnFailure {
    /// The word that did not parse.
    pub value: String,
}

impl FromStr for OnFailure {
    type Err = UnknownOnFailure;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "stop" => Ok(Self::Stop),
            "skip" => Ok(Self::Skip),
            "compensate" => Ok(Self::Compensate),
            _ => Err(UnknownOnFailure {
                value: s.to_owned(),
            }),
        }
    }
}

/// A step of a workflow: a name, an action, what to do when it fails, and whether the
/// workflow needs it to succeed.
///
/// ```
/// use std::sync::Arc;
/// use recovery_workflow::{OnFailure, Step, Verify};
///
/// let step: Step<Vec<u8>> = Step::new("non-empty", Arc::new(Verify::new("non_empty", |v: &Vec<u8>| {
///     if v.is_empty() { Err("empty".to_owned()) } else { Ok(format!("{} bytes", v.len())) }
/// })))
/// .on_failure(OnFailure::Skip)
/// .required(false);
/// assert_eq!((step.name(), step.kind(), step.failure_policy(), step.is_required()),
///            ("non-empty", "verify", OnFailure::Skip, false));
/// ```
pub struct Step<T: ?Sized> {
    name: String,
    action: Arc<dyn StepAction<T>>,
    on_failure: OnFailure,
    required: bool,
}

impl<T: ?Sized + Send + Sync> Step<T> {
    /// A step named `name` that runs `action`; it stops the workflow when it fails, and is
    /// required.
    pub fn new(name: impl Into<String>, action: Arc<dyn StepAction<T>>) -> Self {
        Self {
            name: name.into(),
            action,
            on_failure: OnFailure::Stop,
            required: true,
        }
    }

    /// Set what the workflow does when this step fails.
    pub fn on_failure(mut self, on_failure: OnFailure) -> Self {
        self.on_failure = on_failure;
        self
    }

    /// Set whether the workflow needs this step to succeed (default true).
    pub fn required(mut self, required: bool) -> Self {
        self.required = required;
        self
    }

    /// The step's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its action's kind.
    pub fn kind(&self) -> &str {
        self.action.kind()
    }

    /// Its action.
    pub fn action(&self) -> &Arc<dyn StepAction<T>> {
        &self.action
    }

    /// What the workflow does when it fails.
    pub fn failure_policy(&self) -> OnFailure {
        self.on_failure
    }

    /// Whether the workflow needs it to succeed.
    pub fn is_required(&self) -> bool {
        self.required
    }
}

impl<T: ?Sized> Clone for Step<T> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            action: Arc::clone(&self.action),
            on_failure: self.on_failure,
            required: self.required,
        }
    }
}

impl<T: ?Sized + Send + Sync> fmt::Debug for Step<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Step")
            .field("name", &self.name)
            .field("kind", &self.action.kind())
            .field("on_failure", &self.on_failure)
            .field("required", &self.required)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Fail to compile the day someone makes the trait object-unsafe.
    fn _object_safe(_: Arc<dyn StepAction<()>>, _: Box<dyn StepAction<str>>) {}

    #[test]
    fn on_failure_round_trips_through_its_word() {
        for p in [OnFailure::Stop, OnFailure::Skip, OnFailure::Compensate] {
            assert_eq!(p.as_str().parse::<OnFailure>(), Ok(p));
        }
        let err = "compensat".parse::<OnFailure>().unwrap_err();
        assert!(err.to_string().contains("`compensat`"), "{err}");
        assert_eq!(OnFailure::default(), OnFailure::Stop);
    }

    #[test]
    fn undo_data_downcasts_only_to_its_type() {
        let done = StepDone::new("x").with_undo(7_u32);
        assert_eq!(done.undo_data::<u32>(), Some(&7));
        assert_eq!(done.undo_data::<u64>(), None);
        assert_eq!(StepDone::new("y").undo_data::<u32>(), None);
        assert!(format!("{done:?}").contains("undo: true"));
    }
}
