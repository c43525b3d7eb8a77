//! Validated configuration patches: a schema of tunable keys, and a configuration that applies
//! a patch all or nothing.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use crate::error::ConfigPatchError;
use crate::rule::{ConfigPatch, ConfigValue};

/// The type and allowed range of one tunable key.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum KeySpec {
    /// `true` or `false`.
    Bool,
    /// A whole number in `min..=max`.
    Integer {
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// A finite number in `min..=max` (an integer in a patch is accepted and widened).
    Float {
        /// Smallest allowed.
        min: f64,
        /// Largest allowed.
        max: f64,
    },
    /// Text; if `allowed` is set, one of those values.
    Text {
        /// The allowed values, if limited.
        allowed: Option<Vec<String>>,
    },
}

impl KeySpec {
    /// Check `value` against this spec, returning the value to store (an integer given for a
    /// float key becomes a float), or why it is refused.
    fn check(&self, value: &ConfigValue) -> Result<ConfigValue, String> {
        match (self, value) {
            (Self::Bool, ConfigValue::Bool(_)) => Ok(value.clone()),
            (Self::Integer { min, max }, ConfigValue::Integer(v)) => {
                if (*min..=*max).contains(v) {
                    Ok(value.clone())
                } else {
                    Err(format!("{v} is outside {min}..={max}"))
                }
            }
            (Self::Float { min, max }, ConfigValue::Float(_) | ConfigValue::Integer(_)) => {
                let v = match value {
                    ConfigValue::Float(v) => *v,
                    ConfigValue::Integer(i) => *i as f64,
                    _ => unreachable!("matched above"),
                };
                if !v.is_finite() {
                    Err(format!("{v} is not a finite number"))
                } else if v < *min || v > *max {
                    Err(format!("{v} is outside {min}..={max}"))
                } else {
                    Ok(ConfigValue::Float(v))
                }
            }
            (Self::Text { allowed }, ConfigValue::Text(v)) => match allowed {
                Some(allowed) if !allowed.iter().any(|a| a == v) => {
                    Err(format!("{v:?} is not one of {}", allowed.join(", ")))
                }
                _ => Ok(value.clone()),
            },
            (spec, value) => Err(format!(
                "expected {}, got {} {value}",
                spec.type_name(),
                value.type_name()
            )),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Self::Bool => "bool",
            Self::Integer { .. } => "integer",
            Self::Float { .. } => "float",
            Self::Text { .. } => "text",
        }
    }
}

/// The keys a target lets healing rules change, with their types and ranges.
///
/// ```
/// use recovery_healing::{ConfigPatch, ConfigPatchError, ConfigSchema};
///
/// let schema = ConfigSchema::new()
///     .integer("task_timeout_secs", 1, 3600)
///     .boolean("verbose");
/// assert!(schema.validate(&ConfigPatch::new().set("task_timeout_secs", 600)).is_ok());
/// let err = schema.validate(&ConfigPatch::new().set("task_timeout_secs", 0)).unwrap_err();
/// assert!(matches!(err, ConfigPatchError::BadValue { ref key, .. } if key == "task_timeout_secs"));
/// assert!(matches!(schema.validate(&ConfigPatch::new().set("colour", "red")), Err(ConfigPatchError::UnknownKey { .. })));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigSchema {
    keys: BTreeMap<String, KeySpec>,
}

impl ConfigSchema {
    /// A schema with no keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// This schema with `key` described by `spec`.
    pub fn key(mut self, key: impl Into<String>, spec: KeySpec) -> Self {
        self.keys.insert(key.into(), spec);
        self
    }

    /// This schema with a boolean `key`.
    pub fn boolean(self, key: impl Into<String>) -> Self {
        self.key(key, KeySpec::Bool)
    }

    /// This schema with an integer `key` in `min..=max`.
    pub fn integer(self, key: impl Into<String>, min: i64, max: i64) -> Self {
        self.key(key, KeySpec::Integer { min, max })
    }

    /// This schema with a float `key` in `min..=max`.
    pub fn float(self, key: impl Into<String>, min: f64, max: f64) -> Self {
        self.key(key, KeySpec::Float { min, max })
    }

    /// This schema with a free text `key`.
    pub fn text(self, key: impl Into<String>) -> Self {
        self.key(key, KeySpec::Text { allowed: None })
    }

    /// This schema with a text `key` limited to `allowed`.
    pub fn one_of<S: Into<String>>(
        self,
        key: impl Into<String>,
        allowed: impl IntoIterator<Item = S>,
    ) -> Self {
        self.key(
            key,
            KeySpec::Text {
                allowed: Some(allowed.into_iter().map(Into::into).collect()),
            },
        )
    }

    /// The spec of `key`.
    pub fn spec(&self, key: &str) -> Option<&KeySpec> {
        self.keys.get(key)
    }

    /// Check every key of `patch`, returning the values to store. The first bad key (in key
    /// order) is the error; an empty patch is an error too (it would change nothing).
    pub fn validate(
        &self,
        patch: &ConfigPatch,
    ) -> Result<Vec<(String, ConfigValue)>, ConfigPatchError> {
        if patch.is_empty() {
            return Err(ConfigPatchError::Empty);
        }
        patch
            .iter()
            .map(|(key, value)| {
                let spec = self
                    .keys
                    .get(key)
                    .ok_or_else(|| ConfigPatchError::UnknownKey {
                        key: key.to_owned(),
                    })?;
                let checked = spec
                    .check(value)
                    .map_err(|reason| ConfigPatchError::BadValue {
                        key: key.to_owned(),
                        reason,
                    })?;
                Ok((key.to_owned(), checked))
            })
            .collect()
    }
}

/// A configuration of tunable values that applies a [`ConfigPatch`] all or nothing, for a target
/// to implement [`Healable::apply_config_patch`](crate::Healable::apply_config_patch) with.
///
/// ```
/// use recovery_healing::{ConfigPatch, ConfigSchema, ConfigValue, TunableConfig};
///
/// let config = TunableConfig::new(
///     ConfigSchema::new().integer("task_timeout_secs", 1, 3600).boolean("verbose"),
///     [("task_timeout_secs", ConfigValue::Integer(30))],
/// ).unwrap();
///
/// // One bad key: nothing changes.
/// let bad = ConfigPatch::new().set("task_timeout_secs", 600).set("verbose", "yes");
/// assert!(config.apply(&bad).is_err());
/// assert_eq!(config.get("task_timeout_secs"), Some(ConfigValue::Integer(30)));
///
/// config.apply(&ConfigPatch::new().set("task_timeout_secs", 600)).unwrap();
/// assert_eq!(config.get("task_timeout_secs"), Some(ConfigValue::Integer(600)));
/// ```
#[derive(Debug)]
pub struct TunableConfig {
    schema: ConfigSchema,
    values: Mutex<BTreeMap<String, ConfigValue>>,
}

impl TunableConfig {
    /// A configuration over `schema` holding `initial` values, each checked against it.
    pub fn new<K: Into<String>>(
        schema: ConfigSchema,
        initial: impl IntoIterator<Item = (K, ConfigValue)>,
    ) -> Result<Self, ConfigPatchError> {
        let mut values = BTreeMap::new();
        let initial = ConfigPatch(initial.into_iter().map(|(k, v)| (k.into(), v)).collect());
        if !initial.is_empty() {
            values.extend(schema.validate(&initial)?);
        }
        Ok(Self {
            schema,
            values: Mutex::new(values),
        })
    }

    /// The schema.
    pub fn schema(&self) -> &ConfigSchema {
        &self.schema
    }

    /// The current value of `key`.
    pub fn get(&self, key: &str) -> Option<ConfigValue> {
        self.values
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// All current values.
    pub fn snapshot(&self) -> BTreeMap<String, ConfigValue> {
        self.values
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Validate every key of `patch`, then apply them all at once; on any error nothing changes.
    pub fn apply(&self, patch: &ConfigPatch) -> Result<(), ConfigPatchError> {
        let checked = self.schema.validate(patch)?;
        self.values
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(checked);
        Ok(())
    }
}
