//! The recovery loop's rounds, written to the shared swarm by the holder of the task's current
//! epoch only: the fence that makes each failure's recovery one instance's at a time.

use std::sync::atomic::Ordering;

use async_trait::async_trait;
use recovery_core::{RecoveryResult, SwarmError, SwarmResult, TaskId};
use swarm_integration::RecoveryJournal;
use tokio::time::Instant;

use super::{Cluster, lock, sql};

/// The journal of one claimed task: every round is written, fenced, before it starts and when
/// it ends; a refused write, or a lease past its trusted time, stops the loop.
pub(super) struct Fence<'a> {
    pub(super) cluster: &'a Cluster,
    pub(super) task: TaskId,
    pub(super) epoch: i64,
    /// The kind of the error of the round in progress.
    pub(super) kind: std::sync::Mutex<String>,
}

impl Fence<'_> {
    /// Stop acting on the lease: the loop gets this error.
    fn lost(&self, why: &str) -> SwarmError {
        if let Some(h) = lock(&self.cluster.held)
            .get_mut(&self.task)
            .filter(|h| h.epoch == self.epoch)
        {
            if !h.lost {
                h.lost = true;
                self.cluster
                    .counters
                    .leases_lost
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        SwarmError::ConcurrencyError(format!(
            "shared task {} (epoch {}): {why}; another instance carries its recovery on",
            self.task, self.epoch
        ))
    }

    fn trusted(&self) -> bool {
        lock(&self.cluster.held)
            .get(&self.task)
            .is_some_and(|h| h.epoch == self.epoch && !h.lost && Instant::now() < h.trusted_until)
    }

    async fn write(
        &self,
        statement: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        what: &str,
    ) -> SwarmResult<()> {
        let client = self
            .cluster
            .client()
            .await
            .map_err(|e| self.lost(&format!("no connection for the recovery round: {e}")))?;
        let row = client
            .query_one(statement, params)
            .await
            .map_err(|e| self.lost(&format!("the recovery round could not be written: {e}")))?;
        if row.get::<_, i64>(0) == 1 {
            Ok(())
        } else {
            self.cluster
                .rejected(what, &[(self.task, self.epoch)])
                .await;
            Err(self.lost(
                "the fence refused the recovery round: the lease is no longer this instance's",
            ))
        }
    }
}

#[async_trait]
impl RecoveryJournal for Fence<'_> {
    async fn before_round(
        &self,
        _local: TaskId,
        round: u32,
        error: &SwarmError,
        retries: u32,
    ) -> SwarmResult<()> {
        if !self.trusted() {
            return Err(self.lost("the lease is past the time its holder may trust it"));
        }
        let (id, instance) = (self.task.as_uuid(), self.cluster.id);
        let (round, retries) = (round as i32, retries as i32);
        let kind = error.kind().to_string();
        *lock(&self.kind) = kind.clone();
        let text = error.to_string();
        self.write(
            sql::ROUND_START,
            &[&id, &self.epoch, &instance, &round, &retries, &kind, &text],
            "recovery round",
        )
        .await
    }

    async fn after_round(
        &self,
        _local: TaskId,
        round: u32,
        result: &RecoveryResult,
        retries: u32,
    ) -> SwarmResult<()> {
        let (id, instance) = (self.task.as_uuid(), self.cluster.id);
        let (round, retries) = (round as i32, retries as i32);
        let action = result.action.to_string();
        let line = format!("{} -> {action}", lock(&self.kind));
        self.write(
            sql::ROUND_END,
            &[
                &id,
                &self.epoch,
                &instance,
                &round,
                &action,
                &result.success,
                &line,
                &retries,
            ],
            "recovery outcome",
        )
        .await
    }
}
