//! Shared fakes for the workspace tests in `tests/tests/*.rs`: a scripted executor and the
//! no-task-lost check.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use recovery_core::{AgentId, SwarmError, TaskId};
use swarm_integration::{AgentExecutor, AgentInfo, Probe, SwarmCoordinator, TaskInfo, TaskState};
use tokio::sync::Notify;
use tokio::time::Instant;

/// What one run of [`Scripted`] does.
#[derive(Debug, Clone)]
pub enum Step {
    /// Succeed.
    Ok,
    /// Fail with this error.
    Fail(SwarmError),
    /// Hang until `release` is notified (an agent that stopped answering), then answer.
    Block,
    /// Work this long, then succeed.
    Sleep(std::time::Duration),
}

/// One run, as the executor saw it.
#[derive(Debug, Clone)]
pub struct Run {
    /// When it started (tokio's clock).
    pub at: Instant,
    /// On which agent.
    pub agent: AgentId,
    /// Which task.
    pub task: TaskId,
}

/// An executor that follows a script, one step per run (then succeeds), and records every run.
/// A successful run answers the task's payload upper-cased, or its name if it has no payload.
#[derive(Debug)]
pub struct Scripted {
    steps: Mutex<Vec<Step>>,
    /// Agents that do not answer a probe until they are reconnected.
    down: Mutex<std::collections::BTreeSet<AgentId>>,
    /// Reconnections made, in order.
    pub reconnected: Mutex<Vec<AgentId>>,
    runs: Mutex<Vec<Run>>,
    /// Answers given by blocked runs after they were released.
    pub late_answers: AtomicU32,
    /// Releases blocked runs.
    pub release: Notify,
}

impl Scripted {
    /// An executor whose runs take `steps` in order, then succeed.
    pub fn new(steps: impl IntoIterator<Item = Step>) -> std::sync::Arc<Self> {
        let mut steps: Vec<Step> = steps.into_iter().collect();
        steps.reverse();
        std::sync::Arc::new(Self {
            steps: Mutex::new(steps),
            down: Mutex::new(Default::default()),
            reconnected: Mutex::new(Vec::new()),
            runs: Mutex::new(Vec::new()),
            late_answers: AtomicU32::new(0),
            release: Notify::new(),
        })
    }

    /// Make `agent` not answer probes (until it is reconnected), or answer again.
    pub fn set_down(&self, agent: AgentId, down: bool) {
        let mut set = self.down.lock().unwrap();
        if down {
            set.insert(agent);
        } else {
            set.remove(&agent);
        }
    }

    /// Every run so far, in order.
    pub fn runs(&self) -> Vec<Run> {
        self.runs.lock().unwrap().clone()
    }
}

fn answer(task: &TaskInfo) -> Vec<u8> {
    if task.spec.payload.is_empty() {
        task.spec.name.as_bytes().to_vec()
    } else {
        task.spec.payload.to_ascii_uppercase()
    }
}

#[async_trait]
impl AgentExecutor for Scripted {
    async fn execute(&self, agent: &AgentInfo, task: &TaskInfo) -> Result<Vec<u8>, SwarmError> {
        self.runs.lock().unwrap().push(Run {
            at: Instant::now(),
            agent: agent.id,
            task: task.id,
        });
        let step = self.steps.lock().unwrap().pop().unwrap_or(Step::Ok);
        match step {
            Step::Ok => Ok(answer(task)),
            Step::Fail(e) => Err(e),
            Step::Block => {
                self.release.notified().await;
                self.late_answers.fetch_add(1, Ordering::SeqCst);
                Ok(answer(task))
            }
            Step::Sleep(d) => {
                tokio::time::sleep(d).await;
                Ok(answer(task))
            }
        }
    }

    async fn probe(&self, agent: &AgentInfo) -> Probe {
        if self.down.lock().unwrap().contains(&agent.id) {
            Probe::Dead(SwarmError::CommunicationError(format!(
                "{} does not answer",
                agent.name
            )))
        } else {
            Probe::Alive
        }
    }

    async fn reconnect(&self, agent: &AgentInfo) -> Result<(), SwarmError> {
        self.down.lock().unwrap().remove(&agent.id);
        self.reconnected.lock().unwrap().push(agent.id);
        Ok(())
    }
}

/// An agent with no capabilities.
pub fn no_caps() -> [&'static str; 0] {
    []
}

/// No task lost: every task completed or failed with a reason, nothing is unfinished, and the
/// coordinator's audit finds nothing wrong.
pub fn assert_no_task_lost(c: &SwarmCoordinator) {
    for t in c.tasks() {
        match &t.state {
            TaskState::Completed { .. } => {}
            TaskState::Failed { reason } => assert!(!reason.is_empty(), "{t:?}"),
            other => panic!("task {} ended {other:?}", t.id),
        }
    }
    let stats = c.stats();
    assert_eq!(stats.unfinished, 0, "{stats:?}");
    assert_eq!(stats.completed + stats.failed, stats.submitted, "{stats:?}");
    assert!(c.audit().is_empty(), "{:?}", c.audit());
}
