//! A shared swarm: several coordinator instances, each with its own agents, taking tasks from
//! one table under leases, with every holder's write fenced by the claim's epoch.
//!
//! - **Claiming**: `SELECT ... FOR UPDATE SKIP LOCKED` takes pending tasks whose capability
//!   one of the instance's healthy agents has; the claim sets a lease (`lease_ttl`, from the
//!   server's clock), bumps the task's epoch and logs the claim, in one statement. Submissions
//!   `NOTIFY` the instances, so a claim follows a submission within milliseconds.
//! - **Running**: each claimed task runs on the instance's own coordinator
//!   ([`SwarmCoordinator::execute_task_with_journal`]), carrying on from the retries and the
//!   rounds earlier holders made.
//! - **Fencing**: every write (a completion, a failure, a recovery round, a renewal) checks the
//!   epoch, the instance and the state in the same statement; one that finds them changed
//!   changes nothing and is counted, traced and logged in `swarm.fence_rejections`.
//! - **Leases**: renewed every `renew_every`; a holder trusts a lease only until `margin`
//!   before it could expire, counted from when it started the claim or the renewal, and then
//!   stops acting on it (its run is stopped, nothing is written).
//! - **Dead instances**: each instance holds a session advisory lock on its own key for as long
//!   as its process lives; every instance's reaper frees the tasks of instances whose lock is
//!   free (a killed process's socket closes, so within about a second) and of expired leases
//!   (a paused process keeps its session: its leases expire).

mod config;
mod fence;
mod lease;
mod resume;
pub(crate) mod sql;
mod tasks;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use deadpool_postgres::Pool;
use recovery_core::TaskId;
use swarm_integration::SwarmCoordinator;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use config::ClusterConfig;
pub use resume::instance_checkpoint;
pub use tasks::{SharedOutcome, SwarmCounts, counts, outcome, purge, submit};

use crate::error::{PgError, Step};

/// A task this instance holds.
#[derive(Debug)]
struct Held {
    epoch: i64,
    /// The task in the instance's own coordinator.
    local: TaskId,
    /// Until when the holder may act on the lease.
    trusted_until: Instant,
    /// The lease was lost: the holder writes nothing more for it.
    lost: bool,
}

/// What an instance did, counted since it joined.
#[derive(Debug, Default)]
struct Counters {
    claimed: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    released: AtomicU64,
    leases_lost: AtomicU64,
    fence_rejections: AtomicU64,
    reaped_tasks: AtomicU64,
    reaped_instances: AtomicU64,
}

/// A snapshot of an instance's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClusterStats {
    /// Tasks claimed.
    pub claimed: u64,
    /// Completions applied.
    pub completed: u64,
    /// Failures applied.
    pub failed: u64,
    /// Tasks given back (the instance could not run them).
    pub released: u64,
    /// Leases lost (not renewed in time, or taken over): their runs were stopped.
    pub leases_lost: u64,
    /// Writes the fence refused.
    pub fence_rejections: u64,
    /// Tasks this instance's reaper freed (of dead instances or expired leases).
    pub reaped_tasks: u64,
    /// Dead instances this instance's reaper removed.
    pub reaped_instances: u64,
    /// Tasks held now.
    pub held: u64,
}

/// One coordinator instance's membership in a shared swarm. Made by [`Cluster::join`];
/// [`Cluster::leave`] gives its tasks back.
pub struct Cluster {
    pool: Pool,
    config: ClusterConfig,
    id: Uuid,
    /// Holds the instance's advisory lock and listens for submissions.
    session: tokio_postgres::Client,
    coordinator: Arc<SwarmCoordinator>,
    held: Mutex<HashMap<TaskId, Held>>,
    slots: Arc<Semaphore>,
    counters: Counters,
    wake: Notify,
    stop: CancellationToken,
    writes: mpsc::Sender<worker::Completion>,
    loops: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("id", &self.id)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Join the swarm `config.swarm` as a new instance whose agents are `coordinator`'s: take
    /// an advisory lock on a fresh key in a session of its own (`url`), register, listen for
    /// submissions, and start claiming, renewing and reaping.
    ///
    /// # Errors
    ///
    /// [`PgError`] if a setting is bad or the database refuses.
    pub async fn join(
        url: &str,
        pool: Pool,
        coordinator: Arc<SwarmCoordinator>,
        config: ClusterConfig,
    ) -> Result<Arc<Self>, PgError> {
        config.validate()?;
        let id = Uuid::new_v4();
        let (session, notifications) =
            crate::pool::session(url, &format!("swarm-postgres instance {id}")).await?;
        loop {
            let key = (rand::random::<u32>() >> 1) as i32;
            let locked: bool = session
                .query_one(sql::TRY_LOCK, &[&sql::LOCK_SPACE, &key])
                .await
                .map_err(|e| PgError::db(Step::Instance, e))?
                .get(0);
            if !locked {
                continue;
            }
            match session
                .execute(sql::REGISTER, &[&id, &config.swarm, &config.instance, &key])
                .await
            {
                Ok(_) => break,
                // A dead instance's row still has this key: try another.
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                    session
                        .execute(
                            "SELECT pg_advisory_unlock($1, $2)",
                            &[&sql::LOCK_SPACE, &key],
                        )
                        .await
                        .map_err(|e| PgError::db(Step::Instance, e))?;
                }
                Err(e) => return Err(PgError::db(Step::Instance, e)),
            }
        }
        session
            .batch_execute(&format!("LISTEN {}", sql::CHANNEL))
            .await
            .map_err(|e| PgError::db(Step::Instance, e))?;
        let (writes, written) = mpsc::channel(config.write_batch * 4);
        let cluster = Arc::new(Self {
            slots: Arc::new(Semaphore::new(config.max_in_flight)),
            pool,
            id,
            session,
            coordinator,
            held: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            wake: Notify::new(),
            stop: CancellationToken::new(),
            writes,
            loops: Mutex::new(Vec::new()),
            config,
        });
        tracing::info!(
            target: "swarm_postgres",
            swarm = %cluster.config.swarm, instance = %cluster.config.instance, id = %id,
            "joined the swarm"
        );
        let loops = vec![
            tokio::spawn(Arc::clone(&cluster).listen(notifications)),
            tokio::spawn(Arc::clone(&cluster).claim_loop()),
            tokio::spawn(Arc::clone(&cluster).write_loop(written)),
            tokio::spawn(Arc::clone(&cluster).lease_loop()),
            tokio::spawn(Arc::clone(&cluster).reap_loop()),
        ];
        *lock(&cluster.loops) = loops;
        Ok(cluster)
    }

    /// This instance's id (its `owner` in `swarm.tasks`).
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Its settings.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// The coordinator whose agents run this instance's tasks.
    pub fn coordinator(&self) -> &Arc<SwarmCoordinator> {
        &self.coordinator
    }

    /// What it did so far.
    pub fn stats(&self) -> ClusterStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ClusterStats {
            claimed: get(&c.claimed),
            completed: get(&c.completed),
            failed: get(&c.failed),
            released: get(&c.released),
            leases_lost: get(&c.leases_lost),
            fence_rejections: get(&c.fence_rejections),
            reaped_tasks: get(&c.reaped_tasks),
            reaped_instances: get(&c.reaped_instances),
            held: lock(&self.held).len() as u64,
        }
    }

    /// Whether the instance still takes part (it stops when its session ends or it leaves).
    pub fn is_running(&self) -> bool {
        !self.stop.is_cancelled()
    }

    /// Stop taking part: stop claiming, stop the runs of held tasks and give them back to the
    /// swarm, leave the instances table and release the advisory lock.
    ///
    /// # Errors
    ///
    /// The database's error (the tasks are freed by the other instances' reapers anyway,
    /// once this process's session closes).
    pub async fn leave(&self) -> Result<u64, PgError> {
        self.stop.cancel();
        self.lose_all("the instance is leaving");
        let handles = std::mem::take(&mut *lock(&self.loops));
        for h in handles {
            h.abort();
        }
        let row = self
            .session
            .query_one(sql::LEAVE, &[&self.config.swarm, &self.id])
            .await
            .map_err(|e| PgError::db(Step::Instance, e))?;
        self.session
            .execute("SELECT pg_advisory_unlock_all()", &[])
            .await
            .map_err(|e| PgError::db(Step::Instance, e))?;
        let given_back: i64 = row.get(0);
        tracing::info!(target: "swarm_postgres", id = %self.id, given_back, "left the swarm");
        Ok(given_back as u64)
    }

    /// Mark every held lease lost and stop its run (nothing more is written for it).
    fn lose_all(&self, why: &str) {
        let locals: Vec<TaskId> = lock(&self.held)
            .values_mut()
            .filter(|h| !h.lost)
            .map(|h| {
                h.lost = true;
                h.local
            })
            .collect();
        for local in locals {
            self.counters.leases_lost.fetch_add(1, Ordering::Relaxed);
            self.coordinator
                .fail_task(local, format!("lease lost: {why}"));
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, PgError> {
        self.pool.get().await.map_err(PgError::pool)
    }

    /// Record writes the fence refused: traced, logged in `swarm.fence_rejections`, then
    /// counted, so a count a caller reads is already in the log (unless writing it failed,
    /// which is traced).
    async fn rejected(&self, what: &str, tasks: &[(TaskId, i64)]) {
        if tasks.is_empty() {
            return;
        }
        for (task, epoch) in tasks {
            tracing::warn!(
                target: "swarm_postgres",
                task = %task, epoch, write = what, instance = %self.id,
                "the fence refused a stale write"
            );
        }
        let ids: Vec<Uuid> = tasks.iter().map(|(t, _)| t.as_uuid()).collect();
        let epochs: Vec<i64> = tasks.iter().map(|(_, e)| *e).collect();
        let logged = match self.client().await {
            Ok(client) => client
                .execute(
                    sql::REJECTED,
                    &[&self.config.swarm, &self.id, &ids, &epochs, &what],
                )
                .await
                .map(drop)
                .map_err(|e| PgError::db(Step::Write, e)),
            Err(e) => Err(e),
        };
        if let Err(e) = logged {
            tracing::warn!(
                target: "swarm_postgres", error = %e, write = what, refused = tasks.len(),
                "could not log refused writes in swarm.fence_rejections"
            );
        }
        self.counters
            .fence_rejections
            .fetch_add(tasks.len() as u64, Ordering::Relaxed);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
