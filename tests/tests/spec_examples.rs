//! Every usage example of the spec (`spec/recovery-system.md`), ported to the real API and
//! checked for what it does, not only that it compiles.
//!
//! Each test names the spec section it ports. Where the spec's snippet leaves something out
//! (`config`, `task_id`, `create_test_context()`, `risky_operation()`), the test supplies a real
//! one: a `SwarmCoordinator` with a scripted executor, a fake `Retry` target.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use recovery_backoff::{BackoffConfig, ExponentialBackoffStrategy, Retry, RetryRequest};
use recovery_checkpoint::CheckpointRecoveryStrategy;
use recovery_core::{
    ErrorKind, RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy, StrategyInfo,
    SwarmError, TaskId,
};
use recovery_degradation::{DegradationConfig, GracefulDegradationStrategy};
use recovery_manager::{NO_STRATEGY, RecoveryConfig, RecoveryManager};
use swarm_integration::{
    AgentSpec, AgentStatus, SwarmCheckpoint, SwarmConfig, SwarmCoordinator, TaskSpec, TaskState,
};
use workspace_tests::{Scripted, Step, no_caps};

// ----- shared fakes ----------------------------------------------------------------------------

/// The spec's `MyCustomStrategy`: the cheapest strategy for failed transactions. It "replays
/// the transaction log" by recording, in the coordinator's metadata, that it ran, which a test
/// can observe.
struct MyCustomStrategy {
    recoveries: AtomicU32,
}

impl MyCustomStrategy {
    fn new() -> Self {
        Self {
            recoveries: AtomicU32::new(0),
        }
    }
}

#[async_trait]
impl StrategyInfo for MyCustomStrategy {
    fn strategy_id(&self) -> &str {
        "my_custom_strategy"
    }
    fn description(&self) -> &str {
        "replays the transaction log after a failed transaction"
    }
    async fn can_handle(&self, error: &SwarmError) -> bool {
        error.kind() == ErrorKind::TransactionFailed
    }
    async fn cost_estimate(&self) -> f64 {
        // Cheaper than backoff (0.1), which also handles TransactionFailed: tried first.
        0.05
    }
    async fn requires_external_resources(&self) -> bool {
        false
    }
}

#[async_trait]
impl RecoveryStrategy<SwarmCoordinator> for MyCustomStrategy {
    async fn recover(
        &self,
        context: &RecoveryContext<SwarmCoordinator>,
        _error: &SwarmError,
    ) -> RecoveryResult {
        let n = self.recoveries.fetch_add(1, Ordering::SeqCst) + 1;
        context
            .target
            .set_metadata("transaction_log_replays", n.to_string());
        RecoveryResult::success(
            RecoveryAction::Custom("replayed transaction log".into()),
            "replayed the transaction log",
        )
        .with_confidence(0.95)
    }
}

fn config() -> SwarmConfig {
    SwarmConfig::default()
}

/// The state a stored checkpoint holds, read back from the manager's checkpoint store.
async fn checkpoint_state(
    coordinator: &SwarmCoordinator,
    checkpoint_id: uuid::Uuid,
) -> SwarmCheckpoint {
    let strategy = coordinator
        .recovery_manager()
        .checkpoint_strategy()
        .expect("the default manager has a checkpoint strategy");
    let stored = strategy.store().get(checkpoint_id).await.unwrap();
    stored.codec.decode(&stored.payload).unwrap()
}

// ----- Usage Examples --------------------------------------------------------------------------

/// "Basic Recovery Manager Setup": `new`, `start_monitoring`, `add_strategy`; the custom
/// strategy is then really used, before the cheaper-looking defaults.
#[tokio::test(start_paused = true)]
async fn basic_recovery_manager_setup() {
    let recovery_manager = RecoveryManager::<SwarmCoordinator>::new();

    // Start background monitoring
    let monitoring = recovery_manager.start_monitoring().await;
    assert!(monitoring.is_running());

    // Add custom strategies if needed
    let custom_strategy = Arc::new(MyCustomStrategy::new());
    recovery_manager.add_strategy(custom_strategy.clone()).await;
    assert_eq!(
        recovery_manager.strategy_ids(),
        [
            "exponential_backoff",
            "self_healing",
            "checkpoint_recovery",
            "graceful_degradation",
            "my_custom_strategy"
        ]
    );

    // The custom strategy is used: it is the cheapest that handles a failed transaction.
    let coordinator =
        SwarmCoordinator::with_manager(config(), Scripted::new([]), Arc::new(recovery_manager))
            .unwrap();
    coordinator
        .register_agent(AgentSpec::new("worker", no_caps()))
        .unwrap();
    let result = coordinator
        .recover_from_error(
            SwarmError::TransactionFailed("commit lost".into()),
            None,
            None,
        )
        .await
        .unwrap();
    assert!(result.success);
    assert_eq!(
        result.action,
        RecoveryAction::Custom("replayed transaction log".into())
    );
    assert_eq!(custom_strategy.recoveries.load(Ordering::SeqCst), 1);
    assert_eq!(
        coordinator
            .snapshot()
            .metadata
            .get("transaction_log_replays"),
        Some(&"1".to_owned())
    );
    let history = coordinator.recovery_manager().get_recovery_history().await;
    assert_eq!(history.len(), 1, "it stopped at the custom strategy");
    assert_eq!(history[0].strategy_id, "my_custom_strategy");

    monitoring.shutdown().await;
}

/// "Manual Recovery Attempt": a task failed with a communication error; the manager's backoff
/// re-runs it on the coordinator, and the task really completes.
#[tokio::test(start_paused = true)]
async fn manual_recovery_attempt() -> Result<(), SwarmError> {
    let executor = Scripted::new([Step::Fail(SwarmError::CommunicationError(
        "Network timeout".into(),
    ))]);
    let coordinator = SwarmCoordinator::new(config(), executor.clone())?;
    let recovery_manager = coordinator.recovery_manager().clone();
    let agent_id = coordinator.register_agent(AgentSpec::new("worker", no_caps()))?;
    let task_id = coordinator.submit_task(TaskSpec::new("send").with_payload(b"ping".to_vec()))?;
    let first = coordinator.execute_task(task_id).await.unwrap_err();
    assert_eq!(first.kind(), ErrorKind::CommunicationError);
    assert_eq!(coordinator.task(task_id).unwrap().state, TaskState::Pending);

    let error = SwarmError::CommunicationError("Network timeout".to_string());
    let result = recovery_manager
        .recover(coordinator.clone(), error, Some(task_id), Some(agent_id))
        .await?;

    if result.success {
        println!("Recovery successful: {}", result.action_taken);
    } else {
        println!("Recovery failed, manual intervention required");
    }
    assert!(result.success, "{result:?}");
    assert!(!result.action_taken.is_empty());
    assert_eq!(result.action, RecoveryAction::Retried { attempts: 1 });
    // The task really re-ran, and completed.
    assert_eq!(executor.runs().len(), 2);
    assert_eq!(
        coordinator.task(task_id).unwrap().state,
        TaskState::Completed {
            agent: agent_id,
            output: b"PING".to_vec()
        }
    );
    assert_eq!(coordinator.stats().unfinished, 0);
    assert!(coordinator.audit().is_empty());
    Ok(())
}

/// "Checkpoint Management": a checkpoint before a risky operation; the operation corrupts the
/// state and fails; `recover_from_error` restores the checkpoint, and the coordinator's
/// snapshot equals it. The risky operation that succeeds leaves the state alone.
#[tokio::test(start_paused = true)]
async fn checkpoint_management() -> Result<(), SwarmError> {
    let coordinator = SwarmCoordinator::new(config(), Scripted::new([]))?;
    let a = coordinator.register_agent(AgentSpec::new("a", ["io"]))?;
    coordinator.register_agent(AgentSpec::new("b", no_caps()))?;
    let done = coordinator.submit_task(TaskSpec::new("index"))?;
    coordinator.execute_task(done).await?;
    coordinator.set_metadata("phase", "indexed");

    /// Patches the configuration and quarantines an agent, then fails (or not).
    async fn risky_operation(
        coordinator: &SwarmCoordinator,
        agent: recovery_core::AgentId,
        fail: bool,
    ) -> Result<(), SwarmError> {
        if !fail {
            return Ok(());
        }
        coordinator.set_metadata("phase", "half-migrated");
        coordinator.apply_config_patch(&BTreeMap::from([(
            "max_parallel_tasks".to_owned(),
            "3".to_owned(),
        )]))?;
        coordinator.quarantine_agent(agent)?;
        Err(SwarmError::StateCorruption(
            "migration stopped half-way".into(),
        ))
    }

    for fail in [false, true] {
        // Create checkpoint before risky operation
        let checkpoint_id = coordinator.create_checkpoint().await?;
        let checkpointed = checkpoint_state(&coordinator, checkpoint_id).await;
        assert_eq!(checkpointed, coordinator.snapshot());

        // Perform risky operation
        match risky_operation(&coordinator, a, fail).await {
            Ok(()) => {
                // Success, continue normally
                assert!(!fail);
            }
            Err(error) => {
                assert_ne!(coordinator.snapshot(), checkpointed, "the state changed");
                // Attempt recovery
                let result = coordinator.recover_from_error(error, None, None).await?;
                assert!(result.success, "{result:?}");
                assert_eq!(result.action, RecoveryAction::Restored { checkpoint_id });
            }
        }
        assert_eq!(coordinator.snapshot(), checkpointed);
    }
    assert_eq!(coordinator.agent(a).unwrap().status, AgentStatus::Idle);
    assert_eq!(coordinator.config().max_parallel_tasks, 16);
    assert_eq!(coordinator.parallelism().1, 16);
    assert!(coordinator.audit().is_empty());
    Ok(())
}

// ----- Configuration ---------------------------------------------------------------------------

/// "Recovery Manager Configuration" and "Strategy-Specific Configuration": the spec's struct
/// literals build a working manager.
#[tokio::test(start_paused = true)]
async fn configuration_examples_build_a_working_manager() {
    let recovery_manager = RecoveryManager::<SwarmCoordinator>::with_config(RecoveryConfig {
        max_concurrent_recoveries: 3,
        history_retention: 100,
        checkpoint_interval: Duration::from_secs(300),
        monitoring_interval: Duration::from_secs(30),
    })
    .unwrap();
    assert_eq!(recovery_manager.available_slots(), 3);

    // Exponential backoff configuration
    let backoff_config = BackoffConfig {
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_secs(30),
        multiplier: 1.5,
        max_retries: 8,
        jitter_factor: 0.2,
    };
    // Checkpoint configuration
    let checkpoint_strategy = CheckpointRecoveryStrategy::new(15).unwrap(); // Keep 15 checkpoints
    // Graceful degradation thresholds
    let degradation_config = DegradationConfig {
        cpu_threshold: 0.80,
        memory_threshold: 0.85,
        connection_threshold: 1000,
        task_threshold: 500,
    };

    assert_eq!(backoff_config.delay(0), Duration::from_millis(50));
    assert_eq!(backoff_config.delay(1), Duration::from_millis(75));
    assert_eq!(checkpoint_strategy.max_checkpoints(), 15);
    let monitor = Arc::new(recovery_degradation::ResourceMonitor::new());
    let degradation =
        GracefulDegradationStrategy::new(degradation_config.clone(), monitor.clone()).unwrap();

    let manager = RecoveryManager::<SwarmCoordinator>::builder()
        .default_strategies()
        .backoff(ExponentialBackoffStrategy::new(backoff_config).unwrap())
        .checkpoint(checkpoint_strategy)
        .degradation(degradation)
        .without_sampler()
        .build()
        .unwrap();
    assert!(Arc::ptr_eq(&manager.resource_monitor(), &monitor));
    let coordinator =
        SwarmCoordinator::with_manager(config(), Scripted::new([]), Arc::new(manager)).unwrap();
    coordinator
        .register_agent(AgentSpec::new("a", no_caps()))
        .unwrap();
    for _ in 0..20 {
        coordinator.create_checkpoint().await.unwrap();
    }
    let kept = coordinator
        .recovery_manager()
        .checkpoint_strategy()
        .unwrap()
        .store()
        .list()
        .await
        .unwrap();
    assert_eq!(kept.len(), 15, "keeps 15 checkpoints");

    // The thresholds are the ones given: memory at 0.90 is past 0.85.
    monitor.update_memory_usage(0.90);
    let change = coordinator
        .recovery_manager()
        .degradation_strategy()
        .unwrap()
        .step(coordinator.as_ref())
        .await
        .unwrap()
        .expect("memory past its threshold raises the level");
    assert!(change.to.as_u8() > 0);
}

// ----- Monitoring and Observability ------------------------------------------------------------

/// "Recovery Statistics": the success-rate snippet, as written, over real recoveries.
#[tokio::test(start_paused = true)]
async fn recovery_statistics() {
    let coordinator = SwarmCoordinator::new(config(), Scripted::new([])).unwrap();
    let agent = coordinator
        .register_agent(AgentSpec::new("a", no_caps()))
        .unwrap();
    let recovery_manager = coordinator.recovery_manager();

    // One recovery that succeeds (backoff's retry probes an agent, which answers), one that
    // cannot.
    let ok = coordinator
        .recover_from_error(SwarmError::CommunicationError("blip".into()), None, None)
        .await
        .unwrap();
    assert!(ok.success);
    let manual = coordinator
        .recover_from_error(
            SwarmError::ProtocolMismatch("agent speaks v1".into()),
            None,
            Some(agent),
        )
        .await
        .unwrap();
    assert!(!manual.success);

    let history = recovery_manager.get_recovery_history().await;
    let successful_recoveries = history.iter().filter(|a| a.result.success).count();
    let success_rate = successful_recoveries as f64 / history.len() as f64;

    println!("Recovery success rate: {:.1}%", success_rate * 100.0);
    assert_eq!(history.len(), 2);
    assert_eq!(success_rate, 0.5);

    let stats = recovery_manager.statistics().await;
    assert_eq!(stats.overall.attempts, 2);
    assert_eq!(stats.overall.success_rate(), success_rate);
    assert_eq!(stats.by_strategy["exponential_backoff"].successes, 1);
    assert_eq!(stats.by_strategy[NO_STRATEGY].attempts, 1);
}

/// "Resource Monitoring": `resource_monitor().get_usage()` shows the coordinator's agents as
/// connections, its runs in flight as tasks, and what a sampler (here the test) reported.
#[tokio::test(start_paused = true)]
async fn resource_monitoring() {
    let executor = Scripted::new([Step::Block]);
    let coordinator = SwarmCoordinator::new(config(), executor.clone()).unwrap();
    let recovery_manager = coordinator.recovery_manager();
    for name in ["a", "b"] {
        coordinator
            .register_agent(AgentSpec::new(name, no_caps()))
            .unwrap();
    }
    let task = coordinator.submit_task(TaskSpec::new("long")).unwrap();
    let running = {
        let c = coordinator.clone();
        tokio::spawn(async move { c.execute_task(task).await })
    };
    while !matches!(
        coordinator.task(task).unwrap().state,
        TaskState::Running { .. }
    ) {
        tokio::task::yield_now().await;
    }

    let resource_monitor = recovery_manager.resource_monitor();
    resource_monitor.update_cpu_usage(0.42);
    resource_monitor.update_memory_usage(0.61);
    let usage = resource_monitor.get_usage().await;

    println!("System load:");
    println!("  CPU: {:.1}%", usage.cpu_percent * 100.0);
    println!("  Memory: {:.1}%", usage.memory_percent * 100.0);
    println!("  Active connections: {}", usage.active_connections);
    println!("  Active tasks: {}", usage.active_tasks);
    assert_eq!(usage.cpu_percent, 0.42);
    assert_eq!(usage.memory_percent, 0.61);
    assert_eq!(usage.active_connections, 2);
    assert_eq!(usage.active_tasks, 1);

    executor.release.notify_waiters();
    running.await.unwrap().unwrap();
    assert_eq!(resource_monitor.get_usage().await.active_tasks, 0);
}

/// "Recovery Result Interpretation": the spec's match, on results the system really returns.
#[tokio::test(start_paused = true)]
async fn recovery_result_interpretation() {
    let coordinator = SwarmCoordinator::new(config(), Scripted::new([])).unwrap();
    coordinator
        .register_agent(AgentSpec::new("a", no_caps()))
        .unwrap();
    let interpret = |recovery_result: RecoveryResult| match recovery_result {
        RecoveryResult {
            success: true,
            confidence,
            ..
        } if confidence > 0.8 => "continue normally",
        RecoveryResult {
            success: true,
            continue_recovery: true,
            ..
        } => "partial",
        RecoveryResult {
            success: false,
            continue_recovery: false,
            ..
        } => "manual intervention",
        _ => "other",
    };
    let retried = coordinator
        .recover_from_error(SwarmError::CommunicationError("blip".into()), None, None)
        .await
        .unwrap();
    assert_eq!(interpret(retried), "continue normally");
    let fatal = coordinator
        .recover_from_error(SwarmError::ProtocolMismatch("v1 vs v3".into()), None, None)
        .await
        .unwrap();
    assert_eq!(interpret(fatal), "manual intervention");
}

// ----- Testing ---------------------------------------------------------------------------------

/// The fake target of `create_test_context()`: a channel that drops the first send.
struct FlakyChannel {
    sends: AtomicU32,
    requests: Mutex<Vec<RetryRequest>>,
}

#[async_trait]
impl Retry for FlakyChannel {
    async fn retry(&self, request: RetryRequest) -> Result<(), SwarmError> {
        self.requests.lock().unwrap().push(request);
        if self.sends.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(SwarmError::CommunicationError("reset".into()))
        } else {
            Ok(())
        }
    }
}

fn create_test_context() -> RecoveryContext<FlakyChannel> {
    RecoveryContext::new(Arc::new(FlakyChannel {
        sends: AtomicU32::new(0),
        requests: Mutex::new(Vec::new()),
    }))
    .with_task(TaskId::from_u128(7))
}

/// "Unit Testing Recovery Strategies": `test_exponential_backoff_strategy`, with `new`
/// returning a `Result` and a context whose target really is retried.
#[tokio::test(start_paused = true)]
async fn test_exponential_backoff_strategy() {
    let strategy = ExponentialBackoffStrategy::new(BackoffConfig::default()).unwrap();

    let error = SwarmError::CommunicationError("test".to_string());
    assert!(strategy.can_handle(&error).await);

    let context = create_test_context();
    let started = tokio::time::Instant::now();
    let result = strategy.recover(&context, &error).await;
    assert!(result.success);

    // It retried through the target: the first retry failed, the second got through.
    assert_eq!(result.action, RecoveryAction::Retried { attempts: 2 });
    assert_eq!(context.target.sends.load(Ordering::SeqCst), 2);
    let requests = context.target.requests.lock().unwrap().clone();
    assert_eq!(
        requests.iter().map(|r| r.attempt).collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(
        requests
            .iter()
            .all(|r| r.failed_task_id == Some(TaskId::from_u128(7)))
    );
    // It waited about 100 ms and 200 ms (±10 % jitter).
    let waited = started.elapsed();
    assert!(
        (Duration::from_millis(270)..=Duration::from_millis(330)).contains(&waited),
        "{waited:?}"
    );
    // A corrupt state is not something retrying fixes.
    let corrupt = SwarmError::StateCorruption("x".into());
    assert!(!strategy.can_handle(&corrupt).await);
}

/// "Integration Testing": `test_recovery_manager_integration`. With no task named, backoff's
/// retry probes agents through the executor and succeeds when one answers.
#[tokio::test(start_paused = true)]
async fn test_recovery_manager_integration() {
    let manager = RecoveryManager::new();
    let coordinator = SwarmCoordinator::new(config(), Scripted::new([])).unwrap();
    coordinator
        .register_agent(AgentSpec::new("a", no_caps()))
        .unwrap();

    let error = SwarmError::CommunicationError("test".to_string());
    let result = manager
        .recover(coordinator.clone(), error, None, None)
        .await
        .unwrap();

    assert!(result.success);
    assert!(!result.action_taken.is_empty());
    assert_eq!(result.action, RecoveryAction::Retried { attempts: 1 });
    let history = manager.get_recovery_history().await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].strategy_id, "exponential_backoff");
}

/// The same with no healthy agent: the retry cannot succeed and says so; self-healing, next
/// by cost, reconnects the failed agent (restart `agent_protocol`), which is then healthy.
#[tokio::test(start_paused = true)]
async fn recovery_manager_integration_without_a_healthy_agent() {
    let manager = RecoveryManager::new();
    let exec = Scripted::new([]);
    let coordinator = SwarmCoordinator::new(config(), exec.clone()).unwrap();
    let agent = coordinator
        .register_agent(AgentSpec::new("a", no_caps()))
        .unwrap();
    coordinator.declare_agent_failed(agent).unwrap();
    exec.set_down(agent, true);

    let error = SwarmError::CommunicationError("test".to_string());
    let result = manager
        .recover(coordinator.clone(), error, None, None)
        .await
        .unwrap();

    let history = manager.get_recovery_history().await;
    assert_eq!(history[0].strategy_id, "exponential_backoff");
    assert!(!history[0].result.success, "no agent answered");
    assert_eq!(history[1].strategy_id, "self_healing");
    assert!(result.success, "{result:?}");
    assert!(matches!(result.action, RecoveryAction::Healed { .. }));
    assert_eq!(coordinator.agent(agent).unwrap().status, AgentStatus::Idle);
    assert_eq!(
        *exec.reconnected.lock().unwrap(),
        [agent],
        "reconnected through the executor"
    );
}
