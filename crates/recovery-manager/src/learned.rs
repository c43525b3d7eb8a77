//! The learned strategy order: per error kind and strategy, a Beta posterior of the chance that
//! the strategy recovers, and candidates ordered by expected cost to recovery, explored by
//! Thompson sampling.
//!
//! The fixed order runs the applicable strategies by ascending `cost_estimate`. That is the
//! best order only if every strategy works as often as every other. When the cheapest one
//! never works for some error kind, every recovery of that kind pays for it first. Ordering by
//! `cost / P(success)` minimises the expected cost of a sequential search. The learned order
//! draws `P(success)` from each strategy's posterior (Thompson sampling) instead of using its
//! mean: a strategy with little evidence is still tried now and then, and one that has earned
//! its place keeps it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use rand::SeedableRng;
use rand_distr::{Beta, Distribution};
use rand_xoshiro::Xoshiro256PlusPlus;
use recovery_core::ErrorKind;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// The `[learning]` section: how the learned order weighs its evidence.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `seed` | 0 | seed of the Thompson draws: the same seed and the same outcomes give the same orders |
/// | `decay` | 0.98 | each new outcome of a strategy for a kind keeps this share of the earlier evidence (0.98 weighs about the last 50) |
/// | `prior_successes` | 1 | pseudo-successes before any evidence |
/// | `prior_failures` | 1 | pseudo-failures before any evidence |
///
/// ```
/// use recovery_manager::LearningConfig;
///
/// let config: LearningConfig = toml::from_str("seed = 7\ndecay = 0.99").unwrap();
/// assert_eq!(config.seed, 7);
/// config.validate().unwrap();
/// assert!(LearningConfig { decay: 1.5, ..config }.validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LearningConfig {
    /// Seed of the draws.
    pub seed: u64,
    /// The share of earlier evidence each new outcome keeps, in `(0, 1]` (1 never forgets).
    pub decay: f64,
    /// Pseudo-successes before any evidence (the Beta prior's alpha), above 0.
    pub prior_successes: f64,
    /// Pseudo-failures before any evidence (the Beta prior's beta), above 0.
    pub prior_failures: f64,
}

impl Default for LearningConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            decay: 0.98,
            prior_successes: 1.0,
            prior_failures: 1.0,
        }
    }
}

/// A [`LearningConfig`] value out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid learning config: `{field}` {problem}")]
pub struct InvalidLearningConfig {
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl LearningConfig {
    /// Check every field.
    ///
    /// # Errors
    ///
    /// [`InvalidLearningConfig`] naming the field.
    pub fn validate(&self) -> Result<(), InvalidLearningConfig> {
        if !(self.decay > 0.0 && self.decay <= 1.0) {
            return Err(InvalidLearningConfig {
                field: "decay",
                problem: format!(
                    "is {}; it must be within (0, 1] (1 never forgets, 0.98 weighs about the last 50 outcomes)",
                    self.decay
                ),
            });
        }
        for (field, v) in [
            ("prior_successes", self.prior_successes),
            ("prior_failures", self.prior_failures),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 1e6) {
                return Err(InvalidLearningConfig {
                    field,
                    problem: format!("is {v}; it must be above 0 and at most 1000000"),
                });
            }
        }
        Ok(())
    }
}

/// What the learned order knows of one strategy for one error kind (in
/// [`RecoveryStatistics::learned_order`](crate::RecoveryStatistics::learned_order)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnedEstimate {
    /// The error kind.
    pub error_kind: ErrorKind,
    /// The strategy.
    pub strategy_id: String,
    /// Decayed successes observed (without the prior).
    pub successes: f64,
    /// Decayed failures observed (without the prior).
    pub failures: f64,
    /// The posterior mean of the chance that the strategy recovers this kind.
    pub mean: f64,
    /// Outcomes observed in all.
    pub observations: u64,
    /// How often it was put first.
    pub ranked_first: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Posterior {
    successes: f64,
    failures: f64,
    observations: u64,
    ranked_first: u64,
}

#[derive(Debug)]
struct State {
    rng: Xoshiro256PlusPlus,
    posteriors: BTreeMap<ErrorKind, BTreeMap<Arc<str>, Posterior>>,
}

/// The learned order: posteriors and the seeded generator, behind one lock held only to
/// draw or to update (never across an await).
#[derive(Debug)]
pub(crate) struct LearnedOrder {
    config: LearningConfig,
    state: Mutex<State>,
}

/// The indices of the candidates, in the order to try them.
pub(crate) type Order = SmallVec<[usize; 4]>;

/// A candidate to order: its id and its cost estimate.
pub(crate) struct Candidate<'a> {
    pub(crate) id: &'a Arc<str>,
    pub(crate) cost: f64,
}

impl LearnedOrder {
    /// A learned order with `config` (already checked).
    pub(crate) fn new(config: LearningConfig) -> Self {
        Self {
            state: Mutex::new(State {
                rng: Xoshiro256PlusPlus::seed_from_u64(config.seed),
                posteriors: BTreeMap::new(),
            }),
            config,
        }
    }

    /// A learned order with `config` (already checked) that starts from `evidence`, what an
    /// earlier manager's order knew ([`RecoveryStatistics::learned_order`]), instead of the
    /// prior alone.
    ///
    /// [`RecoveryStatistics::learned_order`]: crate::RecoveryStatistics::learned_order
    pub(crate) fn with_evidence(
        config: LearningConfig,
        evidence: &[LearnedEstimate],
    ) -> Result<Self, InvalidLearningConfig> {
        let order = Self::new(config);
        {
            let mut state = order.lock();
            for e in evidence {
                for (what, v) in [("successes", e.successes), ("failures", e.failures)] {
                    if !(v.is_finite() && v >= 0.0) {
                        return Err(InvalidLearningConfig {
                            field: "evidence",
                            problem: format!(
                                "`{what}` of `{}` for {} is {v}; it must be a finite number of at least 0",
                                e.strategy_id, e.error_kind
                            ),
                        });
                    }
                }
                let p = state
                    .posteriors
                    .entry(e.error_kind)
                    .or_default()
                    .entry(Arc::from(e.strategy_id.as_str()))
                    .or_default();
                p.successes += e.successes;
                p.failures += e.failures;
                p.observations += e.observations;
                p.ranked_first += e.ranked_first;
            }
        }
        Ok(order)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The order in which to try `candidates` (all of which can handle the error) for an
    /// error of `kind`: their indices, by ascending `cost / p`, `p` drawn from each
    /// strategy's posterior (ties keep the given order). A permutation of the indices: it
    /// never adds a candidate.
    pub(crate) fn rank(&self, kind: ErrorKind, candidates: &[Candidate<'_>]) -> Order {
        let mut state = self.lock();
        let State { rng, posteriors } = &mut *state;
        let of_kind = posteriors.entry(kind).or_default();
        if let [only] = candidates {
            // Nothing to order: no draw.
            of_kind.entry(Arc::clone(only.id)).or_default().ranked_first += 1;
            return Order::from_slice(&[0]);
        }
        let mut keyed: SmallVec<[(f64, usize); 4]> = candidates
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let p = of_kind.get(&**c.id).copied().unwrap_or_default();
                let alpha = self.config.prior_successes + p.successes;
                let beta = self.config.prior_failures + p.failures;
                // Both parameters are positive and finite (checked config, decayed sums).
                let drawn =
                    Beta::new(alpha, beta).map_or(alpha / (alpha + beta), |d| d.sample(rng));
                (c.cost.max(0.0) / drawn.max(1e-9), i)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
        if let Some(&(_, first)) = keyed.first() {
            of_kind
                .entry(Arc::clone(candidates[first].id))
                .or_default()
                .ranked_first += 1;
        }
        keyed.into_iter().map(|(_, i)| i).collect()
    }

    /// Count one outcome of `strategy` for `kind`: the earlier evidence decays, then this
    /// outcome is added.
    pub(crate) fn observe(&self, kind: ErrorKind, strategy: &Arc<str>, recovered: bool) {
        let decay = self.config.decay;
        let mut state = self.lock();
        let p = state
            .posteriors
            .entry(kind)
            .or_default()
            .entry(Arc::clone(strategy))
            .or_default();
        p.successes *= decay;
        p.failures *= decay;
        if recovered {
            p.successes += 1.0;
        } else {
            p.failures += 1.0;
        }
        p.observations += 1;
    }

    /// Forget a strategy that was removed.
    pub(crate) fn forget(&self, strategy: &str) {
        for of_kind in self.lock().posteriors.values_mut() {
            of_kind.remove(strategy);
        }
    }

    /// What it knows, by kind then strategy.
    pub(crate) fn estimates(&self) -> Vec<LearnedEstimate> {
        let state = self.lock();
        let (a0, b0) = (self.config.prior_successes, self.config.prior_failures);
        state
            .posteriors
            .iter()
            .flat_map(|(kind, of_kind)| {
                of_kind.iter().map(move |(id, p)| LearnedEstimate {
                    error_kind: *kind,
                    strategy_id: id.to_string(),
                    successes: p.successes,
                    failures: p.failures,
                    mean: (a0 + p.successes) / (a0 + b0 + p.successes + p.failures),
                    observations: p.observations,
                    ranked_first: p.ranked_first,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<Arc<str>> {
        names.iter().map(|n| Arc::from(*n)).collect()
    }

    fn candidates<'a>(ids: &'a [Arc<str>], costs: &[f64]) -> Vec<Candidate<'a>> {
        ids.iter()
            .zip(costs)
            .map(|(id, &cost)| Candidate { id, cost })
            .collect()
    }

    /// With no evidence the draws are uniform, so the cheaper of two strategies a tenth of
    /// the other's cost comes first in about 95 % of the orders (`P(0.1/U1 < 1/U2)`).
    #[test]
    fn without_evidence_cost_decides_mostly() {
        let order = LearnedOrder::new(LearningConfig::default());
        let ids = ids(&["cheap", "dear"]);
        let c = candidates(&ids, &[0.1, 1.0]);
        let cheap_first = (0..10_000)
            .filter(|_| order.rank(ErrorKind::CommunicationError, &c)[0] == 0)
            .count();
        assert!((9_300..=9_700).contains(&cheap_first), "{cheap_first}");
    }

    #[test]
    fn a_strategy_that_never_works_is_passed_over() {
        let order = LearnedOrder::new(LearningConfig::default());
        let ids = ids(&["cheap", "dear"]);
        let kind = ErrorKind::TransactionFailed;
        for _ in 0..20 {
            order.observe(kind, &ids[0], false);
            order.observe(kind, &ids[1], true);
        }
        let c = candidates(&ids, &[0.1, 0.3]);
        let dear_first = (0..1_000).filter(|_| order.rank(kind, &c)[0] == 1).count();
        assert!(dear_first > 990, "{dear_first}");
        // Another kind is untouched.
        let cheap_first = (0..1_000)
            .filter(|_| order.rank(ErrorKind::CommunicationError, &c)[0] == 0)
            .count();
        assert!(cheap_first > 700, "{cheap_first}");
    }

    #[test]
    fn decay_forgets_old_evidence() {
        let order = LearnedOrder::new(LearningConfig {
            decay: 0.9,
            ..LearningConfig::default()
        });
        let id: Arc<str> = Arc::from("s");
        for _ in 0..100 {
            order.observe(ErrorKind::Storage, &id, true);
        }
        for _ in 0..30 {
            order.observe(ErrorKind::Storage, &id, false);
        }
        let e = &order.estimates()[0];
        assert!(e.mean < 0.15, "{e:?}");
        assert_eq!(e.observations, 130);
        // Without decay the 100 successes would still dominate.
        let keep = LearnedOrder::new(LearningConfig {
            decay: 1.0,
            ..LearningConfig::default()
        });
        for ok in std::iter::repeat_n(true, 100).chain(std::iter::repeat_n(false, 30)) {
            keep.observe(ErrorKind::Storage, &id, ok);
        }
        assert!(keep.estimates()[0].mean > 0.7);
    }

    #[test]
    fn the_same_seed_gives_the_same_orders() {
        let ids = ids(&["a", "b", "c"]);
        let c = candidates(&ids, &[0.1, 0.2, 0.3]);
        let run = |seed| {
            let order = LearnedOrder::new(LearningConfig {
                seed,
                ..LearningConfig::default()
            });
            (0..200)
                .map(|_| order.rank(ErrorKind::Storage, &c))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn config_errors_name_the_field() {
        for (config, field) in [
            (
                LearningConfig {
                    decay: 0.0,
                    ..LearningConfig::default()
                },
                "decay",
            ),
            (
                LearningConfig {
                    prior_failures: f64::NAN,
                    ..LearningConfig::default()
                },
                "prior_failures",
            ),
            (
                LearningConfig {
                    prior_successes: -1.0,
                    ..LearningConfig::default()
                },
                "prior_successes",
            ),
        ] {
            assert_eq!(config.validate().unwrap_err().field, field);
        }
        assert!(toml::from_str::<LearningConfig>("decai = 0.9").is_err());
    }
}
