//! Running a drill: build the swarm, submit the workload, inject faults, collect the report.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use recovery_checkpoint::{
    Checkpoint, CheckpointError, CheckpointInfo, CheckpointRecoveryStrategy, CheckpointStore,
    Codec, FileStore,
};
use recovery_core::{Priority, RecoveryAction, async_trait};
use recovery_degradation::{Degradable, DegradationLevel};
use recovery_manager::{MonitoringHandle, RecoveryConfig, RecoveryManager, RecoverySettings};
use swarm_integration::{AgentSpec, SwarmConfig, SwarmCoordinator, TaskSpec};
use tokio::sync::Semaphore;

use crate::executor::DrillExecutor;
use crate::faults::{FaultRates, plan_digest};
use crate::pressure::Pressure;
use crate::report::{Report, RunOptions, StrategyReport, ms};

/// How long the submitter pauses after a refused submission.
const REFUSAL_PAUSE: Duration = Duration::from_millis(5);

/// What to run.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// Agents to register.
    pub agents: usize,
    /// Tasks to submit.
    pub tasks: u64,
    /// The seed of the fault plan (and of task priorities).
    pub seed: u64,
    /// Fault rates per run.
    pub rates: FaultRates,
    /// Stop waiting for tasks after this long; unfinished tasks then count as lost.
    pub duration_limit: Duration,
    /// Recovery settings (the manager's TOML file).
    pub settings: RecoverySettings,
    /// Keep checkpoints here (over the settings' `[checkpoint] dir`; default: a temporary
    /// directory, removed at the end).
    pub checkpoint_dir: Option<PathBuf>,
    /// Tasks in flight at once.
    pub in_flight: usize,
    /// The coordinator's task timeout, seconds.
    pub task_timeout_secs: u64,
}

impl Default for DrillOptions {
    fn default() -> Self {
        Self {
            agents: 32,
            tasks: 20_000,
            seed: 7,
            rates: FaultRates::default(),
            duration_limit: Duration::from_secs(120),
            settings: drill_settings(),
            checkpoint_dir: None,
            in_flight: 512,
            task_timeout_secs: 1,
        }
    }
}

/// The recovery settings a drill uses unless `--config` gives others: the defaults, with
/// monitoring and checkpoints frequent enough to matter in a drill of seconds. (Whatever the
/// settings, [`run`] makes the history long enough to count every recovery.)
pub fn drill_settings() -> RecoverySettings {
    let mut settings = RecoverySettings::default();
    settings.recovery = RecoveryConfig {
        max_concurrent_recoveries: 16,
        checkpoint_interval: Duration::from_secs(1),
        monitoring_interval: Duration::from_millis(100),
        ..RecoveryConfig::default()
    };
    settings
}

/// A history long enough to hold every recovery of `tasks` tasks (at most about eight
/// recoveries a task, since a task gives up after `max_attempts_per_task` runs).
fn history_needed(tasks: u64) -> usize {
    usize::try_from(tasks.saturating_mul(16))
        .unwrap_or(usize::MAX)
        .clamp(1_000, recovery_manager::MAX_HISTORY_RETENTION)
}

/// A drill that could not start.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// A bad option or configuration value (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// The swarm could not be set up.
    #[error("setting up the swarm failed: {0}")]
    Setup(String),
}

/// Progress callbacks, so the binary can draw a bar or print lines.
pub trait Progress: Send + Sync {
    /// `settled` of `total` tasks are finished (completed, failed or refused).
    fn update(&self, settled: u64, total: u64);
}

impl Progress for () {
    fn update(&self, _: u64, _: u64) {}
}

/// Counts checkpoints written and read, around the real store.
struct CountingStore {
    inner: Arc<dyn CheckpointStore>,
    written: AtomicU64,
}

#[async_trait]
impl CheckpointStore for CountingStore {
    async fn put(&self, codec: Codec, payload: Vec<u8>) -> Result<CheckpointInfo, CheckpointError> {
        let info = self.inner.put(codec, payload).await?;
        self.written.fetch_add(1, Ordering::Relaxed);
        Ok(info)
    }
    async fn get(&self, id: uuid::Uuid) -> Result<Checkpoint, CheckpointError> {
        self.inner.get(id).await
    }
    async fn list(&self) -> Result<Vec<CheckpointInfo>, CheckpointError> {
        self.inner.list().await
    }
    async fn delete(&self, id: uuid::Uuid) -> Result<(), CheckpointError> {
        self.inner.delete(id).await
    }
}

/// The priority of task `n`: about 10% low, 60% normal, 25% high, 5% critical.
fn priority_of(seed: u64, n: u64) -> Priority {
    let h =
        crate::faults::mix(seed ^ 0x9e37_79b9_7f4a_7c15 ^ n.wrapping_mul(0x2545_f491_4f6c_dd1d));
    match h % 100 {
        0..10 => Priority::Low,
        10..70 => Priority::Normal,
        70..95 => Priority::High,
        _ => Priority::Critical,
    }
}

/// Run one drill.
///
/// # Errors
///
/// [`DrillError::Usage`] for bad options, [`DrillError::Setup`] when the swarm cannot be built
/// (for example an unwritable checkpoint directory).
pub async fn run(options: &DrillOptions, progress: &dyn Progress) -> Result<Report, DrillError> {
    options.rates.validate().map_err(DrillError::Usage)?;
    if options.agents == 0 {
        return Err(DrillError::Usage("--agents must be at least 1".into()));
    }
    if options.in_flight == 0 {
        return Err(DrillError::Usage("--in-flight must be at least 1".into()));
    }
    options
        .settings
        .validate()
        .map_err(|e| DrillError::Usage(e.to_string()))?;

    // Checkpoints: --checkpoint-dir, else the settings' directory, else a temporary one.
    let temp;
    let dir = match (&options.checkpoint_dir, &options.settings.checkpoint.dir) {
        (Some(d), _) | (None, Some(d)) => d.clone(),
        (None, None) => {
            temp = tempfile::tempdir().map_err(|e| DrillError::Setup(e.to_string()))?;
            temp.path().to_owned()
        }
    };
    let file_store = FileStore::open(&dir).map_err(|e| {
        DrillError::Usage(format!(
            "the checkpoint directory {} cannot be used: {e}",
            dir.display()
        ))
    })?;
    let store = Arc::new(CountingStore {
        inner: Arc::new(file_store),
        written: AtomicU64::new(0),
    });
    let checkpoint = CheckpointRecoveryStrategy::with_store(
        Arc::clone(&store) as Arc<dyn CheckpointStore>,
        options.settings.checkpoint.max_checkpoints,
    )
    .map_err(|e| DrillError::Usage(e.to_string()))?;
    // The report counts recoveries from the manager's history, so it must hold them all.
    let mut settings = options.settings.clone();
    let needed = history_needed(options.tasks);
    if settings.recovery.history_retention < needed {
        tracing::info!(
            from = settings.recovery.history_retention,
            to = needed,
            "history_retention raised so the report counts every recovery"
        );
        settings.recovery.history_retention = needed;
    }
    let manager: RecoveryManager<SwarmCoordinator> = settings
        .builder()
        .await
        .map_err(|e| DrillError::Usage(e.to_string()))?
        .checkpoint(checkpoint)
        // The drill reports its own (injected) load to the monitor instead of the host's.
        .without_sampler()
        .build()
        .map_err(|e| DrillError::Usage(e.to_string()))?;
    let manager = Arc::new(manager);

    let config = SwarmConfig {
        max_agents: options.agents,
        max_parallel_tasks: options.agents,
        max_pending_tasks: usize::try_from(options.tasks).unwrap_or(usize::MAX).max(1),
        task_timeout_secs: options.task_timeout_secs,
        ..SwarmConfig::default()
    };
    let pressure = Arc::new(Pressure::new(Duration::from_millis(400)));
    let executor = Arc::new(DrillExecutor::new(
        options.seed,
        options.rates,
        Arc::clone(&pressure),
        Duration::from_secs(options.task_timeout_secs) + Duration::from_millis(500),
    ));
    let coordinator =
        SwarmCoordinator::with_options(config, executor.clone(), Arc::clone(&manager), {
            let mut o = swarm_integration::CoordinatorOptions::default();
            o.breaker = options.settings.breaker.clone();
            o
        })
        .map_err(|e| DrillError::Usage(e.to_string()))?;
    executor.attach(&coordinator);
    for i in 0..options.agents {
        coordinator
            .register_agent(AgentSpec::new(format!("agent-{i:02}"), ["drill"]))
            .map_err(|e| DrillError::Setup(e.to_string()))?;
    }
    coordinator
        .create_checkpoint()
        .await
        .map_err(|e| DrillError::Setup(format!("the first checkpoint failed: {e}")))?;
    let monitoring: MonitoringHandle = manager.start_monitoring().await;
    let stop_feeder = Arc::new(AtomicBool::new(false));
    let feeder = tokio::spawn(feed_pressure(
        Arc::clone(&coordinator),
        Arc::clone(&pressure),
        Arc::clone(&stop_feeder),
    ));

    let sampler = crate::timeline::Sampler::start(
        Arc::clone(&coordinator),
        Arc::clone(&manager),
        Arc::clone(&executor),
        Duration::from_millis(100),
    );
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + options.duration_limit;
    let settled = Arc::new(AtomicU64::new(0));
    // Counted as each call ends: the coordinator keeps only `finished_retention` finished
    // tasks, so reading the reasons off its tasks at the end would miss the older ones.
    let failed_by_reason: Arc<std::sync::Mutex<BTreeMap<String, u64>>> = Arc::default();
    let permits = Arc::new(Semaphore::new(options.in_flight));
    let mut joins = tokio::task::JoinSet::new();
    for n in 0..options.tasks {
        let Ok(permit) =
            tokio::time::timeout_at(deadline, Arc::clone(&permits).acquire_owned()).await
        else {
            break;
        };
        let permit = permit.expect("the semaphore is never closed");
        let spec = TaskSpec::new(format!("drill-{n}"))
            .with_priority(priority_of(options.seed, n))
            .with_payload(n.to_le_bytes().to_vec())
            .requiring("drill");
        match coordinator.submit_task(spec) {
            Ok(task) => {
                let c = Arc::clone(&coordinator);
                let settled = Arc::clone(&settled);
                let reasons = Arc::clone(&failed_by_reason);
                joins.spawn(async move {
                    if let Err(recovery_core::SwarmError::TaskFailed { reason, .. }) =
                        c.execute_task_with_recovery(task).await
                    {
                        let mut reasons = reasons.lock().unwrap_or_else(|e| e.into_inner());
                        *reasons.entry(reason_class(&reason)).or_default() += 1;
                    }
                    settled.fetch_add(1, Ordering::Relaxed);
                    drop(permit);
                });
            }
            Err(_) => {
                settled.fetch_add(1, Ordering::Relaxed);
                drop(permit);
                // A client told the swarm is overloaded slows down before its next request
                // (this one is not resubmitted: it counts as refused).
                tokio::time::sleep(REFUSAL_PAUSE).await;
            }
        }
        if n % 256 == 0 {
            progress.update(settled.load(Ordering::Relaxed), options.tasks);
            // Let runs make progress between batches of submissions.
            tokio::task::yield_now().await;
        }
    }
    loop {
        match tokio::time::timeout_at(deadline, joins.join_next()).await {
            Ok(Some(_)) => {
                let s = settled.load(Ordering::Relaxed);
                if s % 128 == 0 {
                    progress.update(s, options.tasks);
                }
            }
            Ok(None) => break,
            Err(_) => {
                tracing::error!("the duration limit passed with tasks unfinished");
                joins.abort_all();
                break;
            }
        }
    }
    progress.update(settled.load(Ordering::Relaxed), options.tasks);
    let elapsed = started.elapsed();
    let timeline = sampler.finish().await;
    monitoring.shutdown().await;
    stop_feeder.store(true, Ordering::Relaxed);
    let seconds_at_level = feeder.await.unwrap_or_default();

    let stats = coordinator.stats();
    let failed_by_reason =
        std::mem::take(&mut *failed_by_reason.lock().unwrap_or_else(|e| e.into_inner()));
    let recovery = manager.statistics().await;
    let mut healing_actions: BTreeMap<String, u64> = BTreeMap::new();
    for attempt in manager.get_recovery_history().await {
        if let RecoveryAction::Healed { action, .. } = &attempt.result.action {
            if attempt.result.success {
                *healing_actions.entry(action.clone()).or_default() += 1;
            }
        }
    }
    let recoveries = recovery
        .by_strategy
        .iter()
        .map(|(name, s)| {
            (
                name.clone(),
                StrategyReport {
                    attempts: s.attempts,
                    successes: s.successes,
                    no_change: s.no_change,
                    p50_ms: ms(s.p50),
                    p99_ms: ms(s.p99),
                },
            )
        })
        .collect();
    let report = Report {
        timeline,
        breakers: coordinator.breaker_stats(),
        options: RunOptions {
            agents: options.agents,
            tasks: options.tasks,
            seed: options.seed,
            rates: options.rates,
            duration_limit_secs: options.duration_limit.as_secs_f64(),
            in_flight: options.in_flight,
            task_timeout_secs: options.task_timeout_secs,
            settings: options.settings.clone(),
        },
        seed: options.seed,
        fault_plan_digest: format!(
            "{:016x}",
            plan_digest(options.seed, options.tasks.min(100_000), 3, &options.rates)
        ),
        agents: options.agents,
        tasks: options.tasks,
        submitted: stats.submitted,
        completed: stats.completed,
        failed: stats.failed,
        failed_by_reason,
        refused: stats.refused,
        not_submitted: options
            .tasks
            .saturating_sub(stats.submitted + stats.refused),
        lost: stats.unfinished,
        invariant_violations: coordinator.audit(),
        faults_injected: executor
            .injected()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        recoveries,
        recovery_attempts: recovery.overall.attempts,
        recovery_successes: recovery.overall.successes,
        checkpoints_written: store.written.load(Ordering::Relaxed),
        checkpoints_restored: stats.restores,
        seconds_at_level,
        healing_actions,
        stale_results_discarded: stats.stale_results_discarded,
        elapsed_secs: elapsed.as_secs_f64(),
        throughput: stats.completed as f64 / elapsed.as_secs_f64().max(1e-9),
        baseline_throughput: None,
    };
    Ok(report)
}

/// The class of a failure reason, for the report: its words up to the first colon or digit.
fn reason_class(reason: &str) -> String {
    let head = reason.split(':').next().unwrap_or(reason);
    let words: Vec<&str> = head
        .split_whitespace()
        .take_while(|w| !w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .take(4)
        .collect();
    if words.is_empty() {
        "other".into()
    } else {
        words.join(" ")
    }
}

/// Report the injected load to the monitor every 50 ms and account the time spent at each
/// degradation level, until `stop`; returns seconds per level.
async fn feed_pressure(
    coordinator: Arc<SwarmCoordinator>,
    pressure: Arc<Pressure>,
    stop: Arc<AtomicBool>,
) -> BTreeMap<String, f64> {
    let monitor = coordinator.recovery_manager().resource_monitor();
    let mut at_level: BTreeMap<String, f64> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut last = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        let usage = pressure.current();
        monitor.update_cpu_usage(usage);
        monitor.update_memory_usage(usage);
        let level: DegradationLevel = coordinator.current_level().await;
        let now = tokio::time::Instant::now();
        *at_level.entry(level.to_string()).or_default() += (now - last).as_secs_f64();
        last = now;
        if stop.load(Ordering::Relaxed) {
            return at_level;
        }
    }
}

/// The fault-free throughput of the same workload, for `--baseline`.
///
/// # Errors
///
/// As [`run`].
pub async fn baseline(options: &DrillOptions) -> Result<f64, DrillError> {
    Ok(baseline_report(options).await?.throughput)
}

/// The report of the same workload without faults (what [`baseline`] measures).
///
/// # Errors
///
/// As [`run`].
pub async fn baseline_report(options: &DrillOptions) -> Result<Report, DrillError> {
    let mut quiet = options.clone();
    quiet.rates = FaultRates::NONE;
    run(&quiet, &()).await
}
