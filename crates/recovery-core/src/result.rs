//! What a strategy reports back.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a strategy did, typed, so code and tests read the outcome without parsing
/// [`RecoveryResult::action_taken`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RecoveryAction {
    /// Nothing was done: the strategy could not act, declined, or tried and failed before it
    /// changed anything.
    None,
    /// The strategy looked and found nothing to change (the system already runs at the level
    /// the load calls for, no task needed moving). Never a success: nothing happened.
    NoChange {
        /// What was found, and why nothing was done.
        reason: String,
    },
    /// The failed operation was re-run; `attempts` counts the runs this recovery made.
    Retried {
        /// How many times the operation was run by this recovery.
        attempts: u32,
    },
    /// The target's state was restored from a checkpoint.
    Restored {
        /// The checkpoint that was restored.
        checkpoint_id: Uuid,
    },
    /// The target now runs at a degradation level (0 is normal; higher sheds more).
    Degraded {
        /// The level applied.
        level: u8,
    },
    /// A self-healing rule was applied.
    Healed {
        /// The rule's id.
        rule_id: String,
        /// The action it carried out, for example `RestartComponent(agent_protocol)`.
        action: String,
    },
    /// The strategy gave up and passed the failure upwards (for example a restart intensity was
    /// exceeded).
    Escalated {
        /// Why.
        reason: String,
    },
    /// The error cannot be recovered automatically: a person must look.
    ManualInterventionRequired {
        /// Why.
        reason: String,
    },
    /// A workflow ran its steps in order; each step's outcome is here, in order, also those
    /// not run.
    Workflow {
        /// The workflow's id.
        workflow_id: String,
        /// Every step, in the workflow's order.
        steps: Vec<StepOutcome>,
    },
    /// An action of a strategy outside this workspace.
    Custom(String),
}

/// What became of one step of a workflow ([`RecoveryAction::Workflow`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepOutcome {
    /// The step's name, as the workflow gives it.
    pub name: String,
    /// What kind of action it is (`checkpoint`, `restart`, `adjust_config`, `retry`,
    /// `verify`, `alert`, or a kind of your own).
    pub action: String,
    /// Whether it must succeed for the workflow to succeed.
    pub required: bool,
    /// What happened to it.
    pub status: StepStatus,
    /// What it did, or why it failed (and, once compensated, what its undo did).
    pub detail: String,
    /// Re-runs of the failed operation the step made (a `retry` step's).
    pub retries: u32,
}

/// The state a workflow step ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StepStatus {
    /// It ran and did what it should.
    Succeeded,
    /// It ran and failed; the workflow then stopped.
    Failed,
    /// It ran and failed, and the workflow went on (its `on_failure` is skip).
    FailedSkipped,
    /// It succeeded, and was then undone because a later step failed.
    Compensated,
    /// It succeeded, a later step failed, and undoing it failed too: the target may be
    /// half-changed.
    CompensationFailed,
    /// It never ran: the workflow stopped before it.
    NotRun,
}

impl StepStatus {
    /// The status as a short word (`succeeded`, `failed`, `failed_skipped`, `compensated`,
    /// `compensation_failed`, `not_run`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::FailedSkipped => "failed_skipped",
            Self::Compensated => "compensated",
            Self::CompensationFailed => "compensation_failed",
            Self::NotRun => "not_run",
        }
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for RecoveryAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::NoChange { reason } => write!(f, "no change: {reason}"),
            Self::Retried { attempts } => write!(f, "retried ({attempts} attempts)"),
            Self::Restored { checkpoint_id } => write!(f, "restored checkpoint {checkpoint_id}"),
            Self::Degraded { level } => write!(f, "degraded to level {level}"),
            Self::Healed { rule_id, action } => write!(f, "healed by rule {rule_id}: {action}"),
            Self::Escalated { reason } => write!(f, "escalated: {reason}"),
            Self::ManualInterventionRequired { reason } => {
                write!(f, "manual intervention required: {reason}")
            }
            Self::Workflow { workflow_id, steps } => {
                let ok = steps
                    .iter()
                    .filter(|s| s.status == StepStatus::Succeeded)
                    .count();
                write!(
                    f,
                    "workflow {workflow_id}: {ok} of {} steps succeeded",
                    steps.len()
                )
            }
            Self::Custom(s) => f.write_str(s),
        }
    }
}

/// The outcome of one recovery attempt.
///
/// `success` is true only when the strategy's effect really happened (the retried operation
/// succeeded, the state equals the checkpoint, the level was applied, the component runs again).
/// A strategy that found nothing to do returns [`RecoveryResult::no_change`]: not a success,
/// whatever it found, so that nobody counts it as progress.
///
/// The fields are public to read and to change, and the spec's patterns match on them; the
/// struct is `#[non_exhaustive]` so that fields can be added, so outside this crate a result is
/// built with [`success`](Self::success), [`failure`](Self::failure),
/// [`no_change`](Self::no_change) or [`manual_intervention`](Self::manual_intervention) and
/// the `with_*` methods.
///
/// ```
/// use std::time::Duration;
/// use recovery_core::{RecoveryAction, RecoveryResult};
///
/// let result = RecoveryResult::success(RecoveryAction::Retried { attempts: 2 }, "operation succeeded on retry")
///     .with_confidence(0.9)
///     .with_duration(Duration::from_millis(300));
/// match result {
///     RecoveryResult { success: true, confidence, .. } if confidence > 0.8 => {}
///     _ => unreachable!(),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecoveryResult {
    /// Whether the recovery's effect happened.
    pub success: bool,
    /// A sentence for people saying what was done.
    pub action_taken: String,
    /// How long the recovery took.
    pub recovery_duration: Duration,
    /// How sure the strategy is that the system is healthy again, in `0.0..=1.0`.
    pub confidence: f64,
    /// Whether a further (more expensive) strategy should still be tried.
    pub continue_recovery: bool,
    /// Details for history and people (what was measured, which checkpoints were passed over).
    pub metadata: HashMap<String, String>,
    /// What was done, typed.
    pub action: RecoveryAction,
}

impl RecoveryResult {
    /// A successful result: confidence 1.0, `continue_recovery` false.
    pub fn success(action: RecoveryAction, action_taken: impl Into<String>) -> Self {
        Self {
            success: true,
            action_taken: action_taken.into(),
            recovery_duration: Duration::ZERO,
            confidence: 1.0,
            continue_recovery: false,
            metadata: HashMap::new(),
            action,
        }
    }

    /// A failed result: confidence 0.0, `continue_recovery` true (let the next strategy try).
    pub fn failure(action: RecoveryAction, action_taken: impl Into<String>) -> Self {
        Self {
            success: false,
            action_taken: action_taken.into(),
            recovery_duration: Duration::ZERO,
            confidence: 0.0,
            continue_recovery: true,
            metadata: HashMap::new(),
            action,
        }
    }

    /// A result that says nothing was changed, and why: `success` false, confidence 0.0,
    /// [`RecoveryAction::NoChange`], `continue_recovery` true (let the next strategy try; set
    /// it with [`with_continue_recovery`](Self::with_continue_recovery)).
    ///
    /// ```
    /// use recovery_core::{RecoveryAction, RecoveryResult};
    /// let r = RecoveryResult::no_change("already at level Reduced, which the load calls for");
    /// assert!(!r.success && r.continue_recovery && r.is_no_change());
    /// assert!(matches!(r.action, RecoveryAction::NoChange { .. }));
    /// ```
    pub fn no_change(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self::failure(
            RecoveryAction::NoChange {
                reason: reason.clone(),
            },
            format!("nothing changed: {reason}"),
        )
    }

    /// Whether this result says nothing was changed ([`RecoveryAction::NoChange`]).
    pub fn is_no_change(&self) -> bool {
        matches!(self.action, RecoveryAction::NoChange { .. })
    }

    /// How many times this recovery re-ran the failed operation: the `attempts` of
    /// [`RecoveryAction::Retried`], the steps' `retries` of a [`RecoveryAction::Workflow`], 0
    /// for any other action.
    pub fn retries_made(&self) -> u32 {
        match &self.action {
            RecoveryAction::Retried { attempts } => *attempts,
            RecoveryAction::Workflow { steps, .. } => {
                steps.iter().fold(0u32, |n, s| n.saturating_add(s.retries))
            }
            _ => 0,
        }
    }

    /// Set the typed action.
    pub fn with_action(mut self, action: RecoveryAction) -> Self {
        self.action = action;
        self
    }

    /// The result for an error no strategy may handle: failure, `continue_recovery` false.
    pub fn manual_intervention(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self {
            continue_recovery: false,
            ..Self::failure(
                RecoveryAction::ManualInterventionRequired {
                    reason: reason.clone(),
                },
                format!("manual intervention required: {reason}"),
            )
        }
    }

    /// Set the confidence, clamped to `0.0..=1.0` (NaN becomes 0.0).
    pub fn with_confidence(mut self, confidence: f64) -> Self {
        self.confidence = if confidence.is_nan() {
            0.0
        } else {
            confidence.clamp(0.0, 1.0)
        };
        self
    }

    /// Set the duration.
    pub fn with_duration(mut self, duration: Duration) -> Self {
        self.recovery_duration = duration;
        self
    }

    /// Set whether further strategies should be tried.
    pub fn with_continue_recovery(mut self, continue_recovery: bool) -> Self {
        self.continue_recovery = continue_recovery;
        self
    }

    /// Add a metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_is_clamped() {
        let r = RecoveryResult::success(RecoveryAction::None, "x");
        assert_eq!(r.clone().with_confidence(3.0).confidence, 1.0);
        assert_eq!(r.clone().with_confidence(-1.0).confidence, 0.0);
        assert_eq!(r.with_confidence(f64::NAN).confidence, 0.0);
    }

    #[test]
    fn manual_intervention_stops_recovery() {
        let r = RecoveryResult::manual_intervention("protocol mismatch");
        assert!(!r.success);
        assert!(!r.continue_recovery);
        assert!(r.action_taken.contains("manual intervention required"));
        assert!(matches!(
            r.action,
            RecoveryAction::ManualInterventionRequired { .. }
        ));
    }
}
