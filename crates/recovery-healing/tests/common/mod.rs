//! A fake target for the healing tests: a supervisor of counting components, a tunable
//! configuration, and a table of task assignments.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use recovery_core::{AgentId, SwarmError, TaskId, async_trait};
use recovery_healing::{
    Component, ConfigPatch, ConfigPatchError, ConfigSchema, ConfigValue, Healable, RestartError,
    RestartIntensity, Supervisor, TunableConfig,
};

/// A component that counts its starts and stops, and can be told to fail its start.
#[derive(Default)]
pub struct Counted {
    pub starts: AtomicU32,
    pub stops: AtomicU32,
    pub running: AtomicBool,
    pub fail_start: AtomicBool,
    /// Start succeeds but the component does not run.
    pub start_does_nothing: AtomicBool,
}

#[async_trait]
impl Component for Counted {
    async fn start(&self) -> Result<(), String> {
        tokio::task::yield_now().await;
        if self.fail_start.load(Ordering::SeqCst) {
            return Err("port 7000 in use".into());
        }
        self.starts.fetch_add(1, Ordering::SeqCst);
        if !self.start_does_nothing.load(Ordering::SeqCst) {
            self.running.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    async fn stop(&self) -> Result<(), String> {
        tokio::task::yield_now().await;
        self.stops.fetch_add(1, Ordering::SeqCst);
        self.running.store(false, Ordering::SeqCst);
        Ok(())
    }

    async fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }
}

pub struct FakeTarget {
    pub supervisor: Supervisor,
    pub components: HashMap<String, Arc<Counted>>,
    pub config: TunableConfig,
    /// task -> agent running it.
    pub assignments: Mutex<HashMap<TaskId, AgentId>>,
    pub healthy: Vec<AgentId>,
}

pub fn schema() -> ConfigSchema {
    ConfigSchema::new()
        .integer("task_timeout_secs", 1, 3600)
        .integer("max_agents", 1, 10_000)
        .boolean("verbose")
}

impl FakeTarget {
    /// Components `agent_protocol` and `network_manager`, `task_timeout_secs` 30, two healthy
    /// agents, the given intensity.
    pub fn new(intensity: RestartIntensity) -> Arc<Self> {
        let supervisor = Supervisor::with_intensity(intensity);
        let mut components = HashMap::new();
        for name in ["agent_protocol", "network_manager"] {
            let c = Arc::new(Counted::default());
            c.running.store(true, Ordering::SeqCst);
            supervisor.register(name, c.clone()).unwrap();
            components.insert(name.to_owned(), c);
        }
        let config = TunableConfig::new(
            schema(),
            [
                ("task_timeout_secs", ConfigValue::Integer(30)),
                ("max_agents", ConfigValue::Integer(100)),
                ("verbose", ConfigValue::Bool(false)),
            ],
        )
        .unwrap();
        Arc::new(Self {
            supervisor,
            components,
            config,
            assignments: Mutex::new(HashMap::new()),
            healthy: vec![AgentId::from_u128(100), AgentId::from_u128(101)],
        })
    }

    /// A target whose supervisor allows many restarts (so the strategy's own intensity is what
    /// is tested).
    pub fn lenient() -> Arc<Self> {
        Self::new(RestartIntensity::new(u32::MAX, Duration::from_secs(1)).unwrap())
    }

    pub fn starts(&self, name: &str) -> u32 {
        self.components[name].starts.load(Ordering::SeqCst)
    }

    pub fn assign(&self, task: TaskId, agent: AgentId) {
        self.assignments.lock().unwrap().insert(task, agent);
    }

    pub fn agent_of(&self, task: TaskId) -> Option<AgentId> {
        self.assignments.lock().unwrap().get(&task).copied()
    }
}

#[async_trait]
impl Healable for FakeTarget {
    async fn restart_component(&self, name: &str) -> Result<(), RestartError> {
        self.supervisor.restart(name).await
    }

    async fn apply_config_patch(&self, patch: &ConfigPatch) -> Result<(), ConfigPatchError> {
        self.config.apply(patch)
    }

    async fn reallocate_from(
        &self,
        agent: Option<AgentId>,
        task: Option<TaskId>,
    ) -> Result<usize, SwarmError> {
        let mut assignments = self.assignments.lock().unwrap();
        let moving: Vec<TaskId> = match (agent, task) {
            (Some(agent), _) => assignments
                .iter()
                .filter(|(_, a)| **a == agent)
                .map(|(t, _)| *t)
                .collect(),
            (None, Some(task)) => {
                if !assignments.contains_key(&task) {
                    return Err(SwarmError::TaskNotFound(task));
                }
                vec![task]
            }
            (None, None) => return Ok(0),
        };
        for task in &moving {
            let from = assignments[task];
            let to = self
                .healthy
                .iter()
                .copied()
                .find(|a| *a != from)
                .ok_or_else(|| SwarmError::ResourceConflict("no healthy agent".into()))?;
            assignments.insert(*task, to);
        }
        Ok(moving.len())
    }
}
