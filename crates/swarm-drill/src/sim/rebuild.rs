//! The simulation's own recoveries: rebuilding a wedged scheduling entry, and the workflow for
//! coordination timeouts.

use std::sync::Weak;

use recovery_core::{
    ErrorKind, RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy, StrategyInfo,
    SwarmError, async_trait,
};
use swarm_integration::SwarmCoordinator;

use super::world::World;

/// Rebuilds the failed task's scheduling entry in the world: a success only when the entry was
/// wedged and no longer is, [`RecoveryResult::no_change`] when it was not wedged. Handles
/// `TransactionFailed` at cost 0.3, so by cost it comes after the backoff strategy (0.1),
/// which retries and cannot unwedge anything: the fault mix of the learned-order experiment.
#[derive(Debug)]
pub(crate) struct RebuildEntry {
    pub(crate) world: Weak<World>,
}

#[async_trait]
impl StrategyInfo for RebuildEntry {
    fn strategy_id(&self) -> &str {
        "rebuild_entry"
    }

    fn description(&self) -> &str {
        "rebuilds a task's wedged scheduling entry"
    }

    async fn can_handle(&self, error: &SwarmError) -> bool {
        error.kind() == ErrorKind::TransactionFailed
    }

    async fn cost_estimate(&self) -> f64 {
        0.3
    }

    async fn requires_external_resources(&self) -> bool {
        false
    }
}

#[async_trait]
impl RecoveryStrategy<SwarmCoordinator> for RebuildEntry {
    async fn recover(
        &self,
        context: &RecoveryContext<SwarmCoordinator>,
        _error: &SwarmError,
    ) -> RecoveryResult {
        let Some(task) = context.failed_task_id else {
            return RecoveryResult::no_change("no task named: no entry to rebuild");
        };
        let Some(world) = self.world.upgrade() else {
            return RecoveryResult::no_change("the world is gone");
        };
        if world.lock().wedged.remove(&task) {
            RecoveryResult::success(
                RecoveryAction::Custom("rebuilt the scheduling entry".into()),
                format!("rebuilt task {task}'s scheduling entry"),
            )
            .with_confidence(0.9)
        } else {
            RecoveryResult::no_change(format!("task {task}'s scheduling entry is not wedged"))
        }
    }
}

/// The workflow of `--workflows`: for a coordination timeout, an alert (optional), a retry with
/// backoff (required), then a check that the coordinator's audit finds nothing wrong
/// (required). Cost 0.05, so by cost it runs before the backoff strategy on its own.
pub(crate) fn timeout_workflow(
    seed: u64,
) -> recovery_manager::workflow::Workflow<SwarmCoordinator> {
    use recovery_manager::workflow::{AlertStep, OnFailure, RetryStep, Step, Verify, Workflow};
    let backoff = recovery_backoff::ExponentialBackoffStrategy::new(
        recovery_backoff::BackoffConfig::default(),
    )
    .expect("the default backoff config is valid")
    .with_seed(seed);
    let alert = AlertStep::new(
        std::sync::Arc::new(recovery_healing::TracingAlertSink),
        recovery_healing::Severity::Info,
        "a run timed out; retrying it",
        "timeout_retry",
    );
    let audit = Verify::new("audit_clean", |c: &SwarmCoordinator| {
        let problems = c.audit();
        if problems.is_empty() {
            Ok("the audit finds nothing wrong".to_owned())
        } else {
            Err(problems.join("; "))
        }
    });
    Workflow::builder("timeout_retry")
        .description("alert, retry with backoff, check the audit")
        .handles([ErrorKind::CoordinationTimeout])
        .cost(0.05)
        .step(
            Step::new("tell on-call", std::sync::Arc::new(alert))
                .required(false)
                .on_failure(OnFailure::Skip),
        )
        .step(Step::new(
            "retry",
            std::sync::Arc::new(RetryStep::new(std::sync::Arc::new(backoff))),
        ))
        .step(Step::new("audit", std::sync::Arc::new(audit)))
        .build()
        .expect("a valid workflow")
}
