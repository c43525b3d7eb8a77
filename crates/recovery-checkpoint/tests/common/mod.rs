//! A state as rich as a swarm coordinator's, a target that holds it, and proptest strategies.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use proptest::prelude::*;
use recovery_checkpoint::Checkpointable;
use recovery_core::{AgentId, Priority, SwarmError, TaskId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AgentStatus {
    Idle,
    Busy { task: TaskId },
    Failed { reason: String },
    Offline,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub id: AgentId,
    pub name: String,
    pub status: AgentStatus,
    pub capabilities: Vec<String>,
    pub current_task: Option<TaskId>,
    pub trust: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TaskState {
    Pending,
    Assigned { agent: AgentId },
    Completed { output: Vec<u8> },
    Failed { error: String, attempts: u32 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    pub description: String,
    pub priority: Priority,
    pub state: TaskState,
    pub dependencies: Vec<TaskId>,
    pub deadline_ms: Option<u64>,
    pub tags: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub name: String,
    pub max_agents: u32,
    pub max_parallel: u16,
    pub timeout_ms: u64,
    pub features: Vec<(String, bool)>,
    pub retry: Option<(u32, u64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EventKind {
    AgentJoined(AgentId),
    TaskSubmitted { task: TaskId, priority: Priority },
    Error { code: i32, message: String },
    Custom(String, Vec<i64>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at_ms: u64,
    pub kind: EventKind,
}

/// What a coordinator's checkpoint holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwarmState {
    pub agents: HashMap<AgentId, Agent>,
    pub tasks: BTreeMap<TaskId, Task>,
    pub assignments: HashMap<TaskId, AgentId>,
    pub config: Config,
    pub trust_scores: HashMap<AgentId, f64>,
    pub recent_events: Vec<Event>,
    pub metadata: HashMap<String, String>,
    pub checkpoint_label: Option<String>,
    pub epoch: Uuid,
}

impl SwarmState {
    /// Every collection empty, every option `None`.
    pub fn empty() -> Self {
        SwarmState {
            agents: HashMap::new(),
            tasks: BTreeMap::new(),
            assignments: HashMap::new(),
            config: Config {
                name: String::new(),
                max_agents: 8,
                max_parallel: 2,
                timeout_ms: 30_000,
                features: Vec::new(),
                retry: None,
            },
            trust_scores: HashMap::new(),
            recent_events: Vec::new(),
            metadata: HashMap::new(),
            checkpoint_label: None,
            epoch: Uuid::from_u128(1),
        }
    }

    /// A deterministic state with `agents` agents and `tasks` tasks (`seed` varies the text).
    pub fn sample(agents: usize, tasks: usize, seed: u64) -> Self {
        let mut s = Self::empty();
        s.config.name = format!("swarm-{seed}");
        s.config.features = vec![("speculation".into(), seed % 2 == 0)];
        s.config.retry = Some((3, 100));
        let agent_ids: Vec<AgentId> = (0..agents)
            .map(|i| AgentId::from_u128(((seed as u128) << 64) | (i as u128 + 1)))
            .collect();
        for (i, id) in agent_ids.iter().enumerate() {
            s.agents.insert(
                *id,
                Agent {
                    id: *id,
                    name: format!("agent-{i}"),
                    status: if i % 3 == 0 {
                        AgentStatus::Idle
                    } else {
                        AgentStatus::Failed {
                            reason: "heartbeat lost".into(),
                        }
                    },
                    capabilities: vec!["rust".into(), format!("gpu-{}", i % 4)],
                    current_task: None,
                    trust: (i as f64 % 10.0) / 10.0,
                },
            );
            s.trust_scores.insert(*id, 0.5 + (i % 5) as f64 / 10.0);
        }
        for i in 0..tasks {
            let id = TaskId::from_u128(((seed as u128) << 64) | (1 << 40) | i as u128);
            let state = match (i % 4, agent_ids.get(i % agents.max(1))) {
                (1, Some(a)) => {
                    s.assignments.insert(id, *a);
                    TaskState::Assigned { agent: *a }
                }
                (2, _) => TaskState::Completed {
                    output: vec![i as u8; 8],
                },
                (3, _) => TaskState::Failed {
                    error: "timeout".into(),
                    attempts: 2,
                },
                _ => TaskState::Pending,
            };
            s.tasks.insert(
                id,
                Task {
                    id,
                    description: format!("task {i} of seed {seed}"),
                    priority: Priority::ALL[i % 4],
                    state,
                    dependencies: Vec::new(),
                    deadline_ms: (i % 2 == 0).then_some(1_000 * i as u64),
                    tags: BTreeSet::from(["batch".to_string()]),
                },
            );
        }
        s.recent_events.push(Event {
            at_ms: seed,
            kind: EventKind::Custom("sampled".into(), vec![-1, 2]),
        });
        s.metadata.insert("seed".into(), seed.to_string());
        s.checkpoint_label = Some(format!("sample {seed}"));
        s
    }
}

/// A system holding a [`SwarmState`]; it can be told to fail or to ignore restores.
pub struct Target {
    pub state: Mutex<SwarmState>,
    pub fail_restore: AtomicBool,
    pub ignore_restore: AtomicBool,
}

impl Target {
    pub fn new(state: SwarmState) -> Self {
        Target {
            state: Mutex::new(state),
            fail_restore: AtomicBool::new(false),
            ignore_restore: AtomicBool::new(false),
        }
    }

    pub fn get(&self) -> SwarmState {
        self.state.lock().unwrap().clone()
    }

    pub fn set(&self, s: SwarmState) {
        *self.state.lock().unwrap() = s;
    }
}

#[async_trait::async_trait]
impl Checkpointable for Target {
    type State = SwarmState;

    async fn snapshot(&self) -> Result<SwarmState, SwarmError> {
        Ok(self.get())
    }

    async fn restore(&self, state: SwarmState) -> Result<(), SwarmError> {
        if self.fail_restore.load(Ordering::SeqCst) {
            return Err(SwarmError::InvalidConfiguration(
                "restored config refused".into(),
            ));
        }
        if !self.ignore_restore.load(Ordering::SeqCst) {
            self.set(state);
        }
        Ok(())
    }
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _é-]{0,12}"
}

fn agent_id() -> impl Strategy<Value = AgentId> {
    any::<u128>().prop_map(AgentId::from_u128)
}

fn task_id() -> impl Strategy<Value = TaskId> {
    any::<u128>().prop_map(TaskId::from_u128)
}

fn priority() -> impl Strategy<Value = Priority> {
    prop::sample::select(Priority::ALL.to_vec())
}

fn agent() -> impl Strategy<Value = Agent> {
    (
        agent_id(),
        text(),
        prop_oneof![
            Just(AgentStatus::Idle),
            task_id().prop_map(|task| AgentStatus::Busy { task }),
            text().prop_map(|reason| AgentStatus::Failed { reason }),
            Just(AgentStatus::Offline),
        ],
        prop::collection::vec(text(), 0..3),
        prop::option::of(task_id()),
        0.0f64..=1.0,
    )
        .prop_map(
            |(id, name, status, capabilities, current_task, trust)| Agent {
                id,
                name,
                status,
                capabilities,
                current_task,
                trust,
            },
        )
}

fn task() -> impl Strategy<Value = Task> {
    (
        task_id(),
        text(),
        priority(),
        prop_oneof![
            Just(TaskState::Pending),
            agent_id().prop_map(|agent| TaskState::Assigned { agent }),
            prop::collection::vec(any::<u8>(), 0..16)
                .prop_map(|output| TaskState::Completed { output }),
            (text(), any::<u32>())
                .prop_map(|(error, attempts)| TaskState::Failed { error, attempts }),
        ],
        prop::collection::vec(task_id(), 0..3),
        prop::option::of(any::<u64>()),
        prop::collection::btree_set(text(), 0..3),
    )
        .prop_map(
            |(id, description, priority, state, dependencies, deadline_ms, tags)| Task {
                id,
                description,
                priority,
                state,
                dependencies,
                deadline_ms,
                tags,
            },
        )
}

fn event() -> impl Strategy<Value = Event> {
    (
        any::<u64>(),
        prop_oneof![
            agent_id().prop_map(EventKind::AgentJoined),
            (task_id(), priority())
                .prop_map(|(task, priority)| EventKind::TaskSubmitted { task, priority }),
            (any::<i32>(), text()).prop_map(|(code, message)| EventKind::Error { code, message }),
            (text(), prop::collection::vec(any::<i64>(), 0..4))
                .prop_map(|(a, b)| EventKind::Custom(a, b)),
        ],
    )
        .prop_map(|(at_ms, kind)| Event { at_ms, kind })
}

fn config() -> impl Strategy<Value = Config> {
    (
        text(),
        any::<u32>(),
        any::<u16>(),
        any::<u64>(),
        prop::collection::vec((text(), any::<bool>()), 0..3),
        prop::option::of((any::<u32>(), any::<u64>())),
    )
        .prop_map(
            |(name, max_agents, max_parallel, timeout_ms, features, retry)| Config {
                name,
                max_agents,
                max_parallel,
                timeout_ms,
                features,
                retry,
            },
        )
}

/// Any state (finite trust scores, so that equality is reflexive).
pub fn swarm_state() -> impl Strategy<Value = SwarmState> {
    (
        prop::collection::vec(agent(), 0..6),
        prop::collection::vec(task(), 0..8),
        prop::collection::hash_map(task_id(), agent_id(), 0..4),
        config(),
        prop::collection::hash_map(agent_id(), 0.0f64..=1.0, 0..4),
        prop::collection::vec(event(), 0..5),
        prop::collection::hash_map(text(), text(), 0..4),
        prop::option::of(text()),
        any::<u128>(),
    )
        .prop_map(
            |(
                agents,
                tasks,
                assignments,
                config,
                trust_scores,
                recent_events,
                metadata,
                label,
                epoch,
            )| {
                SwarmState {
                    agents: agents.into_iter().map(|a| (a.id, a)).collect(),
                    tasks: tasks.into_iter().map(|t| (t.id, t)).collect(),
                    assignments,
                    config,
                    trust_scores,
                    recent_events,
                    metadata,
                    checkpoint_label: label,
                    epoch: Uuid::from_u128(epoch),
                }
            },
        )
}

/// A current-thread runtime for proptest bodies and sync tests.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
