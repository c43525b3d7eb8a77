//! Why a workflow could not be built.

use recovery_core::ErrorKind;

/// A workflow that cannot be built, from code or from a [`WorkflowSpec`](crate::WorkflowSpec).
///
/// Every message names the workflow, and a step's problem names the step by its position
/// (1 for the first) and its name:
/// ``workflow `reconnect_agent`, step 2 `restart protocol`: unknown action `restartt` (known:
/// checkpoint, restart, verify)``.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkflowError {
    /// The workflow's id is empty.
    #[error("a workflow's id is empty")]
    EmptyId,
    /// The workflow has no steps.
    #[error("workflow `{workflow}` has no steps")]
    NoSteps {
        /// The workflow.
        workflow: String,
    },
    /// The workflow handles no error kind, so it would never run.
    #[error("workflow `{workflow}` handles no error kind; name at least one in `handles`")]
    NoErrorKinds {
        /// The workflow.
        workflow: String,
    },
    /// `handles` names a kind that does not exist.
    #[error("workflow `{workflow}`: handles names unknown error kind `{name}` (known: {known})")]
    UnknownErrorKind {
        /// The workflow.
        workflow: String,
        /// The name as written.
        name: String,
        /// The kinds there are, comma-separated.
        known: String,
    },
    /// `handles` names a kind no strategy may handle, so the workflow would never run for it.
    #[error(
        "workflow `{workflow}`: handles `{kind}`, which is not recoverable: no strategy runs for it"
    )]
    NotRecoverable {
        /// The workflow.
        workflow: String,
        /// The kind.
        kind: ErrorKind,
    },
    /// The cost estimate is not a finite number in `0.0..=1.0`.
    #[error("workflow `{workflow}`: cost {cost} is not in 0.0..=1.0")]
    InvalidCost {
        /// The workflow.
        workflow: String,
        /// The cost given.
        cost: f64,
    },
    /// A step is wrong.
    #[error("workflow `{workflow}`, step {position} `{step}`: {problem}")]
    Step {
        /// The workflow.
        workflow: String,
        /// The step's position, 1 for the first.
        position: usize,
        /// The step's name.
        step: String,
        /// What is wrong with it.
        problem: StepProblem,
    },
}

/// What is wrong with one step (see [`WorkflowError::Step`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StepProblem {
    /// The step's name is empty.
    #[error("the step's name is empty")]
    EmptyName,
    /// An earlier step has the same name.
    #[error("step {first} has the same name; step names must be unique")]
    DuplicateName {
        /// The position of the earlier step with this name.
        first: usize,
    },
    /// No constructor is registered for the action.
    #[error("unknown action `{action}` (known: {known})")]
    UnknownAction {
        /// The action as written.
        action: String,
        /// The registered actions, comma-separated.
        known: String,
    },
    /// `on_failure` is not `stop`, `skip` or `compensate`.
    #[error("on_failure `{value}` is not one of: stop, skip, compensate")]
    BadOnFailure {
        /// The value as written.
        value: String,
    },
    /// The action's constructor refused the parameters (an unknown, missing or badly typed
    /// one); the message is the constructor's.
    #[error("{0}")]
    BadParameters(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_errors_name_the_workflow_and_the_step() {
        let e = WorkflowError::Step {
            workflow: "reconnect_agent".into(),
            position: 2,
            step: "restart protocol".into(),
            problem: StepProblem::UnknownAction {
                action: "restartt".into(),
                known: "checkpoint, restart, verify".into(),
            },
        };
        assert_eq!(
            e.to_string(),
            "workflow `reconnect_agent`, step 2 `restart protocol`: unknown action `restartt` \
             (known: checkpoint, restart, verify)"
        );
    }
}
