//! Behaviour of `SelfHealingStrategy` on a fake target: each action's effect, cooldowns,
//! escalation, concurrency.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::FakeTarget;
use recovery_core::{
    AgentId, ErrorKind, RecoveryAction, RecoveryContext, RecoveryStrategy, StrategyInfo,
    SwarmError, TaskId,
};
use recovery_healing::{
    AlertError, AlertSink, ChannelAlertSink, ConfigPatch, ConfigValue, HealingAction, HealingError,
    HealingRule, RestartIntensity, SelfHealingStrategy, Severity,
};

fn rule(id: &str, pattern: &str, action: HealingAction, cooldown_secs: u64) -> HealingRule {
    HealingRule {
        rule_id: id.into(),
        error_pattern: pattern.into(),
        healing_action: action,
        cooldown_duration: Duration::from_secs(cooldown_secs),
        last_applied: None,
    }
}

fn comm(msg: &str) -> SwarmError {
    SwarmError::CommunicationError(msg.into())
}

async fn can_handle(s: &SelfHealingStrategy, e: &SwarmError) -> bool {
    s.can_handle(e).await
}

#[tokio::test(start_paused = true)]
async fn default_rules_are_the_specs() {
    let s = SelfHealingStrategy::new();
    let rules = s.rules();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].error_pattern, "CommunicationError");
    assert_eq!(
        rules[0].healing_action,
        HealingAction::RestartComponent("agent_protocol".into())
    );
    assert_eq!(rules[0].cooldown_duration, Duration::from_secs(300));
    assert_eq!(rules[1].error_pattern, "CoordinationTimeout");
    assert_eq!(
        rules[1].healing_action,
        HealingAction::AdjustConfig(ConfigPatch::new().set("task_timeout_secs", 600))
    );
    assert_eq!(rules[1].cooldown_duration, Duration::from_secs(600));
    assert!(rules.iter().all(|r| r.last_applied.is_none()));
    assert!(SelfHealingStrategy::empty().rules().is_empty());
    assert_eq!(s.strategy_id(), "self_healing");
    assert_eq!(s.cost_estimate().await, 0.2);
    assert!(!s.requires_external_resources().await);
}

#[tokio::test(start_paused = true)]
async fn restart_component_restarts_it_and_reports_the_rule() {
    let target = FakeTarget::new(RestartIntensity::default());
    let s = SelfHealingStrategy::new();
    let ctx = RecoveryContext::new(target.clone());
    let result = s.recover(&ctx, &comm("Network timeout")).await;
    assert!(result.success, "{result:?}");
    assert_eq!(
        result.action,
        RecoveryAction::Healed {
            rule_id: "communication_failure".into(),
            action: "RestartComponent(agent_protocol)".into()
        }
    );
    assert_eq!(target.starts("agent_protocol"), 1);
    assert_eq!(
        target.components["agent_protocol"]
            .stops
            .load(Ordering::SeqCst),
        1
    );
    assert_eq!(
        target.supervisor.is_running("agent_protocol").await,
        Some(true)
    );
    assert_eq!(target.starts("network_manager"), 0);
}

#[tokio::test(start_paused = true)]
async fn can_handle_never_consumes_a_cooldown() {
    let target = FakeTarget::new(RestartIntensity::default());
    let s = SelfHealingStrategy::new();
    let error = comm("reset");
    for _ in 0..10 {
        assert!(can_handle(&s, &error).await);
    }
    assert!(s.rules().iter().all(|r| r.last_applied.is_none()));
    // recover still finds the rule.
    let result = s
        .recover(&RecoveryContext::new(target.clone()), &error)
        .await;
    assert!(result.success);
    // In its cooldown, can_handle still says yes (it answers by pattern) and changes nothing.
    let before = s.rules();
    assert!(can_handle(&s, &error).await);
    assert_eq!(s.rules(), before);
    assert!(!can_handle(&s, &SwarmError::Storage("disk".into())).await);
}

#[tokio::test(start_paused = true)]
async fn cooldown_blocks_then_expires() {
    let target = FakeTarget::new(RestartIntensity::default());
    let s = SelfHealingStrategy::new();
    let ctx = RecoveryContext::new(target.clone());
    assert!(s.recover(&ctx, &comm("a")).await.success);

    tokio::time::advance(Duration::from_secs(299)).await;
    let blocked = s.recover(&ctx, &comm("b")).await;
    assert!(!blocked.success);
    assert!(blocked.continue_recovery);
    assert!(blocked.is_no_change(), "{:?}", blocked.action);
    assert!(
        blocked.action_taken.contains("communication_failure")
            && blocked.action_taken.contains("cooldown")
            && blocked.action_taken.contains("1s"),
        "{}",
        blocked.action_taken
    );
    assert_eq!(blocked.metadata["cooldown_remaining_ms"], "1000");
    assert_eq!(target.starts("agent_protocol"), 1);

    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(s.recover(&ctx, &comm("c")).await.success);
    assert_eq!(target.starts("agent_protocol"), 2);
}

#[tokio::test(start_paused = true)]
async fn adjust_config_changes_the_value() {
    let target = FakeTarget::new(RestartIntensity::default());
    let s = SelfHealingStrategy::new();
    let ctx = RecoveryContext::new(target.clone());
    let result = s
        .recover(
            &ctx,
            &SwarmError::CoordinationTimeout("task 7 ran 30s".into()),
        )
        .await;
    assert!(result.success, "{result:?}");
    assert_eq!(
        result.action,
        RecoveryAction::Healed {
            rule_id: "coordination_timeout".into(),
            action: "AdjustConfig(task_timeout_secs=600)".into()
        }
    );
    assert_eq!(
        target.config.get("task_timeout_secs"),
        Some(ConfigValue::Integer(600))
    );
}

#[tokio::test(start_paused = true)]
async fn a_bad_patch_changes_nothing_and_names_the_key() {
    let target = FakeTarget::new(RestartIntensity::default());
    let s = SelfHealingStrategy::empty();
    let patch = ConfigPatch::new()
        .set("task_timeout_secs", 900)
        .set("verbose", "very");
    s.add_healing_rule(rule(
        "patch",
        "Storage",
        HealingAction::AdjustConfig(patch),
        60,
    ))
    .await
    .unwrap();
    let before = target.config.snapshot();
    let result = s
        .recover(
            &RecoveryContext::new(target.clone()),
            &SwarmError::Storage("x".into()),
        )
        .await;
    assert!(!result.success);
    assert!(
        result.action_taken.contains("verbose"),
        "{}",
        result.action_taken
    );
    assert!(result.metadata["error"].contains("expected bool"));
    assert_eq!(target.config.snapshot(), before);

    let unknown = SelfHealingStrategy::empty();
    unknown
        .add_healing_rule(rule(
            "unknown",
            "Storage",
            HealingAction::AdjustConfig(ConfigPatch::new().set("colour", "red")),
            60,
        ))
        .await
        .unwrap();
    let result = unknown
        .recover(
            &RecoveryContext::new(target.clone()),
            &SwarmError::Storage("x".into()),
        )
        .await;
    assert!(!result.success);
    assert!(result.metadata["error"].contains("unknown configuration key `colour`"));
    assert_eq!(target.config.snapshot(), before);
}

#[tokio::test(start_paused = true)]
async fn reallocate_moves_the_failed_agents_tasks() {
    let target = FakeTarget::new(RestartIntensity::default());
    let sick = AgentId::from_u128(1);
    let other = AgentId::from_u128(2);
    let (t1, t2, t3) = (
        TaskId::from_u128(1),
        TaskId::from_u128(2),
        TaskId::from_u128(3),
    );
    target.assign(t1, sick);
    target.assign(t2, sick);
    target.assign(t3, other);

    let s = SelfHealingStrategy::empty();
    s.add_healing_rule(rule(
        "move_work",
        "CommunicationError: unreachable",
        HealingAction::ReallocateResources,
        30,
    ))
    .await
    .unwrap();

    // The pattern's text must match.
    assert!(!can_handle(&s, &comm("reset")).await);

    // No agent nor task in the context: not applied, and the rule is not claimed.
    let bare = s
        .recover(
            &RecoveryContext::new(target.clone()),
            &comm("agent UNREACHABLE"),
        )
        .await;
    assert!(!bare.success);
    assert!(bare.action_taken.contains("needs a failed agent or task"));
    assert!(s.rules()[0].last_applied.is_none());

    let ctx = RecoveryContext::new(target.clone()).with_agent(sick);
    let result = s.recover(&ctx, &comm("agent unreachable")).await;
    assert!(result.success, "{result:?}");
    assert_eq!(result.metadata["tasks_moved"], "2");
    for t in [t1, t2] {
        let now = target.agent_of(t).unwrap();
        assert_ne!(now, sick);
        assert!(target.healthy.contains(&now));
    }
    assert_eq!(target.agent_of(t3), Some(other));
}

#[tokio::test(start_paused = true)]
async fn reallocating_nothing_is_not_success() {
    let target = FakeTarget::new(RestartIntensity::default());
    let s = SelfHealingStrategy::empty();
    s.add_healing_rule(rule(
        "move_work",
        "CommunicationError",
        HealingAction::ReallocateResources,
        30,
    ))
    .await
    .unwrap();
    let ctx = RecoveryContext::new(target.clone()).with_agent(AgentId::from_u128(9));
    let result = s.recover(&ctx, &comm("x")).await;
    assert!(!result.success && result.continue_recovery);
    assert!(result.is_no_change(), "{:?}", result.action);
    assert!(result.action_taken.contains("no task needed moving"));
    assert_eq!(result.metadata["rule_id"], "move_work");
}

#[tokio::test(start_paused = true)]
async fn trigger_alert_delivers_to_the_sink() {
    let target = FakeTarget::new(RestartIntensity::default());
    let (sink, mut alerts) = ChannelAlertSink::new(4);
    let s = SelfHealingStrategy::empty().with_alert_sink(Arc::new(sink));
    s.add_healing_rule(rule(
        "page",
        "StateCorruption",
        HealingAction::TriggerAlert {
            severity: Severity::Critical,
            message: "coordinator state is corrupt".into(),
        },
        3600,
    ))
    .await
    .unwrap();
    let agent = AgentId::from_u128(5);
    let ctx = RecoveryContext::new(target.clone()).with_agent(agent);
    let result = s
        .recover(&ctx, &SwarmError::StateCorruption("task table".into()))
        .await;
    assert!(result.success);
    assert!(result.continue_recovery);
    assert!(result.confidence < 0.5);
    let alert = alerts.try_recv().unwrap();
    assert_eq!(alert.rule_id, "page");
    assert_eq!(alert.severity, Severity::Critical);
    assert_eq!(alert.message, "coordinator state is corrupt");
    assert_eq!(alert.error_kind, ErrorKind::StateCorruption);
    assert_eq!(alert.error_message, "task table");
    assert_eq!(alert.failed_agent_id, Some(agent));
}

#[tokio::test(start_paused = true)]
async fn an_undelivered_alert_is_a_failure_and_keeps_the_claim() {
    let target = FakeTarget::new(RestartIntensity::default());
    let (sink, alerts) = ChannelAlertSink::new(1);
    drop(alerts);
    let s = SelfHealingStrategy::empty().with_alert_sink(Arc::new(sink));
    s.add_healing_rule(rule(
        "page",
        "Storage",
        HealingAction::TriggerAlert {
            severity: Severity::Warning,
            message: "disk".into(),
        },
        60,
    ))
    .await
    .unwrap();
    let ctx = RecoveryContext::new(target.clone());
    let result = s.recover(&ctx, &SwarmError::Storage("full".into())).await;
    assert!(!result.success);
    assert!(result.metadata["error"].contains(&AlertError::Closed.to_string()));
    // The claim is kept: the next error within the cooldown does not hammer the sink.
    assert!(s.rules()[0].last_applied.is_some());
    let again = s.recover(&ctx, &SwarmError::Storage("full".into())).await;
    assert!(again.action_taken.contains("cooldown"));
}

#[tokio::test(start_paused = true)]
async fn restarts_past_the_intensity_escalate() {
    // Target allows many; the strategy's own intensity (OTP's 1 in 5 s) decides.
    let target = FakeTarget::lenient();
    let s = SelfHealingStrategy::empty();
    s.add_healing_rules([
        rule(
            "a",
            "CommunicationError",
            HealingAction::RestartComponent("agent_protocol".into()),
            0,
        ),
        rule(
            "b",
            "ResourceConflict",
            HealingAction::RestartComponent("agent_protocol".into()),
            0,
        ),
    ])
    .await
    .unwrap();
    let ctx = RecoveryContext::new(target.clone());
    assert!(s.recover(&ctx, &comm("x")).await.success);
    let escalated = s
        .recover(&ctx, &SwarmError::ResourceConflict("y".into()))
        .await;
    assert!(!escalated.success);
    assert!(
        matches!(escalated.action, RecoveryAction::Escalated { ref reason } if reason.contains("agent_protocol"))
    );
    assert_eq!(target.starts("agent_protocol"), 1);

    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(s.recover(&ctx, &comm("x")).await.success);
    assert_eq!(target.starts("agent_protocol"), 2);
}

#[tokio::test(start_paused = true)]
async fn the_targets_own_intensity_also_escalates() {
    let target = FakeTarget::new(RestartIntensity::new(1, Duration::from_secs(60)).unwrap());
    let s = SelfHealingStrategy::empty()
        .with_restart_intensity(RestartIntensity::new(100, Duration::from_secs(1)).unwrap())
        .unwrap();
    s.add_healing_rule(rule(
        "a",
        "CommunicationError",
        HealingAction::RestartComponent("network_manager".into()),
        0,
    ))
    .await
    .unwrap();
    let ctx = RecoveryContext::new(target.clone());
    assert!(s.recover(&ctx, &comm("x")).await.success);
    tokio::time::advance(Duration::from_secs(2)).await;
    let r = s.recover(&ctx, &comm("x")).await;
    assert!(
        matches!(r.action, RecoveryAction::Escalated { .. }),
        "{r:?}"
    );
    assert_eq!(target.starts("network_manager"), 1);
}

#[tokio::test(start_paused = true)]
async fn restart_failures_are_failures() {
    let target = FakeTarget::lenient();
    let s = SelfHealingStrategy::empty();
    s.add_healing_rules([
        rule(
            "ghost",
            "Storage",
            HealingAction::RestartComponent("ghost".into()),
            60,
        ),
        rule(
            "broken",
            "ResourceConflict",
            HealingAction::RestartComponent("network_manager".into()),
            60,
        ),
        rule(
            "lazy",
            "ConcurrencyError",
            HealingAction::RestartComponent("agent_protocol".into()),
            60,
        ),
    ])
    .await
    .unwrap();
    let ctx = RecoveryContext::new(target.clone());

    let unknown = s.recover(&ctx, &SwarmError::Storage("x".into())).await;
    assert!(!unknown.success);
    assert!(unknown.metadata["error"].contains("unknown component `ghost`"));

    target.components["network_manager"]
        .fail_start
        .store(true, Ordering::SeqCst);
    let broken = s
        .recover(&ctx, &SwarmError::ResourceConflict("x".into()))
        .await;
    assert!(!broken.success);
    assert!(broken.metadata["error"].contains("port 7000 in use"));

    target.components["agent_protocol"]
        .start_does_nothing
        .store(true, Ordering::SeqCst);
    let lazy = s
        .recover(&ctx, &SwarmError::ConcurrencyError("x".into()))
        .await;
    assert!(!lazy.success);
    assert!(lazy.metadata["error"].contains("not running"));
}

#[tokio::test(start_paused = true)]
async fn first_matching_rule_out_of_cooldown_wins_and_no_match_fails() {
    let target = FakeTarget::new(RestartIntensity::default());
    let s = SelfHealingStrategy::empty();
    s.add_healing_rules([
        rule(
            "specific",
            "CommunicationError: timeout",
            HealingAction::AdjustConfig(ConfigPatch::new().set("max_agents", 50)),
            100,
        ),
        rule(
            "general",
            "CommunicationError",
            HealingAction::AdjustConfig(ConfigPatch::new().set("verbose", true)),
            100,
        ),
    ])
    .await
    .unwrap();
    let ctx = RecoveryContext::new(target.clone());
    let r = s.recover(&ctx, &comm("Timeout")).await;
    assert_eq!(r.metadata["rule_id"], "specific");
    let r = s.recover(&ctx, &comm("Timeout")).await;
    assert_eq!(r.metadata["rule_id"], "general");
    assert_eq!(
        target.config.get("max_agents"),
        Some(ConfigValue::Integer(50))
    );
    assert_eq!(target.config.get("verbose"), Some(ConfigValue::Bool(true)));
    let r = s.recover(&ctx, &comm("Timeout")).await;
    assert!(!r.success && r.action_taken.contains("`specific`"));

    let none = s.recover(&ctx, &SwarmError::Storage("x".into())).await;
    assert!(!none.success && none.continue_recovery);
    assert!(
        none.action_taken
            .contains("no healing rule matches Storage")
    );
}

#[tokio::test(start_paused = true)]
async fn bad_rules_are_refused_when_added() {
    let s = SelfHealingStrategy::new();
    let err = s
        .add_healing_rule(rule(
            "typo",
            "NetworkTimeOut",
            HealingAction::ReallocateResources,
            1,
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, HealingError::InvalidPattern { ref rule_id, ref pattern, .. } if rule_id == "typo" && pattern == "NetworkTimeOut")
    );
    let msg = err.to_string();
    assert!(
        msg.contains("typo") && msg.contains("NetworkTimeOut"),
        "{msg}"
    );

    let dup = s
        .add_healing_rule(rule(
            "communication_failure",
            "Storage",
            HealingAction::ReallocateResources,
            1,
        ))
        .await;
    assert!(matches!(dup, Err(HealingError::DuplicateRule { .. })));

    let script = s
        .add_healing_rule(rule(
            "s",
            "Storage",
            HealingAction::ExecuteScript("/bin/rm -rf /".into()),
            1,
        ))
        .await;
    assert!(matches!(script, Err(HealingError::UnknownScript { .. })));

    let empty = s
        .add_healing_rule(rule("", "Storage", HealingAction::ReallocateResources, 1))
        .await;
    assert_eq!(empty, Err(HealingError::EmptyRuleId));

    // All or nothing.
    let batch = s
        .add_healing_rules([
            rule("ok", "Storage", HealingAction::ReallocateResources, 1),
            rule("bad", "Nope", HealingAction::ReallocateResources, 1),
        ])
        .await;
    assert!(batch.is_err());
    assert_eq!(s.rules().len(), 2);

    // The spec's example, with its alias.
    s.add_healing_rule(rule(
        "network_failure",
        "NetworkTimeout",
        HealingAction::RestartComponent("network_manager".into()),
        300,
    ))
    .await
    .unwrap();
    assert_eq!(s.rules().len(), 3);
    assert!(s.remove_healing_rule("network_failure").await);
    assert!(!s.remove_healing_rule("network_failure").await);
}

struct ExternalSink;

#[recovery_core::async_trait]
impl AlertSink for ExternalSink {
    async fn send(&self, _: &recovery_healing::Alert) -> Result<(), AlertError> {
        Ok(())
    }
    fn is_external(&self) -> bool {
        true
    }
}

#[tokio::test(start_paused = true)]
async fn external_resources_follow_the_rules() {
    let alert = rule(
        "page",
        "Storage",
        HealingAction::TriggerAlert {
            severity: Severity::Info,
            message: "m".into(),
        },
        1,
    );
    let local = SelfHealingStrategy::new();
    local.add_healing_rule(alert.clone()).await.unwrap();
    assert!(!local.requires_external_resources().await);
    let paging = SelfHealingStrategy::new().with_alert_sink(Arc::new(ExternalSink));
    assert!(!paging.requires_external_resources().await);
    paging.add_healing_rule(alert).await.unwrap();
    assert!(paging.requires_external_resources().await);
}

/// 100 concurrent recoveries of one error matching a rule with a cooldown apply it exactly
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_recoveries_apply_a_rule_once() {
    let target = FakeTarget::lenient();
    let s = Arc::new(SelfHealingStrategy::new());
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (s, target, barrier) = (s.clone(), target.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let ctx = RecoveryContext::new(target);
            barrier.wait().await;
            s.recover(&ctx, &comm(&format!("timeout {i}"))).await
        }));
    }
    let mut healed = 0;
    let mut cooling = 0;
    for t in tasks {
        let r = t.await.unwrap();
        if r.success {
            healed += 1;
            assert!(matches!(r.action, RecoveryAction::Healed { .. }));
        } else {
            assert!(r.action_taken.contains("cooldown"), "{}", r.action_taken);
            cooling += 1;
        }
    }
    assert_eq!((healed, cooling), (1, 99));
    assert_eq!(target.starts("agent_protocol"), 1);
}
