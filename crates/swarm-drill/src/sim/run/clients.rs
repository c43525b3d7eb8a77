//! The clients: arrivals, their calls of `execute_task_with_recovery`, and the answers they get.

use super::*;

/// One submitted task, as its client sees it.
pub(super) struct Client {
    pub(super) task: TaskId,
    pub(super) gpu: bool,
    pub(super) length: Duration,
    pub(super) priority: Priority,
    pub(super) callers: Vec<JoinHandle<()>>,
    /// Callers that have not returned yet.
    pub(super) live: u32,
    pub(super) done: Option<bool>,
}

/// Work a client wants done, kept while it is refused and tries again.
#[derive(Debug, Clone, Copy)]
pub(super) struct Work {
    gpu: bool,
    length: Duration,
    priority: Priority,
    /// When the client first offered it.
    since: Instant,
}

/// How long a refused client keeps trying before it gives up.
const CLIENT_PATIENCE: Duration = Duration::from_secs(3600);

/// A caller's return.
pub(super) struct Returned {
    pub(super) generation: u64,
    pub(super) client: u64,
    pub(super) result: SwarmResult<Vec<u8>>,
    pub(super) took: Duration,
}

/// What a failure reason comes to: what gave up (the words before ` after`, `:` or `(`) and the
/// kind of the last error.
fn failure_class(reason: &str) -> String {
    let head_end = [" after", ":", " ("]
        .iter()
        .filter_map(|p| reason.find(p))
        .min()
        .unwrap_or(reason.len());
    let last = reason
        .rsplit_once("last error: ")
        .map(|(_, e)| e.split(':').next().unwrap_or(e))
        .unwrap_or("-");
    format!("{} / {last}", &reason[..head_end])
}

impl Sim {
    pub(super) fn arrive(&mut self) {
        let client = self.next_client;
        self.next_client += 1;
        let length = self.task_length();
        let gpu = self.rng.random_bool(self.options.gpu_share);
        let priority = match self.rng.random_range(0..100) {
            0..20 => Priority::Low,
            20..80 => Priority::Normal,
            80..95 => Priority::High,
            _ => Priority::Critical,
        };
        if !self.event(format!(
            "arrive client {client} {priority} gpu={gpu} {}ms",
            length.as_millis()
        )) {
            return;
        }
        let work = Work {
            gpu,
            length,
            priority,
            since: Instant::now(),
        };
        self.offer(client, work);
    }

    /// A refused client's `retry_after` is up: it submits again.
    pub(super) fn resubmit(&mut self) {
        let Some(((_, client), work)) = self.resubmits.pop_first() else {
            return;
        };
        if self.event(format!("client {client} submits again")) {
            self.offer(client, work);
        }
    }

    /// Submit `work` for `client`, and call it if it was accepted. A client that is refused
    /// with `Overloaded` or `SwarmSizeLimitExceeded` tries again after the error's
    /// `retry_after` (30 s for the size limit), as the errors ask, for up to an hour.
    fn offer(&mut self, client: u64, work: Work) {
        let Work {
            gpu,
            length,
            priority,
            since,
        } = work;
        match self.submit(client, gpu, length, priority) {
            Ok(task) => {
                self.clients.insert(
                    client,
                    Client {
                        task,
                        gpu,
                        length,
                        priority,
                        callers: Vec::new(),
                        live: 0,
                        done: None,
                    },
                );
                self.call(client);
            }
            Err(e) => {
                self.count("refusals");
                self.event(format!("refused client {client}: {}", e.kind()));
                let now = Instant::now();
                let again = match e {
                    SwarmError::Overloaded { retry_after, .. } => Some(retry_after),
                    SwarmError::SwarmSizeLimitExceeded(_) => Some(Duration::from_secs(30)),
                    _ => None,
                };
                match again {
                    Some(after) if now + after < since + CLIENT_PATIENCE => {
                        self.resubmits.insert((now + after, client), work);
                    }
                    _ => self.count("refused"),
                }
            }
        }
    }

    pub(super) fn submit(
        &self,
        client: u64,
        gpu: bool,
        length: Duration,
        priority: Priority,
    ) -> SwarmResult<TaskId> {
        let spec = TaskSpec::new(format!("task-{client}"))
            .with_priority(priority)
            .with_payload(crate::sim::world::payload(length, client))
            .requiring(if gpu { "gpu" } else { "cpu" });
        self.coordinator.submit_task(spec)
    }

    /// Start one more caller of `client`'s task.
    pub(super) fn call(&mut self, client: u64) {
        let Some(c) = self.clients.get_mut(&client) else {
            return;
        };
        let (coordinator, tx, task, generation) = (
            Arc::clone(&self.coordinator),
            self.tx.clone(),
            c.task,
            self.generation,
        );
        c.live += 1;
        c.callers.push(tokio::spawn(async move {
            let started = Instant::now();
            let result = coordinator.execute_task_with_recovery(task).await;
            let _ = tx.send(Returned {
                generation,
                client,
                result,
                took: started.elapsed(),
            });
        }));
    }

    /// A caller returned: the first answer settles the client; later ones must agree. A
    /// client leaves the table when its last caller has returned.
    pub(super) fn returned(&mut self, r: Returned) {
        if r.generation != self.generation {
            return;
        }
        let Some(client) = self.clients.get_mut(&r.client) else {
            return;
        };
        client.live -= 1;
        let limit = self.coordinator.config().recovery_time_limit() + Duration::from_secs(1);
        if r.took > limit {
            let problem = format!(
                "a call for client {} took {:?}, past recovery_time_limit_secs",
                r.client, r.took
            );
            self.world.lock().trace.violation(self.now(), vec![problem]);
        }
        let Some(client) = self.clients.get_mut(&r.client) else {
            return;
        };
        let (task, gpu, length, done, live) = (
            client.task,
            client.gpu,
            client.length,
            client.done,
            client.live,
        );
        let answer = self.answer(r.client, length, &r.result);
        if live == 0 && (done.is_some() || answer.is_some()) {
            self.clients.remove(&r.client);
        }
        let Some(ok) = answer else {
            return;
        };
        match done {
            Some(was) if was != ok => {
                let problem = format!(
                    "two callers of client {}'s task disagree: one {}, one {}",
                    r.client,
                    if was { "completed" } else { "failed" },
                    if ok { "completed" } else { "failed" }
                );
                self.world.lock().trace.violation(self.now(), vec![problem]);
                return;
            }
            Some(_) => return,
            None => {
                if let Some(c) = self.clients.get_mut(&r.client) {
                    c.done = Some(ok);
                }
            }
        }
        self.count(if ok { "completed" } else { "failed" });
        match &r.result {
            Err(SwarmError::TaskFailed { reason, .. }) => {
                *self.failed_by.entry(failure_class(reason)).or_default() += 1;
                self.event(format!("failed client {} task {task}: {reason}", r.client));
            }
            _ => {
                self.event(format!("completed client {} task {task}", r.client));
            }
        }
        let now = Instant::now();
        let mut w = self.world.lock();
        w.wedged.remove(&task);
        if let Some((kind, at)) = w.hit.remove(&task) {
            if ok {
                w.recovered(kind, now - at);
            }
        }
        if ok && gpu {
            if let Some(at) = self.outage_gpu.take() {
                w.recovered("capability_outage", now - at);
            }
        }
    }

    /// Whether a caller's result says the task completed (with the client's own output) or
    /// failed; anything else breaks an invariant, and is `None`.
    pub(super) fn answer(
        &self,
        client: u64,
        length: Duration,
        result: &SwarmResult<Vec<u8>>,
    ) -> Option<bool> {
        let problem = match result {
            Ok(out) if *out == crate::sim::world::payload(length, client) => return Some(true),
            Err(SwarmError::TaskFailed { reason, .. }) if reason.contains("ConcurrencyError") => {
                format!(
                    "client {client}'s task failed over a concurrent caller (\"already running\" reached a strategy): {reason}"
                )
            }
            Err(SwarmError::TaskFailed { .. }) => return Some(false),
            Ok(out) => format!(
                "client {client}'s task completed with another task's output ({} bytes)",
                out.len()
            ),
            Err(e) => format!(
                "execute_task_with_recovery returned neither an output nor TaskFailed: client {client} got {e}"
            ),
        };
        self.world.lock().trace.violation(self.now(), vec![problem]);
        None
    }
}
