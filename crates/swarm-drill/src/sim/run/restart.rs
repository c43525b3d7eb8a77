//! A crash of the coordinator process, and a new one started from its last checkpoint.

use super::*;

impl Sim {
    /// The coordinator process crashes; a new one starts from the newest checkpoint that
    /// decodes, its agents reconnect, and every client whose task it does not have submits it
    /// again.
    pub(super) async fn restart(&mut self) {
        let now = Instant::now();
        for c in self.clients.values_mut() {
            for h in c.callers.drain(..) {
                h.abort();
            }
            c.live = 0;
        }
        // The old process's callers are gone; settled clients have their answer.
        self.clients.retain(|_, c| c.done.is_none());
        self.statistics
            .push(self.coordinator.recovery_manager().statistics().await);
        self.count_breakers();
        self.invariant_checks += self.coordinator.invariant_checks();
        self.generation += 1;
        self.work.restart();
        let checkpoint = newest_checkpoint(&*self.store).await;
        let evidence = self
            .statistics
            .last()
            .map(|s| s.learned_order.clone())
            .unwrap_or_default();
        let m = manager(
            &self.options,
            &self.store,
            &self.world,
            self.generation,
            evidence,
        );
        let executor = Arc::new(SimExecutor {
            world: Arc::clone(&self.world),
            hang: Duration::from_secs(3600),
        });
        let options = coordinator_options(&self.options, self.generation);
        let restored = checkpoint.is_some();
        let c = match checkpoint {
            Some(cp) => SwarmCoordinator::from_checkpoint(cp, executor, Arc::clone(&m), options),
            None => SwarmCoordinator::with_options(
                config(&self.options),
                executor,
                Arc::clone(&m),
                options,
            ),
        }
        .expect("the checkpoint's config is valid");
        for (k, v) in self.coordinator.recovery_manager().attempts_by_strategy() {
            *self.recoveries_before.entry(k).or_default() += v;
        }
        self.coordinator = Arc::clone(&c);
        {
            let mut w = self.world.lock();
            w.coordinator = Arc::downgrade(&c);
            // A new process rebuilds its scheduling entries.
            w.wedged.clear();
        }
        m.start_monitoring().await;
        // Agents reconnect: those the checkpoint knows keep their ids; others register anew;
        // those that left are removed.
        let known: std::collections::BTreeSet<_> = c.agents().iter().map(|a| a.id).collect();
        let agents: Vec<(usize, bool, recovery_core::AgentId, bool, String, bool)> = {
            let w = self.world.lock();
            w.agents
                .iter()
                .enumerate()
                .map(|(i, a)| (i, a.present, a.id, a.gpu, a.name.clone(), a.is_down(now)))
                .collect()
        };
        for (i, present, id, gpu, name, down) in agents {
            match (present, known.contains(&id)) {
                (true, true) => {}
                (true, false) => {
                    let caps: &[&str] = if gpu { &["cpu", "gpu"] } else { &["cpu"] };
                    if let Ok(new) = c.register_agent(AgentSpec::new(name, caps.iter().copied())) {
                        self.world.lock().agents[i].id = new;
                    }
                }
                (false, true) => {
                    let _ = c.deregister_agent(id);
                }
                (false, false) => {}
            }
            // One that is down is found out as it would be: its runs fail, its heartbeats stop.
            let _ = down;
        }
        let open: Vec<u64> = self
            .clients
            .iter()
            .filter(|(_, cl)| cl.done.is_none())
            .map(|(id, _)| *id)
            .collect();
        let (mut kept, mut again) = (0, 0);
        for client in open {
            let cl = &self.clients[&client];
            if c.task(cl.task).is_some_and(|t| !t.state.is_terminal()) {
                kept += 1;
            } else {
                let (gpu, length, priority, old) = (cl.gpu, cl.length, cl.priority, cl.task);
                match self.submit(client, gpu, length, priority) {
                    Ok(task) => {
                        self.clients.get_mut(&client).expect("open").task = task;
                        let mut w = self.world.lock();
                        if let Some(hit) = w.hit.remove(&old) {
                            w.hit.insert(task, hit);
                        }
                        drop(w);
                        again += 1;
                        self.count("resubmitted");
                    }
                    Err(_) => {
                        self.clients.remove(&client);
                        self.world.lock().hit.remove(&old);
                        self.count("refused_after_restart");
                        continue;
                    }
                }
            }
            self.call(client);
        }
        // The new process checkpoints once it is up (the store may refuse, as any write may).
        let _ = c.create_checkpoint().await;
        self.event(format!(
            "restart {}: {} from a checkpoint, {kept} tasks kept, {again} submitted again",
            self.generation,
            if restored { "restored" } else { "nothing" }
        ));
    }
}

/// The newest checkpoint in `store` that decodes.
async fn newest_checkpoint(store: &dyn CheckpointStore) -> Option<SwarmCheckpoint> {
    for info in store.list().await.ok()? {
        if let Ok(cp) = store.get(info.id).await {
            if let Ok(state) = cp.codec.decode::<SwarmCheckpoint>(&cp.payload) {
                return Some(state);
            }
        }
    }
    None
}
