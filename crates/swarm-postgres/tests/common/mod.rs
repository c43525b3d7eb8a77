//! What the tests against a real server share: finding the server, and names that keep
//! concurrent tests (and earlier runs) apart in one database.

#![allow(dead_code)] // each test file uses part of it

use deadpool_postgres::Pool;

/// The server the tests use: `SWARM_POSTGRES_URL`. Without it the test is skipped with a
/// message, except where `SWARM_POSTGRES_REQUIRED` is set (`cargo xtask test` and CI set it,
/// having started a server): there a missing server fails the test.
pub(crate) fn server_url() -> Option<String> {
    match std::env::var("SWARM_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("SWARM_POSTGRES_REQUIRED").is_some() => panic!(
            "SWARM_POSTGRES_REQUIRED is set but SWARM_POSTGRES_URL is not: this test needs a \
             PostgreSQL server (cargo xtask test starts one)"
        ),
        _ => {
            eprintln!(
                "SKIPPED: no PostgreSQL server; set SWARM_POSTGRES_URL, or run `cargo xtask test`, \
                 which starts a throwaway one"
            );
            None
        }
    }
}

/// A pool on the test server with the schema migrated, or `None` (skipped) without a server.
pub(crate) async fn pool(max: usize) -> Option<(String, Pool)> {
    let url = server_url()?;
    let pool = swarm_postgres::pool(&url, max).expect("the test server's URL parses");
    swarm_postgres::migrate(&pool)
        .await
        .expect("the schema migrates on the test server");
    Some((url, pool))
}

/// A name no other test or run uses.
pub(crate) fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use recovery_backoff::{BackoffConfig, ExponentialBackoffStrategy};
use recovery_core::SwarmError;
use recovery_manager::RecoveryManager;
use swarm_integration::{
    AgentExecutor, AgentInfo, AgentSpec, SwarmConfig, SwarmCoordinator, TaskInfo,
};
use swarm_postgres::{Cluster, ClusterConfig, SwarmCounts};

/// How a test instance's agents run tasks.
#[derive(Clone)]
pub(crate) enum Behaviour {
    /// Return the payload at once.
    Echo,
    /// Never finish (until the run is stopped).
    Hold,
    /// The first `failures` runs of each task, counted over every instance that shares the
    /// counter, fail with a communication error after `run` of work; later runs return the
    /// payload after `run`.
    Flaky {
        runs: Arc<Mutex<HashMap<String, u32>>>,
        failures: u32,
        run: Duration,
    },
    /// Run `n` of a task (from 0, counted per task name) takes `lengths[n]` (the last one for
    /// later runs), then returns the payload.
    Lengths {
        runs: Arc<Mutex<HashMap<String, u32>>>,
        lengths: Vec<Duration>,
    },
}

#[async_trait]
impl AgentExecutor for Behaviour {
    async fn execute(&self, _: &AgentInfo, task: &TaskInfo) -> Result<Vec<u8>, SwarmError> {
        match self {
            Self::Echo => Ok(task.spec.payload.clone()),
            Self::Hold => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(task.spec.payload.clone())
            }
            Self::Lengths { runs, lengths } => {
                let n = {
                    let mut runs = runs.lock().unwrap();
                    let n = runs.entry(task.spec.name.clone()).or_insert(0);
                    *n += 1;
                    *n as usize - 1
                };
                tokio::time::sleep(lengths[n.min(lengths.len() - 1)]).await;
                Ok(task.spec.payload.clone())
            }
            Self::Flaky {
                runs,
                failures,
                run,
            } => {
                let n = {
                    let mut runs = runs.lock().unwrap();
                    let n = runs.entry(task.spec.name.clone()).or_insert(0);
                    *n += 1;
                    *n
                };
                tokio::time::sleep(*run).await;
                if n <= *failures {
                    Err(SwarmError::CommunicationError(format!("run {n} dropped")))
                } else {
                    Ok(task.spec.payload.clone())
                }
            }
        }
    }
}

/// A coordinator with `agents` agents of capability `cap`, running tasks as `behaviour` says,
/// recovering with the default strategies and a fast backoff (5 ms doubling to 50 ms, no
/// jitter, 10 re-runs).
pub(crate) fn coordinator(behaviour: Behaviour, agents: usize, cap: &str) -> Arc<SwarmCoordinator> {
    let backoff = ExponentialBackoffStrategy::new(BackoffConfig {
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        max_retries: 10,
        jitter_factor: 0.0,
        ..BackoffConfig::default()
    })
    .unwrap();
    let manager = RecoveryManager::<SwarmCoordinator>::builder()
        .default_strategies()
        .backoff(backoff)
        .without_sampler()
        .build()
        .unwrap();
    let c = SwarmCoordinator::with_manager(
        SwarmConfig::default(),
        Arc::new(behaviour),
        Arc::new(manager),
    )
    .unwrap();
    for i in 0..agents {
        c.register_agent(AgentSpec::new(format!("agent-{i}"), [cap]))
            .unwrap();
    }
    c
}

/// Join `swarm` as instance `name` with short lease timings (so that tests run in seconds):
/// lease 2 s, renewed every 500 ms, margin 200 ms, reaper every 50 ms.
pub(crate) async fn join(
    url: &str,
    pool: &Pool,
    swarm: &str,
    name: &str,
    coordinator: Arc<SwarmCoordinator>,
) -> Arc<Cluster> {
    join_with(url, pool, coordinator, test_config(swarm, name)).await
}

/// The short lease timings of [`join`].
pub(crate) fn test_config(swarm: &str, name: &str) -> ClusterConfig {
    ClusterConfig {
        lease_ttl: Duration::from_secs(2),
        renew_every: Duration::from_millis(500),
        margin: Duration::from_millis(200),
        reap_every: Duration::from_millis(50),
        ..ClusterConfig::new(swarm, name)
    }
}

/// Join with `config`.
pub(crate) async fn join_with(
    url: &str,
    pool: &Pool,
    coordinator: Arc<SwarmCoordinator>,
    config: ClusterConfig,
) -> Arc<Cluster> {
    Cluster::join(url, pool.clone(), coordinator, config)
        .await
        .unwrap()
}

/// Poll the swarm's counts (every 20 ms) until `done` says so; panics after `limit`.
pub(crate) async fn wait_for(
    pool: &Pool,
    swarm: &str,
    limit: Duration,
    done: impl Fn(&SwarmCounts) -> bool,
) -> SwarmCounts {
    let started = std::time::Instant::now();
    loop {
        let c = swarm_postgres::counts(pool, swarm).await.unwrap();
        if done(&c) {
            return c;
        }
        assert!(started.elapsed() < limit, "not done after {limit:?}: {c:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Per task of `swarm`: how many completions, failures and claims the task log holds.
pub(crate) async fn log_counts(pool: &Pool, swarm: &str) -> Vec<(uuid::Uuid, i64, i64, i64)> {
    let client = pool.get().await.unwrap();
    client
        .query(
            "SELECT t.id,
                    count(*) FILTER (WHERE l.kind = 'completed'),
                    count(*) FILTER (WHERE l.kind = 'failed'),
                    count(*) FILTER (WHERE l.kind = 'claimed')
             FROM swarm.tasks t LEFT JOIN swarm.task_log l ON l.task = t.id
             WHERE t.swarm = $1 GROUP BY t.id",
            &[&swarm],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}
