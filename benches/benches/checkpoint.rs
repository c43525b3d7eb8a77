//! Checkpoints of a large swarm's state (10,000 agents, 100,000 tasks, about 10 MB): persist
//! and restore through recovery-checkpoint against the raw baselines of bincode alone, and how
//! persisting grows from 100,000 to 1,000,000 tasks.
//!
//! - `checkpoint_persist/recovery_checkpoint`: `create_checkpoint` into a `FileStore` (snapshot,
//!   encode, checksum, temp file, write, fsync, rename, directory fsync, retention).
//! - `checkpoint_persist/raw_bincode_fsync`: bincode-encode the same state, write it to a file,
//!   fsync it.
//! - `checkpoint_restore/recovery_checkpoint`: `restore_from_checkpoint` by id (read the file,
//!   check length and checksum, decode with the guards, restore, snapshot again and compare;
//!   the target keeps the restored `Arc`, so the compare finds the same allocation, and frees
//!   its previous state on the blocking pool and waits for that, both as `Checkpointable`'s
//!   docs recommend for a large state behind an `Arc`).
//! - `checkpoint_restore/raw_bincode_decode`: bincode-decode the same bytes from memory.
//! - `checkpoint_restore/codec_decode_only`: the checkpoint codec's guarded decode of the same
//!   bytes from memory, so the codec's share of restore is told apart from reading the file
//!   and replacing the target's state.
//! - `checkpoint_scaling/{persist,raw_bincode_fsync}/{100000,1000000}`: both persists again at
//!   100,000 and 1,000,000 tasks, so the raw baseline's own growth on this disk is known.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex};

use criterion::{BenchmarkId, Criterion};
use recovery_checkpoint::{CheckpointRecoveryStrategy, Checkpointable, FileStore};
use recovery_core::{AgentId, Priority, SwarmError, TaskId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum AgentStatus {
    Idle,
    Busy(TaskId),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Agent {
    id: AgentId,
    name: String,
    status: AgentStatus,
    capabilities: Vec<String>,
    trust: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum TaskState {
    Pending,
    Assigned(AgentId),
    Completed,
    Failed { error: String, attempts: u32 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Task {
    id: TaskId,
    description: String,
    priority: Priority,
    state: TaskState,
    dependencies: Vec<TaskId>,
    deadline_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SwarmState {
    agents: HashMap<AgentId, Agent>,
    tasks: BTreeMap<TaskId, Task>,
    assignments: HashMap<TaskId, AgentId>,
    trust_scores: HashMap<AgentId, f64>,
    recent_events: Vec<String>,
    metadata: HashMap<String, String>,
}

fn state(agents: usize, tasks: usize) -> SwarmState {
    let agent_ids: Vec<AgentId> = (0..agents as u128)
        .map(|i| AgentId::from_u128(i + 1))
        .collect();
    let mut s = SwarmState {
        agents: HashMap::new(),
        tasks: BTreeMap::new(),
        assignments: HashMap::new(),
        trust_scores: HashMap::new(),
        recent_events: (0..1000)
            .map(|i| format!("event {i}: task finished"))
            .collect(),
        metadata: HashMap::from([("name".to_string(), "bench".to_string())]),
    };
    for (i, id) in agent_ids.iter().enumerate() {
        s.agents.insert(
            *id,
            Agent {
                id: *id,
                name: format!("agent-{i:05}"),
                status: match i % 3 {
                    0 => AgentStatus::Idle,
                    1 => AgentStatus::Busy(TaskId::from_u128(1 << 64 | i as u128)),
                    _ => AgentStatus::Failed("heartbeat lost".into()),
                },
                capabilities: vec!["rust".into(), "gpu".into()],
                trust: (i % 100) as f64 / 100.0,
            },
        );
        s.trust_scores.insert(*id, (i % 10) as f64 / 10.0);
    }
    for i in 0..tasks {
        let id = TaskId::from_u128(1 << 64 | i as u128);
        let agent = agent_ids[i % agents];
        let state = match i % 4 {
            0 => TaskState::Pending,
            1 => {
                s.assignments.insert(id, agent);
                TaskState::Assigned(agent)
            }
            2 => TaskState::Completed,
            _ => TaskState::Failed {
                error: "timeout".into(),
                attempts: 2,
            },
        };
        s.tasks.insert(
            id,
            Task {
                id,
                description: format!("analyse shard {i:07} of the corpus"),
                priority: Priority::ALL[i % 4],
                state,
                dependencies: vec![TaskId::from_u128(1 << 64 | (i / 2) as u128)],
                deadline_ms: (i % 2 == 0).then_some(i as u64 * 1000),
            },
        );
    }
    s
}

/// A coordinator stand-in holding its state behind an `Arc`, so a snapshot is cheap.
struct Target(Mutex<Arc<SwarmState>>);

#[async_trait::async_trait]
impl Checkpointable for Target {
    type State = Arc<SwarmState>;
    async fn snapshot(&self) -> Result<Arc<SwarmState>, SwarmError> {
        Ok(self.0.lock().unwrap().clone())
    }
    async fn restore(&self, state: Arc<SwarmState>) -> Result<(), SwarmError> {
        let previous = std::mem::replace(&mut *self.0.lock().unwrap(), state);
        // Freeing a large state takes milliseconds: do it on the blocking pool, not on this
        // runtime thread, and wait for it (so its time is still the restore's).
        tokio::task::spawn_blocking(move || drop(previous))
            .await
            .map_err(|e| SwarmError::StateCorruption(e.to_string()))
    }
    /// `restore` keeps the very `Arc` it is given, so right after it `snapshot` returns that
    /// `Arc`: the same allocation proves the state is the checkpoint's, and only a different
    /// one is compared field by field (`SwarmState` holds `f64`s, so it is not `Eq` and std's
    /// `Arc` equality cannot take that shortcut itself).
    fn is_restored(&self, checkpoint: &Arc<SwarmState>, current: &Arc<SwarmState>) -> bool {
        Arc::ptr_eq(checkpoint, current) || checkpoint == current
    }
}

fn persist_strategy(dir: &std::path::Path) -> CheckpointRecoveryStrategy {
    let store = Arc::new(FileStore::open(dir).expect("store opens"));
    CheckpointRecoveryStrategy::with_store(store, 2).expect("valid retention")
}

fn raw_persist(path: &std::path::Path, state: &SwarmState) {
    let bytes = bincode::serde::encode_to_vec(state, bincode::config::standard()).unwrap();
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(&bytes).unwrap();
    file.sync_data().unwrap();
}

fn benches(c: &mut Criterion) {
    let runtime = recovery_benches::runtime();
    let big = Arc::new(state(10_000, 100_000));
    let target = Target(Mutex::new(big.clone()));
    let dir = tempfile::tempdir().unwrap();

    let mut persist = c.benchmark_group("checkpoint_persist");
    persist.sample_size(10);
    let strategy = persist_strategy(&dir.path().join("store"));
    persist.bench_function("recovery_checkpoint", |b| {
        b.to_async(&runtime)
            .iter(|| async { strategy.create_checkpoint(&target).await.unwrap() })
    });
    let raw_path = dir.path().join("raw.bin");
    persist.bench_function("raw_bincode_fsync", |b| {
        b.iter(|| raw_persist(&raw_path, &big))
    });
    persist.finish();

    let mut restore = c.benchmark_group("checkpoint_restore");
    restore.sample_size(10);
    let id = runtime
        .block_on(strategy.create_checkpoint(&target))
        .unwrap();
    restore.bench_function("recovery_checkpoint", |b| {
        b.to_async(&runtime).iter(|| async {
            strategy
                .restore_from_checkpoint(&target, Some(id))
                .await
                .unwrap()
        })
    });
    let bytes = bincode::serde::encode_to_vec(&*big, bincode::config::standard()).unwrap();
    restore.bench_function("raw_bincode_decode", |b| {
        b.iter(|| {
            let (s, _): (SwarmState, usize) =
                bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
            s
        })
    });
    restore.bench_function("codec_decode_only", |b| {
        b.iter(|| {
            recovery_checkpoint::Codec::Bincode2
                .decode::<SwarmState>(&bytes)
                .unwrap()
        })
    });
    restore.finish();
    drop(bytes);
    drop(target);
    drop(big);

    let mut scaling = c.benchmark_group("checkpoint_scaling");
    scaling.sample_size(10);
    for tasks in [100_000usize, 1_000_000] {
        let state = Arc::new(state(10_000, tasks));
        let target = Target(Mutex::new(state.clone()));
        let strategy = persist_strategy(&dir.path().join(format!("scaling-{tasks}")));
        scaling.bench_with_input(BenchmarkId::new("persist", tasks), &tasks, |b, _| {
            b.to_async(&runtime)
                .iter(|| async { strategy.create_checkpoint(&target).await.unwrap() })
        });
        // The raw baseline's own growth, as a reference for the disk's.
        let raw_path = dir.path().join(format!("raw-{tasks}.bin"));
        scaling.bench_with_input(
            BenchmarkId::new("raw_bincode_fsync", tasks),
            &tasks,
            |b, _| b.iter(|| raw_persist(&raw_path, &state)),
        );
    }
    scaling.finish();
}

// What `criterion_group!`/`criterion_main!` expand to, without their undocumented `pub fn`.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
