//! Recovery workflows: a multi-step recovery procedure (take a checkpoint, restart a
//! component, adjust the configuration, verify, alert) run as one recovery strategy.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use recovery_core::{ErrorKind, RecoveryAction, RecoveryContext, RecoveryStrategy, StepStatus, StrategyInfo, SwarmError};
//! use recovery_workflow::{OnFailure, Step, StepDone, Verify, Workflow, from_fn};
//!
//! #[derive(Default)]
//! struct Swarm { connected: Mutex<bool> }
//!
//! let workflow = Workflow::<Swarm>::builder("reconnect")
//!     .handles([ErrorKind::CommunicationError])
//!     .step(Step::new("reconnect", Arc::new(from_fn("reconnect", |ctx: RecoveryContext<Swarm>, _e: SwarmError| async move {
//!         *ctx.target.connected.lock().unwrap() = true;
//!         Ok(StepDone::new("link re-established"))
//!     }))).on_failure(OnFailure::Compensate))
//!     .step(Step::new("connected", Arc::new(Verify::new("connected", |s: &Swarm| {
//!         if *s.connected.lock().unwrap() { Ok("link up".into()) } else { Err("link down".into()) }
//!     }))))
//!     .build()
//!     .unwrap();
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let error = SwarmError::CommunicationError("connection reset".into());
//! assert!(workflow.can_handle(&error).await);
//! let result = workflow.recover(&RecoveryContext::new(Arc::new(Swarm::default())), &error).await;
//! assert!(result.success, "{}", result.action_taken);
//! let RecoveryAction::Workflow { steps, .. } = &result.action else { unreachable!() };
//! assert!(steps.iter().all(|s| s.status == StepStatus::Succeeded));
//! assert_eq!(result.metadata["step.2.connected"], "succeeded: condition `connected` holds: link up");
//! # });
//! ```
//!
//! # What a workflow is
//!
//! A [`Workflow`] is an id, the error kinds it handles, a cost estimate and an ordered list of
//! [`Step`]s. Each step has a name, an action (an `Arc<dyn` [`StepAction`]`<T>>`), what to do
//! when it fails ([`OnFailure`]) and whether the workflow needs it to succeed (`required`,
//! default true). A workflow is a [`RecoveryStrategy<T>`](recovery_core::RecoveryStrategy) for
//! any target `T`; its strategy id is its id.
//!
//! This crate depends on no other strategy crate: it has the engine, the step trait, the
//! generic [`Verify`] step, steps from closures ([`from_fn`]), the TOML form ([`WorkflowSpec`])
//! and the [`StepRegistry`] that turns it into steps. Steps that checkpoint, restart, adjust or
//! retry are registered by whoever has those capabilities (the manager).
//!
//! # Semantics
//!
//! The steps run in order. When a step fails:
//!
//! | `on_failure` | the failed step | earlier steps that succeeded | later steps |
//! |---|---|---|---|
//! | `stop` (default) | `Failed` | kept as they are | `NotRun` |
//! | `skip` | `FailedSkipped` | kept | run |
//! | `compensate` | `Failed` | undone, latest first: `Compensated`, or `CompensationFailed` when the undo fails (the other undos still run) | `NotRun` |
//!
//! - **Success** when every required step succeeded and nothing was compensated: a skipped
//!   failure of an optional step does not spoil it, a skipped failure of a required step does
//!   (the rest still runs). Confidence 0.8, or 0.6 when an optional step failed or did not run.
//! - **Failure** otherwise, with `continue_recovery: true` (the manager may try another
//!   strategy), except when an undo failed: then `continue_recovery` is false and
//!   `action_taken` says the target may be half-changed and a person should look.
//! - The result's action is [`RecoveryAction::Workflow`](recovery_core::RecoveryAction::Workflow)
//!   with one [`StepOutcome`](recovery_core::StepOutcome) per step, in order, also those not
//!   run; the steps' retries are summed by
//!   [`retries_made`](recovery_core::RecoveryResult::retries_made). Each outcome is also in the
//!   metadata, as `step.<position>.<name>` (position 1 for the first step) =>
//!   `<status>: <detail>`, beside `workflow_id`.
//! - `can_handle` is true only for recoverable errors of the kinds the workflow handles; for
//!   any other error `recover` runs nothing and reports no change.
//! - Every step run, skipped or undone emits a tracing event (target `recovery_workflow`).
//! - The `recover` future may be dropped at any await (a deadline): the engine holds no lock,
//!   and steps already done stay done (nothing is undone for a cancelled workflow).
//!
//! # In TOML
//!
//! ```toml
//! [[workflows]]
//! id = "reconnect_agent"
//! description = "snapshot, restart the protocol, check the agents are back"
//! handles = ["CommunicationError"]
//! cost = 0.5                        # default 0.5
//!
//! [[workflows.steps]]
//! name = "snapshot"
//! action = "checkpoint"
//! on_failure = "stop"               # stop | skip | compensate; default stop
//! required = true                   # default true
//!
//! [[workflows.steps]]
//! name = "restart protocol"
//! action = "restart"
//! component = "agent_protocol"      # the action's own parameters, in the step's table
//! on_failure = "compensate"
//!
//! [[workflows.steps]]
//! name = "agents idle"
//! action = "verify"
//! condition = "agents_idle"         # registered with StepRegistry::condition
//! attempts = 5                      # optional: check again until it holds
//! interval = "1s"
//! ```
//!
//! Parse a [`WorkflowSpec`] with serde (inside a type of your own holding the list), then
//! [`WorkflowSpec::build`] it with a [`StepRegistry`] that knows the actions. Errors name the
//! workflow and the step: ``workflow `reconnect_agent`, step 2 `restart protocol`: unknown
//! parameter `componnet` (expected: component)``.

mod engine;
mod error;
mod params;
mod registry;
mod spec;
mod step;
mod steps;
mod workflow;

pub use error::{StepProblem, WorkflowError};
pub use params::Params;
pub use registry::{StepConstructor, StepRegistry};
pub use spec::{StepSpec, WorkflowSpec};
pub use step::{OnFailure, Step, StepAction, StepDone, StepFailed, UnknownOnFailure};
pub use steps::{Condition, FnStep, Verify, from_fn};
pub use workflow::{DEFAULT_COST, Workflow, WorkflowBuilder};
