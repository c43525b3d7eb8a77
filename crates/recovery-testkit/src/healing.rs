//! `FakeHealing`: components to restart, a config to patch, work to move.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use recovery_core::{AgentId, SwarmError, TaskId, async_trait};
use recovery_healing::{
    ConfigPatch, ConfigPatchError, ConfigSchema, ConfigValue, Healable, RestartError, TunableConfig,
};

/// A [`Healable`] target: named components that restart (or fail to), a [`TunableConfig`] with
/// `task_timeout_secs` (1 to 86,400, starting at 300), and a number of tasks a reallocation
/// moves. It records every restart and reallocation.
///
/// ```
/// use recovery_healing::{ConfigValue, Healable, RestartError};
/// use recovery_testkit::FakeHealing;
///
/// # recovery_testkit::block_on_paused(async {
/// let fake = FakeHealing::new(["agent_protocol"]);
/// fake.restart_component("agent_protocol").await.unwrap();
/// assert!(matches!(fake.restart_component("network_manager").await, Err(RestartError::UnknownComponent { .. })));
/// assert_eq!(fake.restarts(), ["agent_protocol"]);
/// assert_eq!(fake.config().get("task_timeout_secs"), Some(ConfigValue::Integer(300)));
/// # });
/// ```
#[derive(Debug)]
pub struct FakeHealing {
    components: BTreeSet<String>,
    fail_restarts: AtomicBool,
    restarts: Mutex<Vec<String>>,
    config: TunableConfig,
    movable: AtomicUsize,
    reallocations: Mutex<Vec<(Option<AgentId>, Option<TaskId>)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeHealing {
    /// A target with these components, nothing to move, and the default config.
    ///
    /// # Panics
    ///
    /// Never: the config's schema and initial value are fixed and valid.
    pub fn new<S: Into<String>>(components: impl IntoIterator<Item = S>) -> Self {
        let config = TunableConfig::new(
            ConfigSchema::new().integer("task_timeout_secs", 1, 86_400),
            [("task_timeout_secs", ConfigValue::Integer(300))],
        )
        .expect("the fake's config is valid");
        Self {
            components: components.into_iter().map(Into::into).collect(),
            fail_restarts: AtomicBool::new(false),
            restarts: Mutex::new(Vec::new()),
            config,
            movable: AtomicUsize::new(0),
            reallocations: Mutex::new(Vec::new()),
        }
    }

    /// Make restarts of known components fail (or work again).
    pub fn fail_restarts(&self, fail: bool) {
        self.fail_restarts.store(fail, Ordering::SeqCst);
    }

    /// The components restarted so far, in order.
    pub fn restarts(&self) -> Vec<String> {
        lock(&self.restarts).clone()
    }

    /// The configuration patches act on.
    pub fn config(&self) -> &TunableConfig {
        &self.config
    }

    /// Each later reallocation moves `tasks` tasks.
    pub fn set_movable(&self, tasks: usize) {
        self.movable.store(tasks, Ordering::SeqCst);
    }

    /// Every reallocation asked for: the agent and task named.
    pub fn reallocations(&self) -> Vec<(Option<AgentId>, Option<TaskId>)> {
        lock(&self.reallocations).clone()
    }
}

#[async_trait]
impl Healable for FakeHealing {
    async fn restart_component(&self, name: &str) -> Result<(), RestartError> {
        if !self.components.contains(name) {
            return Err(RestartError::UnknownComponent {
                component: name.to_owned(),
            });
        }
        if self.fail_restarts.load(Ordering::SeqCst) {
            return Err(RestartError::Failed {
                component: name.to_owned(),
                reason: "restart refused (fake)".into(),
            });
        }
        lock(&self.restarts).push(name.to_owned());
        Ok(())
    }

    async fn apply_config_patch(&self, patch: &ConfigPatch) -> Result<(), ConfigPatchError> {
        self.config.apply(patch)
    }

    async fn reallocate_from(
        &self,
        agent: Option<AgentId>,
        task: Option<TaskId>,
    ) -> Result<usize, SwarmError> {
        lock(&self.reallocations).push((agent, task));
        Ok(self.movable.load(Ordering::SeqCst))
    }
}
