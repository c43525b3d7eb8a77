//! Bugs the deterministic simulation found (issue 15), each with a test that fails on the code
//! before its fix, on tokio's paused clock.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use recovery_core::{AgentId, Priority, SwarmError};
use swarm_integration::{
    AgentExecutor, AgentInfo, AgentSpec, AgentStatus, Probe, SwarmConfig, SwarmCoordinator,
    TaskInfo, TaskSpec,
};
use tokio::time::Instant;
use workspace_tests::{Scripted, Step, assert_no_task_lost, no_caps};

fn spawn_call(
    c: &Arc<SwarmCoordinator>,
    task: recovery_core::TaskId,
) -> tokio::task::JoinHandle<(Result<Vec<u8>, SwarmError>, Instant)> {
    let c = Arc::clone(c);
    tokio::spawn(async move {
        let r = c.execute_task_with_recovery(task).await;
        (r, Instant::now())
    })
}

/// A second caller of a low-priority task waited for an agent behind higher-priority work. The
/// first caller's run started and completed, higher-priority work took the agent again, the
/// task left the table past `finished_retention`, and the second caller, served at last, got
/// `TaskNotFound`. Now it joins the run when it starts and gets its output when it ends.
#[tokio::test(start_paused = true)]
async fn a_second_caller_behind_higher_priority_work_gets_the_first_callers_output() {
    let exec = Scripted::new([
        Step::Sleep(Duration::from_secs(10)), // x
        Step::Sleep(Duration::from_secs(1)),  // c
        Step::Sleep(Duration::from_secs(5)),  // a
        Step::Sleep(Duration::from_secs(1)),  // f
    ]);
    let config = SwarmConfig {
        finished_retention: 1,
        ..SwarmConfig::default()
    };
    let c = SwarmCoordinator::new(config, exec.clone()).unwrap();
    c.register_agent(AgentSpec::new("only", no_caps())).unwrap();
    let t0 = Instant::now();
    let high = |name: &str| TaskSpec::new(name).with_priority(Priority::High);
    let x = c.submit_task(high("x")).unwrap();
    let x_call = spawn_call(&c, x);
    tokio::task::yield_now().await;
    let a = c
        .submit_task(TaskSpec::new("a").with_priority(Priority::Low))
        .unwrap();
    let first = spawn_call(&c, a);
    let second = spawn_call(&c, a);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let c_task = c.submit_task(high("c")).unwrap();
    let c_call = spawn_call(&c, c_task);
    // x ends at 10 s, c runs 10..11, a runs 11..16; f arrives while a runs and goes first.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let f = c.submit_task(high("f")).unwrap();
    let f_call = spawn_call(&c, f);

    let (a_first, _) = first.await.unwrap();
    let (a_second, at) = second.await.unwrap();
    assert_eq!(a_first.unwrap(), b"a");
    assert_eq!(a_second.unwrap(), b"a", "the second caller shares the run");
    assert_eq!(at - t0, Duration::from_secs(16), "and returns when it ends");
    for call in [x_call, c_call, f_call] {
        call.await.unwrap().0.unwrap();
    }
    let runs_of_a = exec.runs().iter().filter(|r| r.task == a).count();
    assert_eq!(runs_of_a, 1);
    assert_no_task_lost(&c);
}

/// A call waited for an agent for the whole task timeout (600 s after the healing rule's
/// patch) although `recovery_time_limit_secs` was shorter, and the manager let a strategy work
/// past the deadline it was given: calls took hours under a backlog. A call returns within the
/// limit.
#[tokio::test(start_paused = true)]
async fn a_call_returns_within_the_recovery_time_limit_even_while_it_waits_for_an_agent() {
    let exec = Scripted::new([Step::Block]);
    let config = SwarmConfig {
        task_timeout_secs: 600,
        recovery_time_limit_secs: 120,
        ..SwarmConfig::default()
    };
    let c = SwarmCoordinator::new(config, exec.clone()).unwrap();
    c.register_agent(AgentSpec::new("only", no_caps())).unwrap();
    let hung = c.submit_task(TaskSpec::new("hung")).unwrap();
    // A plain run, bounded by the task timeout only.
    let hung_call = {
        let c = Arc::clone(&c);
        tokio::spawn(async move { c.execute_task(hung).await })
    };
    tokio::task::yield_now().await;
    let t0 = Instant::now();
    let waiting = c.submit_task(TaskSpec::new("waiting")).unwrap();
    let (outcome, at) = spawn_call(&c, waiting).await.unwrap();
    assert!(
        at - t0 <= Duration::from_secs(121),
        "returned after {:?}",
        at - t0
    );
    let Err(SwarmError::TaskFailed { reason, .. }) = outcome else {
        panic!("expected the task to fail, got {outcome:?}")
    };
    assert!(reason.contains("out of time"), "{reason}");
    let hung_outcome = hung_call.await.unwrap();
    assert_eq!(
        hung_outcome.unwrap_err().kind(),
        recovery_core::ErrorKind::CoordinationTimeout,
        "the hung run timed out at 600 s"
    );
    c.fail_task(hung, "the test is over");
    assert_no_task_lost(&c);
}

/// Runs on agents in `down` fail at once with a lost connection (a crashed agent refusing
/// connections), and their probes say so; runs elsewhere take `work`.
#[derive(Debug)]
struct Crashing {
    down: Mutex<BTreeSet<AgentId>>,
    work: Duration,
    runs: Mutex<Vec<AgentId>>,
}

#[async_trait]
impl AgentExecutor for Crashing {
    async fn execute(&self, agent: &AgentInfo, task: &TaskInfo) -> Result<Vec<u8>, SwarmError> {
        self.runs.lock().unwrap().push(agent.id);
        if self.down.lock().unwrap().contains(&agent.id) {
            return Err(SwarmError::CommunicationError(format!(
                "{} refused the connection",
                agent.name
            )));
        }
        tokio::time::sleep(self.work).await;
        Ok(task.spec.name.as_bytes().to_vec())
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
}

/// A crashed agent refuses every run at once, so while the others were busy it took every
/// retry of a task (it was the only idle agent) and failed them all within seconds, long before
/// its heartbeats timed out: the task failed for good. A run that loses its connection has its
/// agent probed, and a dead agent is declared failed before it takes another run.
#[tokio::test(start_paused = true)]
async fn a_crashed_agent_does_not_take_every_retry() {
    let exec = Arc::new(Crashing {
        down: Mutex::new(BTreeSet::new()),
        work: Duration::from_secs(20),
        runs: Mutex::new(Vec::new()),
    });
    let c = SwarmCoordinator::new(SwarmConfig::default(), exec.clone()).unwrap();
    let busy = c.register_agent(AgentSpec::new("busy", no_caps())).unwrap();
    let long = c.submit_task(TaskSpec::new("long")).unwrap();
    let long_call = spawn_call(&c, long);
    tokio::task::yield_now().await;
    let crashed = c
        .register_agent(AgentSpec::new("crashed", no_caps()))
        .unwrap();
    exec.down.lock().unwrap().insert(crashed);
    let task = c.submit_task(TaskSpec::new("task")).unwrap();
    let (outcome, _) = spawn_call(&c, task).await.unwrap();
    assert_eq!(
        outcome.unwrap(),
        b"task",
        "it ran on the live agent once it was free"
    );
    assert_eq!(c.agent(crashed).unwrap().status, AgentStatus::Failed);
    let on_crashed = exec
        .runs
        .lock()
        .unwrap()
        .iter()
        .filter(|a| **a == crashed)
        .count();
    assert_eq!(on_crashed, 1, "one run found it dead");
    long_call.await.unwrap().0.unwrap();
    let _ = busy;
    assert_no_task_lost(&c);
}
