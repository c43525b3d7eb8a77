//! `SelfHealingStrategy`: applies the first matching rule whose cooldown has passed.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use recovery_core::{
    RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy, StrategyInfo, SwarmError,
    async_trait,
};
use tokio::time::Instant;

use crate::alert::{Alert, AlertSink, TracingAlertSink};
use crate::config::check_rule_shape;
use crate::error::{HealingError, RestartError};
use crate::healable::Healable;
use crate::outcome::Outcome;
#[cfg(unix)]
use crate::outcome::script_outcome;
use crate::pattern::ErrorPattern;
use crate::rule::{ConfigPatch, HealingAction, HealingRule};
#[cfg(unix)]
use crate::script::ScriptRunner;
use crate::supervisor::{InvalidRestartIntensity, RestartIntensity, RestartWindow};

/// The spec's two default rules:
///
/// | rule_id | error_pattern | healing_action | cooldown |
/// |---|---|---|---|
/// | `communication_failure` | `CommunicationError` | `RestartComponent("agent_protocol")` | 300 s |
/// | `coordination_timeout` | `CoordinationTimeout` | `AdjustConfig(task_timeout_secs = 600)` | 600 s |
pub fn default_rules() -> Vec<HealingRule> {
    vec![
        HealingRule {
            rule_id: "communication_failure".to_owned(),
            error_pattern: "CommunicationError".to_owned(),
            healing_action: HealingAction::RestartComponent("agent_protocol".to_owned()),
            cooldown_duration: Duration::from_secs(300),
            last_applied: None,
        },
        HealingRule {
            rule_id: "coordination_timeout".to_owned(),
            error_pattern: "CoordinationTimeout".to_owned(),
            healing_action: HealingAction::AdjustConfig(
                ConfigPatch::new().set("task_timeout_secs", 600),
            ),
            cooldown_duration: Duration::from_secs(600),
            last_applied: None,
        },
    ]
}

struct RuleEntry {
    rule: HealingRule,
    pattern: ErrorPattern,
}

/// Applies self-healing rules: when an error matches a rule, carry out the rule's action on the
/// target, at most once per cooldown.
///
/// - [`can_handle`](RecoveryStrategy::can_handle) is true when some rule's pattern matches the
///   error, **whatever its cooldown**: it answers "does this strategy know this error", reads
///   no clock and changes nothing. A rule in its cooldown is reported by `recover`.
/// - [`recover`](RecoveryStrategy::recover) takes the rules in the order they were added and
///   claims the first that matches and whose cooldown has passed, setting its `last_applied`
///   in the same locked step in which it checked it, so of concurrent recoveries exactly one
///   claims a rule within its cooldown. It then carries out the action (see the crate docs)
///   and reports [`RecoveryAction::Healed`] `{ rule_id, action }` only when the action
///   completed. The claim is kept when the action fails: the cooldown is what stops a failing
///   action from being hammered.
/// - If every matching rule is in its cooldown, the result is a failure with
///   `continue_recovery: true` naming the rule and the time left.
/// - A restart past the restart intensity (the strategy's own, per component, default OTP's 1
///   in 5 s, and the target's, if its [`Healable::restart_component`] reports
///   [`RestartError::IntensityExceeded`]) is not carried out: the result is a failure with
///   [`RecoveryAction::Escalated`] and `continue_recovery: true`, so the manager passes the
///   failure on to costlier strategies instead of looping.
///
/// Confidence of a success: 0.8 for a restart and for moved work, 0.7 for a configuration
/// change and for a script, 0.3 for an alert (which heals nothing; its result also has
/// `continue_recovery: true`, so the manager goes on).
///
/// Cost 0.2 (the spec's). It requires external resources when a rule runs a script, or raises
/// an alert through a sink that says it is external.
pub struct SelfHealingStrategy {
    rules: Mutex<Vec<RuleEntry>>,
    /// The components a `RestartComponent` rule may name, once a target said which it has.
    components: Mutex<Option<Vec<String>>>,
    alert_sink: Arc<dyn AlertSink>,
    #[cfg(unix)]
    scripts: Option<Arc<ScriptRunner>>,
    restart_intensity: RestartIntensity,
    restarts: RestartWindow,
}

impl fmt::Debug for SelfHealingStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SelfHealingStrategy");
        d.field("rules", &self.rules());
        #[cfg(unix)]
        d.field("scripts", &self.scripts);
        d.field("restart_intensity", &self.restart_intensity)
            .finish_non_exhaustive()
    }
}

impl Default for SelfHealingStrategy {
    fn default() -> Self {
        Self::new()
    }
}

impl SelfHealingStrategy {
    /// A strategy with the spec's two [`default_rules`], alerts to [`TracingAlertSink`], no
    /// scripts, and OTP's restart intensity.
    pub fn new() -> Self {
        let strategy = Self::empty();
        {
            let mut rules = strategy.lock_rules();
            for rule in default_rules() {
                let pattern = check_rule_shape(&rule).unwrap_or_else(|e| {
                    unreachable!("the default rules are valid: {e}");
                });
                rules.push(RuleEntry { rule, pattern });
            }
        }
        strategy
    }

    /// A strategy with no rules.
    pub fn empty() -> Self {
        Self {
            rules: Mutex::new(Vec::new()),
            components: Mutex::new(None),
            alert_sink: Arc::new(TracingAlertSink),
            #[cfg(unix)]
            scripts: None,
            restart_intensity: RestartIntensity::default(),
            restarts: RestartWindow::new(),
        }
    }

    /// Send `TriggerAlert` alerts to `sink`.
    pub fn with_alert_sink(mut self, sink: Arc<dyn AlertSink>) -> Self {
        self.alert_sink = sink;
        self
    }

    /// Run `ExecuteScript` rules through `runner` (its allow-list is what rules may name).
    /// Unix only.
    #[cfg(unix)]
    pub fn with_script_runner(mut self, runner: ScriptRunner) -> Self {
        self.scripts = Some(Arc::new(runner));
        self
    }

    /// Allow at most `intensity.max_restarts` restarts of one component within
    /// `intensity.period`, across all rules.
    pub fn with_restart_intensity(
        mut self,
        intensity: RestartIntensity,
    ) -> Result<Self, InvalidRestartIntensity> {
        intensity.validate()?;
        self.restart_intensity = intensity;
        Ok(self)
    }

    /// The restart intensity.
    pub fn restart_intensity(&self) -> RestartIntensity {
        self.restart_intensity
    }

    fn lock_rules(&self) -> std::sync::MutexGuard<'_, Vec<RuleEntry>> {
        self.rules.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn check(&self, rule: &HealingRule) -> Result<ErrorPattern, HealingError> {
        let pattern = check_rule_shape(rule)?;
        if let HealingAction::RestartComponent(name) = &rule.healing_action {
            let known = self
                .components
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(known) = known.as_ref() {
                if !known.iter().any(|k| k == name) {
                    return Err(HealingError::UnknownComponent {
                        rule_id: rule.rule_id.clone(),
                        component: name.clone(),
                        known: known.join(", "),
                    });
                }
            }
        }
        if let HealingAction::ExecuteScript(script) = &rule.healing_action {
            #[cfg(unix)]
            let allowed = self.scripts.as_ref().is_some_and(|r| r.is_allowed(script));
            #[cfg(not(unix))]
            let allowed = false;
            if !allowed {
                return Err(HealingError::UnknownScript {
                    rule_id: rule.rule_id.clone(),
                    script: script.clone(),
                });
            }
        }
        if !pattern.kind.is_recoverable() {
            // Accepted (a manager is not the only caller of `recover`), but a manager never runs
            // a strategy for this kind, so say so where operators look.
            tracing::warn!(
                rule_id = %rule.rule_id,
                kind = %pattern.kind,
                "healing rule matches a non-recoverable error kind: a RecoveryManager never runs \
                 strategies for it, so the rule fires only when `recover` is called directly"
            );
        }
        Ok(pattern)
    }

    /// Say which components the target has: from now on a `RestartComponent` rule that names
    /// another is refused when it is added, and the rules already present are checked now.
    ///
    /// A coordinator calls this with its components when it is given a manager, so that the
    /// spec's `RestartComponent("network_manager")` on a target without one is a clear error at
    /// registration rather than a failure at run time.
    ///
    /// # Errors
    ///
    /// [`HealingError::UnknownComponent`] for the first rule already present that names another
    /// component; the restriction is not applied then.
    pub fn restrict_components<S: Into<String>>(
        &self,
        components: impl IntoIterator<Item = S>,
    ) -> Result<(), HealingError> {
        let known: Vec<String> = components.into_iter().map(Into::into).collect();
        for entry in self.lock_rules().iter() {
            if let HealingAction::RestartComponent(name) = &entry.rule.healing_action {
                if !known.iter().any(|k| k == name) {
                    return Err(HealingError::UnknownComponent {
                        rule_id: entry.rule.rule_id.clone(),
                        component: name.clone(),
                        known: known.join(", "),
                    });
                }
            }
        }
        *self
            .components
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(known);
        Ok(())
    }

    /// Add `rule`, tried after the rules already present.
    ///
    /// Refused, with the rule unchanged: an empty id or one already present, a pattern that
    /// does not parse ([`ErrorPattern`] syntax), an empty component name or patch, a script
    /// name outside the runner's allow-list. The rule's `last_applied` is kept (`None` for a
    /// new rule).
    pub async fn add_healing_rule(&self, rule: HealingRule) -> Result<(), HealingError> {
        self.add_healing_rules([rule]).await
    }

    /// Add `rules` all or nothing, in order, with the checks of
    /// [`add_healing_rule`](Self::add_healing_rule).
    pub async fn add_healing_rules(
        &self,
        rules: impl IntoIterator<Item = HealingRule>,
    ) -> Result<(), HealingError> {
        let mut checked = Vec::new();
        for rule in rules {
            let pattern = self.check(&rule)?;
            checked.push(RuleEntry { rule, pattern });
        }
        let mut present = self.lock_rules();
        for (i, entry) in checked.iter().enumerate() {
            let id = &entry.rule.rule_id;
            if present.iter().any(|e| &e.rule.rule_id == id)
                || checked[..i].iter().any(|e| &e.rule.rule_id == id)
            {
                return Err(HealingError::DuplicateRule {
                    rule_id: id.clone(),
                });
            }
        }
        present.extend(checked);
        Ok(())
    }

    /// Remove the rule with `rule_id`; whether there was one.
    pub async fn remove_healing_rule(&self, rule_id: &str) -> bool {
        let mut rules = self.lock_rules();
        let before = rules.len();
        rules.retain(|e| e.rule.rule_id != rule_id);
        rules.len() != before
    }

    /// A copy of the rules, in the order they are tried, with their `last_applied`.
    pub fn rules(&self) -> Vec<HealingRule> {
        self.lock_rules().iter().map(|e| e.rule.clone()).collect()
    }

    /// The id of the first rule whose pattern matches `error`, whatever its cooldown; what
    /// `can_handle` answers from. Reads only.
    pub fn matching_rule(&self, error: &SwarmError) -> Option<String> {
        self.lock_rules()
            .iter()
            .find(|e| e.pattern.matches(error))
            .map(|e| e.rule.rule_id.clone())
    }

    /// Find the first rule matching `error` that may run now, and claim it (set its
    /// `last_applied` to `now`) in the same locked step.
    fn claim<T: ?Sized>(
        &self,
        error: &SwarmError,
        context: &RecoveryContext<T>,
        now: Instant,
    ) -> Claim {
        let mut rules = self.lock_rules();
        let mut cooling: Option<(String, Duration)> = None;
        let mut inapplicable: Option<(String, &'static str)> = None;
        for entry in rules.iter_mut().filter(|e| e.pattern.matches(error)) {
            if matches!(
                entry.rule.healing_action,
                HealingAction::ReallocateResources
            ) && context.failed_agent_id.is_none()
                && context.failed_task_id.is_none()
            {
                inapplicable.get_or_insert((
                    entry.rule.rule_id.clone(),
                    "ReallocateResources needs a failed agent or task in the context",
                ));
                continue;
            }
            if let Some(last) = entry.rule.last_applied {
                let since = now.saturating_duration_since(last);
                if since < entry.rule.cooldown_duration {
                    cooling.get_or_insert((
                        entry.rule.rule_id.clone(),
                        entry.rule.cooldown_duration - since,
                    ));
                    continue;
                }
            }
            entry.rule.last_applied = Some(now);
            return Claim::Claimed {
                rule_id: entry.rule.rule_id.clone(),
                action: entry.rule.healing_action.clone(),
            };
        }
        match (cooling, inapplicable) {
            (Some((rule_id, remaining)), _) => Claim::Cooling { rule_id, remaining },
            (None, Some((rule_id, reason))) => Claim::Inapplicable { rule_id, reason },
            (None, None) => Claim::NoMatch,
        }
    }

    async fn act<T: Healable + ?Sized>(
        &self,
        rule_id: &str,
        action: &HealingAction,
        context: &RecoveryContext<T>,
        error: &SwarmError,
    ) -> Outcome {
        match action {
            HealingAction::RestartComponent(name) => {
                if let Err(e) =
                    self.restarts
                        .try_record(name, self.restart_intensity, Instant::now())
                {
                    return Outcome::Escalated(e.to_string());
                }
                match context.target.restart_component(name).await {
                    Ok(()) => {
                        Outcome::done(format!("component `{name}` restarted and running"), 0.8)
                    }
                    Err(e @ RestartError::IntensityExceeded { .. }) => {
                        Outcome::Escalated(e.to_string())
                    }
                    Err(e @ RestartError::NotNeeded { .. }) => Outcome::Unchanged(e.to_string()),
                    Err(e) => Outcome::failed(e.to_string()),
                }
            }
            HealingAction::AdjustConfig(patch) => {
                match context.target.apply_config_patch(patch).await {
                    Ok(()) => Outcome::done(format!("configuration changed: {patch}"), 0.7),
                    Err(e) => Outcome::failed(e.to_string()),
                }
            }
            HealingAction::ReallocateResources => {
                let (agent, task) = (context.failed_agent_id, context.failed_task_id);
                match context.target.reallocate_from(agent, task).await {
                    Ok(0) => Outcome::Unchanged("no task needed moving".to_owned()),
                    Ok(moved) => {
                        let mut done =
                            Outcome::done(format!("moved {moved} task(s) to healthy agents"), 0.8);
                        done.metadata("tasks_moved", moved.to_string());
                        done
                    }
                    Err(e) => Outcome::failed(format!("reallocation failed: {e}")),
                }
            }
            HealingAction::TriggerAlert { severity, message } => {
                let alert = Alert {
                    rule_id: rule_id.to_owned(),
                    severity: *severity,
                    message: message.clone(),
                    error_kind: error.kind(),
                    error_message: error.message(),
                    failed_agent_id: context.failed_agent_id,
                    failed_task_id: context.failed_task_id,
                    raised_at: SystemTime::now(),
                };
                match self.alert_sink.send(&alert).await {
                    Ok(()) => {
                        let mut done = Outcome::done(format!("{severity} alert delivered"), 0.3);
                        if let Outcome::Done {
                            continue_recovery, ..
                        } = &mut done
                        {
                            *continue_recovery = true;
                        }
                        done
                    }
                    Err(e) => Outcome::failed(e.to_string()),
                }
            }
            #[cfg(unix)]
            HealingAction::ExecuteScript(script) => {
                let Some(runner) = &self.scripts else {
                    return Outcome::failed(format!(
                        "script `{script}` cannot run: no script runner is configured"
                    ));
                };
                match runner.run(script).await {
                    Ok(output) => script_outcome(script, &output),
                    Err(e) => Outcome::failed(e.to_string()),
                }
            }
            #[cfg(not(unix))]
            HealingAction::ExecuteScript(script) => Outcome::failed(format!(
                "script `{script}` cannot run: scripts run only on Unix"
            )),
        }
    }
}

enum Claim {
    Claimed {
        rule_id: String,
        action: HealingAction,
    },
    Cooling {
        rule_id: String,
        remaining: Duration,
    },
    Inapplicable {
        rule_id: String,
        reason: &'static str,
    },
    NoMatch,
}

#[async_trait]
impl StrategyInfo for SelfHealingStrategy {
    fn strategy_id(&self) -> &str {
        "self_healing"
    }

    fn description(&self) -> &str {
        "applies self-healing rules: restarts components, adjusts configuration, moves work, raises alerts, runs allow-listed scripts"
    }

    async fn can_handle(&self, error: &SwarmError) -> bool {
        self.matching_rule(error).is_some()
    }

    async fn cost_estimate(&self) -> f64 {
        0.2
    }

    async fn requires_external_resources(&self) -> bool {
        let external_alerts = self.alert_sink.is_external();
        self.lock_rules()
            .iter()
            .any(|e| match e.rule.healing_action {
                HealingAction::ExecuteScript(_) => true,
                HealingAction::TriggerAlert { .. } => external_alerts,
                _ => false,
            })
    }
}

#[async_trait]
impl<T: Healable + ?Sized> RecoveryStrategy<T> for SelfHealingStrategy {
    async fn recover(&self, context: &RecoveryContext<T>, error: &SwarmError) -> RecoveryResult {
        let started = Instant::now();
        let (rule_id, action) = match self.claim(error, context, started) {
            Claim::Claimed { rule_id, action } => (rule_id, action),
            Claim::Cooling { rule_id, remaining } => {
                return RecoveryResult::no_change(format!(
                    "healing rule `{rule_id}` matches but is in its cooldown for another {remaining:?}"
                ))
                .with_metadata("rule_id", rule_id)
                .with_metadata("cooldown_remaining_ms", remaining.as_millis().to_string());
            }
            Claim::Inapplicable { rule_id, reason } => {
                return RecoveryResult::no_change(format!(
                    "healing rule `{rule_id}` matches but cannot apply: {reason}"
                ))
                .with_metadata("rule_id", rule_id);
            }
            Claim::NoMatch => {
                return RecoveryResult::no_change(format!(
                    "no healing rule matches {}",
                    error.kind()
                ));
            }
        };

        let outcome = self.act(&rule_id, &action, context, error).await;
        let elapsed = started.elapsed();
        let action_text = action.to_string();
        let result = match outcome {
            Outcome::Done {
                detail,
                confidence,
                continue_recovery,
                metadata,
            } => {
                tracing::info!(rule_id = %rule_id, action = %action_text, "{detail}");
                let mut result = RecoveryResult::success(
                    RecoveryAction::Healed {
                        rule_id: rule_id.clone(),
                        action: action_text.clone(),
                    },
                    format!("rule `{rule_id}` applied {action_text}: {detail}"),
                )
                .with_confidence(confidence)
                .with_continue_recovery(continue_recovery);
                result.metadata.extend(metadata);
                result
            }
            Outcome::Failed { reason, metadata } => {
                tracing::warn!(rule_id = %rule_id, action = %action_text, "healing action failed: {reason}");
                let mut result = RecoveryResult::failure(
                    RecoveryAction::None,
                    format!("rule `{rule_id}` tried {action_text} and failed: {reason}"),
                )
                .with_metadata("error", reason);
                result.metadata.extend(metadata);
                result
            }
            Outcome::Unchanged(reason) => {
                tracing::debug!(rule_id = %rule_id, action = %action_text, "healing changed nothing: {reason}");
                RecoveryResult::no_change(format!("rule `{rule_id}` tried {action_text}: {reason}"))
            }
            Outcome::Escalated(reason) => {
                tracing::warn!(rule_id = %rule_id, action = %action_text, "healing escalated: {reason}");
                RecoveryResult::failure(
                    RecoveryAction::Escalated {
                        reason: reason.clone(),
                    },
                    format!("rule `{rule_id}` escalated instead of {action_text}: {reason}"),
                )
            }
        };
        result
            .with_duration(elapsed)
            .with_metadata("rule_id", rule_id)
            .with_metadata("healing_action", action.name())
    }
}
