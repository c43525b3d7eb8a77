//! Healing rules and their actions.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::alert::Severity;

/// A self-healing rule: when an error matches `error_pattern`, carry out `healing_action`, at
/// most once per `cooldown_duration`.
///
/// These are the spec's five fields, so the spec's literal compiles:
///
/// ```
/// use std::time::Duration;
/// use recovery_healing::{HealingAction, HealingRule};
///
/// let rule = HealingRule {
///     rule_id: "network_failure".to_string(),
///     error_pattern: "NetworkTimeout".to_string(),
///     healing_action: HealingAction::RestartComponent("network_manager".to_string()),
///     cooldown_duration: Duration::from_secs(300),
///     last_applied: None,
/// };
/// assert_eq!(rule.healing_action.to_string(), "RestartComponent(network_manager)");
/// ```
///
/// `error_pattern` uses the syntax of [`ErrorPattern`](crate::ErrorPattern) and is checked when
/// the rule is added to a strategy. `last_applied` is a `tokio::time::Instant`, so tests can run
/// cooldowns on tokio's paused clock; it is set by the strategy, at the moment a recovery claims
/// the rule, and is not read from or written to configuration files.
///
/// In a configuration file (see [`rules_from_toml_str`](crate::rules_from_toml_str)) a rule is
/// written with a duration as people write it:
///
/// ```toml
/// [[rules]]
/// rule_id = "network_failure"
/// error_pattern = "CommunicationError: timeout"
/// healing_action = { RestartComponent = "network_manager" }
/// cooldown_duration = "5m"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealingRule {
    /// A unique, stable id, reported in results (`RecoveryAction::Healed { rule_id, .. }`).
    pub rule_id: String,
    /// Which errors the rule applies to, in [`ErrorPattern`](crate::ErrorPattern) syntax.
    pub error_pattern: String,
    /// What to do.
    pub healing_action: HealingAction,
    /// The least time between two applications of this rule.
    #[serde(with = "humantime_serde")]
    pub cooldown_duration: Duration,
    /// When the rule was last applied (claimed by a recovery), on tokio's clock.
    #[serde(skip)]
    pub last_applied: Option<Instant>,
}

impl HealingRule {
    /// Check what needs nothing but the rule: a non-empty id, a pattern that parses, a
    /// non-empty component name or patch. (Uniqueness and script names are checked when the
    /// rule is added to a strategy.)
    ///
    /// ```
    /// use std::time::Duration;
    /// use recovery_healing::{HealingAction, HealingRule};
    /// let rule = HealingRule {
    ///     rule_id: "x".into(),
    ///     error_pattern: "Typo".into(),
    ///     healing_action: HealingAction::ReallocateResources,
    ///     cooldown_duration: Duration::from_secs(1),
    ///     last_applied: None,
    /// };
    /// assert!(rule.validate().unwrap_err().to_string().contains("Typo"));
    /// ```
    pub fn validate(&self) -> Result<(), crate::HealingError> {
        crate::config::check_rule_shape(self).map(drop)
    }
}

/// What a [`HealingRule`] does. See the crate docs for what each action really does.
///
/// In configuration files a variant is written as serde writes an externally tagged enum:
/// `{ RestartComponent = "agent_protocol" }`, `{ AdjustConfig = { task_timeout_secs = 600 } }`,
/// `"ReallocateResources"`, `{ TriggerAlert = { severity = "critical", message = "..." } }`,
/// `{ ExecuteScript = "flush_dns" }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum HealingAction {
    /// Stop and start again the named component of the target, within the restart intensity.
    RestartComponent(String),
    /// Apply a configuration patch to the target, all or nothing.
    AdjustConfig(ConfigPatch),
    /// Move the failed agent's work (or the failed task) to healthy agents.
    ReallocateResources,
    /// Send an alert to the strategy's [`AlertSink`](crate::AlertSink).
    TriggerAlert {
        /// How urgent it is.
        severity: Severity,
        /// What to tell people (the error's kind and message are attached to the alert beside
        /// it).
        message: String,
    },
    /// Run the script that the operator allow-listed under this name in the strategy's
    /// [`ScriptRunner`](crate::ScriptRunner). A name, never a path or a command line.
    ExecuteScript(String),
}

impl HealingAction {
    /// The variant's name, for logs and metadata.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::RestartComponent(_) => "RestartComponent",
            Self::AdjustConfig(_) => "AdjustConfig",
            Self::ReallocateResources => "ReallocateResources",
            Self::TriggerAlert { .. } => "TriggerAlert",
            Self::ExecuteScript(_) => "ExecuteScript",
        }
    }
}

impl fmt::Display for HealingAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RestartComponent(name) => write!(f, "RestartComponent({name})"),
            Self::AdjustConfig(patch) => write!(f, "AdjustConfig({patch})"),
            Self::ReallocateResources => f.write_str("ReallocateResources"),
            Self::TriggerAlert { severity, message } => {
                write!(f, "TriggerAlert({severity}: {message})")
            }
            Self::ExecuteScript(name) => write!(f, "ExecuteScript({name})"),
        }
    }
}

/// A value in a [`ConfigPatch`].
///
/// Untagged in files: `true`, `600`, `0.5` and `"fast"` become `Bool`, `Integer`, `Float` and
/// `Text`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConfigValue {
    /// A boolean.
    Bool(bool),
    /// A whole number.
    Integer(i64),
    /// A number with a fraction.
    Float(f64),
    /// Text.
    Text(String),
}

impl ConfigValue {
    /// The type's name, for error messages.
    pub const fn type_name(&self) -> &'static str {
        match self {
            Self::Bool(_) => "bool",
            Self::Integer(_) => "integer",
            Self::Float(_) => "float",
            Self::Text(_) => "text",
        }
    }
}

impl fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(v) => write!(f, "{v}"),
            Self::Integer(v) => write!(f, "{v}"),
            Self::Float(v) => write!(f, "{v}"),
            Self::Text(v) => write!(f, "{v:?}"),
        }
    }
}

impl From<bool> for ConfigValue {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl From<i64> for ConfigValue {
    fn from(v: i64) -> Self {
        Self::Integer(v)
    }
}

impl From<f64> for ConfigValue {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}

impl From<&str> for ConfigValue {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}

impl From<String> for ConfigValue {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

/// A set of configuration changes, key to new value, applied all or nothing.
///
/// ```
/// use recovery_healing::{ConfigPatch, ConfigValue};
/// let patch = ConfigPatch::new().set("task_timeout_secs", 600).set("verbose", true);
/// assert_eq!(patch.get("task_timeout_secs"), Some(&ConfigValue::Integer(600)));
/// assert_eq!(patch.to_string(), "task_timeout_secs=600, verbose=true");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConfigPatch(pub BTreeMap<String, ConfigValue>);

impl ConfigPatch {
    /// An empty patch.
    pub fn new() -> Self {
        Self::default()
    }

    /// This patch with `key` set to `value`.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<ConfigValue>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    /// The value the patch gives `key`.
    pub fn get(&self, key: &str) -> Option<&ConfigValue> {
        self.0.get(key)
    }

    /// The changes, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ConfigValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many keys the patch changes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigPatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{key}={value}")?;
        }
        Ok(())
    }
}
