//! Self-healing rules whose actions really act, safely.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::time::Duration;
//! use recovery_core::{async_trait, AgentId, RecoveryAction, RecoveryContext, RecoveryStrategy, StrategyInfo, SwarmError, TaskId};
//! use recovery_healing::{
//!     Component, ConfigPatch, ConfigPatchError, ConfigSchema, ConfigValue, Healable, HealingAction,
//!     HealingRule, RestartError, SelfHealingStrategy, Supervisor, TunableConfig,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The spec's custom rule.
//! let strategy = SelfHealingStrategy::new();
//! let rule = HealingRule {
//!     rule_id: "network_failure".to_string(),
//!     error_pattern: "NetworkTimeout".to_string(),
//!     healing_action: HealingAction::RestartComponent("network_manager".to_string()),
//!     cooldown_duration: Duration::from_secs(300),
//!     last_applied: None,
//! };
//! strategy.add_healing_rule(rule).await?;
//! // A pattern that names no error kind is refused, not kept as a rule that never fires.
//! let typo = HealingRule { rule_id: "typo".into(), error_pattern: "NetworkTimeOut".into(),
//!     healing_action: HealingAction::ReallocateResources, cooldown_duration: Duration::from_secs(1), last_applied: None };
//! assert!(strategy.add_healing_rule(typo).await.is_err());
//!
//! // A target heals through `Healable`, here with this crate's Supervisor and TunableConfig.
//! #[derive(Default)]
//! struct Service { up: AtomicBool }
//! #[async_trait]
//! impl Component for Service {
//!     async fn start(&self) -> Result<(), String> { self.up.store(true, Ordering::SeqCst); Ok(()) }
//!     async fn stop(&self) -> Result<(), String> { self.up.store(false, Ordering::SeqCst); Ok(()) }
//!     async fn is_running(&self) -> bool { self.up.load(Ordering::SeqCst) }
//! }
//! struct Coordinator { supervisor: Supervisor, config: TunableConfig }
//! #[async_trait]
//! impl Healable for Coordinator {
//!     async fn restart_component(&self, name: &str) -> Result<(), RestartError> { self.supervisor.restart(name).await }
//!     async fn apply_config_patch(&self, patch: &ConfigPatch) -> Result<(), ConfigPatchError> { self.config.apply(patch) }
//!     async fn reallocate_from(&self, _: Option<AgentId>, _: Option<TaskId>) -> Result<usize, SwarmError> { Ok(0) }
//! }
//! let coordinator = Arc::new(Coordinator {
//!     supervisor: Supervisor::new(),
//!     config: TunableConfig::new(ConfigSchema::new().integer("task_timeout_secs", 1, 3600),
//!                                [("task_timeout_secs", ConfigValue::Integer(30))])?,
//! });
//! coordinator.supervisor.register("agent_protocol", Arc::new(Service::default()))?;
//! coordinator.supervisor.register("network_manager", Arc::new(Service::default()))?;
//!
//! // The default rule for communication errors restarts `agent_protocol`.
//! let error = SwarmError::CommunicationError("Network timeout".to_string());
//! let context = RecoveryContext::new(coordinator.clone());
//! assert_eq!(strategy.matching_rule(&error).as_deref(), Some("communication_failure"));
//! assert!(strategy.can_handle(&error).await);
//! let result = strategy.recover(&context, &error).await;
//! assert!(result.success);
//! assert_eq!(result.action, RecoveryAction::Healed {
//!     rule_id: "communication_failure".into(),
//!     action: "RestartComponent(agent_protocol)".into(),
//! });
//! assert_eq!(coordinator.supervisor.is_running("agent_protocol").await, Some(true));
//!
//! // Within that rule's 300 s cooldown, the next matching rule applies: the custom one.
//! let again = strategy.recover(&context, &error).await;
//! assert!(again.success);
//! assert_eq!(again.metadata["rule_id"], "network_failure");
//!
//! // Both are in their cooldown now: no restart loop.
//! let third = strategy.recover(&context, &error).await;
//! assert!(!third.success && third.continue_recovery);
//! assert!(third.action_taken.contains("cooldown"));
//!
//! // The other default rule raises the task timeout.
//! let timeout = SwarmError::CoordinationTimeout("task ran 30s".into());
//! assert!(strategy.recover(&context, &timeout).await.success);
//! assert_eq!(coordinator.config.get("task_timeout_secs"), Some(ConfigValue::Integer(600)));
//! # Ok(()) }
//! ```
//!
//! # When to use it
//!
//! For errors with a known remedy: a protocol stack that wedges and needs a restart, a timeout
//! that is too tight for today's load, an agent whose work should move elsewhere, a condition
//! a person must hear about. [`SelfHealingStrategy`] (cost 0.2) runs after backoff and before
//! checkpoint restores. Rules are tried in the order they were added; the first matching rule
//! whose cooldown has passed is applied. Rules can come from code or from a TOML or JSON file
//! ([`load_rules`], [`RulesFile`]), with cooldowns written as `"300s"` or `"5m"`.
//!
//! # What each action really does
//!
//! - **`RestartComponent(name)`**: calls [`Healable::restart_component`], which a target
//!   typically implements with a [`Supervisor`]: the named [`Component`] is stopped, started,
//!   and asked whether it runs; only then is the result a success. An unknown name is an error.
//!   Restarts obey an OTP restart intensity (at most R restarts of a component in T, default 1
//!   in 5 s), kept by the strategy per component whatever the target does, and by the
//!   [`Supervisor`] too; past it the result is [`RecoveryAction::Escalated`] instead of another
//!   restart.
//! - **`AdjustConfig(patch)`**: calls [`Healable::apply_config_patch`], which a target
//!   typically implements with a [`TunableConfig`] over a [`ConfigSchema`] of the keys rules
//!   may tune, with types and ranges. Every key is checked before any is applied: an unknown
//!   key or a bad value leaves the configuration unchanged and the error names the key and why.
//! - **`ReallocateResources`**: calls [`Healable::reallocate_from`] with the context's failed
//!   agent and task; the target moves that agent's tasks (or the one failed task) to healthy
//!   agents. Success means at least one task moved; a context naming neither an agent nor a
//!   task does not claim the rule.
//! - **`TriggerAlert { severity, message }`**: sends an [`Alert`] (the rule's message plus the
//!   error's kind and message and the failed agent and task) to the strategy's [`AlertSink`]:
//!   by default [`TracingAlertSink`] (a `tracing` event), or a [`ChannelAlertSink`], or your
//!   own. Success means the sink accepted it; an alert heals nothing, so its result has
//!   confidence 0.3 and lets the manager go on.
//! - **`ExecuteScript(name)`**: runs the script the operator allow-listed under `name` in the
//!   strategy's [`ScriptRunner`]. Success means it exited 0 within its timeout. A rule naming a
//!   script outside the allow-list is refused when it is added.
//!
//! # What the script runner promises
//!
//! - Only allow-listed names run, each an absolute program path with fixed arguments, chosen
//!   by the operator; a rule holds a name, never a path or a command line.
//! - No shell is involved, and nothing from an error message, a context or a rule reaches the
//!   command line or the environment: arguments such as `$(touch /tmp/x)` or `; rm -rf / #`
//!   arrive as that literal text.
//! - The environment is cleared; only the variables the entry names are passed, with the
//!   parent's values. Standard input is `/dev/null`.
//! - The script leads its own process group. At its timeout the group gets SIGTERM, then
//!   SIGKILL after 200 ms, so its children and grandchildren die with it; when it exits by
//!   itself, what it left running in its group is killed; and when a caller abandons the run
//!   (drops the future, say at a deadline), the group is killed too.
//! - At most the entry's output cap of stdout and of stderr is kept (the rest is read and
//!   thrown away, so the script never blocks), and the output says when it was cut.
//!
//! # What the strategy promises
//!
//! - `can_handle` never changes state, and answers by pattern alone (cooldowns are
//!   `recover`'s business).
//! - Applying a rule is one atomic check-and-set of its `last_applied`: of any number of
//!   concurrent recoveries, at most one applies a rule within its cooldown. A claimed rule
//!   stays claimed when its action fails.
//! - Success only when the action's effect happened; the result names the rule and the action
//!   ([`RecoveryAction::Healed`]).
//!
//! [`RecoveryAction::Healed`]: recovery_core::RecoveryAction::Healed
//! [`RecoveryAction::Escalated`]: recovery_core::RecoveryAction::Escalated

mod alert;
mod config;
mod error;
mod healable;
mod outcome;
mod pattern;
mod rule;
#[cfg(unix)]
mod script;
mod strategy;
mod supervisor;
mod tunable;

pub use alert::{Alert, AlertError, AlertSink, ChannelAlertSink, Severity, TracingAlertSink};
pub use config::{RulesFile, load_rules, rules_from_json_str, rules_from_toml_str};
pub use error::{ConfigPatchError, HealingError, RestartError, RuleFileError, ScriptError};
pub use healable::Healable;
pub use pattern::{ErrorPattern, KIND_ALIASES, PatternError};
pub use rule::{ConfigPatch, ConfigValue, HealingAction, HealingRule};
#[cfg(unix)]
pub use script::{ScriptOutput, ScriptRunner, ScriptSpec};
pub use strategy::{SelfHealingStrategy, default_rules};
pub use supervisor::{
    Component, DuplicateComponent, InvalidRestartIntensity, RestartIntensity, RestartWindow,
    Supervisor,
};
pub use tunable::{ConfigSchema, KeySpec, TunableConfig};
