//! Claiming tasks, running each on the instance's own coordinator, and writing the results in
//! batches, fenced.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use recovery_core::{Priority, SwarmError, TaskId};
use swarm_integration::{AgentStatus, PriorRecovery, TaskSpec};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

use super::fence::Fence;
use super::{Cluster, Held, lock, sql};
use crate::error::{PgError, Step};

/// A claimed task, as the claim returned it.
#[derive(Debug)]
pub(super) struct Claimed {
    pub(super) id: TaskId,
    pub(super) epoch: i64,
    spec: TaskSpec,
    prior: PriorRecovery,
}

/// A completion waiting to be written; the sender learns whether the fence let it through.
#[derive(Debug)]
pub(super) struct Completion {
    id: TaskId,
    epoch: i64,
    output: Vec<u8>,
    applied: oneshot::Sender<bool>,
}

fn priority_of(p: i16) -> Priority {
    Priority::ALL[(p.clamp(0, 3)) as usize]
}

/// A priority as stored: its index in `Priority::ALL` (0 low .. 3 critical).
pub(super) fn encode_priority(p: Priority) -> i16 {
    Priority::ALL.iter().position(|x| *x == p).unwrap_or(1) as i16
}

impl Cluster {
    /// Forward the session's notifications for this swarm to the claim loop; when the session
    /// ends, the advisory lock is gone and the others will take this instance's tasks: stop.
    pub(super) async fn listen(
        self: Arc<Self>,
        mut notifications: mpsc::UnboundedReceiver<tokio_postgres::Notification>,
    ) {
        while let Some(n) = notifications.recv().await {
            if n.payload() == self.config.swarm {
                self.wake.notify_one();
            }
        }
        if !self.stop.is_cancelled() {
            tracing::error!(
                target: "swarm_postgres", id = %self.id,
                "the instance's session ended: its lock is gone, so it stops taking part"
            );
            self.stop.cancel();
            self.lose_all("the instance's session ended");
        }
    }

    /// The capabilities of the instance's healthy agents, and whether it has any.
    fn capabilities(&self) -> Option<Vec<String>> {
        let mut caps = HashSet::new();
        let mut any = false;
        for a in self.coordinator.agents() {
            if matches!(a.status, AgentStatus::Idle | AgentStatus::Busy) {
                any = true;
                caps.extend(a.capabilities.iter().cloned());
            }
        }
        any.then(|| caps.into_iter().collect())
    }

    /// Claim as many tasks as there are free slots, run each, and wait for work when there is
    /// none.
    pub(super) async fn claim_loop(self: Arc<Self>) {
        loop {
            let first = tokio::select! {
                biased;
                () = self.stop.cancelled() => return,
                p = Arc::clone(&self.slots).acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let mut permits = vec![first];
            while let Ok(p) = Arc::clone(&self.slots).try_acquire_owned() {
                permits.push(p);
            }
            let asked = permits.len();
            let got = match self.capabilities() {
                Some(caps) => match self.claim(&caps, asked).await {
                    Ok(rows) => {
                        let n = rows.len();
                        for (row, permit) in rows.into_iter().zip(permits.drain(..)) {
                            tokio::spawn(Arc::clone(&self).work(row, permit));
                        }
                        n
                    }
                    Err(e) => {
                        tracing::warn!(target: "swarm_postgres", error = %e, "claim failed");
                        0
                    }
                },
                None => 0,
            };
            drop(permits);
            if got < asked {
                tokio::select! {
                    biased;
                    () = self.stop.cancelled() => return,
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(self.config.poll_every) => {}
                }
            }
        }
    }

    async fn claim(&self, caps: &[String], n: usize) -> Result<Vec<Claimed>, PgError> {
        let client = self.client().await?;
        let started = Instant::now();
        let rows = client
            .query(
                sql::CLAIM,
                &[
                    &self.config.swarm,
                    &caps,
                    &(n as i64),
                    &self.id,
                    &(self.config.lease_ttl.as_millis() as f64),
                ],
            )
            .await
            .map_err(|e| PgError::db(Step::Claim, e))?;
        let trusted_until = started + self.config.lease_ttl - self.config.margin;
        let claimed: Vec<Claimed> = rows
            .iter()
            .map(|r| {
                let mut spec = TaskSpec::new(r.get::<_, String>(2))
                    .with_priority(priority_of(r.get(3)))
                    .with_payload(r.get::<_, Vec<u8>>(5));
                if let Some(cap) = r.get::<_, Option<String>>(4) {
                    spec = spec.requiring(cap);
                }
                Claimed {
                    id: TaskId::from_uuid(r.get::<_, Uuid>(0)),
                    epoch: r.get(1),
                    spec,
                    prior: PriorRecovery {
                        retries: r.get::<_, i32>(6).max(0) as u32,
                        tried: r.get(7),
                    },
                }
            })
            .collect();
        self.counters
            .claimed
            .fetch_add(claimed.len() as u64, Ordering::Relaxed);
        // Held from here: the lease loop renews it. A task this instance claims again while
        // its run of an older epoch still goes on (that lease expired unnoticed): the old run
        // is stopped, and writes nothing.
        let mut stale = Vec::new();
        {
            let mut held = lock(&self.held);
            for c in &claimed {
                let new = Held {
                    epoch: c.epoch,
                    local: TaskId::from_u128(0),
                    trusted_until,
                    lost: false,
                };
                if let Some(old) = held.insert(c.id, new) {
                    if !old.lost {
                        self.counters.leases_lost.fetch_add(1, Ordering::Relaxed);
                    }
                    stale.push(old.local);
                }
            }
        }
        for local in stale {
            self.coordinator.fail_task(
                local,
                "the shared task was claimed again under a newer epoch",
            );
        }
        Ok(claimed)
    }

    /// Run one claimed task on the instance's coordinator and write how it ended.
    async fn work(self: Arc<Self>, task: Claimed, _slot: OwnedSemaphorePermit) {
        let local = match self.coordinator.submit_task(task.spec.clone()) {
            Ok(local) => local,
            Err(e) => {
                tracing::debug!(target: "swarm_postgres", task = %task.id, error = %e, "cannot run it here now: given back");
                self.forget(task.id, task.epoch);
                self.release(task.id, task.epoch).await;
                return;
            }
        };
        match lock(&self.held).get_mut(&task.id) {
            Some(h) if !h.lost && h.epoch == task.epoch => h.local = local,
            _ => {
                self.coordinator
                    .fail_task(local, "lease lost before the run started");
                self.forget(task.id, task.epoch);
                return;
            }
        }
        let fence = Fence {
            cluster: &self,
            task: task.id,
            epoch: task.epoch,
            kind: std::sync::Mutex::new(String::new()),
        };
        let outcome = self
            .coordinator
            .execute_task_with_journal(local, &task.prior, &fence)
            .await;
        if !self.still_trusted(task.id, task.epoch) {
            // The lease was lost, or is past the time this holder may trust it (the process
            // may have been paused): nothing is written for it, and another instance runs it.
            self.forget(task.id, task.epoch);
            self.coordinator
                .fail_task(local, "the shared task's lease was lost");
            return;
        }
        match outcome {
            Ok(output) => {
                let (applied, written) = oneshot::channel();
                let sent = self
                    .writes
                    .send(Completion {
                        id: task.id,
                        epoch: task.epoch,
                        output,
                        applied,
                    })
                    .await;
                if sent.is_ok() {
                    let _ = written.await;
                }
            }
            Err(SwarmError::TaskFailed { reason, .. }) => {
                self.fail(task.id, task.epoch, &reason).await
            }
            Err(e) => {
                tracing::debug!(target: "swarm_postgres", task = %task.id, error = %e, "not run to an end here: given back");
                self.release(task.id, task.epoch).await;
            }
        }
        self.forget(task.id, task.epoch);
    }

    /// Stop holding `task` under `epoch` (a newer claim of it stays held).
    fn forget(&self, task: TaskId, epoch: i64) {
        let mut held = lock(&self.held);
        if held.get(&task).is_some_and(|h| h.epoch == epoch) {
            held.remove(&task);
        }
    }

    /// Whether this instance may still act on its lease of `task` under `epoch`; one past its
    /// trusted time is marked lost here.
    fn still_trusted(&self, task: TaskId, epoch: i64) -> bool {
        let mut held = lock(&self.held);
        let Some(h) = held.get_mut(&task).filter(|h| h.epoch == epoch) else {
            return false;
        };
        if !h.lost && Instant::now() >= h.trusted_until {
            h.lost = true;
            self.counters.leases_lost.fetch_add(1, Ordering::Relaxed);
        }
        !h.lost
    }

    /// Write completions in batches, one statement each, as they come.
    pub(super) async fn write_loop(self: Arc<Self>, mut written: mpsc::Receiver<Completion>) {
        let mut batch = Vec::with_capacity(self.config.write_batch);
        while written.recv_many(&mut batch, self.config.write_batch).await > 0 {
            let applied = self.complete(&batch).await;
            for c in batch.drain(..) {
                let ok = applied.contains(&c.id);
                let _ = c.applied.send(ok);
            }
        }
    }

    /// Apply a batch of completions; returns those the fence let through.
    async fn complete(&self, batch: &[Completion]) -> HashSet<TaskId> {
        let ids: Vec<Uuid> = batch.iter().map(|c| c.id.as_uuid()).collect();
        let epochs: Vec<i64> = batch.iter().map(|c| c.epoch).collect();
        let outputs: Vec<&[u8]> = batch.iter().map(|c| c.output.as_slice()).collect();
        let applied: HashSet<TaskId> = match self.client().await {
            Ok(client) => match client
                .query(sql::COMPLETE, &[&ids, &epochs, &outputs, &self.id])
                .await
            {
                Ok(rows) => rows
                    .iter()
                    .map(|r| TaskId::from_uuid(r.get::<_, Uuid>(0)))
                    .collect(),
                Err(e) => {
                    tracing::warn!(target: "swarm_postgres", error = %e, "writing completions failed; their leases will expire and the tasks run again");
                    return HashSet::new();
                }
            },
            Err(e) => {
                tracing::warn!(target: "swarm_postgres", error = %e, "no connection to write completions");
                return HashSet::new();
            }
        };
        self.counters
            .completed
            .fetch_add(applied.len() as u64, Ordering::Relaxed);
        let stale: Vec<(TaskId, i64)> = batch
            .iter()
            .filter(|c| !applied.contains(&c.id))
            .map(|c| (c.id, c.epoch))
            .collect();
        self.rejected("complete", &stale).await;
        applied
    }

    async fn fail(&self, task: TaskId, epoch: i64, reason: &str) {
        let Ok(client) = self.client().await else {
            return;
        };
        match client
            .query_one(sql::FAIL, &[&task.as_uuid(), &epoch, &self.id, &reason])
            .await
        {
            Ok(row) if row.get::<_, i64>(0) == 1 => {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => self.rejected("fail", &[(task, epoch)]).await,
            Err(e) => {
                tracing::warn!(target: "swarm_postgres", task = %task, error = %e, "writing a failure failed")
            }
        }
    }

    async fn release(&self, task: TaskId, epoch: i64) {
        let Ok(client) = self.client().await else {
            return;
        };
        match client
            .query_one(sql::RELEASE, &[&task.as_uuid(), &epoch, &self.id])
            .await
        {
            Ok(row) if row.get::<_, i64>(0) == 1 => {
                self.counters.released.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => self.rejected("release", &[(task, epoch)]).await,
            Err(e) => {
                tracing::warn!(target: "swarm_postgres", task = %task, error = %e, "giving a task back failed")
            }
        }
    }
}
