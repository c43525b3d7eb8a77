//! The coordinator's cost per task.
//!
//! `coordinator`: what recovery costs a task that succeeds at once, `execute_task_with_recovery`
//! against `execute_task`, each after submitting the task. `submit_only` is the submission
//! alone, for reference. A fresh coordinator (not timed) takes over every `CHUNK` tasks, so
//! every variant measures the same table sizes.
//!
//! `coordinator_scaling`: throughput as the swarm grows. 512 callers, each submitting and
//! running tasks of trivial work one after another (so 512 tasks in flight), on a 2-worker
//! runtime, with 32, 512 and 4,096 agents; and the same executor calls made directly from 512
//! tasks of a `JoinSet`, the floor the coordinator adds to.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use recovery_core::SwarmError;
use swarm_integration::{
    AgentExecutor, AgentInfo, AgentSpec, SwarmConfig, SwarmCoordinator, TaskInfo, TaskSpec,
};

/// Returns the payload at once.
struct Echo;

#[async_trait::async_trait]
impl AgentExecutor for Echo {
    async fn execute(&self, _agent: &AgentInfo, task: &TaskInfo) -> Result<Vec<u8>, SwarmError> {
        Ok(task.spec.payload.clone())
    }
}

fn coordinator() -> Arc<SwarmCoordinator> {
    let c = SwarmCoordinator::new(SwarmConfig::default(), Arc::new(Echo)).expect("a valid config");
    c.register_agent(AgentSpec::new("worker", ["bench"]))
        .expect("room for an agent");
    c
}

#[derive(Clone, Copy)]
enum Variant {
    SubmitOnly,
    Plain,
    WithRecovery,
}

/// Tasks one coordinator takes before a fresh one replaces it.
const CHUNK: u64 = 1024;

fn run(rt: &tokio::runtime::Runtime, iters: u64, variant: Variant) -> Duration {
    let mut elapsed = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        left -= n;
        let c = coordinator();
        elapsed += rt.block_on(async {
            let start = Instant::now();
            for _ in 0..n {
                let task = c
                    .submit_task(TaskSpec::new("bench").with_payload(vec![1, 2, 3]))
                    .expect("admitted");
                match variant {
                    Variant::SubmitOnly => {
                        black_box(task);
                    }
                    Variant::Plain => {
                        black_box(c.execute_task(task).await.expect("succeeds"));
                    }
                    Variant::WithRecovery => {
                        black_box(c.execute_task_with_recovery(task).await.expect("succeeds"));
                    }
                }
            }
            start.elapsed()
        });
    }
    elapsed
}

/// Tasks in flight in the scaling group.
const IN_FLIGHT: u64 = 512;

/// `iters` tasks through a coordinator with `agents` agents, `IN_FLIGHT` at a time.
fn scaling(rt: &tokio::runtime::Runtime, agents: usize, iters: u64) -> Duration {
    let config = SwarmConfig {
        max_agents: 8192,
        max_parallel_tasks: IN_FLIGHT as usize,
        ..SwarmConfig::default()
    };
    let c = SwarmCoordinator::new(config, Arc::new(Echo)).expect("a valid config");
    for i in 0..agents {
        c.register_agent(AgentSpec::new(format!("a{i}"), ["bench"]))
            .expect("room for the agents");
    }
    let per = iters.div_ceil(IN_FLIGHT);
    let elapsed = rt.block_on(async {
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..IN_FLIGHT {
            let c = Arc::clone(&c);
            set.spawn(async move {
                for _ in 0..per {
                    let task = c
                        .submit_task(TaskSpec::new("bench").with_payload(vec![1, 2, 3]))
                        .expect("admitted");
                    black_box(c.execute_task(task).await.expect("succeeds"));
                }
            });
        }
        while set.join_next().await.is_some() {}
        start.elapsed()
    });
    elapsed.mul_f64(iters as f64 / (per * IN_FLIGHT) as f64)
}

/// The same executor calls made directly, `IN_FLIGHT` at a time.
fn direct(rt: &tokio::runtime::Runtime, iters: u64) -> Duration {
    let c = coordinator();
    let agent = c.agents().pop().expect("one agent");
    let task = {
        let id = c
            .submit_task(TaskSpec::new("bench").with_payload(vec![1, 2, 3]))
            .expect("admitted");
        c.task(id).expect("in the table")
    };
    let per = iters.div_ceil(IN_FLIGHT);
    let elapsed = rt.block_on(async {
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..IN_FLIGHT {
            let (agent, task) = (agent.clone(), task.clone());
            set.spawn(async move {
                for _ in 0..per {
                    black_box(Echo.execute(&agent, &task).await.expect("succeeds"));
                }
            });
        }
        while set.join_next().await.is_some() {}
        start.elapsed()
    });
    elapsed.mul_f64(iters as f64 / (per * IN_FLIGHT) as f64)
}

fn main() {
    let mut c = Criterion::default().configure_from_args();

    let mt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let mut g = c.benchmark_group("coordinator_scaling");
    for agents in [32usize, 512, 4096] {
        g.bench_function(criterion::BenchmarkId::new("agents", agents), |b| {
            b.iter_custom(|iters| scaling(&mt, agents, iters))
        });
    }
    g.bench_function("direct_joinset", |b| {
        b.iter_custom(|iters| direct(&mt, iters))
    });
    g.finish();

    let rt = recovery_benches::runtime();
    let mut g = c.benchmark_group("coordinator");
    for (id, variant) in [
        ("submit_only", Variant::SubmitOnly),
        ("execute_task", Variant::Plain),
        ("execute_task_with_recovery", Variant::WithRecovery),
    ] {
        g.bench_function(id, |b| b.iter_custom(|iters| run(&rt, iters, variant)));
    }
    g.finish();
    c.final_summary();
}
