//! Properties of cooldowns, restart intensity, patterns and patches, checked against a plain
//! reference model on tokio's paused clock.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Counted, FakeTarget};
use proptest::prelude::*;
use recovery_core::{
    ErrorKind, RecoveryAction, RecoveryContext, RecoveryStrategy, StrategyInfo, SwarmError,
};
use recovery_healing::{
    ConfigPatch, ConfigValue, ErrorPattern, HealingAction, HealingRule, RestartIntensity,
    SelfHealingStrategy, Supervisor,
};
use tokio::time::Instant;

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

/// The errors the generated sequences draw from.
fn error(i: u8) -> SwarmError {
    match i % 4 {
        0 => SwarmError::CommunicationError("timeout".into()),
        1 => SwarmError::CommunicationError("reset".into()),
        2 => SwarmError::CoordinationTimeout("slow".into()),
        _ => SwarmError::Storage("disk".into()),
    }
}

/// Four rules; two restart the same component so the intensity is reached across rules.
fn rules(cooldowns: &[u64; 4]) -> Vec<HealingRule> {
    let rule = |id: &str, pattern: &str, action, secs| HealingRule {
        rule_id: id.into(),
        error_pattern: pattern.into(),
        healing_action: action,
        cooldown_duration: Duration::from_millis(secs),
        last_applied: None,
    };
    vec![
        rule(
            "timeout_restart",
            "CommunicationError: timeout",
            HealingAction::RestartComponent("agent_protocol".into()),
            cooldowns[0],
        ),
        rule(
            "comm_config",
            "CommunicationError",
            HealingAction::AdjustConfig(ConfigPatch::new().set("verbose", true)),
            cooldowns[1],
        ),
        rule(
            "slow_restart",
            "CoordinationTimeout",
            HealingAction::RestartComponent("agent_protocol".into()),
            cooldowns[2],
        ),
        rule(
            "disk_restart",
            "Storage",
            HealingAction::RestartComponent("network_manager".into()),
            cooldowns[3],
        ),
    ]
}

/// The plain model: rules tried in order, first out of cooldown claimed, a restart allowed
/// when fewer than R restarts of the component happened in the last T.
struct Model {
    rules: Vec<(ErrorPattern, HealingRule)>,
    last: Vec<Option<Instant>>,
    restarts: HashMap<String, Vec<Instant>>,
    intensity: RestartIntensity,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Healed(String),
    Escalated(String),
    Cooling,
}

impl Model {
    fn recover(&mut self, e: &SwarmError, now: Instant) -> Outcome {
        for (i, (pattern, rule)) in self.rules.iter().enumerate() {
            if !pattern.matches(e) {
                continue;
            }
            if self.last[i].is_some_and(|t| now - t < rule.cooldown_duration) {
                continue;
            }
            self.last[i] = Some(now);
            if let HealingAction::RestartComponent(c) = &rule.healing_action {
                let times = self.restarts.entry(c.clone()).or_default();
                let in_window = times
                    .iter()
                    .filter(|t| now - **t < self.intensity.period)
                    .count();
                if in_window >= self.intensity.max_restarts as usize {
                    return Outcome::Escalated(rule.rule_id.clone());
                }
                times.push(now);
            }
            return Outcome::Healed(rule.rule_id.clone());
        }
        Outcome::Cooling
    }
}

/// At most `max` of the sorted `times` fall in any half-open window of length `period`.
fn at_most_in_any_window(times: &[Instant], max: usize, period: Duration) -> bool {
    times.iter().enumerate().all(|(i, start)| {
        times[i..]
            .iter()
            .take_while(|t| **t - *start < period)
            .count()
            <= max
    })
}

proptest! {
    /// For any sequence of error arrivals over paused time (several at once at some instants):
    /// a rule is never applied twice within its cooldown, a component is never restarted more
    /// than R times in any window of T, and every outcome is the reference model's.
    #[test]
    fn prop_cooldowns_and_restart_intensity_hold(
        cooldowns in prop::array::uniform4(0u64..3_000),
        max_restarts in 0u32..4,
        period_ms in 1u64..5_000,
        arrivals in prop::collection::vec((0u64..2_000, 0u8..4, 1usize..4), 1..40),
    ) {
        let intensity = RestartIntensity::new(max_restarts, Duration::from_millis(period_ms)).unwrap();
        let rt = paused_runtime();
        rt.block_on(async move {
            let target = FakeTarget::lenient();
            let strategy = Arc::new(SelfHealingStrategy::empty().with_restart_intensity(intensity).unwrap());
            let rule_list = rules(&cooldowns);
            strategy.add_healing_rules(rule_list.clone()).await.unwrap();
            let mut model = Model {
                rules: rule_list.iter().map(|r| (r.error_pattern.parse().unwrap(), r.clone())).collect(),
                last: vec![None; rule_list.len()],
                restarts: HashMap::new(),
                intensity,
            };
            let mut applied: BTreeMap<String, Vec<Instant>> = BTreeMap::new();
            let mut restarted: BTreeMap<String, Vec<Instant>> = BTreeMap::new();
            for (wait_ms, which, at_once) in arrivals {
                tokio::time::advance(Duration::from_millis(wait_ms)).await;
                let now = Instant::now();
                let e = error(which);
                let handles: Vec<_> = (0..at_once).map(|_| {
                    let (s, t, e) = (strategy.clone(), target.clone(), e.clone());
                    tokio::spawn(async move { s.recover(&RecoveryContext::new(t), &e).await })
                }).collect();
                let mut got = Vec::new();
                for h in handles {
                    let r = h.await.unwrap();
                    got.push(match &r.action {
                        RecoveryAction::Healed { rule_id, .. } => {
                            assert!(r.success);
                            applied.entry(rule_id.clone()).or_default().push(now);
                            if let Some(HealingAction::RestartComponent(c)) = rule_list.iter().find(|x| &x.rule_id == rule_id).map(|x| &x.healing_action) {
                                restarted.entry(c.clone()).or_default().push(now);
                            }
                            Outcome::Healed(rule_id.clone())
                        }
                        RecoveryAction::Escalated { .. } => Outcome::Escalated(r.metadata["rule_id"].clone()),
                        other => {
                            assert!(!r.success && r.action_taken.contains("cooldown"), "{other:?} {r:?}");
                            Outcome::Cooling
                        }
                    });
                }
                let mut expected: Vec<Outcome> = (0..at_once).map(|_| model.recover(&e, now)).collect();
                got.sort();
                expected.sort();
                assert_eq!(got, expected, "at {:?}", now);
            }
            for rule in &rule_list {
                if let Some(times) = applied.get(&rule.rule_id) {
                    for pair in times.windows(2) {
                        assert!(pair[1] - pair[0] >= rule.cooldown_duration,
                            "rule {} applied {:?} apart, cooldown {:?}", rule.rule_id, pair[1] - pair[0], rule.cooldown_duration);
                    }
                }
            }
            for (component, times) in &restarted {
                assert!(at_most_in_any_window(times, max_restarts as usize, intensity.period),
                    "{component} restarted at {times:?}");
                assert_eq!(target.starts(component) as usize, times.len());
            }
        });
    }

    /// The supervisor alone: any sequence of restart requests (several at once, some while the
    /// component fails to start) never restarts it more than R times in any window of T.
    #[test]
    fn prop_supervisor_never_exceeds_its_intensity(
        max_restarts in 0u32..4,
        period_ms in 1u64..3_000,
        requests in prop::collection::vec((0u64..1_500, 1usize..4, any::<bool>()), 1..40),
    ) {
        let intensity = RestartIntensity::new(max_restarts, Duration::from_millis(period_ms)).unwrap();
        paused_runtime().block_on(async move {
            let supervisor = Arc::new(Supervisor::with_intensity(intensity));
            let component = Arc::new(Counted::default());
            supervisor.register("c", component.clone()).unwrap();
            let mut begun = Vec::new();
            let mut model: Vec<Instant> = Vec::new();
            for (wait_ms, at_once, fail) in requests {
                tokio::time::advance(Duration::from_millis(wait_ms)).await;
                component.fail_start.store(fail, Ordering::SeqCst);
                let now = Instant::now();
                let handles: Vec<_> = (0..at_once).map(|_| {
                    let s = supervisor.clone();
                    tokio::spawn(async move { s.restart("c").await })
                }).collect();
                let mut refused = 0;
                for h in handles {
                    match h.await.unwrap() {
                        Err(recovery_healing::RestartError::IntensityExceeded { .. }) => refused += 1,
                        _ => begun.push(now),
                    }
                }
                let mut expected_refused = 0;
                for _ in 0..at_once {
                    if model.iter().filter(|t| now - **t < intensity.period).count() >= max_restarts as usize {
                        expected_refused += 1;
                    } else {
                        model.push(now);
                    }
                }
                assert_eq!(refused, expected_refused);
            }
            assert!(at_most_in_any_window(&begun, max_restarts as usize, intensity.period));
            assert_eq!(component.stops.load(Ordering::SeqCst) as usize, begun.len());
        });
    }

    /// can_handle answers by pattern and never changes a rule.
    #[test]
    fn prop_can_handle_changes_nothing(which in prop::collection::vec(0u8..4, 1..20)) {
        paused_runtime().block_on(async move {
            let s = SelfHealingStrategy::new();
            s.add_healing_rules(rules(&[100, 100, 100, 100])).await.unwrap();
            let before = s.rules();
            for i in which {
                let e = error(i);
                let expected = before.iter().any(|r| r.error_pattern.parse::<ErrorPattern>().unwrap().matches(&e));
                assert_eq!(s.can_handle(&e).await, expected);
            }
            assert_eq!(s.rules(), before);
        });
    }

    /// A pattern's text form parses back to the same pattern, and it matches exactly the errors
    /// of its kind whose message contains its text, ignoring ASCII case.
    #[test]
    fn prop_patterns_round_trip_and_match_by_kind_and_text(
        kind in prop::sample::select(ErrorKind::ALL.to_vec()),
        text in proptest::option::of("[a-zA-Z0-9 :_-]{0,12}"),
        message in "[a-zA-Z0-9 :_-]{0,24}",
        other in prop::sample::select(ErrorKind::ALL.to_vec()),
    ) {
        let text = text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
        let pattern = ErrorPattern { kind, message_contains: text.clone() };
        prop_assert_eq!(pattern.to_string().parse::<ErrorPattern>().unwrap(), pattern.clone());
        let e = match other {
            ErrorKind::CommunicationError => SwarmError::CommunicationError(message.clone()),
            ErrorKind::CoordinationTimeout => SwarmError::CoordinationTimeout(message.clone()),
            ErrorKind::Storage => SwarmError::Storage(message.clone()),
            _ => SwarmError::StateCorruption(message.clone()),
        };
        let expected = e.kind() == kind
            && text.is_none_or(|t| message.to_ascii_lowercase().contains(&t.to_ascii_lowercase()));
        prop_assert_eq!(pattern.matches(&e), expected);
    }

    /// A patch with any bad key or value changes nothing; a good one changes exactly its keys.
    #[test]
    fn prop_config_patches_are_all_or_nothing(
        entries in prop::collection::btree_map(
            prop::sample::select(vec!["task_timeout_secs", "max_agents", "verbose", "unknown"]),
            prop_oneof![
                (-10i64..5_000).prop_map(ConfigValue::Integer),
                any::<bool>().prop_map(ConfigValue::Bool),
                Just(ConfigValue::from("text")),
            ],
            1..4,
        ),
    ) {
        let target = FakeTarget::new(RestartIntensity::default());
        let before = target.config.snapshot();
        let patch = ConfigPatch(entries.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect());
        let valid = entries.iter().all(|(k, v)| match (*k, v) {
            ("task_timeout_secs", ConfigValue::Integer(i)) => (1..=3600).contains(i),
            ("max_agents", ConfigValue::Integer(i)) => (1..=10_000).contains(i),
            ("verbose", ConfigValue::Bool(_)) => true,
            _ => false,
        });
        let result = target.config.apply(&patch);
        prop_assert_eq!(result.is_ok(), valid);
        let after = target.config.snapshot();
        if valid {
            let mut expected = before;
            expected.extend(patch.0.clone());
            prop_assert_eq!(after, expected);
        } else {
            prop_assert_eq!(after, before);
        }
    }
}
