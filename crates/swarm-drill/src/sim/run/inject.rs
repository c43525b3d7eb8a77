//! Applying a fault to the world, and the world's own rhythm: heartbeats and maintenance.

use super::*;

impl Sim {
    pub(super) async fn fault(&mut self, f: Fault) {
        if !self.event(format!("fault {}", f.name())) {
            return;
        }
        let now = Instant::now();
        match f {
            Fault::Communication => self.world.lock().armed.push_back(RunFault::Communication),
            Fault::Hang => self.world.lock().armed.push_back(RunFault::Hang),
            Fault::Corruption => self.world.lock().armed.push_back(RunFault::Corruption),
            Fault::Wedged => self.world.lock().armed.push_back(RunFault::Wedge),
            Fault::BadAgent => {
                let length = Duration::from_secs(self.fault_rng.random_range(300..1200));
                if let Some(i) = self.pick_agent(|a| !a.is_down(now) && !a.is_broken(now)) {
                    let mut w = self.world.lock();
                    w.agents[i].broken_until = Some(now + length);
                    w.injected("bad_agent");
                }
            }
            Fault::Crash => {
                let downtime = Duration::from_secs(self.fault_rng.random_range(60..300));
                if let Some(i) = self.pick_agent(|a| !a.is_down(now)) {
                    self.crash(i, now + downtime);
                    self.world.lock().injected("crash");
                }
            }
            Fault::Silent => {
                let quiet = Duration::from_secs(self.fault_rng.random_range(120..600));
                if let Some(i) = self.pick_agent(|a| !a.is_silent(now)) {
                    let mut w = self.world.lock();
                    w.agents[i].silent_until = Some(now + quiet);
                    let name = w.agents[i].name.clone();
                    w.injected("silent");
                    drop(w);
                    self.silent_since.entry(name).or_insert(now);
                }
            }
            Fault::PressureWave => {
                let length = Duration::from_secs(self.fault_rng.random_range(300..900));
                let amplitude = self.fault_rng.random_range(0.25..0.45);
                let mut w = self.world.lock();
                w.waves.push(Wave {
                    start: now,
                    end: now + length,
                    amplitude,
                    ramp: self.options.wave_ramp,
                });
                w.injected("pressure_wave");
                drop(w);
                self.wave_since.get_or_insert(now);
            }
            Fault::CapabilityOutage => {
                let length = Duration::from_secs(self.fault_rng.random_range(300..900));
                let gpus: Vec<usize> = {
                    let w = self.world.lock();
                    (0..w.agents.len())
                        .filter(|&i| w.agents[i].present && w.agents[i].gpu)
                        .collect()
                };
                for i in gpus {
                    self.crash(i, now + length);
                }
                self.world.lock().injected("capability_outage");
                self.outage_gpu.get_or_insert(now);
            }
            Fault::SecondCaller => {
                let open: Vec<u64> = self
                    .clients
                    .iter()
                    .filter(|(_, c)| c.done.is_none())
                    .map(|(id, _)| *id)
                    .collect();
                if !open.is_empty() {
                    let client = open[self.fault_rng.random_range(0..open.len())];
                    self.event(format!("second caller for client {client}"));
                    self.call(client);
                    self.world.lock().injected("second_caller");
                }
            }
            Fault::StoreFailure => {
                self.store.fail_next_write();
                self.world.lock().injected("store_failure");
            }
            Fault::CoordinatorRestart => {
                self.restart().await;
                self.world.lock().injected("coordinator_restart");
            }
            Fault::Churn => self.churn(now),
            Fault::BadPatch => self.bad_patch(),
        }
    }

    /// A random present agent for which `ok` holds.
    pub(super) fn pick_agent(&mut self, ok: impl Fn(&SimAgent) -> bool) -> Option<usize> {
        let candidates: Vec<usize> = {
            let w = self.world.lock();
            (0..w.agents.len())
                .filter(|&i| w.agents[i].present && ok(&w.agents[i]))
                .collect()
        };
        (!candidates.is_empty())
            .then(|| candidates[self.fault_rng.random_range(0..candidates.len())])
    }

    /// Agent `i` crashes until `up`: its run fails, its connection drops.
    pub(super) fn crash(&mut self, i: usize, up: Instant) {
        let crashed = {
            let mut w = self.world.lock();
            let a = &mut w.agents[i];
            a.down_until = Some(a.down_until.map_or(up, |t| t.max(up)));
            Arc::clone(&a.crashed)
        };
        // Its run fails, its heartbeats stop: the coordinator finds out from those.
        crashed.notify_waiters();
    }

    /// An agent leaves; the autoscaler starts a replacement that joins 1 to 5 minutes later.
    pub(super) fn churn(&mut self, now: Instant) {
        let present = self
            .world
            .lock()
            .agents
            .iter()
            .filter(|a| a.present)
            .count();
        if present > 2 {
            if let Some(i) = self.pick_agent(|_| true) {
                let (id, crashed, name) = {
                    let mut w = self.world.lock();
                    w.agents[i].present = false;
                    (
                        w.agents[i].id,
                        Arc::clone(&w.agents[i].crashed),
                        w.agents[i].name.clone(),
                    )
                };
                crashed.notify_waiters();
                let _ = self.coordinator.deregister_agent(id);
                self.world.lock().injected("churn");
                self.event(format!("{name} left the swarm"));
            }
        }
        let delay = Duration::from_secs(self.fault_rng.random_range(60..300));
        self.joins_due.push(now + delay);
    }

    /// Replacements that are due try to register (a coordinator at Critical refuses new
    /// agents; they try again at the next heartbeat).
    pub(super) fn join(&mut self) {
        let now = Instant::now();
        self.joins_due.sort_unstable();
        while self.joins_due.first().is_some_and(|t| *t <= now) {
            let n = self.world.lock().agents.len();
            let gpu = n % 4 == 0;
            let name = format!("agent-{n}");
            let caps: &[&str] = if gpu { &["cpu", "gpu"] } else { &["cpu"] };
            match self
                .coordinator
                .register_agent(AgentSpec::new(name.clone(), caps.iter().copied()))
            {
                Ok(id) => {
                    self.world.lock().agents.push(SimAgent {
                        name: name.clone(),
                        id,
                        gpu,
                        down_until: None,
                        silent_until: None,
                        broken_until: None,
                        present: true,
                        crashed: Arc::new(tokio::sync::Notify::new()),
                    });
                    self.joins_due.remove(0);
                    self.event(format!("{name} joined the swarm"));
                }
                Err(e) => {
                    self.event(format!("{name} could not join: {}", e.kind()));
                    return;
                }
            }
        }
    }

    /// An operator applies a configuration patch with one bad entry: it must be refused as a
    /// whole, with an error that names the bad key, and change nothing.
    pub(super) fn bad_patch(&mut self) {
        let before = self.coordinator.config();
        // The good entry sorts first, so an error that names the first key names the wrong one.
        let good = (
            "heartbeat_timeout_secs",
            (before.heartbeat_timeout_secs + 1).to_string(),
        );
        let bad = if self.fault_rng.random_bool(0.5) {
            ("task_timeout_secs", "soon".to_owned())
        } else {
            ("unknown_setting", "1".to_owned())
        };
        let bad_key = bad.0;
        let patch: std::collections::BTreeMap<String, String> = [good, bad]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        self.world.lock().injected("bad_patch");
        let problem = match self.coordinator.apply_config_patch(&patch) {
            Ok(()) => Some(format!("the patch {patch:?} was accepted")),
            Err(e) if !e.to_string().contains(bad_key) => Some(format!(
                "the refusal of {patch:?} does not name `{bad_key}`: {e}"
            )),
            Err(_) if self.coordinator.config() != before => Some(format!(
                "the refused patch {patch:?} changed the configuration"
            )),
            Err(_) => None,
        };
        if let Some(p) = problem {
            self.world.lock().trace.violation(self.now(), vec![p]);
        }
    }

    pub(super) fn heartbeats(&mut self) {
        self.join();
        let now = Instant::now();
        let beating: Vec<(String, recovery_core::AgentId)> = {
            let w = self.world.lock();
            w.agents
                .iter()
                .filter(|a| a.present && !a.is_down(now) && !a.is_silent(now))
                .map(|a| (a.name.clone(), a.id))
                .collect()
        };
        for (name, id) in beating {
            if let Err(SwarmError::AgentNotFound(_)) = self.coordinator.heartbeat(id) {
                // The coordinator does not know it: it registers again, as a real agent would.
                let gpu = self.world.lock().agents.iter().any(|a| a.id == id && a.gpu);
                let caps: &[&str] = if gpu { &["cpu", "gpu"] } else { &["cpu"] };
                if let Ok(new) = self
                    .coordinator
                    .register_agent(AgentSpec::new(name.clone(), caps.iter().copied()))
                {
                    if let Some(a) = self.world.lock().agents.iter_mut().find(|a| a.id == id) {
                        a.id = new;
                    }
                    self.event(format!(
                        "{name} was unknown to the coordinator and registered again"
                    ));
                }
            }
            if let Some(since) = self.silent_since.remove(&name) {
                self.world.lock().recovered("silent", now - since);
            }
        }
    }

    pub(super) fn maintain(&mut self) {
        let now = Instant::now();
        let busy: Vec<recovery_core::AgentId> = self
            .coordinator
            .agents()
            .into_iter()
            .filter(|a| a.status == swarm_integration::AgentStatus::Busy)
            .map(|a| a.id)
            .collect();
        let swept = self.coordinator.check_heartbeats();
        if !swept.is_empty() {
            self.event(format!("swept {} silent agents", swept.len()));
        }
        if let Some(a) = swept.iter().find(|a| busy.contains(a)) {
            let problem =
                format!("agent {a} was declared failed for a stale heartbeat while it ran a task");
            self.world.lock().trace.violation(self.now(), vec![problem]);
        }
        self.coordinator.maintain();
        self.ticks += 1;
        if self.ticks % 120 == 0 {
            let s = self.coordinator.stats();
            let mut agents: BTreeMap<String, usize> = BTreeMap::new();
            for a in self.coordinator.agents() {
                *agents
                    .entry(format!("{:?}", a.status).to_lowercase())
                    .or_default() += 1;
            }
            self.event(format!(
                "stats: {} unfinished, {} running, {} waiting, agents {agents:?}, level {}",
                s.unfinished,
                s.running,
                s.waiting,
                self.coordinator.level()
            ));
        }
        let level = self.coordinator.level();
        let wave = self.world.lock().pressure(now) > 0.0;
        if self.levels.observe(now, level, wave) {
            self.event(format!("level {level}"));
        }
        if level == DegradationLevel::Normal && !wave {
            if let Some(since) = self.wave_since.take() {
                self.world.lock().recovered("pressure_wave", now - since);
            }
        }
    }
}
