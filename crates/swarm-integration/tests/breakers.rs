//! The agents' circuit breakers in the coordinator, on a paused clock: a bad agent is taken out
//! of the pick (quarantined, trust lowered) and its work goes to the others; after the open time
//! it takes one probe; when every agent fails at once, no more than the cap are taken out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use recovery_breaker::BreakerConfig;
use recovery_core::SwarmError;
use recovery_manager::RecoveryManager;
use swarm_integration::{
    AgentExecutor, AgentInfo, AgentSpec, CoordinatorOptions, SwarmConfig, SwarmCoordinator,
    TaskInfo,
};

/// Agents whose name starts with `bad` fail every run (or all of them, with `all_bad`); each
/// run takes 10 ms. Counts runs by agent name.
struct Agents {
    all_bad: bool,
    runs: Mutex<HashMap<String, u32>>,
}

#[async_trait]
impl AgentExecutor for Agents {
    async fn execute(&self, agent: &AgentInfo, task: &TaskInfo) -> Result<Vec<u8>, SwarmError> {
        *self
            .runs
            .lock()
            .unwrap()
            .entry(agent.name.clone())
            .or_default() += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
        if self.all_bad || agent.name.starts_with("bad") {
            Err(SwarmError::TransactionFailed(format!(
                "{} refused it",
                agent.name
            )))
        } else {
            Ok(task.spec.payload.clone())
        }
    }
}

fn breaker() -> BreakerConfig {
    BreakerConfig {
        window: 4,
        minimum_calls: 4,
        open_for: Duration::from_secs(30),
        jitter: 0.0,
        ..BreakerConfig::default()
    }
}

fn coordinator(agents: &Arc<Agents>, names: &[String]) -> Arc<SwarmCoordinator> {
    let manager = RecoveryManager::<SwarmCoordinator>::builder()
        .default_strategies()
        .without_sampler()
        .build()
        .unwrap();
    let mut options = CoordinatorOptions::default();
    options.breaker = Some(breaker());
    let c = SwarmCoordinator::with_options(
        SwarmConfig::default(),
        agents.clone(),
        Arc::new(manager),
        options,
    )
    .unwrap();
    for n in names {
        c.register_agent(AgentSpec::new(n.clone(), ["work"]))
            .unwrap();
    }
    c
}

fn names(good: usize, bad: usize) -> Vec<String> {
    (0..good)
        .map(|i| format!("good-{i}"))
        .chain((0..bad).map(|i| format!("bad-{i}")))
        .collect()
}

async fn run_tasks(c: &Arc<SwarmCoordinator>, n: usize) -> usize {
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..n {
        let c = Arc::clone(c);
        calls.spawn(async move {
            let t = c
                .submit_task(swarm_integration::TaskSpec::new(format!("t{i}")).requiring("work"))
                .unwrap();
            c.execute_task_with_recovery(t).await.is_ok()
        });
    }
    let mut ok = 0;
    while let Some(r) = calls.join_next().await {
        ok += usize::from(r.unwrap());
    }
    ok
}

#[tokio::test(start_paused = true)]
async fn a_bad_agent_is_taken_out_its_work_moves_and_after_the_open_time_it_gets_one_probe() {
    let agents = Arc::new(Agents {
        all_bad: false,
        runs: Mutex::new(HashMap::new()),
    });
    let c = coordinator(&agents, &names(9, 1));
    let bad = c
        .agents()
        .into_iter()
        .find(|a| a.name == "bad-0")
        .unwrap()
        .id;
    let trust_before = c.trust_score(bad).unwrap();
    let before = c.snapshot();
    assert_eq!(
        run_tasks(&c, 200).await,
        200,
        "every task completed on the good agents"
    );
    let runs_of_bad = agents.runs.lock().unwrap()["bad-0"];
    assert!(
        runs_of_bad <= 4,
        "taken out after its window of 4 failures, ran {runs_of_bad}"
    );
    assert_eq!(c.ejected_agents(), [bad]);
    assert!(
        c.trust_score(bad).unwrap() < trust_before,
        "its trust dropped"
    );
    let stats = c.breaker_stats().unwrap();
    assert_eq!((stats.opened, stats.open_now), (1, 1));
    // A restore from before cannot put it back in the pick: the checkpoint does not know.
    c.restore(before).unwrap();
    assert_eq!(c.ejected_agents(), [bad]);
    assert_eq!(run_tasks(&c, 50).await, 50);
    assert_eq!(
        agents.runs.lock().unwrap()["bad-0"],
        runs_of_bad,
        "no run while it is out"
    );

    // After the open time it is back in the pick, for one probe, which fails: out again, for
    // twice as long.
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert!(c.ejected_agents().is_empty(), "back in the pick");
    assert_eq!(run_tasks(&c, 100).await, 100);
    let probes = agents.runs.lock().unwrap()["bad-0"] - runs_of_bad;
    assert!(probes <= 1, "one probe, not {probes} runs");
    let stats = c.breaker_stats().unwrap();
    assert_eq!(stats.reopened, probes as u64);
    assert!(c.audit().is_empty(), "{:?}", c.audit());
}

#[tokio::test(start_paused = true)]
async fn when_every_agent_fails_at_once_no_more_than_the_cap_are_taken_out() {
    let agents = Arc::new(Agents {
        all_bad: true,
        runs: Mutex::new(HashMap::new()),
    });
    let c = coordinator(&agents, &names(20, 0));
    let _ = run_tasks(&c, 200).await;
    assert_eq!(c.ejected_agents().len(), 2, "10 % of 20 agents");
    let stats = c.breaker_stats().unwrap();
    assert_eq!(stats.open_now, 2);
    assert!(stats.cap_reached > 0, "the others were held in");
    assert!(c.audit().is_empty(), "{:?}", c.audit());
}
