//! A million tiny tasks: what the coordinator holds stays within its retention plus what is in
//! flight, and its memory does not grow with the number of tasks it ever ran.

use std::sync::Arc;

use recovery_core::SwarmError;
use recovery_manager::{RecoveryConfig, RecoveryManager};
use swarm_integration::{
    AgentExecutor, AgentInfo, AgentSpec, SwarmConfig, SwarmCoordinator, TaskInfo, TaskSpec,
};

struct Echo;

#[async_trait::async_trait]
impl AgentExecutor for Echo {
    async fn execute(&self, _: &AgentInfo, task: &TaskInfo) -> Result<Vec<u8>, SwarmError> {
        Ok(task.spec.payload.clone())
    }
}

/// Resident memory of this process, in bytes (Linux), from `/proc/self/statm`.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn a_million_tasks_leave_the_table_and_the_checkpoint_the_size_of_the_retention() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = SwarmConfig {
            finished_retention: 1_000,
            outcome_log: 1_000,
            max_parallel_tasks: 64,
            ..SwarmConfig::default()
        };
        let manager = Arc::new(RecoveryManager::empty(RecoveryConfig::default()).unwrap());
        let c = SwarmCoordinator::with_manager(config, Arc::new(Echo), manager).unwrap();
        for i in 0..32 {
            c.register_agent(AgentSpec::new(format!("a{i}"), ["x"]))
                .unwrap();
        }
        const TOTAL: u64 = 1_000_000;
        const IN_FLIGHT: u64 = 64;
        let mut callers: tokio::task::JoinSet<Result<Vec<u8>, SwarmError>> =
            tokio::task::JoinSet::new();
        let mut rss_at_100k = None;
        let mut max_table = 0;
        for i in 0..TOTAL {
            if callers.len() as u64 >= IN_FLIGHT {
                callers.join_next().await.unwrap().unwrap().unwrap();
            }
            let t = c
                .submit_task(TaskSpec::new("tiny").with_payload(i.to_le_bytes().to_vec()))
                .unwrap();
            let c2 = Arc::clone(&c);
            callers.spawn(async move { c2.execute_task(t).await });
            if i % 50_000 == 0 {
                max_table = max_table.max(c.tasks().len());
                assert!(c.audit().is_empty(), "{:?}", c.audit());
            }
            if i == 100_000 {
                rss_at_100k = resident_bytes();
            }
        }
        while let Some(done) = callers.join_next().await {
            done.unwrap().unwrap();
        }
        let stats = c.stats();
        assert_eq!((stats.submitted, stats.completed), (TOTAL, TOTAL));
        assert!(
            max_table as u64 <= 1_000 + IN_FLIGHT,
            "the table held {max_table} tasks"
        );
        assert!(c.tasks().len() <= 1_000);
        assert!(c.finished_outcomes().len() <= 1_000);
        let checkpoint = c.snapshot();
        assert!(
            checkpoint.tasks.is_empty(),
            "a checkpoint holds live tasks only"
        );
        assert!(checkpoint.recent_events.len() <= SwarmConfig::default().recent_events);
        assert!(c.audit().is_empty(), "{:?}", c.audit());
        if let (Some(early), Some(late)) = (rss_at_100k, resident_bytes()) {
            // Ten times the tasks, and no more memory than allocator noise.
            assert!(
                late <= early + 16 * 1024 * 1024,
                "resident memory grew from {} MiB at 100,000 tasks to {} MiB at 1,000,000",
                early >> 20,
                late >> 20
            );
            eprintln!(
                "resident memory: {} MiB at 100,000 tasks, {} MiB at 1,000,000",
                early >> 20,
                late >> 20
            );
        }
    });
}
