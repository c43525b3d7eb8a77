//! Submitting tasks to a shared swarm and reading how they ended, from any process (it need
//! not be an instance).

use deadpool_postgres::Pool;
use recovery_core::TaskId;
use swarm_integration::TaskSpec;
use uuid::Uuid;

use super::{sql, worker::encode_priority};
use crate::error::{PgError, Step};

/// How a shared task stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedOutcome {
    /// Waiting to be claimed.
    Pending,
    /// Held by an instance.
    Claimed,
    /// Completed, with its output.
    Completed(Vec<u8>),
    /// Failed for good, with why.
    Failed(String),
}

/// Submit `specs` to the swarm `swarm`, in one statement, and notify its instances. Returns the
/// tasks' ids, in order.
///
/// # Errors
///
/// The database's error: then none was submitted.
pub async fn submit(pool: &Pool, swarm: &str, specs: &[TaskSpec]) -> Result<Vec<TaskId>, PgError> {
    let ids: Vec<Uuid> = specs.iter().map(|_| Uuid::new_v4()).collect();
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let priorities: Vec<i16> = specs.iter().map(|s| encode_priority(s.priority)).collect();
    let caps: Vec<Option<&str>> = specs
        .iter()
        .map(|s| s.required_capability.as_deref())
        .collect();
    let payloads: Vec<&[u8]> = specs.iter().map(|s| s.payload.as_slice()).collect();
    let client = pool.get().await.map_err(PgError::pool)?;
    client
        .query_one(
            sql::SUBMIT,
            &[&swarm, &ids, &names, &priorities, &caps, &payloads],
        )
        .await
        .map_err(|e| PgError::db(Step::Submit, e))?;
    Ok(ids.into_iter().map(TaskId::from_uuid).collect())
}

/// How the shared task `task` stands, if it exists.
///
/// # Errors
///
/// The database's error.
pub async fn outcome(pool: &Pool, task: TaskId) -> Result<Option<SharedOutcome>, PgError> {
    let client = pool.get().await.map_err(PgError::pool)?;
    let row = client
        .query_opt(sql::OUTCOME, &[&task.as_uuid()])
        .await
        .map_err(|e| PgError::db(Step::Read, e))?;
    Ok(row.map(|r| match r.get::<_, &str>(0) {
        "pending" => SharedOutcome::Pending,
        "claimed" => SharedOutcome::Claimed,
        "completed" => SharedOutcome::Completed(r.get::<_, Option<Vec<u8>>>(1).unwrap_or_default()),
        _ => SharedOutcome::Failed(r.get::<_, Option<String>>(2).unwrap_or_default()),
    }))
}

/// How many tasks of a swarm stand where.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SwarmCounts {
    /// Waiting to be claimed.
    pub pending: u64,
    /// Held by an instance.
    pub claimed: u64,
    /// Completed.
    pub completed: u64,
    /// Failed for good.
    pub failed: u64,
}

impl SwarmCounts {
    /// Every task, in whatever state.
    pub fn total(&self) -> u64 {
        self.pending + self.claimed + self.completed + self.failed
    }

    /// Whether every task has ended.
    pub fn all_finished(&self) -> bool {
        self.pending == 0 && self.claimed == 0
    }
}

/// How many tasks of `swarm` stand where.
///
/// # Errors
///
/// The database's error.
pub async fn counts(pool: &Pool, swarm: &str) -> Result<SwarmCounts, PgError> {
    let client = pool.get().await.map_err(PgError::pool)?;
    let rows = client
        .query(
            "SELECT state, count(*) FROM swarm.tasks WHERE swarm = $1 GROUP BY state",
            &[&swarm],
        )
        .await
        .map_err(|e| PgError::db(Step::Read, e))?;
    let mut c = SwarmCounts::default();
    for r in rows {
        let n = r.get::<_, i64>(1) as u64;
        match r.get::<_, &str>(0) {
            "pending" => c.pending = n,
            "claimed" => c.claimed = n,
            "completed" => c.completed = n,
            _ => c.failed = n,
        }
    }
    Ok(c)
}

/// Delete the finished (completed or failed) tasks of `swarm` that ended more than
/// `older_than` ago, with their task log, recovery log and fence rows: the shared tables grow
/// with every task until something purges them. Returns how many tasks were deleted. Run it
/// from any one process, as often as suits (for instance hourly, keeping a day).
///
/// # Errors
///
/// The database's error: then nothing was deleted.
pub async fn purge(
    pool: &Pool,
    swarm: &str,
    older_than: std::time::Duration,
) -> Result<u64, PgError> {
    let ms = older_than.as_millis() as f64;
    let client = pool.get().await.map_err(PgError::pool)?;
    let n: i64 = client
        .query_one(
            "WITH gone AS (
                 DELETE FROM swarm.tasks
                 WHERE swarm = $1 AND state IN ('completed', 'failed')
                   AND finished_at < clock_timestamp() - $2 * interval '1 millisecond'
                 RETURNING id),
             l AS (DELETE FROM swarm.task_log WHERE task IN (SELECT id FROM gone)),
             r AS (DELETE FROM swarm.recovery_log WHERE task IN (SELECT id FROM gone)),
             f AS (DELETE FROM swarm.fence_rejections WHERE task IN (SELECT id FROM gone))
             SELECT count(*) FROM gone",
            &[&swarm, &ms],
        )
        .await
        .map_err(|e| PgError::db(Step::Write, e))?
        .get(0);
    Ok(n as u64)
}
