//! The learned strategy order: it only ever orders strategies that can handle the error (also
//! with many callers at once on a multi-thread runtime), tries each of them at most once per
//! recovery, and learns to go first with the strategy that works.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use recovery_core::{
    ErrorKind, RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy, StrategyInfo,
    SwarmError, async_trait,
};
use recovery_manager::{LearningConfig, NO_STRATEGY, RecoveryConfig, RecoveryManager};

/// Handles `handles`; recovers the kinds in `works` (always) and no other.
struct Kinds {
    id: String,
    cost: f64,
    handles: BTreeSet<ErrorKind>,
    works: BTreeSet<ErrorKind>,
    /// Calls for an error it said it cannot handle: must stay 0.
    wrong_calls: AtomicU64,
}

impl Kinds {
    fn new(
        id: impl Into<String>,
        cost: f64,
        handles: BTreeSet<ErrorKind>,
        works: BTreeSet<ErrorKind>,
    ) -> Arc<Self> {
        Arc::new(Self {
            id: id.into(),
            cost,
            handles,
            works,
            wrong_calls: AtomicU64::new(0),
        })
    }
}

#[async_trait]
impl StrategyInfo for Kinds {
    fn strategy_id(&self) -> &str {
        &self.id
    }
    fn description(&self) -> &str {
        "recovers the kinds it is told"
    }
    async fn can_handle(&self, error: &SwarmError) -> bool {
        self.handles.contains(&error.kind())
    }
    async fn cost_estimate(&self) -> f64 {
        self.cost
    }
    async fn requires_external_resources(&self) -> bool {
        false
    }
}

#[async_trait]
impl RecoveryStrategy<()> for Kinds {
    async fn recover(&self, _: &RecoveryContext<()>, error: &SwarmError) -> RecoveryResult {
        if !self.handles.contains(&error.kind()) {
            self.wrong_calls.fetch_add(1, Ordering::Relaxed);
        }
        // Yield, so that callers interleave on the runtime's threads.
        tokio::task::yield_now().await;
        if self.works.contains(&error.kind()) {
            RecoveryResult::success(RecoveryAction::Custom(self.id.clone()), "worked")
        } else {
            RecoveryResult::failure(RecoveryAction::None, "did not work")
        }
    }
}

const KINDS: [ErrorKind; 5] = [
    ErrorKind::CommunicationError,
    ErrorKind::CoordinationTimeout,
    ErrorKind::TransactionFailed,
    ErrorKind::Storage,
    ErrorKind::ResourceConflict,
];

fn error(kind: ErrorKind) -> SwarmError {
    match kind {
        ErrorKind::CommunicationError => SwarmError::CommunicationError("x".into()),
        ErrorKind::CoordinationTimeout => SwarmError::CoordinationTimeout("x".into()),
        ErrorKind::TransactionFailed => SwarmError::TransactionFailed("x".into()),
        ErrorKind::Storage => SwarmError::Storage("x".into()),
        _ => SwarmError::ResourceConflict("x".into()),
    }
}

fn kinds(mask: u8) -> BTreeSet<ErrorKind> {
    KINDS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, k)| *k)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random strategies (what they handle, what they recover, their cost), 8 callers on a
    /// 4-thread runtime recovering random kinds. Against the model: a recovery tries only
    /// strategies that handle its kind, each at most once, stops at the first that works, and
    /// tries them all when none does; a kind nobody handles runs none.
    #[test]
    fn never_orders_a_strategy_that_cannot_handle_the_error(
        specs in prop::collection::vec((0u8..32, 0u8..32, 1u32..10), 1..5),
        calls in prop::collection::vec((0usize..8, 0usize..5), 1..200),
        seed in any::<u64>(),
    ) {
        let strategies: Vec<Arc<Kinds>> = specs
            .iter()
            .enumerate()
            .map(|(i, &(handles, works, cost))| {
                let handles = kinds(handles);
                let works = kinds(works).intersection(&handles).copied().collect();
                Kinds::new(format!("s{i}"), f64::from(cost) / 10.0, handles, works)
            })
            .collect();
        let mut builder = RecoveryManager::<()>::builder()
            .config(RecoveryConfig { history_retention: 10_000, max_concurrent_recoveries: 4, ..RecoveryConfig::default() })
            .learned_order(LearningConfig { seed, ..LearningConfig::default() });
        for s in &strategies {
            builder = builder.strategy(Arc::clone(s) as Arc<dyn RecoveryStrategy<()>>);
        }
        let manager = Arc::new(builder.build().unwrap());
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).build().unwrap();
        runtime.block_on(async {
            let mut callers = tokio::task::JoinSet::new();
            for caller in 0..8 {
                let mine: Vec<ErrorKind> = calls.iter().filter(|(c, _)| *c == caller).map(|(_, k)| KINDS[*k]).collect();
                let manager = Arc::clone(&manager);
                callers.spawn(async move {
                    for kind in mine {
                        manager.recover(Arc::new(()), error(kind), None, None).await.unwrap();
                    }
                });
            }
            while let Some(joined) = callers.join_next().await {
                joined.unwrap();
            }
        });
        for s in &strategies {
            prop_assert_eq!(s.wrong_calls.load(Ordering::Relaxed), 0, "{} was run for a kind it cannot handle", s.id);
        }
        let by_id: BTreeMap<&str, &Kinds> = strategies.iter().map(|s| (s.id.as_str(), &**s)).collect();
        let history = runtime.block_on(manager.get_recovery_history());
        prop_assert_eq!(history.len() >= calls.len(), true);
        let mut recoveries: BTreeMap<uuid::Uuid, Vec<&str>> = BTreeMap::new();
        for a in &history {
            recoveries.entry(a.recovery_id).or_default().push(&a.strategy_id);
        }
        prop_assert_eq!(recoveries.len(), calls.len());
        for a in &history {
            let kind = a.error_kind();
            let tried = &recoveries[&a.recovery_id];
            let handling: BTreeSet<&str> = strategies.iter().filter(|s| s.handles.contains(&kind)).map(|s| s.id.as_str()).collect();
            if handling.is_empty() {
                prop_assert_eq!(tried, &vec![NO_STRATEGY]);
                continue;
            }
            let distinct: BTreeSet<&str> = tried.iter().copied().collect();
            prop_assert_eq!(distinct.len(), tried.len(), "a strategy ran twice in one recovery: {:?}", tried);
            prop_assert!(distinct.is_subset(&handling), "{:?} not within {:?}", tried, handling);
            let worked: Vec<&str> = tried.iter().copied().filter(|id| by_id[id].works.contains(&kind)).collect();
            match worked.as_slice() {
                // None worked: all were tried.
                [] => prop_assert_eq!(&distinct, &handling),
                // The one that worked was the last tried.
                [one] => prop_assert_eq!(tried.last(), Some(one)),
                more => prop_assert!(false, "went on after a success: {:?}", more),
            }
        }
    }
}

/// The cheapest strategy never recovers `TransactionFailed`; a dearer one does. With the
/// learned order the dearer one goes first after a short warm-up; communication errors, which
/// the cheapest recovers, keep it first; the estimates are in the statistics.
#[tokio::test]
async fn learns_to_pass_over_a_strategy_that_never_works_for_one_kind() {
    let cheap = Kinds::new(
        "retry",
        0.1,
        kinds(0b111),
        [
            ErrorKind::CommunicationError,
            ErrorKind::CoordinationTimeout,
        ]
        .into(),
    );
    let dear = Kinds::new("restart", 0.3, kinds(0b111), kinds(0b111));
    let build = |learn: bool| {
        let b = RecoveryManager::<()>::builder()
            .config(RecoveryConfig {
                history_retention: 10_000,
                ..RecoveryConfig::default()
            })
            .strategy(Arc::clone(&cheap) as Arc<dyn RecoveryStrategy<()>>)
            .strategy(Arc::clone(&dear) as Arc<dyn RecoveryStrategy<()>>);
        if learn {
            b.learned_order(LearningConfig {
                seed: 9,
                ..LearningConfig::default()
            })
        } else {
            b
        }
        .build()
        .unwrap()
    };
    for learn in [false, true] {
        let manager = build(learn);
        for i in 0..400 {
            let kind = if i % 4 == 0 {
                ErrorKind::TransactionFailed
            } else {
                ErrorKind::CommunicationError
            };
            let r = manager
                .recover(Arc::new(()), error(kind), None, None)
                .await
                .unwrap();
            assert!(r.success);
        }
        let stats = manager.statistics().await;
        let tx = &stats.time_to_recovery[&ErrorKind::TransactionFailed];
        let comm = &stats.time_to_recovery[&ErrorKind::CommunicationError];
        assert_eq!((tx.recoveries, tx.recovered), (100, 100));
        let first = |t: &recovery_manager::RecoveryTimes, id: &str| {
            t.first_strategy.get(id).copied().unwrap_or(0)
        };
        if learn {
            assert!(first(tx, "restart") >= 90, "{:?}", tx.first_strategy);
            assert!(first(comm, "retry") >= 295, "{:?}", comm.first_strategy);
            let e = stats
                .learned_order
                .iter()
                .find(|e| e.error_kind == ErrorKind::TransactionFailed && e.strategy_id == "retry")
                .expect("an estimate for retry on TransactionFailed");
            assert!(e.mean < 0.2, "{e:?}");
        } else {
            assert_eq!(first(tx, "retry"), 100);
            assert_eq!(first(comm, "retry"), 300);
            assert!(stats.learned_order.is_empty());
        }
    }
}

/// Evidence kept across restarts: a chain of managers, each built from what the one before
/// knew, stops paying the warm-up; fresh managers pay it every time. Bad evidence, and
/// evidence for a fixed order, are refused with the field named.
#[tokio::test]
async fn evidence_carried_across_restarts_skips_the_warm_up() {
    let cheap = Kinds::new(
        "retry",
        0.1,
        kinds(0b111),
        [ErrorKind::CommunicationError].into(),
    );
    let dear = Kinds::new("restart", 0.3, kinds(0b111), kinds(0b111));
    let build = |generation: u64, evidence: Vec<recovery_manager::LearnedEstimate>| {
        RecoveryManager::<()>::builder()
            .strategy(Arc::clone(&cheap) as Arc<dyn RecoveryStrategy<()>>)
            .strategy(Arc::clone(&dear) as Arc<dyn RecoveryStrategy<()>>)
            .learned_order(LearningConfig {
                seed: generation,
                ..LearningConfig::default()
            })
            .learned_evidence(evidence)
            .build()
            .unwrap()
    };
    // Eight restarts of 20 recoveries each; count the wasted tries of `retry` on
    // TransactionFailed after the first generation.
    let mut wasted = BTreeMap::new();
    for carry in [false, true] {
        let mut kept = Vec::new();
        let mut n = 0;
        for generation in 0..8 {
            let manager = build(generation, if carry { kept.clone() } else { Vec::new() });
            for _ in 0..20 {
                let r = manager
                    .recover(
                        Arc::new(()),
                        error(ErrorKind::TransactionFailed),
                        None,
                        None,
                    )
                    .await
                    .unwrap();
                assert!(r.success);
            }
            let stats = manager.statistics().await;
            if generation > 0 {
                n += stats.by_strategy.get("retry").map_or(0, |s| s.attempts);
            }
            kept = stats.learned_order;
        }
        wasted.insert(carry, n);
    }
    assert!(
        wasted[&true] * 3 <= wasted[&false],
        "tries of the strategy that never works after the first restart: {wasted:?}"
    );

    let bad = recovery_manager::LearnedEstimate {
        error_kind: ErrorKind::Storage,
        strategy_id: "retry".into(),
        successes: f64::NAN,
        failures: 1.0,
        mean: 0.5,
        observations: 1,
        ranked_first: 0,
    };
    let e = RecoveryManager::<()>::builder()
        .learned_order(LearningConfig::default())
        .learned_evidence(vec![bad.clone()])
        .build()
        .err()
        .expect("NaN evidence is refused");
    assert_eq!(e.field, "learning.evidence");
    assert!(e.problem.contains("`successes` of `retry`"), "{e}");
    let e = RecoveryManager::<()>::builder()
        .learned_evidence(vec![bad])
        .build()
        .err()
        .expect("evidence for a fixed order is refused");
    assert_eq!(e.field, "learning.evidence");
    assert!(e.problem.contains("learned_order"), "{e}");
}
