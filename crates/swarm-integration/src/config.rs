//! The coordinator's configuration: limits, validated, and the keys a healing rule may adjust.

use std::collections::BTreeMap;
use std::time::Duration;

use recovery_core::SwarmError;
use serde::{Deserialize, Serialize};

/// Limits and timeouts of a [`SwarmCoordinator`](crate::SwarmCoordinator).
///
/// # Default
///
/// | field | default |
/// |---|---|
/// | `max_agents` | 64 |
/// | `max_parallel_tasks` | 16 |
/// | `max_pending_tasks` | 100 000 |
/// | `task_timeout_secs` | 300 |
/// | `heartbeat_timeout_secs` | 30 |
/// | `max_attempts_per_task` | 8 |
/// | `recent_events` | 256 |
/// | `finished_retention` | 10 000 |
/// | `finished_max_age_secs` | 3 600 |
/// | `outcome_log` | 10 000 |
/// | `max_recovery_rounds` | 16 |
/// | `recovery_time_limit_secs` | 3 600 |
///
/// # Memory
///
/// What the coordinator holds is bounded by these limits, not by its lifetime throughput: the
/// unfinished tasks (at most `max_pending_tasks`), the finished tasks it still keeps (at most
/// `finished_retention`, none older than `finished_max_age_secs` once the maintenance pass has
/// run), the compact outcomes of tasks it let go of (at most `outcome_log`), `recent_events`
/// events, and one entry per agent. A finished task that left the table is still counted in
/// [`CoordinatorStats`](crate::CoordinatorStats), so "no task lost" stays checkable.
///
/// ```
/// use swarm_integration::SwarmConfig;
/// let config = SwarmConfig { max_parallel_tasks: 0, ..SwarmConfig::default() };
/// let err = config.validate().unwrap_err();
/// assert!(err.to_string().contains("max_parallel_tasks"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SwarmConfig {
    /// Most agents that may be registered at once.
    pub max_agents: usize,
    /// Most tasks that run at once (at the normal degradation level; higher levels run fewer).
    pub max_parallel_tasks: usize,
    /// Most tasks accepted but not yet finished; past it, submissions are refused.
    pub max_pending_tasks: usize,
    /// How long one run of a task may take before it fails with `CoordinationTimeout`.
    pub task_timeout_secs: u64,
    /// How long an agent may go without a heartbeat before it is declared failed.
    pub heartbeat_timeout_secs: u64,
    /// How many runs (first run and re-runs) one task gets before it fails for good.
    pub max_attempts_per_task: u32,
    /// How many recent events the coordinator keeps (and checkpoints).
    pub recent_events: usize,
    /// How many finished tasks (with their outputs) stay in the table; older ones leave it.
    #[serde(default = "defaults::finished_retention")]
    pub finished_retention: usize,
    /// How long a finished task stays in the table at most (enforced by the maintenance pass).
    #[serde(default = "defaults::finished_max_age_secs")]
    pub finished_max_age_secs: u64,
    /// How many outcomes of tasks that left the table are kept (id and how it ended).
    #[serde(default = "defaults::outcome_log")]
    pub outcome_log: usize,
    /// How many recovery rounds one `execute_task_with_recovery` makes at most.
    #[serde(default = "defaults::max_recovery_rounds")]
    pub max_recovery_rounds: u32,
    /// How long one `execute_task_with_recovery` goes on at most before it gives up.
    #[serde(default = "defaults::recovery_time_limit_secs")]
    pub recovery_time_limit_secs: u64,
}

mod defaults {
    pub(super) fn finished_retention() -> usize {
        10_000
    }
    pub(super) fn finished_max_age_secs() -> u64 {
        3_600
    }
    pub(super) fn outcome_log() -> usize {
        10_000
    }
    pub(super) fn max_recovery_rounds() -> u32 {
        16
    }
    pub(super) fn recovery_time_limit_secs() -> u64 {
        3_600
    }
}

/// The largest value accepted for the counts of [`SwarmConfig`] (agents, pending tasks,
/// retention, events): ten million.
pub const MAX_COUNT: u64 = 10_000_000;

impl Default for SwarmConfig {
    fn default() -> Self {
        Self {
            max_agents: 64,
            max_parallel_tasks: 16,
            max_pending_tasks: 100_000,
            task_timeout_secs: 300,
            heartbeat_timeout_secs: 30,
            max_attempts_per_task: 8,
            recent_events: 256,
            finished_retention: defaults::finished_retention(),
            finished_max_age_secs: defaults::finished_max_age_secs(),
            outcome_log: defaults::outcome_log(),
            max_recovery_rounds: defaults::max_recovery_rounds(),
            recovery_time_limit_secs: defaults::recovery_time_limit_secs(),
        }
    }
}

/// The keys a configuration patch (the healing action `AdjustConfig`) may change, with the
/// range each accepts. Other fields are fixed for the coordinator's life.
pub const ADJUSTABLE_KEYS: [(&str, u64, u64); 4] = [
    ("task_timeout_secs", 1, 86_400),
    ("heartbeat_timeout_secs", 1, 3_600),
    ("max_parallel_tasks", 1, 4_096),
    ("max_attempts_per_task", 1, 100),
];

impl SwarmConfig {
    /// Check every field; the error is `InvalidConfiguration` and names the field.
    pub fn validate(&self) -> Result<(), SwarmError> {
        let positive = [
            ("max_agents", self.max_agents as u64),
            ("max_parallel_tasks", self.max_parallel_tasks as u64),
            ("max_pending_tasks", self.max_pending_tasks as u64),
            ("task_timeout_secs", self.task_timeout_secs),
            ("heartbeat_timeout_secs", self.heartbeat_timeout_secs),
            (
                "max_attempts_per_task",
                u64::from(self.max_attempts_per_task),
            ),
            ("recent_events", self.recent_events as u64),
            ("finished_max_age_secs", self.finished_max_age_secs),
            ("max_recovery_rounds", u64::from(self.max_recovery_rounds)),
            ("recovery_time_limit_secs", self.recovery_time_limit_secs),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(SwarmError::InvalidConfiguration(format!(
                    "`{field}` must be at least 1, got 0"
                )));
            }
        }
        let counts = [
            ("max_agents", self.max_agents as u64),
            ("max_pending_tasks", self.max_pending_tasks as u64),
            ("recent_events", self.recent_events as u64),
            ("finished_retention", self.finished_retention as u64),
            ("outcome_log", self.outcome_log as u64),
        ];
        for (field, value) in counts {
            if value > MAX_COUNT {
                return Err(SwarmError::InvalidConfiguration(format!(
                    "`{field}` is {value}; it may be at most {MAX_COUNT}"
                )));
            }
        }
        for (field, secs) in [
            ("task_timeout_secs", self.task_timeout_secs),
            ("heartbeat_timeout_secs", self.heartbeat_timeout_secs),
            ("finished_max_age_secs", self.finished_max_age_secs),
            ("recovery_time_limit_secs", self.recovery_time_limit_secs),
        ] {
            if secs > 365 * 86_400 {
                return Err(SwarmError::InvalidConfiguration(format!(
                    "`{field}` is {secs} s; it may be at most a year"
                )));
            }
        }
        for (key, min, max) in ADJUSTABLE_KEYS {
            let value = self.get(key).unwrap_or(0);
            if !(min..=max).contains(&value) {
                return Err(SwarmError::InvalidConfiguration(format!(
                    "`{key}` must be within {min}..={max}, got {value}"
                )));
            }
        }
        Ok(())
    }

    /// How long one run of a task may take.
    pub fn task_timeout(&self) -> Duration {
        Duration::from_secs(self.task_timeout_secs)
    }

    /// How long an agent may stay silent.
    pub fn heartbeat_timeout(&self) -> Duration {
        Duration::from_secs(self.heartbeat_timeout_secs)
    }

    /// How long a finished task stays in the table at most.
    pub fn finished_max_age(&self) -> Duration {
        Duration::from_secs(self.finished_max_age_secs)
    }

    /// How long one `execute_task_with_recovery` goes on at most.
    pub fn recovery_time_limit(&self) -> Duration {
        Duration::from_secs(self.recovery_time_limit_secs)
    }

    fn get(&self, key: &str) -> Option<u64> {
        Some(match key {
            "task_timeout_secs" => self.task_timeout_secs,
            "heartbeat_timeout_secs" => self.heartbeat_timeout_secs,
            "max_parallel_tasks" => self.max_parallel_tasks as u64,
            "max_attempts_per_task" => u64::from(self.max_attempts_per_task),
            _ => return None,
        })
    }

    /// This config with `patch` applied, or an `InvalidConfiguration` error naming the first key
    /// that is unknown, not adjustable, not a whole number, or out of range. All or nothing.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use swarm_integration::SwarmConfig;
    ///
    /// let config = SwarmConfig::default();
    /// let patch = BTreeMap::from([("task_timeout_secs".to_string(), "600".to_string())]);
    /// assert_eq!(config.patched(&patch).unwrap().task_timeout_secs, 600);
    ///
    /// let bad = BTreeMap::from([("max_agents".to_string(), "9".to_string())]);
    /// assert!(config.patched(&bad).unwrap_err().to_string().contains("`max_agents` is not adjustable"));
    /// ```
    pub fn patched(&self, patch: &BTreeMap<String, String>) -> Result<Self, SwarmError> {
        let mut next = self.clone();
        for (key, raw) in patch {
            let Some(&(_, min, max)) = ADJUSTABLE_KEYS.iter().find(|(k, ..)| k == key) else {
                let known = ADJUSTABLE_KEYS.map(|(k, ..)| k).join(", ");
                let why = if self.get(key).is_some() || is_field(key) {
                    format!("`{key}` is not adjustable at run time; adjustable keys: {known}")
                } else {
                    format!("unknown configuration key `{key}`; adjustable keys: {known}")
                };
                return Err(SwarmError::InvalidConfiguration(why));
            };
            let value: u64 = raw.trim().parse().map_err(|_| {
                SwarmError::InvalidConfiguration(format!(
                    "`{key}` wants a whole number, got `{raw}`"
                ))
            })?;
            if !(min..=max).contains(&value) {
                return Err(SwarmError::InvalidConfiguration(format!(
                    "`{key}` must be within {min}..={max}, got {value}"
                )));
            }
            match key.as_str() {
                "task_timeout_secs" => next.task_timeout_secs = value,
                "heartbeat_timeout_secs" => next.heartbeat_timeout_secs = value,
                "max_parallel_tasks" => next.max_parallel_tasks = value as usize,
                "max_attempts_per_task" => next.max_attempts_per_task = value as u32,
                _ => unreachable!("every adjustable key is matched above"),
            }
        }
        next.validate()?;
        Ok(next)
    }
}

fn is_field(key: &str) -> bool {
    matches!(
        key,
        "max_agents"
            | "max_pending_tasks"
            | "recent_events"
            | "finished_retention"
            | "finished_max_age_secs"
            | "outcome_log"
            | "max_recovery_rounds"
            | "recovery_time_limit_secs"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        SwarmConfig::default().validate().unwrap();
    }

    #[test]
    fn a_bad_patch_changes_nothing_and_names_the_key() {
        let c = SwarmConfig::default();
        let patch = BTreeMap::from([
            ("task_timeout_secs".to_owned(), "600".to_owned()),
            ("max_parallel_tasks".to_owned(), "0".to_owned()),
        ]);
        let e = c.patched(&patch).unwrap_err().to_string();
        assert!(
            e.contains("`max_parallel_tasks` must be within 1..=4096, got 0"),
            "{e}"
        );
        let e = c
            .patched(&BTreeMap::from([("colour".to_owned(), "red".to_owned())]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown configuration key `colour`"), "{e}");
        let e = c
            .patched(&BTreeMap::from([(
                "task_timeout_secs".to_owned(),
                "ten".to_owned(),
            )]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("wants a whole number, got `ten`"), "{e}");
    }
}
