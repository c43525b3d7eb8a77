//! The coordinator's capabilities are truthful: a task-less retry really probes, a restart
//! really restarts (or says there was nothing to restart), a rule for a component the
//! coordinator does not have is refused when it is added, a level really pauses what it says.

use std::sync::Arc;
use std::time::Duration;

use recovery_backoff::{Retry, RetryRequest};
use recovery_core::{ErrorKind, Priority, SwarmError};
use recovery_degradation::{Degradable, DegradationLevel};
use recovery_healing::{Healable, HealingAction, HealingRule, RestartError, SelfHealingStrategy};
use recovery_manager::RecoveryManager;
use swarm_integration::{AgentSpec, AgentStatus, SwarmConfig, SwarmCoordinator, TaskSpec};
use workspace_tests::{Scripted, no_caps};

#[tokio::test(start_paused = true)]
async fn a_task_less_retry_probes_and_succeeds_only_if_an_agent_answers() {
    let exec = Scripted::new([]);
    let c = SwarmCoordinator::new(SwarmConfig::default(), exec.clone()).unwrap();
    let comm = || SwarmError::CommunicationError("lost".into());
    // Nobody to probe.
    let e = c.retry(RetryRequest::new(comm(), 1)).await.unwrap_err();
    assert!(!e.is_recoverable(), "it says it cannot help: {e}");
    let a = c.register_agent(AgentSpec::new("a", no_caps())).unwrap();
    c.declare_agent_failed(a).unwrap();
    exec.set_down(a, true);
    // The failed agent is probed and does not answer.
    assert!(c.retry(RetryRequest::new(comm(), 1)).await.is_err());
    assert_eq!(c.agent(a).unwrap().status, AgentStatus::Failed);
    // It answers: the retry succeeds, and the agent is healthy again.
    exec.set_down(a, false);
    c.retry(RetryRequest::new(comm(), 2)).await.unwrap();
    assert_eq!(c.agent(a).unwrap().status, AgentStatus::Idle);
}

#[tokio::test(start_paused = true)]
async fn restarting_a_component_really_restarts_it_or_says_there_was_nothing_to_do() {
    let exec = Scripted::new([]);
    let c = SwarmCoordinator::new(SwarmConfig::default(), exec.clone()).unwrap();
    let a = c.register_agent(AgentSpec::new("a", no_caps())).unwrap();
    assert!(matches!(
        c.restart_component("agent_protocol").await,
        Err(RestartError::NotNeeded { .. })
    ));
    c.declare_agent_failed(a).unwrap();
    c.restart_component("agent_protocol").await.unwrap();
    assert_eq!(c.agent(a).unwrap().status, AgentStatus::Idle);
    assert_eq!(*exec.reconnected.lock().unwrap(), [a]);
    assert_eq!(c.stats().component_restarts, 1);
    // Restart intensity: a second restart within 5 s escalates.
    c.declare_agent_failed(a).unwrap();
    assert!(matches!(
        c.restart_component("agent_protocol").await,
        Err(RestartError::IntensityExceeded { .. })
    ));
    tokio::time::sleep(Duration::from_secs(6)).await;
    c.restart_component("agent_protocol").await.unwrap();
    assert!(matches!(
        c.restart_component("network_manager").await,
        Err(RestartError::UnknownComponent { .. })
    ));

    // Through the manager, nothing to restart is no change, never a success.
    c.recovery_manager()
        .remove_strategy("exponential_backoff")
        .await;
    let result = c
        .recover_from_error(SwarmError::CommunicationError("blip".into()), None, None)
        .await
        .unwrap();
    assert!(!result.success && result.is_no_change(), "{result:?}");
    assert!(
        result.action_taken.contains("needs no restart"),
        "{}",
        result.action_taken
    );
}

#[tokio::test]
async fn a_rule_for_a_component_the_coordinator_lacks_is_refused_when_added() {
    let spec_rule = || HealingRule {
        rule_id: "network_failure".to_string(),
        error_pattern: "NetworkTimeout".to_string(),
        healing_action: HealingAction::RestartComponent("network_manager".to_string()),
        cooldown_duration: Duration::from_secs(300),
        last_applied: None,
    };
    // Present before the coordinator is built: the coordinator refuses the manager.
    let healing = SelfHealingStrategy::new();
    healing.add_healing_rule(spec_rule()).await.unwrap();
    let manager = RecoveryManager::builder()
        .default_strategies()
        .healing(healing)
        .without_sampler()
        .build()
        .unwrap();
    let err = SwarmCoordinator::with_manager(
        SwarmConfig::default(),
        Scripted::new([]),
        Arc::new(manager),
    )
    .err()
    .expect("refused");
    assert_eq!(err.kind(), ErrorKind::InvalidConfiguration);
    assert!(err.to_string().contains("network_manager"), "{err}");
    assert!(
        err.to_string().contains("agent_protocol, task_scheduler"),
        "{err}"
    );
    // Added afterwards: refused by the strategy, naming the rule.
    let c = SwarmCoordinator::new(SwarmConfig::default(), Scripted::new([])).unwrap();
    let healing = c.recovery_manager().healing_strategy().unwrap();
    let err = healing.add_healing_rule(spec_rule()).await.unwrap_err();
    assert!(err.to_string().contains("rule `network_failure`"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_level_really_does_what_the_degradable_contract_promises() {
    let c = SwarmCoordinator::new(
        SwarmConfig {
            max_parallel_tasks: 8,
            ..SwarmConfig::default()
        },
        Scripted::new([]),
    )
    .unwrap();
    c.register_agent(AgentSpec::new("a", no_caps())).unwrap();
    let speculative = c
        .submit_task(
            TaskSpec::new("prefetch")
                .with_priority(Priority::High)
                .as_speculative(),
        )
        .unwrap();
    c.apply_level(DegradationLevel::Critical).await.unwrap();
    assert_eq!(c.parallelism().1, 2, "a quarter of 8");
    assert_eq!(
        c.submit_task(TaskSpec::new("n")).unwrap_err().kind(),
        ErrorKind::Overloaded
    );
    assert_eq!(
        c.register_agent(AgentSpec::new("b", no_caps()))
            .unwrap_err()
            .kind(),
        ErrorKind::Overloaded,
        "new connections are paused"
    );
    // Speculative work waits (and stays accepted).
    let e = c.execute_task_with_recovery(speculative).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Overloaded);
    assert!(!c.task(speculative).unwrap().state.is_terminal());
    // The level lifts: all of it comes back, and the speculative task runs.
    c.apply_level(DegradationLevel::Normal).await.unwrap();
    assert_eq!(c.parallelism().1, 8);
    c.register_agent(AgentSpec::new("b", no_caps())).unwrap();
    assert_eq!(
        c.execute_task_with_recovery(speculative).await.unwrap(),
        b"prefetch"
    );
}
