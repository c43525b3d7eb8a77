//! Breakers by key (an agent), under one lock: admission hands out a [`Permit`], a half-open
//! breaker hands out one probe permit at a time and gets it back when the permit is dropped, and
//! no more than `max_open_share` of the members (at least one) may be open at once.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};

use crate::breaker::{Admission, Breaker, Outcome, State, Transition, open_time};
use crate::config::{BreakerConfig, BreakerConfigError};

/// Counter: breaker transitions, labelled `to` (`open`, `half_open`, `closed`, `cap_reached`).
pub const TRANSITIONS: &str = "swarm_recovery_breaker_transitions_total";
/// Gauge: breakers open or half-open now.
pub const OPEN: &str = "swarm_recovery_breakers_open";

struct Inner<K> {
    breakers: HashMap<K, Breaker>,
    /// Open or half-open breakers.
    ejected: usize,
    rng: Xoshiro256PlusPlus,
    stats: BreakerStats,
}

/// What a set did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BreakerStats {
    /// Breakers that opened (from closed).
    pub opened: u64,
    /// Probes that failed (the breaker opened again).
    pub reopened: u64,
    /// Probes that succeeded (the breaker closed).
    pub closed: u64,
    /// Opens the cap refused.
    pub cap_reached: u64,
    /// Calls refused.
    pub rejected: u64,
    /// Open or half-open now.
    pub open_now: u64,
}

/// Why a call may not go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The key has no breaker in the set.
    Unknown,
    /// Its breaker is open, or half-open with its probe out.
    Open,
}

/// Breakers by key, sharing a config and a cap.
pub struct BreakerSet<K> {
    config: BreakerConfig,
    inner: Mutex<Inner<K>>,
}

impl<K> Debug for BreakerSet<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerSet")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A call admitted by a set: report its outcome with [`Permit::record`]. A probe's permit that
/// is dropped unrecorded gives the probe back, so the breaker lets the next one through.
#[must_use = "an admitted call should record its outcome"]
pub struct Permit<K: Hash + Eq + Clone + Debug> {
    set: Arc<BreakerSet<K>>,
    key: K,
    admitted: Admission,
    done: bool,
}

impl<K: Hash + Eq + Clone + Debug> Permit<K> {
    /// Whether this is a half-open breaker's probe.
    pub fn is_probe(&self) -> bool {
        self.admitted == Admission::Probe
    }

    /// Record how the call ended, at `now`.
    pub fn record(mut self, outcome: Outcome, now: Instant) -> Transition {
        self.done = true;
        self.set.record(&self.key, self.admitted, outcome, now)
    }
}

impl<K: Hash + Eq + Clone + Debug> Drop for Permit<K> {
    fn drop(&mut self) {
        if !self.done && self.admitted == Admission::Probe {
            let mut inner = self.set.lock();
            if let Some(b) = inner.breakers.get_mut(&self.key) {
                b.release_probe();
            }
        }
    }
}

impl<K: Hash + Eq + Clone + Debug> BreakerSet<K> {
    /// An empty set with `config`.
    ///
    /// # Errors
    ///
    /// The config's first bad field.
    pub fn new(config: BreakerConfig) -> Result<Arc<Self>, BreakerConfigError> {
        config.validate()?;
        Ok(Arc::new(Self {
            inner: Mutex::new(Inner {
                breakers: HashMap::new(),
                ejected: 0,
                rng: Xoshiro256PlusPlus::seed_from_u64(config.seed),
                stats: BreakerStats::default(),
            }),
            config,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Inner<K>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The config.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Add a member with a closed breaker (no change if it is one).
    pub fn insert(&self, key: K) {
        self.lock().breakers.entry(key).or_default();
    }

    /// Remove a member.
    pub fn remove(&self, key: &K) {
        let mut inner = self.lock();
        if inner.breakers.remove(key).is_some_and(|b| b.is_ejected()) {
            inner.ejected -= 1;
        }
    }

    /// How many open or half-open breakers the cap allows: `max_open_share` of the members,
    /// rounded down, and at least one.
    fn cap(&self, members: usize) -> usize {
        ((members as f64 * self.config.max_open_share).floor() as usize).max(1)
    }

    /// Ask to call `key` at `now`.
    ///
    /// # Errors
    ///
    /// [`Refusal`]: the key is not a member, or its breaker refuses.
    pub fn try_acquire(self: &Arc<Self>, key: &K, now: Instant) -> Result<Permit<K>, Refusal> {
        let mut inner = self.lock();
        let Some(b) = inner.breakers.get_mut(key) else {
            return Err(Refusal::Unknown);
        };
        let was = b.state(now);
        let admitted = b.admit(now);
        if admitted == Admission::Rejected {
            inner.stats.rejected += 1;
            return Err(Refusal::Open);
        }
        if was == State::HalfOpen && admitted == Admission::Probe {
            tracing::debug!(target: "recovery_breaker", key = ?key, "half-open: one probe let through");
            metrics::counter!(TRANSITIONS, "to" => "half_open").increment(1);
        }
        Ok(Permit {
            set: Arc::clone(self),
            key: key.clone(),
            admitted,
            done: false,
        })
    }

    fn record(&self, key: &K, admitted: Admission, outcome: Outcome, now: Instant) -> Transition {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let members = inner.breakers.len();
        let may_open = inner.ejected < self.cap(members);
        let Some(b) = inner.breakers.get_mut(key) else {
            return Transition::Stayed;
        };
        let rng = &mut inner.rng;
        let config = &self.config;
        let mut draw = |opens: u32| {
            let unit = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
            open_time(config, opens, unit)
        };
        let t = b.record(admitted, outcome, now, config, may_open, &mut draw);
        match t {
            Transition::Opened { until } => {
                inner.ejected += 1;
                inner.stats.opened += 1;
                tracing::warn!(target: "recovery_breaker", key = ?key, open_for = ?until.saturating_duration_since(now), "breaker opened");
                metrics::counter!(TRANSITIONS, "to" => "open").increment(1);
            }
            Transition::Reopened { until } => {
                inner.stats.reopened += 1;
                tracing::warn!(target: "recovery_breaker", key = ?key, open_for = ?until.saturating_duration_since(now), "probe failed: breaker open again");
                metrics::counter!(TRANSITIONS, "to" => "open").increment(1);
            }
            Transition::Closed => {
                inner.ejected -= 1;
                inner.stats.closed += 1;
                tracing::info!(target: "recovery_breaker", key = ?key, "probe succeeded: breaker closed");
                metrics::counter!(TRANSITIONS, "to" => "closed").increment(1);
            }
            Transition::CapReached => {
                inner.stats.cap_reached += 1;
                tracing::warn!(target: "recovery_breaker", key = ?key, open = inner.ejected, "breaker would open, but the share of open breakers is at its cap");
                metrics::counter!(TRANSITIONS, "to" => "cap_reached").increment(1);
            }
            Transition::Stayed => {}
        }
        metrics::gauge!(OPEN).set(inner.ejected as f64);
        t
    }

    /// Whether `key`'s breaker would refuse a call at `now` (for a pick that skips it).
    pub fn refuses(&self, key: &K, now: Instant) -> bool {
        self.lock()
            .breakers
            .get(key)
            .is_some_and(|b| match b.state(now) {
                State::Closed => false,
                State::Open { .. } => true,
                State::HalfOpen => b.probe_out(),
            })
    }

    /// Where `key`'s breaker stands at `now`.
    pub fn state(&self, key: &K, now: Instant) -> Option<State> {
        self.lock().breakers.get(key).map(|b| b.state(now))
    }

    /// What the set did so far.
    pub fn stats(&self) -> BreakerStats {
        let inner = self.lock();
        BreakerStats {
            open_now: inner.ejected as u64,
            ..inner.stats
        }
    }
}
