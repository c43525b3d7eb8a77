//! One instance process of the multi-instance drill: a coordinator with its own agents, joined
//! to the shared swarm, checkpointing to its store in the database and restoring from it when it
//! starts again under the same name. It runs until its stdin closes (the drill ends) or it is
//! killed.

use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use recovery_checkpoint::CheckpointRecoveryStrategy;
use recovery_core::SwarmError;
use recovery_manager::RecoveryManager;
use swarm_integration::{
    AgentExecutor, AgentInfo, AgentSpec, CoordinatorOptions, SwarmConfig, SwarmCoordinator,
    TaskInfo,
};
use swarm_postgres::{Cluster, ClusterConfig, PgCheckpointStore, instance_checkpoint};

use crate::DrillError;

/// How an instance process runs.
#[derive(Debug, Clone)]
pub struct InstanceOptions {
    /// The database.
    pub url: String,
    /// The shared swarm.
    pub swarm: String,
    /// This instance's name (its checkpoint store is `{swarm}/{name}`).
    pub name: String,
    /// Agents, when it starts with no checkpoint.
    pub agents: usize,
    /// How long each run takes.
    pub task: Duration,
    /// Share of runs that fail with a communication error.
    pub comm_error_rate: f64,
    /// Seed of the faults.
    pub seed: u64,
    /// Lease timings.
    pub lease_ttl: Duration,
    /// How often leases are renewed.
    pub renew_every: Duration,
    /// Most tasks held at once.
    pub max_in_flight: usize,
}

struct Runs {
    task: Duration,
    comm_error_rate: f64,
    rng: Mutex<Xoshiro256PlusPlus>,
}

#[async_trait]
impl AgentExecutor for Runs {
    async fn execute(&self, _: &AgentInfo, task: &TaskInfo) -> Result<Vec<u8>, SwarmError> {
        if !self.task.is_zero() {
            tokio::time::sleep(self.task).await;
        }
        let fail = self.comm_error_rate > 0.0
            && self
                .rng
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .random_bool(self.comm_error_rate);
        if fail {
            Err(SwarmError::CommunicationError(
                "injected: connection reset".into(),
            ))
        } else {
            Ok(task.spec.payload.clone())
        }
    }
}

fn setup(e: impl std::fmt::Display) -> DrillError {
    DrillError::Setup(e.to_string())
}

/// Run one instance until stdin closes. Prints `instance <id> <restored|fresh> <agents>` on its
/// first line of stdout once it has joined.
///
/// # Errors
///
/// [`DrillError::Setup`] if the database or the swarm refuse it.
pub async fn run_instance(o: &InstanceOptions) -> Result<(), DrillError> {
    let pool = swarm_postgres::pool(&o.url, 16).map_err(setup)?;
    swarm_postgres::migrate(&pool).await.map_err(setup)?;
    let config = ClusterConfig {
        lease_ttl: o.lease_ttl,
        renew_every: o.renew_every,
        margin: (o.lease_ttl / 10).min(Duration::from_secs(1)),
        max_in_flight: o.max_in_flight,
        ..ClusterConfig::new(&o.swarm, &o.name)
    };
    config
        .validate()
        .map_err(|e| DrillError::Usage(e.to_string()))?;
    let store = Arc::new(PgCheckpointStore::for_instance(pool.clone(), &config));
    let manager = Arc::new(
        RecoveryManager::<SwarmCoordinator>::builder()
            .default_strategies()
            .checkpoint(CheckpointRecoveryStrategy::with_store(store.clone(), 5).map_err(setup)?)
            .without_sampler()
            .build()
            .map_err(setup)?,
    );
    let executor = Arc::new(Runs {
        task: o.task,
        comm_error_rate: o.comm_error_rate,
        rng: Mutex::new(Xoshiro256PlusPlus::seed_from_u64(o.seed)),
    });
    let swarm_config = SwarmConfig {
        max_parallel_tasks: o.agents.max(1),
        ..SwarmConfig::default()
    };
    let (coordinator, restored) = match instance_checkpoint(&store).await.map_err(setup)? {
        Some(state) => (
            SwarmCoordinator::from_checkpoint(
                state,
                executor,
                manager,
                CoordinatorOptions::default(),
            )
            .map_err(setup)?,
            true,
        ),
        None => {
            let c =
                SwarmCoordinator::with_manager(swarm_config, executor, manager).map_err(setup)?;
            for i in 0..o.agents {
                c.register_agent(AgentSpec::new(
                    format!("{}-agent-{i}", o.name),
                    Vec::<String>::new(),
                ))
                .map_err(setup)?;
            }
            (c, false)
        }
    };
    let agents = coordinator.agents().len();
    let cluster = Cluster::join(&o.url, pool, Arc::clone(&coordinator), config)
        .await
        .map_err(setup)?;
    {
        let mut out = std::io::stdout().lock();
        let how = if restored { "restored" } else { "fresh" };
        let _ = writeln!(out, "instance {} {how} {agents}", cluster.id());
        let _ = out.flush();
    }
    // Its agents and their state go to the shared store every 2 s.
    let checkpoints = {
        let coordinator = Arc::clone(&coordinator);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if let Err(e) = coordinator.create_checkpoint().await {
                    tracing::warn!(error = %e, "checkpoint failed");
                }
            }
        })
    };
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let mut stdin = std::io::stdin().lock();
        while stdin.read_line(&mut line).is_ok_and(|n| n > 0) {
            line.clear();
        }
    });
    let _ = stdin_closed.await;
    checkpoints.abort();
    cluster.leave().await.map_err(setup)?;
    Ok(())
}
