//! Keeping leases: renewing them, stopping the runs of those no longer trusted, the instance's
//! heartbeat, and the reaper that frees the work of dead instances and expired leases.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use recovery_core::TaskId;
use tokio::time::Instant;
use uuid::Uuid;

use super::{Cluster, lock, sql};

/// How often held leases are checked against their trusted time.
const WATCH_EVERY: Duration = Duration::from_millis(100);

impl Cluster {
    /// Renew every `renew_every`; between renewals, stop acting on a lease past its trusted
    /// time.
    pub(super) async fn lease_loop(self: Arc<Self>) {
        let mut last_renewal = Instant::now();
        loop {
            tokio::select! {
                biased;
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(WATCH_EVERY) => {}
            }
            if last_renewal.elapsed() >= self.config.renew_every {
                last_renewal = Instant::now();
                self.renew().await;
            }
            self.drop_untrusted();
        }
    }

    /// Renew every held lease in one statement; a lease not renewed is lost.
    async fn renew(&self) {
        let held: Vec<(TaskId, i64)> = lock(&self.held)
            .iter()
            .filter(|(_, h)| !h.lost)
            .map(|(id, h)| (*id, h.epoch))
            .collect();
        let started = Instant::now();
        let Ok(client) = self.client().await else {
            return;
        };
        let _ = client.execute(sql::HEARTBEAT, &[&self.id]).await;
        if held.is_empty() {
            return;
        }
        let ids: Vec<Uuid> = held.iter().map(|(t, _)| t.as_uuid()).collect();
        let epochs: Vec<i64> = held.iter().map(|(_, e)| *e).collect();
        let ttl_ms = self.config.lease_ttl.as_millis() as f64;
        let renewed: std::collections::HashSet<Uuid> = match client
            .query(sql::RENEW, &[&ids, &epochs, &self.id, &ttl_ms])
            .await
        {
            Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
            Err(e) => {
                // Not renewed, not lost either: the trusted time decides.
                tracing::warn!(target: "swarm_postgres", error = %e, "renewing leases failed");
                return;
            }
        };
        let trusted_until = started + self.config.lease_ttl - self.config.margin;
        let mut lost = Vec::new();
        {
            let mut map = lock(&self.held);
            for (task, epoch) in &held {
                let Some(h) = map.get_mut(task) else { continue };
                if h.epoch != *epoch || h.lost {
                    continue;
                }
                if renewed.contains(&task.as_uuid()) {
                    h.trusted_until = trusted_until;
                } else {
                    h.lost = true;
                    lost.push((*task, *epoch, h.local));
                }
            }
        }
        for (task, _, local) in &lost {
            self.counters.leases_lost.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(target: "swarm_postgres", task = %task, "lease lost: its run is stopped");
            self.coordinator
                .fail_task(*local, "the shared task's lease was lost");
        }
        let stale: Vec<(TaskId, i64)> = lost.iter().map(|(t, e, _)| (*t, *e)).collect();
        self.rejected("renew", &stale).await;
    }

    /// Stop acting on every lease past its trusted time.
    fn drop_untrusted(&self) {
        let now = Instant::now();
        let expired: Vec<(TaskId, TaskId)> = lock(&self.held)
            .iter_mut()
            .filter(|(_, h)| !h.lost && now >= h.trusted_until)
            .map(|(id, h)| {
                h.lost = true;
                (*id, h.local)
            })
            .collect();
        for (task, local) in expired {
            self.counters.leases_lost.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                target: "swarm_postgres", task = %task,
                "lease past the time its holder may trust it: its run is stopped"
            );
            self.coordinator.fail_task(
                local,
                "the shared task's lease ran out before it was renewed",
            );
        }
    }

    /// Free the tasks of dead instances and of expired leases, every `reap_every`.
    pub(super) async fn reap_loop(self: Arc<Self>) {
        loop {
            tokio::select! {
                biased;
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(self.config.reap_every) => {}
            }
            let Ok(client) = self.client().await else {
                continue;
            };
            match client
                .query_one(sql::REAP, &[&self.config.swarm, &sql::LOCK_SPACE])
                .await
            {
                Ok(row) => {
                    let (freed, gone): (i64, i64) = (row.get(0), row.get(1));
                    if freed > 0 || gone > 0 {
                        tracing::info!(target: "swarm_postgres", freed, dead_instances = gone, "reaped");
                    }
                    self.counters
                        .reaped_tasks
                        .fetch_add(freed as u64, Ordering::Relaxed);
                    self.counters
                        .reaped_instances
                        .fetch_add(gone as u64, Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(target: "swarm_postgres", error = %e, "reaping failed"),
            }
        }
    }
}
