//! The driver of a simulated run: one loop that takes the next event (an arrival, a fault, a
//! heartbeat tick, a maintenance tick, a caller's return) in time order, applies it, and checks
//! the invariants. The faults are applied in `inject`, a coordinator restart in `restart`, the
//! checks after each event in `checks`.

mod checks;
mod clients;
mod inject;
mod restart;

use checks::Work;
pub(crate) use checks::describe;
use clients::Work as Offered;
use clients::{Client, Returned};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use recovery_backoff::{BackoffConfig, ExponentialBackoffStrategy};
use recovery_checkpoint::{CheckpointRecoveryStrategy, CheckpointStore};
use recovery_core::{Priority, SwarmError, SwarmResult, TaskId};
use recovery_degradation::{
    DegradationConfig, DegradationLevel, GracefulDegradationStrategy, ResourceMonitor,
};
use recovery_healing::SelfHealingStrategy;
use recovery_manager::{LearningConfig, RecoveryConfig, RecoveryManager, RecoveryStatistics};
use swarm_integration::{
    AgentSpec, CoordinatorOptions, SwarmCheckpoint, SwarmConfig, SwarmCoordinator, TaskSpec,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::faults::{Fault, FaultClock};
use super::options::SimOptions;
use super::rebuild::RebuildEntry;
use super::report::{Levels, SimReport};
use super::trace::{Stop, Trace};
use super::world::{FlakyStore, RunFault, SimAgent, SimExecutor, SimSampler, Wave, World};

/// How often agents send heartbeats, and the coordinator sweeps and maintains.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
const MAINTAIN_EVERY: Duration = Duration::from_secs(5);
/// The timeline's sample, every this many maintenance ticks (5 simulated minutes).
const SAMPLE_EVERY_TICKS: u64 = 60;

pub(crate) struct Sim {
    options: SimOptions,
    started: Instant,
    world: Arc<World>,
    store: Arc<FlakyStore>,
    /// The workload's randomness (arrivals, lengths, priorities): the same with the faults on
    /// or off, so the fault-free run is the same workload.
    rng: Xoshiro256PlusPlus,
    /// The faults' randomness (when, where, how long).
    fault_rng: Xoshiro256PlusPlus,
    coordinator: Arc<SwarmCoordinator>,
    generation: u64,
    clients: BTreeMap<u64, Client>,
    next_client: u64,
    tx: mpsc::UnboundedSender<Returned>,
    rx: mpsc::UnboundedReceiver<Returned>,
    faults: FaultClock,
    levels: Levels,
    statistics: Vec<RecoveryStatistics>,
    /// The breakers' counts of the coordinators before the current one.
    breakers: recovery_breaker::BreakerStats,
    invariant_checks: u64,
    counts: BTreeMap<&'static str, u64>,
    outage_gpu: Option<Instant>,
    silent_since: BTreeMap<String, Instant>,
    wave_since: Option<Instant>,
    work: Work,
    /// Maintenance ticks so far.
    ticks: u64,
    /// When the autoscaler's replacements for agents that left are up.
    joins_due: Vec<Instant>,
    /// Refused clients, by when they submit again.
    resubmits: BTreeMap<(Instant, u64), Offered>,
    /// Tasks failed for good, by what gave up and on which error.
    failed_by: BTreeMap<String, u64>,
    /// The run over time, a sample every 5 simulated minutes.
    timeline: crate::timeline::Timeline,
    /// Recovery attempts by strategy of the coordinators before the current one.
    recoveries_before: BTreeMap<String, u64>,
}

fn manager(
    options: &SimOptions,
    store: &Arc<FlakyStore>,
    world: &Arc<World>,
    generation: u64,
    evidence: Vec<recovery_manager::LearnedEstimate>,
) -> Arc<RecoveryManager<SwarmCoordinator>> {
    let store: Arc<dyn CheckpointStore> = Arc::clone(store) as _;
    let manager = RecoveryManager::builder()
        .config(RecoveryConfig {
            history_retention: 10_000,
            monitoring_interval: options.monitoring_interval,
            ..RecoveryConfig::default()
        })
        .backoff(
            ExponentialBackoffStrategy::new(BackoffConfig::default())
                .expect("the default backoff config is valid")
                .with_seed(options.seed ^ generation.rotate_left(32)),
        )
        .healing(SelfHealingStrategy::new())
        .checkpoint(
            CheckpointRecoveryStrategy::with_store(store, 10)
                .expect("10 checkpoints is a valid retention")
                .with_codec_on_calling_task(),
        )
        .degradation({
            let s = GracefulDegradationStrategy::new(
                DegradationConfig::default(),
                Arc::new(ResourceMonitor::new()),
            )
            .expect("the default degradation config is valid");
            if options.predictive {
                let base = if options.responsive_prediction {
                    recovery_degradation::predict::TrendConfig::responsive()
                } else {
                    recovery_degradation::predict::TrendConfig::default()
                };
                s.with_prediction(recovery_degradation::predict::TrendConfig {
                    lead_time: options.prediction_lead,
                    ..base
                })
                .expect("the options were checked")
            } else {
                s
            }
        })
        .sampler(SimSampler {
            world: Arc::downgrade(world),
        });
    let manager = if options.faults.wedged > 0.0 {
        manager.strategy(Arc::new(RebuildEntry {
            world: Arc::downgrade(world),
        }))
    } else {
        manager
    };
    let manager = if options.workflows {
        manager.strategy(Arc::new(super::rebuild::timeout_workflow(
            options.seed ^ generation.rotate_left(48),
        )))
    } else {
        manager
    };
    let manager = if options.learned_order {
        // What the coordinator before knew is kept across the restart, as a deployment that
        // keeps its statistics' `learned_order` would.
        manager
            .learned_order(LearningConfig {
                seed: options.seed ^ generation.rotate_left(17),
                ..LearningConfig::default()
            })
            .learned_evidence(evidence)
    } else {
        manager
    };
    Arc::new(manager.build().expect("a valid config"))
}

fn config(options: &SimOptions) -> SwarmConfig {
    SwarmConfig {
        max_agents: 4096,
        max_parallel_tasks: options.run_limit(),
        task_timeout_secs: 60,
        heartbeat_timeout_secs: 30,
        finished_retention: 64,
        outcome_log: 256,
        ..SwarmConfig::default()
    }
}

fn coordinator_options(options: &SimOptions, generation: u64) -> CoordinatorOptions {
    let mut o = CoordinatorOptions::default();
    o.id_seed = Some(
        options
            .seed
            .wrapping_add(generation.wrapping_mul(0x9E37_79B9)),
    );
    o.check_invariants = true;
    if options.breakers {
        o.breaker = Some(recovery_breaker::BreakerConfig {
            seed: options.seed ^ generation,
            ..recovery_breaker::BreakerConfig::default()
        });
    }
    o
}

impl Sim {
    pub(crate) async fn new(options: SimOptions) -> Self {
        let started = Instant::now();
        let world = World::new(Trace::new(options.until_event));
        let store = Arc::new(FlakyStore::default());
        let executor = Arc::new(SimExecutor {
            world: Arc::clone(&world),
            hang: Duration::from_secs(3600),
        });
        let m = manager(&options, &store, &world, 0, Vec::new());
        let coordinator = SwarmCoordinator::with_options(
            config(&options),
            executor,
            Arc::clone(&m),
            coordinator_options(&options, 0),
        )
        .expect("the simulation's config is valid");
        world.lock().coordinator = Arc::downgrade(&coordinator);
        m.start_monitoring().await;
        let rng = Xoshiro256PlusPlus::seed_from_u64(options.seed);
        for i in 0..options.agents {
            let gpu = i % 4 == 0;
            let name = format!("agent-{i}");
            let caps: &[&str] = if gpu { &["cpu", "gpu"] } else { &["cpu"] };
            let id = coordinator
                .register_agent(AgentSpec::new(name.clone(), caps.iter().copied()))
                .expect("room for the agents");
            world.lock().agents.push(SimAgent {
                name,
                id,
                gpu,
                down_until: None,
                silent_until: None,
                broken_until: None,
                present: true,
                crashed: Arc::new(tokio::sync::Notify::new()),
            });
        }
        // A deployment checkpoints once it is up, so that there is always one to go back to.
        coordinator
            .create_checkpoint()
            .await
            .expect("the memory store takes the first checkpoint");
        let mut fault_rng = Xoshiro256PlusPlus::seed_from_u64(options.seed ^ 0x5EED_FA17_0000_0000);
        let faults = FaultClock::new(&options.faults, &mut fault_rng);
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            levels: Levels::new(started),
            options,
            started,
            world,
            store,
            rng,
            fault_rng,
            coordinator,
            generation: 0,
            clients: BTreeMap::new(),
            next_client: 0,
            tx,
            rx,
            faults,
            statistics: Vec::new(),
            breakers: recovery_breaker::BreakerStats::default(),
            invariant_checks: 0,
            counts: BTreeMap::new(),
            outage_gpu: None,
            silent_since: BTreeMap::new(),
            wave_since: None,
            work: Work::default(),
            ticks: 0,
            joins_due: Vec::new(),
            resubmits: BTreeMap::new(),
            failed_by: BTreeMap::new(),
            timeline: crate::timeline::Timeline::new(
                SAMPLE_EVERY_TICKS as f64 * MAINTAIN_EVERY.as_secs_f64(),
            ),
            recoveries_before: BTreeMap::new(),
        }
    }

    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.started)
    }

    /// Record an event; `false` if the run must stop instead.
    fn event(&self, what: impl AsRef<str>) -> bool {
        let at = self.now();
        self.world.lock().trace.record(at, what.as_ref())
    }

    fn count(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }

    /// Run to the end (or to a stop) and report.
    pub(crate) async fn run(mut self) -> SimReport {
        let end = self.started + self.options.duration();
        let mut next_arrival = self.started + self.inter_arrival();
        let mut next_heartbeat = self.started + HEARTBEAT_EVERY;
        let mut next_maintain = self.started + MAINTAIN_EVERY;
        // After the end, callers still running get the longest a recovery may take.
        let drain = end + config(&self.options).recovery_time_limit() * 2;
        loop {
            let arrivals_open = next_arrival < end;
            let fault = self.faults.next().filter(|(at, _)| *at < end);
            let mut wake = next_heartbeat.min(next_maintain).min(drain);
            if arrivals_open {
                wake = wake.min(next_arrival);
            }
            if let Some((at, _)) = fault {
                wake = wake.min(at);
            }
            let resubmit = self.resubmits.first_key_value().map(|((at, _), _)| *at);
            if let Some(at) = resubmit {
                wake = wake.min(at);
            }
            tokio::select! {
                biased;
                Some(r) = self.rx.recv() => self.returned(r),
                () = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    if now >= drain {
                        break;
                    }
                    if let Some((at, f)) = fault.filter(|(at, _)| *at <= now) {
                        let _ = at;
                        self.faults.advance(f, &mut self.fault_rng);
                        self.fault(f).await;
                    } else if resubmit.is_some_and(|at| at <= now) {
                        self.resubmit();
                    } else if arrivals_open && next_arrival <= now {
                        self.arrive();
                        next_arrival = now + self.inter_arrival();
                    } else if next_heartbeat <= now {
                        self.heartbeats();
                        next_heartbeat = now + HEARTBEAT_EVERY;
                    } else if next_maintain <= now {
                        self.maintain();
                        next_maintain = now + MAINTAIN_EVERY;
                        if self.ticks % SAMPLE_EVERY_TICKS == 0 {
                            self.sample();
                        }
                    }
                }
            }
            if !self.check() {
                break;
            }
            if Instant::now() >= end
                && self.resubmits.is_empty()
                && self.clients.values().all(|c| c.done.is_some())
            {
                break;
            }
        }
        self.finish().await
    }

    /// Add a sample to the timeline (it reads, never changes, what the run does).
    fn sample(&mut self) {
        let mut recoveries = self.recoveries_before.clone();
        for (k, v) in self.coordinator.recovery_manager().attempts_by_strategy() {
            *recoveries.entry(k).or_default() += v;
        }
        let faults = self.world.lock().injected.values().sum();
        self.timeline.push(crate::timeline::Point {
            t: self.now().as_secs_f64(),
            completed: self.counts.get("completed").copied().unwrap_or(0),
            faults,
            recoveries,
            level: self.coordinator.level().as_u8(),
            in_flight: self.coordinator.parallelism().0 as u64,
        });
    }

    fn inter_arrival(&mut self) -> Duration {
        let u: f64 = self.rng.random_range(f64::MIN_POSITIVE..1.0);
        Duration::from_secs_f64(-libm::log(u) / self.options.arrival_rate())
    }

    fn task_length(&mut self) -> Duration {
        // Box-Muller: a standard normal from two uniforms.
        let u1: f64 = self.rng.random_range(f64::MIN_POSITIVE..1.0);
        let u2: f64 = self.rng.random();
        let z = (-2.0 * libm::log(u1)).sqrt() * libm::cos(2.0 * std::f64::consts::PI * u2);
        self.options
            .median_task
            .mul_f64(libm::exp(self.options.task_sigma * z))
            .max(Duration::from_millis(1))
    }
}

impl Sim {
    /// Add the current coordinator's breaker counts to those of the coordinators before it.
    pub(super) fn count_breakers(&mut self) {
        if let Some(b) = self.coordinator.breaker_stats() {
            let t = &mut self.breakers;
            t.opened += b.opened;
            t.reopened += b.reopened;
            t.closed += b.closed;
            t.cap_reached += b.cap_reached;
            t.rejected += b.rejected;
        }
    }
}
