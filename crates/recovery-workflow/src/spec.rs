//! Workflows written in TOML: `WorkflowSpec` and `StepSpec`.

use serde::{Deserialize, Serialize};

use recovery_core::ErrorKind;

use crate::error::{StepProblem, WorkflowError};
use crate::registry::StepRegistry;
use crate::step::{OnFailure, Step};
use crate::workflow::{DEFAULT_COST, Workflow, check_step_names};

/// A workflow as a configuration file writes it; [`build`](Self::build) turns it into a
/// [`Workflow`] with the steps of a [`StepRegistry`].
///
/// ```toml
/// [[workflows]]
/// id = "reconnect_agent"
/// description = "snapshot, restart the protocol, check the agents are back"
/// handles = ["CommunicationError"]
/// cost = 0.5                       # optional, default 0.5
///
/// [[workflows.steps]]
/// name = "snapshot"
/// action = "checkpoint"
///
/// [[workflows.steps]]
/// name = "restart protocol"
/// action = "restart"
/// component = "agent_protocol"     # the action's own parameters
/// on_failure = "compensate"        # stop (default) | skip | compensate
///
/// [[workflows.steps]]
/// name = "agents back"
/// action = "verify"
/// condition = "agents_connected"
/// required = false                 # default true
/// ```
///
/// Parsing checks only the shape (unknown workflow fields are refused); `build` checks the
/// rest and names the workflow, and the step by position and name, in its errors. The type of
/// the list around it is the caller's (`[[workflows]]` above is a
/// `struct File { workflows: Vec<WorkflowSpec> }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowSpec {
    /// The workflow's id, also its strategy id.
    pub id: String,
    /// One sentence for people; empty for one listing the steps.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The error kinds it handles, by name (`"CommunicationError"`).
    pub handles: Vec<String>,
    /// Its cost estimate, in `0.0..=1.0`.
    #[serde(default = "default_cost")]
    pub cost: f64,
    /// Its steps, in order.
    pub steps: Vec<StepSpec>,
}

/// One step of a [`WorkflowSpec`].
///
/// Every key of the step's table other than the four below is a parameter of its action, and
/// the action's constructor refuses those it does not take, so a misspelt key is an error.
/// (That is why this type cannot use serde's `deny_unknown_fields`.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSpec {
    /// The step's name, unique in the workflow.
    pub name: String,
    /// Its action's kind, as registered in the [`StepRegistry`] (`"verify"`).
    pub action: String,
    /// `stop` (the default), `skip` or `compensate`; see [`OnFailure`]. A string, so that a
    /// wrong word is reported by [`WorkflowSpec::build`], naming the step.
    #[serde(default = "default_on_failure")]
    pub on_failure: String,
    /// Whether the workflow needs it to succeed (default true).
    #[serde(default = "default_required")]
    pub required: bool,
    /// The action's parameters.
    #[serde(flatten)]
    pub params: toml::Table,
}

fn default_cost() -> f64 {
    DEFAULT_COST
}

fn default_on_failure() -> String {
    OnFailure::Stop.as_str().to_owned()
}

fn default_required() -> bool {
    true
}

impl WorkflowSpec {
    /// Build the workflow, making each step with `registry`.
    ///
    /// # Errors
    ///
    /// A [`WorkflowError`] for an empty id, an unknown or unrecoverable error kind in
    /// `handles` or none at all, a cost outside `0.0..=1.0`, no steps, and, naming the step, an
    /// empty or repeated step name, a bad `on_failure`, an unknown action, or parameters its
    /// constructor refuses.
    pub fn build<T: ?Sized + Send + Sync + 'static>(
        &self,
        registry: &StepRegistry<T>,
    ) -> Result<Workflow<T>, WorkflowError> {
        if self.id.trim().is_empty() {
            return Err(WorkflowError::EmptyId);
        }
        let mut handles = Vec::with_capacity(self.handles.len());
        for name in &self.handles {
            let kind = name
                .parse::<ErrorKind>()
                .map_err(|_| WorkflowError::UnknownErrorKind {
                    workflow: self.id.clone(),
                    name: name.clone(),
                    known: ErrorKind::ALL
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
            handles.push(kind);
        }
        check_step_names(&self.id, self.steps.iter().map(|s| s.name.as_str()))?;
        let mut steps = Vec::with_capacity(self.steps.len());
        for (i, spec) in self.steps.iter().enumerate() {
            let step_error = |problem| WorkflowError::Step {
                workflow: self.id.clone(),
                position: i + 1,
                step: spec.name.clone(),
                problem,
            };
            let on_failure = spec.on_failure.parse::<OnFailure>().map_err(|e| {
                step_error(StepProblem::BadOnFailure {
                    value: e.value.clone(),
                })
            })?;
            let action = registry
                .build_step(&spec.action, &spec.params)
                .map_err(step_error)?;
            steps.push(
                Step::new(spec.name.clone(), action)
                    .on_failure(on_failure)
                    .required(spec.required),
            );
        }
        let mut builder = Workflow::builder(self.id.clone())
            .handles(handles)
            .cost(self.cost)
            .steps(steps);
        if !self.description.is_empty() {
            builder = builder.description(self.description.clone());
        }
        builder.build()
    }
}
