//! What recovery costs a task that succeeds at once: `execute_task_with_recovery` against
//! `execute_task`, each after submitting the task (so both include the same submission).
//! `submit_only` is the submission alone, for reference.
//!
//! Each sample uses a fresh coordinator, so the task table grows the same way for both sides.

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
    let config = SwarmConfig {
        max_pending_tasks: 10_000_000,
        ..SwarmConfig::default()
    };
    let c = SwarmCoordinator::new(config, Arc::new(Echo)).expect("a valid config");
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

fn run(rt: &tokio::runtime::Runtime, iters: u64, variant: Variant) -> Duration {
    let c = coordinator();
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
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
    })
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
