//! Scale-out on PostgreSQL, an engine users already run and trust.
//!
//! - [`PgCheckpointStore`]: recovery-checkpoint's `CheckpointStore` in a table, with the file
//!   store's format, checksums and damage handling. A user of recovery-checkpoint alone can use
//!   it (`default-features = false`).
//! - [`Cluster`] (feature `cluster`, on by default): several coordinator instances, on several
//!   machines, share one swarm's tasks. Each claims work under a lease with
//!   `SELECT ... FOR UPDATE SKIP LOCKED`, every claim bumps the task's fencing epoch, and every
//!   write of a holder checks that epoch in the same statement; each failure's recovery is one
//!   holder's at a time and carries on from the shared history when the holder dies; a killed
//!   instance is noticed at once (its session advisory lock frees), a paused one when its
//!   leases expire.
//!
//! The schema is the crate's own ([`migrate`]: versioned SQL in `migrations/`, safe to run from
//! every instance at once). No database is needed at build time.
//!
//! ```no_run
//! use std::sync::Arc;
//! use swarm_integration::{AgentSpec, SwarmConfig, SwarmCoordinator, TaskSpec};
//! use swarm_postgres::{Cluster, ClusterConfig, migrate, pool, submit};
//! # use swarm_integration::{AgentExecutor, AgentInfo, TaskInfo};
//! # struct Echo;
//! # #[async_trait::async_trait]
//! # impl AgentExecutor for Echo {
//! #     async fn execute(&self, _: &AgentInfo, t: &TaskInfo) -> Result<Vec<u8>, recovery_core::SwarmError> {
//! #         Ok(t.spec.payload.clone())
//! #     }
//! # }
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let url = "postgres://postgres@127.0.0.1:5432/postgres";
//! let pool = pool(url, 16)?;
//! migrate(&pool).await?;
//!
//! // This instance's agents, on its own coordinator.
//! let coordinator = SwarmCoordinator::new(SwarmConfig::default(), Arc::new(Echo))?;
//! coordinator.register_agent(AgentSpec::new("worker-1", ["cpu"]))?;
//! let cluster = Cluster::join(url, pool.clone(), coordinator, ClusterConfig::new("render-farm", "host-a")).await?;
//!
//! // Any process may submit; some instance with a `cpu` agent runs it.
//! let ids = submit(&pool, "render-farm", &[TaskSpec::new("frame-1").requiring("cpu")]).await?;
//! # let _ = ids;
//! cluster.leave().await?;
//! # Ok(()) }
//! ```

mod checkpoint;
#[cfg(feature = "cluster")]
mod cluster;
mod error;
mod pool;
mod schema;

pub use checkpoint::PgCheckpointStore;
#[cfg(feature = "cluster")]
pub use cluster::{
    Cluster, ClusterConfig, ClusterStats, SharedOutcome, SwarmCounts, counts, instance_checkpoint,
    outcome, purge, submit,
};
pub use error::{PgError, Step};
pub use pool::pool;
pub use schema::{SCHEMA_VERSION, migrate};
