//! `Workflow`: an ordered list of steps run as one recovery strategy, and its builder.

use std::fmt;

use recovery_core::{ErrorKind, StrategyInfo, SwarmError, async_trait};

use crate::error::{StepProblem, WorkflowError};
use crate::step::Step;

/// The cost estimate of a workflow that does not set one.
pub const DEFAULT_COST: f64 = 0.5;

/// A multi-step recovery procedure run as one strategy: its steps run in order, and a step's
/// failure stops the workflow, is skipped, or undoes the earlier steps (see the crate docs for
/// the semantics).
///
/// Built with [`Workflow::builder`] or from a [`WorkflowSpec`](crate::WorkflowSpec); both check
/// it (a non-empty id, at least one step, unique step names, at least one recoverable error
/// kind, a cost in `0.0..=1.0`).
///
/// As a [`StrategyInfo`]: its `strategy_id` is the workflow's id, `can_handle` is true only for
/// recoverable errors of the kinds it handles, `cost_estimate` is its cost (default
/// [`DEFAULT_COST`]), and it requires external resources when one of its steps does.
pub struct Workflow<T: ?Sized> {
    pub(crate) id: String,
    pub(crate) description: String,
    pub(crate) handles: Vec<ErrorKind>,
    pub(crate) cost: f64,
    pub(crate) steps: Vec<Step<T>>,
}

impl<T: ?Sized + Send + Sync> Workflow<T> {
    /// Start building a workflow with id `id`.
    pub fn builder(id: impl Into<String>) -> WorkflowBuilder<T> {
        WorkflowBuilder {
            id: id.into(),
            description: None,
            handles: Vec::new(),
            cost: DEFAULT_COST,
            steps: Vec::new(),
        }
    }

    /// The workflow's id (also its strategy id).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The error kinds it handles, in the order given, without repeats.
    pub fn handles(&self) -> &[ErrorKind] {
        &self.handles
    }

    /// Its cost estimate, in `0.0..=1.0`.
    pub fn cost(&self) -> f64 {
        self.cost
    }

    /// Its steps, in order.
    pub fn steps(&self) -> &[Step<T>] {
        &self.steps
    }

    /// Whether it runs for `error`: a recoverable error of a kind it handles.
    pub fn handles_error(&self, error: &SwarmError) -> bool {
        error.is_recoverable() && self.handles.contains(&error.kind())
    }
}

impl<T: ?Sized + Send + Sync> fmt::Debug for Workflow<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workflow")
            .field("id", &self.id)
            .field("description", &self.description)
            .field("handles", &self.handles)
            .field("cost", &self.cost)
            .field("steps", &self.steps)
            .finish()
    }
}

impl<T: ?Sized> Clone for Workflow<T> {
    fn clone(&self) -> Self {
        Self {
            id: self.id.clone(),
            description: self.description.clone(),
            handles: self.handles.clone(),
            cost: self.cost,
            steps: self.steps.clone(),
        }
    }
}

/// Builds a [`Workflow`]; see [`Workflow::builder`].
///
/// ```
/// use std::sync::Arc;
/// use recovery_core::ErrorKind;
/// use recovery_workflow::{StepProblem, Step, Verify, Workflow, WorkflowError};
///
/// let ok = || Arc::new(Verify::new("always", |_: &()| Ok("fine".to_owned())));
/// let err = Workflow::<()>::builder("twice")
///     .handles([ErrorKind::CommunicationError])
///     .step(Step::new("check", ok()))
///     .step(Step::new("check", ok()))
///     .build()
///     .unwrap_err();
/// assert!(matches!(err, WorkflowError::Step { position: 2, problem: StepProblem::DuplicateName { first: 1 }, .. }));
/// assert_eq!(err.to_string(), "workflow `twice`, step 2 `check`: step 1 has the same name; step names must be unique");
/// ```
pub struct WorkflowBuilder<T: ?Sized> {
    id: String,
    description: Option<String>,
    handles: Vec<ErrorKind>,
    cost: f64,
    steps: Vec<Step<T>>,
}

impl<T: ?Sized + Send + Sync> WorkflowBuilder<T> {
    /// Set the description (one sentence for people). Without one, the description lists the
    /// steps.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Add error kinds the workflow handles.
    pub fn handles(mut self, kinds: impl IntoIterator<Item = ErrorKind>) -> Self {
        self.handles.extend(kinds);
        self
    }

    /// Set the cost estimate (default [`DEFAULT_COST`]).
    pub fn cost(mut self, cost: f64) -> Self {
        self.cost = cost;
        self
    }

    /// Add a step after those already added.
    pub fn step(mut self, step: Step<T>) -> Self {
        self.steps.push(step);
        self
    }

    /// Add steps after those already added.
    pub fn steps(mut self, steps: impl IntoIterator<Item = Step<T>>) -> Self {
        self.steps.extend(steps);
        self
    }

    /// Check and build the workflow.
    ///
    /// # Errors
    ///
    /// The first problem found, in this order: an empty id, no error kind, a kind that is not
    /// recoverable, a cost that is not finite in `0.0..=1.0`, no steps, a step with an empty
    /// name or the name of an earlier step.
    pub fn build(self) -> Result<Workflow<T>, WorkflowError> {
        if self.id.trim().is_empty() {
            return Err(WorkflowError::EmptyId);
        }
        let workflow = || self.id.clone();
        let mut handles: Vec<ErrorKind> = Vec::new();
        for kind in self.handles.iter().copied() {
            if !kind.is_recoverable() {
                return Err(WorkflowError::NotRecoverable {
                    workflow: workflow(),
                    kind,
                });
            }
            if !handles.contains(&kind) {
                handles.push(kind);
            }
        }
        if handles.is_empty() {
            return Err(WorkflowError::NoErrorKinds {
                workflow: workflow(),
            });
        }
        if !(self.cost.is_finite() && (0.0..=1.0).contains(&self.cost)) {
            return Err(WorkflowError::InvalidCost {
                workflow: workflow(),
                cost: self.cost,
            });
        }
        if self.steps.is_empty() {
            return Err(WorkflowError::NoSteps {
                workflow: workflow(),
            });
        }
        check_step_names(&self.id, self.steps.iter().map(Step::name))?;
        let description = self.description.unwrap_or_else(|| {
            let names: Vec<&str> = self.steps.iter().map(Step::name).collect();
            format!("recovery workflow: {}", names.join(", then "))
        });
        Ok(Workflow {
            id: self.id,
            description,
            handles,
            cost: self.cost,
            steps: self.steps,
        })
    }
}

/// Check that step names are non-empty and unique; the error names the first bad step.
pub(crate) fn check_step_names<'a>(
    workflow: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), WorkflowError> {
    let mut seen: Vec<&str> = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        let problem = if name.trim().is_empty() {
            Some(StepProblem::EmptyName)
        } else {
            seen.iter()
                .position(|n| *n == name)
                .map(|first| StepProblem::DuplicateName { first: first + 1 })
        };
        if let Some(problem) = problem {
            return Err(WorkflowError::Step {
                workflow: workflow.to_owned(),
                position: i + 1,
                step: name.to_owned(),
                problem,
            });
        }
        seen.push(name);
    }
    Ok(())
}

#[async_trait]
impl<T: ?Sized + Send + Sync> StrategyInfo for Workflow<T> {
    fn strategy_id(&self) -> &str {
        &self.id
    }

    fn description(&self) -> &str {
        &self.description
    }

    async fn can_handle(&self, error: &SwarmError) -> bool {
        self.handles_error(error)
    }

    async fn cost_estimate(&self) -> f64 {
        self.cost
    }

    async fn requires_external_resources(&self) -> bool {
        self.steps
            .iter()
            .any(|s| s.action().requires_external_resources())
    }
}
