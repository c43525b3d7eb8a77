//! Workflow steps that act through the strategies of this workspace (the `workflow` feature):
//! take a checkpoint, restart a component, adjust the configuration, retry, raise an alert; and
//! the registry that lets a workflow written in TOML name them.
//!
//! Each step asks only for its own capability (`T: Checkpointable` for [`CheckpointStep`], and
//! so on), as the builder's steps do. The engine, the step trait and `verify` are in
//! [`recovery_workflow`].
//!
//! | action | parameters | does | undo (compensation) |
//! |---|---|---|---|
//! | `checkpoint` | | takes a checkpoint | restores that checkpoint |
//! | `restart` | `component` | restarts the component | none: a restart is not undone |
//! | `adjust_config` | `set` (a table), `undo` (a table, optional) | applies `set` | applies `undo`, if given |
//! | `retry` | | re-runs the failed operation with the backoff strategy | none |
//! | `alert` | `severity` (`info`, `warning`, `critical`; default `warning`), `message` | sends an alert | none |
//! | `verify` | `condition`, `attempts`, `interval` | checks a condition you registered | none |

#[cfg(any(feature = "backoff", feature = "checkpoint", feature = "healing"))]
use std::sync::Arc;

#[cfg(any(feature = "backoff", feature = "checkpoint", feature = "healing"))]
use recovery_core::{RecoveryContext, SwarmError, async_trait};
pub use recovery_workflow::{
    OnFailure, Params, Step, StepAction, StepDone, StepFailed, StepRegistry, Verify, Workflow,
    WorkflowError, WorkflowSpec, from_fn,
};

/// `checkpoint`: takes a checkpoint with the checkpoint strategy; its undo restores it.
#[cfg(feature = "checkpoint")]
#[derive(Debug, Clone)]
pub struct CheckpointStep {
    strategy: Arc<recovery_checkpoint::CheckpointRecoveryStrategy>,
}

#[cfg(feature = "checkpoint")]
impl CheckpointStep {
    /// A step that checkpoints with `strategy` (its store and retention).
    pub fn new(strategy: Arc<recovery_checkpoint::CheckpointRecoveryStrategy>) -> Self {
        Self { strategy }
    }
}

#[cfg(feature = "checkpoint")]
#[async_trait]
impl<T: recovery_checkpoint::Checkpointable + ?Sized> StepAction<T> for CheckpointStep {
    fn kind(&self) -> &str {
        "checkpoint"
    }

    async fn run(&self, ctx: &RecoveryContext<T>, _: &SwarmError) -> Result<StepDone, StepFailed> {
        let id = self
            .strategy
            .create_checkpoint(&*ctx.target)
            .await
            .map_err(|e| StepFailed::new(format!("no checkpoint taken: {e}")))?;
        crate::metrics::checkpoint_created(true);
        Ok(StepDone::new(format!("checkpoint {id} taken")).with_undo(id))
    }

    async fn undo(&self, ctx: &RecoveryContext<T>, done: &StepDone) -> Result<String, String> {
        let id = *done
            .undo_data::<uuid::Uuid>()
            .ok_or("the step recorded no checkpoint id")?;
        self.strategy
            .restore_from_checkpoint(&*ctx.target, Some(id))
            .await
            .map_err(|e| format!("restoring checkpoint {id} failed: {e}"))?;
        crate::metrics::checkpoint_restored();
        Ok(format!("restored checkpoint {id}"))
    }

    fn requires_external_resources(&self) -> bool {
        self.strategy.store().uses_external_resources()
    }
}

/// `restart`: restarts a component of the target (its `Healable::restart_component`).
#[cfg(feature = "healing")]
#[derive(Debug, Clone)]
pub struct RestartStep {
    component: String,
}

#[cfg(feature = "healing")]
impl RestartStep {
    /// A step that restarts `component`.
    pub fn new(component: impl Into<String>) -> Self {
        Self {
            component: component.into(),
        }
    }
}

#[cfg(feature = "healing")]
#[async_trait]
impl<T: recovery_healing::Healable + ?Sized> StepAction<T> for RestartStep {
    fn kind(&self) -> &str {
        "restart"
    }

    async fn run(&self, ctx: &RecoveryContext<T>, _: &SwarmError) -> Result<StepDone, StepFailed> {
        ctx.target
            .restart_component(&self.component)
            .await
            .map_err(|e| StepFailed::new(format!("`{}` was not restarted: {e}", self.component)))?;
        Ok(StepDone::new(format!("restarted `{}`", self.component)))
    }

    async fn undo(&self, _: &RecoveryContext<T>, _: &StepDone) -> Result<String, String> {
        Ok(format!("a restart of `{}` is not undone", self.component))
    }
}

/// `adjust_config`: applies a configuration patch; its undo applies the `undo` patch, if one
/// was given (the target cannot be asked for its old values).
#[cfg(feature = "healing")]
#[derive(Debug, Clone)]
pub struct AdjustConfigStep {
    set: recovery_healing::ConfigPatch,
    undo: Option<recovery_healing::ConfigPatch>,
}

#[cfg(feature = "healing")]
impl AdjustConfigStep {
    /// A step that applies `set`, and `undo` when compensated.
    pub fn new(
        set: recovery_healing::ConfigPatch,
        undo: Option<recovery_healing::ConfigPatch>,
    ) -> Self {
        Self { set, undo }
    }
}

#[cfg(feature = "healing")]
fn keys(patch: &recovery_healing::ConfigPatch) -> String {
    patch.0.keys().cloned().collect::<Vec<_>>().join(", ")
}

#[cfg(feature = "healing")]
#[async_trait]
impl<T: recovery_healing::Healable + ?Sized> StepAction<T> for AdjustConfigStep {
    fn kind(&self) -> &str {
        "adjust_config"
    }

    async fn run(&self, ctx: &RecoveryContext<T>, _: &SwarmError) -> Result<StepDone, StepFailed> {
        ctx.target
            .apply_config_patch(&self.set)
            .await
            .map_err(|e| StepFailed::new(format!("the patch was refused: {e}")))?;
        Ok(StepDone::new(format!("set {}", keys(&self.set))))
    }

    async fn undo(&self, ctx: &RecoveryContext<T>, _: &StepDone) -> Result<String, String> {
        match &self.undo {
            Some(undo) => {
                ctx.target
                    .apply_config_patch(undo)
                    .await
                    .map_err(|e| format!("the undo patch was refused: {e}"))?;
                Ok(format!("set {} back", keys(undo)))
            }
            None => Err(format!(
                "{} cannot be set back: the step has no `undo` patch",
                keys(&self.set)
            )),
        }
    }
}

/// `retry`: re-runs the failed operation with a backoff strategy (its delays, its retries,
/// counted in the result like the strategy's own).
#[cfg(feature = "backoff")]
#[derive(Debug, Clone)]
pub struct RetryStep {
    backoff: Arc<recovery_backoff::ExponentialBackoffStrategy>,
}

#[cfg(feature = "backoff")]
impl RetryStep {
    /// A step that retries with `backoff`.
    pub fn new(backoff: Arc<recovery_backoff::ExponentialBackoffStrategy>) -> Self {
        Self { backoff }
    }
}

#[cfg(feature = "backoff")]
#[async_trait]
impl<T: recovery_backoff::Retry + ?Sized> StepAction<T> for RetryStep {
    fn kind(&self) -> &str {
        "retry"
    }

    async fn run(
        &self,
        ctx: &RecoveryContext<T>,
        error: &SwarmError,
    ) -> Result<StepDone, StepFailed> {
        use recovery_core::RecoveryStrategy;
        let result = RecoveryStrategy::<T>::recover(&*self.backoff, ctx, error).await;
        let retries = result.retries_made();
        if result.success {
            Ok(StepDone::new(result.action_taken).with_retries(retries))
        } else {
            Err(StepFailed::new(result.action_taken).with_retries(retries))
        }
    }
}

/// `alert`: sends an alert through a sink (by default the tracing one); it never fails the
/// workflow's target, but a sink that cannot deliver fails the step.
#[cfg(feature = "healing")]
#[derive(Clone)]
pub struct AlertStep {
    sink: Arc<dyn recovery_healing::AlertSink>,
    severity: recovery_healing::Severity,
    message: String,
    workflow: String,
}

#[cfg(feature = "healing")]
impl std::fmt::Debug for AlertStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertStep")
            .field("severity", &self.severity)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "healing")]
impl AlertStep {
    /// A step that sends `message` at `severity` to `sink`, as raised by `workflow`.
    pub fn new(
        sink: Arc<dyn recovery_healing::AlertSink>,
        severity: recovery_healing::Severity,
        message: impl Into<String>,
        workflow: impl Into<String>,
    ) -> Self {
        Self {
            sink,
            severity,
            message: message.into(),
            workflow: workflow.into(),
        }
    }
}

#[cfg(feature = "healing")]
#[async_trait]
impl<T: Send + Sync + ?Sized> StepAction<T> for AlertStep {
    fn kind(&self) -> &str {
        "alert"
    }

    async fn run(
        &self,
        ctx: &RecoveryContext<T>,
        error: &SwarmError,
    ) -> Result<StepDone, StepFailed> {
        let alert = recovery_healing::Alert {
            rule_id: self.workflow.clone(),
            severity: self.severity,
            message: self.message.clone(),
            error_kind: error.kind(),
            error_message: error.to_string(),
            failed_agent_id: ctx.failed_agent_id,
            failed_task_id: ctx.failed_task_id,
            raised_at: std::time::SystemTime::now(),
        };
        self.sink
            .send(&alert)
            .await
            .map_err(|e| StepFailed::new(format!("the alert was not delivered: {e}")))?;
        Ok(StepDone::new(format!("{} alert sent", self.severity)))
    }

    fn requires_external_resources(&self) -> bool {
        self.sink.is_external()
    }
}

/// What the TOML actions act with: the strategies a manager was built with.
#[cfg(all(
    feature = "backoff",
    feature = "checkpoint",
    feature = "degradation",
    feature = "healing"
))]
#[derive(Clone)]
pub struct StepTools {
    /// For `checkpoint`.
    pub checkpoint: Arc<recovery_checkpoint::CheckpointRecoveryStrategy>,
    /// For `retry`.
    pub backoff: Arc<recovery_backoff::ExponentialBackoffStrategy>,
    /// For `alert`.
    pub alerts: Arc<dyn recovery_healing::AlertSink>,
}

/// A registry with every action of this workspace (`checkpoint`, `restart`, `adjust_config`,
/// `retry`, `alert`, and `verify`), for a target with all four capabilities. Add your
/// conditions with [`StepRegistry::condition`] for `verify` steps to name.
#[cfg(all(
    feature = "backoff",
    feature = "checkpoint",
    feature = "degradation",
    feature = "healing"
))]
pub fn registry<T>(tools: &StepTools) -> StepRegistry<T>
where
    T: recovery_backoff::Retry
        + recovery_checkpoint::Checkpointable
        + recovery_healing::Healable
        + ?Sized
        + 'static,
{
    let mut registry = StepRegistry::new();
    let checkpoint = Arc::clone(&tools.checkpoint);
    registry.register("checkpoint", move |params: &toml::Table| {
        Params::new(params, &[])?;
        Ok(Arc::new(CheckpointStep::new(Arc::clone(&checkpoint))) as Arc<dyn StepAction<T>>)
    });
    registry.register("restart", |params: &toml::Table| {
        let p = Params::new(params, &["component"])?;
        let component = p.required_str("component")?;
        if component.is_empty() {
            return Err("`component` is empty; name the component to restart".into());
        }
        Ok(Arc::new(RestartStep::new(component)) as Arc<dyn StepAction<T>>)
    });
    registry.register("adjust_config", |params: &toml::Table| {
        let p = Params::new(params, &["set", "undo"])?;
        let patch = |key: &str| -> Result<Option<recovery_healing::ConfigPatch>, String> {
            p.value(key)
                .map(|v| {
                    v.clone()
                        .try_into::<recovery_healing::ConfigPatch>()
                        .map_err(|e| format!("`{key}` is not a table of settings: {e}"))
                })
                .transpose()
        };
        let set = patch("set")?.ok_or("`set` is missing: the settings to apply, as a table")?;
        if set.0.is_empty() {
            return Err("`set` is empty: name at least one setting".into());
        }
        Ok(Arc::new(AdjustConfigStep::new(set, patch("undo")?)) as Arc<dyn StepAction<T>>)
    });
    let backoff = Arc::clone(&tools.backoff);
    registry.register("retry", move |params: &toml::Table| {
        Params::new(params, &[])?;
        Ok(Arc::new(RetryStep::new(Arc::clone(&backoff))) as Arc<dyn StepAction<T>>)
    });
    let alerts = Arc::clone(&tools.alerts);
    registry.register("alert", move |params: &toml::Table| {
        let p = Params::new(params, &["severity", "message"])?;
        let severity = match p.optional_str("severity")?.unwrap_or("warning") {
            "info" => recovery_healing::Severity::Info,
            "warning" => recovery_healing::Severity::Warning,
            "critical" => recovery_healing::Severity::Critical,
            other => {
                return Err(format!(
                    "`severity` is `{other}`; it is one of info, warning, critical"
                ));
            }
        };
        let message = p.required_str("message")?;
        Ok(Arc::new(AlertStep::new(
            Arc::clone(&alerts),
            severity,
            message,
            "workflow",
        )) as Arc<dyn StepAction<T>>)
    });
    registry
}
