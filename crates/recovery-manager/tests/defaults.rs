//! The manager with the strategies of the enabled features: registration, the settings file,
//! `create_checkpoint`, `resource_monitor`, and background monitoring. The fake system
//! implements each capability trait whose feature is on.
// With some features off, some helpers and imports have no user.
#![cfg_attr(
    not(all(
        feature = "backoff",
        feature = "checkpoint",
        feature = "degradation",
        feature = "healing"
    )),
    allow(unused_imports, unused_mut, dead_code)
)]

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use recovery_core::{SwarmError, async_trait};
use recovery_manager::{RecoveryConfig, RecoveryManager, RecoverySettings};

/// A system with a counter as its state, a degradation level, a retry log, and restart and
/// config logs.
#[derive(Default)]
struct Fake {
    state: Mutex<u64>,
    level: AtomicU8,
    /// How many more retries fail before one succeeds.
    failing_retries: AtomicU32,
    retries: AtomicUsize,
    restarts: Mutex<Vec<String>>,
    timeout_secs: AtomicU32,
}

#[cfg(feature = "backoff")]
#[async_trait]
impl recovery_backoff::Retry for Fake {
    async fn retry(&self, _request: recovery_backoff::RetryRequest) -> Result<(), SwarmError> {
        self.retries.fetch_add(1, Ordering::SeqCst);
        let left = self.failing_retries.load(Ordering::SeqCst);
        if left > 0 {
            self.failing_retries.store(left - 1, Ordering::SeqCst);
            return Err(SwarmError::CommunicationError("still down".into()));
        }
        Ok(())
    }
}

#[cfg(feature = "checkpoint")]
#[async_trait]
impl recovery_checkpoint::Checkpointable for Fake {
    type State = u64;
    async fn snapshot(&self) -> Result<u64, SwarmError> {
        Ok(*self.state.lock().unwrap())
    }
    async fn restore(&self, state: u64) -> Result<(), SwarmError> {
        *self.state.lock().unwrap() = state;
        Ok(())
    }
}

#[cfg(feature = "degradation")]
#[async_trait]
impl recovery_degradation::Degradable for Fake {
    async fn apply_level(
        &self,
        level: recovery_degradation::DegradationLevel,
    ) -> Result<(), SwarmError> {
        self.level.store(level.as_u8(), Ordering::SeqCst);
        Ok(())
    }
    async fn current_level(&self) -> recovery_degradation::DegradationLevel {
        recovery_degradation::DegradationLevel::from_u8(self.level.load(Ordering::SeqCst))
            .expect("only valid levels are stored")
    }
}

#[cfg(feature = "healing")]
#[async_trait]
impl recovery_healing::Healable for Fake {
    async fn restart_component(&self, name: &str) -> Result<(), recovery_healing::RestartError> {
        self.restarts.lock().unwrap().push(name.to_owned());
        Ok(())
    }
    async fn apply_config_patch(
        &self,
        patch: &recovery_healing::ConfigPatch,
    ) -> Result<(), recovery_healing::ConfigPatchError> {
        for (key, value) in patch.iter() {
            if let ("task_timeout_secs", recovery_healing::ConfigValue::Integer(v)) = (key, value) {
                self.timeout_secs.store(*v as u32, Ordering::SeqCst);
            }
        }
        Ok(())
    }
    async fn reallocate_from(
        &self,
        _agent: Option<recovery_core::AgentId>,
        _task: Option<recovery_core::TaskId>,
    ) -> Result<usize, SwarmError> {
        Ok(0)
    }
}

#[test]
fn new_registers_the_enabled_strategies_in_cost_order() {
    let manager = RecoveryManager::<Fake>::new();
    let mut expected: Vec<&str> = Vec::new();
    if cfg!(feature = "backoff") {
        expected.push("exponential_backoff");
    }
    if cfg!(feature = "healing") {
        expected.push("self_healing");
    }
    if cfg!(feature = "checkpoint") {
        expected.push("checkpoint_recovery");
    }
    if cfg!(feature = "degradation") {
        expected.push("graceful_degradation");
    }
    assert_eq!(manager.strategy_ids(), expected);
}

#[test]
fn with_config_rejects_a_bad_value_naming_the_field() {
    let err = RecoveryManager::<Fake>::with_config(RecoveryConfig {
        max_concurrent_recoveries: 0,
        ..RecoveryConfig::default()
    })
    .err()
    .expect("zero slots is refused");
    assert!(
        err.to_string().contains("max_concurrent_recoveries"),
        "{err}"
    );
}

#[test]
fn settings_file_errors_name_the_field() {
    let err = RecoverySettings::from_toml_str("[recovery]\nhistory_retention = \"lots\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("history_retention"), "{err}");
    let err = RecoverySettings::from_toml_str("[recovery]\nmax_concurent_recoveries = 3\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_concurent_recoveries"), "{err}");
    let err = RecoverySettings::from_toml_str("[recovery]\nmax_concurrent_recoveries = 0\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[recovery]") && err.contains("max_concurrent_recoveries"),
        "{err}"
    );
}

#[tokio::test]
async fn settings_file_builds_the_manager_it_describes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recovery.toml");
    let mut text = String::from("[recovery]\nmax_concurrent_recoveries = 7\n");
    if cfg!(feature = "checkpoint") {
        text.push_str(&format!(
            "[checkpoint]\nmax_checkpoints = 2\ndir = {:?}\n",
            dir.path().join("ckpt")
        ));
    }
    if cfg!(feature = "healing") {
        text.push_str("[healing]\ndefault_rules = false\n");
    }
    std::fs::write(&path, text).unwrap();
    let settings = RecoverySettings::load(&path).unwrap();
    let manager: RecoveryManager<Fake> = settings.builder().await.unwrap().build().unwrap();
    assert_eq!(manager.config().max_concurrent_recoveries, 7);

    #[cfg(feature = "checkpoint")]
    {
        let fake = Fake::default();
        for i in 0..3 {
            *fake.state.lock().unwrap() = i;
            manager.create_checkpoint(&fake).await.unwrap();
        }
        let files = std::fs::read_dir(dir.path().join("ckpt"))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "ckpt"))
            .count();
        assert_eq!(
            files, 2,
            "retention of the [checkpoint] section applies on disk"
        );
    }
    #[cfg(feature = "healing")]
    {
        // No default rules: a communication error finds no healing rule.
        let error = SwarmError::CommunicationError("x".into());
        let ids: Vec<String> = manager.strategy_ids();
        assert!(ids.contains(&"self_healing".to_owned()));
        let fake = Arc::new(Fake::default());
        manager
            .recover(Arc::clone(&fake), error, None, None)
            .await
            .unwrap();
        assert!(
            fake.restarts.lock().unwrap().is_empty(),
            "without the default rules nothing restarts agent_protocol"
        );
    }
}

#[cfg(feature = "checkpoint")]
#[tokio::test]
async fn create_checkpoint_needs_a_checkpoint_strategy() {
    let manager = RecoveryManager::<Fake>::empty(RecoveryConfig::default()).unwrap();
    let err = manager
        .create_checkpoint(&Fake::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), recovery_core::ErrorKind::InvalidConfiguration);

    let manager = RecoveryManager::<Fake>::new();
    let fake = Fake::default();
    *fake.state.lock().unwrap() = 41;
    let id = manager.create_checkpoint(&fake).await.unwrap();
    *fake.state.lock().unwrap() = 99;
    let strategy = manager.checkpoint_strategy().unwrap();
    strategy
        .restore_from_checkpoint(&fake, Some(id))
        .await
        .unwrap();
    assert_eq!(*fake.state.lock().unwrap(), 41);
}

/// A sampler that counts its calls and reports what the test sets.
#[cfg(feature = "degradation")]
#[derive(Clone, Default)]
struct Scripted {
    calls: Arc<AtomicUsize>,
    cpu: Arc<Mutex<f64>>,
}

#[cfg(feature = "degradation")]
impl recovery_degradation::ResourceSampler for Scripted {
    fn sample(&mut self) -> recovery_degradation::Sample {
        self.calls.fetch_add(1, Ordering::SeqCst);
        recovery_degradation::Sample {
            cpu: Some(*self.cpu.lock().unwrap()),
            memory: Some(0.1),
        }
    }
}

#[cfg(feature = "degradation")]
#[tokio::test(start_paused = true)]
async fn monitoring_samples_and_lifts_degradation_without_an_error() {
    use recovery_degradation::{Degradable, DegradationLevel};

    let sampler = Scripted::default();
    *sampler.cpu.lock().unwrap() = 0.99;
    let manager: RecoveryManager<Fake> = RecoveryManager::builder()
        .config(RecoveryConfig {
            monitoring_interval: Duration::from_secs(1),
            ..RecoveryConfig::default()
        })
        .sampler(sampler.clone())
        .build()
        .unwrap();
    let fake = Arc::new(Fake::default());
    manager.attach(&fake);
    let handle = manager.start_monitoring().await;

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(sampler.calls.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        manager.resource_monitor().get_usage().await.cpu_percent,
        0.99
    );
    let raised = fake.current_level().await;
    assert!(
        raised > DegradationLevel::Normal,
        "pressure raised the level: {raised:?}"
    );

    // Pressure falls: within a few ticks the level is back to normal, no error needed.
    *sampler.cpu.lock().unwrap() = 0.2;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(fake.current_level().await, DegradationLevel::Normal);

    // Dropping the handle stops everything: no more samples.
    drop(handle);
    tokio::task::yield_now().await;
    let calls = sampler.calls.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(sampler.calls.load(Ordering::SeqCst), calls);
}

#[cfg(feature = "checkpoint")]
#[tokio::test(start_paused = true)]
async fn monitoring_checkpoints_every_interval_and_shutdown_stops_it() {
    let mut builder = RecoveryManager::builder().config(RecoveryConfig {
        checkpoint_interval: Duration::from_secs(10),
        monitoring_interval: Duration::from_secs(1),
        ..RecoveryConfig::default()
    });
    #[cfg(feature = "degradation")]
    {
        builder = builder.without_sampler();
    }
    let manager: RecoveryManager<Fake> = builder.build().unwrap();
    let fake = Arc::new(Fake::default());
    manager.attach(&fake);
    let handle = manager.start_monitoring().await;
    let store = Arc::clone(manager.checkpoint_strategy().unwrap().store());

    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        store.list().await.unwrap().len(),
        0,
        "the first checkpoint comes one interval in"
    );
    *fake.state.lock().unwrap() = 7;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let list = store.list().await.unwrap();
    assert_eq!(list.len(), 1);
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(store.list().await.unwrap().len(), 3);

    assert!(handle.is_running());
    handle.shutdown().await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        store.list().await.unwrap().len(),
        3,
        "nothing runs after shutdown"
    );
}

#[cfg(feature = "checkpoint")]
#[tokio::test(start_paused = true)]
async fn monitoring_ends_when_the_target_is_dropped() {
    let manager: RecoveryManager<Fake> = RecoveryManager::builder()
        .config(RecoveryConfig {
            checkpoint_interval: Duration::from_secs(1),
            monitoring_interval: Duration::from_secs(1),
            ..RecoveryConfig::default()
        })
        .build()
        .unwrap();
    let fake = Arc::new(Fake::default());
    manager.attach(&fake);
    let handle = manager.start_monitoring().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(handle.is_running());
    drop(fake);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !handle.is_running(),
        "monitoring holds only a weak reference to its target"
    );
}

#[cfg(feature = "healing")]
#[tokio::test]
async fn healing_runs_through_the_manager_and_really_acts() {
    let manager = RecoveryManager::<Fake>::new();
    let fake = Arc::new(Fake::default());
    // A coordination timeout: with backoff enabled it is retried first (and succeeds), so take
    // healing alone to see its effect.
    manager.remove_strategy("exponential_backoff").await;
    let result = manager
        .recover(
            Arc::clone(&fake),
            SwarmError::CoordinationTimeout("slow".into()),
            None,
            None,
        )
        .await
        .unwrap();
    assert!(result.success, "{result:?}");
    assert_eq!(fake.timeout_secs.load(Ordering::SeqCst), 600);
}

#[cfg(feature = "backoff")]
#[tokio::test(start_paused = true)]
async fn backoff_really_retries_through_the_manager() {
    let manager = RecoveryManager::<Fake>::new();
    let fake = Arc::new(Fake::default());
    fake.failing_retries.store(2, Ordering::SeqCst);
    let started = tokio::time::Instant::now();
    let result = manager
        .recover(
            Arc::clone(&fake),
            SwarmError::CommunicationError("reset".into()),
            None,
            None,
        )
        .await
        .unwrap();
    assert!(result.success, "{result:?}");
    assert_eq!(fake.retries.load(Ordering::SeqCst), 3);
    // 100 + 200 + 400 ms, give or take the default 10% jitter.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(630) && waited <= Duration::from_millis(770),
        "{waited:?}"
    );
    assert!(
        fake.restarts.lock().unwrap().is_empty(),
        "backoff succeeded; healing never ran"
    );
}
