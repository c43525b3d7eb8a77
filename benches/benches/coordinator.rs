//! What recovery costs a task that succeeds at once: `execute_task_with_recovery` against
//! `execute_task`, each after submitting the task (so both include the same submission).
//! `submit_only` is the submission alone, for reference.
//!
//! The coordinator keeps every task it accepted, so one coordinator per sample would grow its task
//! table to as many tasks as criterion chose iterations for that variant (millions with fast
//! runs, and a different number per variant). Instead a fresh coordinator (not timed) takes over
//! every `CHUNK` tasks, so every variant measures the same table sizes, 0 to `CHUNK`.

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

fn main() {
    let mut c = Criterion::default().configure_from_args();
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
