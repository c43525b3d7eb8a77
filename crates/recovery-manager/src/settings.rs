//! One TOML file for the manager and each enabled strategy.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[cfg(all(
    feature = "backoff",
    feature = "checkpoint",
    feature = "degradation",
    feature = "healing"
))]
use crate::builder::RecoveryManagerBuilder;
use crate::config::RecoveryConfig;

/// The whole recovery configuration, as one TOML file: a section for the manager and one per
/// enabled strategy feature, each optional (a missing section or field takes its default).
///
/// ```
/// # #[cfg(all(feature = "backoff", feature = "checkpoint", feature = "degradation", feature = "healing"))]
/// # fn main() {
/// use recovery_manager::RecoverySettings;
///
/// let settings = RecoverySettings::from_toml_str(r#"
///     [recovery]
///     max_concurrent_recoveries = 8
///     monitoring_interval = "250ms"
///
///     [backoff]
///     initial_delay = "50ms"
///     max_retries = 8
///
///     [checkpoint]
///     max_checkpoints = 15
///     dir = "/var/lib/swarm/checkpoints"
///
///     [degradation]
///     cpu_threshold = 0.9
///
///     [healing]
///     default_rules = true
///     [[healing.rules]]
///     rule_id = "reallocate_on_conflict"
///     error_pattern = "ResourceConflict"
///     healing_action = "ReallocateResources"
///     cooldown_duration = "30s"
/// "#).unwrap();
/// assert_eq!(settings.recovery.max_concurrent_recoveries, 8);
/// assert_eq!(settings.backoff.max_retries, 8);
///
/// let err = RecoverySettings::from_toml_str("[backoff]\nmultiplier = 0.5\n").unwrap_err();
/// assert!(err.to_string().contains("multiplier"));
/// # }
/// # #[cfg(not(all(feature = "backoff", feature = "checkpoint", feature = "degradation", feature = "healing")))]
/// # fn main() {}
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RecoverySettings {
    /// The manager's own configuration.
    pub recovery: RecoveryConfig,
    /// The backoff strategy's configuration.
    #[cfg(feature = "backoff")]
    pub backoff: recovery_backoff::BackoffConfig,
    /// The checkpoint strategy's configuration and store.
    #[cfg(feature = "checkpoint")]
    pub checkpoint: CheckpointSettings,
    /// The degradation strategy's thresholds.
    #[cfg(feature = "degradation")]
    pub degradation: recovery_degradation::DegradationConfig,
    /// Predictive stepping of the degradation level (`[prediction]`; off when the section is
    /// missing): see `GracefulDegradationStrategy::with_prediction`.
    #[cfg(feature = "degradation")]
    pub prediction: Option<recovery_degradation::predict::TrendConfig>,
    /// The healing strategy's rules.
    #[cfg(feature = "healing")]
    pub healing: HealingSettings,
    /// Circuit breakers per agent, for a coordinator that takes them (`[breaker]`; off when
    /// the section is missing).
    #[cfg(feature = "breaker")]
    pub breaker: Option<recovery_breaker::BreakerConfig>,
    /// The learned strategy order (`[learning]`; the fixed cost order when the section is
    /// missing): see [`RecoveryManagerBuilder::learned_order`](crate::RecoveryManagerBuilder::learned_order).
    pub learning: Option<crate::LearningConfig>,
    /// Recovery workflows (`[[workflows]]`), each registered as a strategy: see
    /// [`workflow`](crate::workflow) for the actions a step may name.
    #[cfg(feature = "workflow")]
    pub workflows: Vec<recovery_workflow::WorkflowSpec>,
}

/// The `[checkpoint]` section.
#[cfg(feature = "checkpoint")]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckpointSettings {
    /// How many of the newest checkpoints are kept (default 10).
    pub max_checkpoints: usize,
    /// A directory for durable checkpoint files; without one, checkpoints are kept in memory.
    pub dir: Option<PathBuf>,
}

#[cfg(feature = "checkpoint")]
impl Default for CheckpointSettings {
    fn default() -> Self {
        Self {
            max_checkpoints: recovery_checkpoint::CheckpointConfig::default().max_checkpoints,
            dir: None,
        }
    }
}

/// The `[healing]` section.
#[cfg(feature = "healing")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealingSettings {
    /// Whether the spec's two default rules come first (default true).
    pub default_rules: bool,
    /// More rules, tried after the defaults, in order.
    pub rules: Vec<recovery_healing::HealingRule>,
}

#[cfg(feature = "healing")]
impl Default for HealingSettings {
    fn default() -> Self {
        Self {
            default_rules: true,
            rules: Vec::new(),
        }
    }
}

/// A settings file that cannot be read, parsed or used; the message names the file, the
/// section and the field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The file could not be read.
    #[error("cannot read recovery settings {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not valid TOML for these settings (the message gives line and column).
    #[error("recovery settings{}: {source}", in_file(path))]
    Parse {
        /// The file, if the text came from one.
        path: Option<PathBuf>,
        /// The parser's error.
        source: Box<toml::de::Error>,
    },
    /// A value parsed but is not usable.
    #[error("recovery settings{}: [{section}] {message}", in_file(path))]
    Invalid {
        /// The file, if the text came from one.
        path: Option<PathBuf>,
        /// The section (`recovery`, `backoff`, `checkpoint`, `degradation`, `healing`).
        section: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
}

/// A section's value that is not usable (not tied to a file).
fn invalid(section: &'static str, message: String) -> SettingsError {
    SettingsError::Invalid {
        path: None,
        section,
        message,
    }
}

fn in_file(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!(" in {}", p.display()))
        .unwrap_or_default()
}

impl RecoverySettings {
    /// Parse and check settings from TOML text.
    ///
    /// # Errors
    ///
    /// [`SettingsError::Parse`] for bad TOML, an unknown field or a value of the wrong type;
    /// [`SettingsError::Invalid`] for a value out of range.
    pub fn from_toml_str(text: &str) -> Result<Self, SettingsError> {
        Self::parse(text, None)
    }

    /// Read, parse and check a settings file.
    ///
    /// # Errors
    ///
    /// As [`from_toml_str`](Self::from_toml_str), plus [`SettingsError::Read`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, SettingsError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, Some(path.to_owned()))
    }

    fn parse(text: &str, path: Option<PathBuf>) -> Result<Self, SettingsError> {
        let settings: Self = toml::from_str(text).map_err(|e| SettingsError::Parse {
            path: path.clone(),
            source: Box::new(e),
        })?;
        settings
            .check()
            .map_err(|(section, message)| SettingsError::Invalid {
                path,
                section,
                message,
            })?;
        Ok(settings)
    }

    /// Check every section.
    ///
    /// # Errors
    ///
    /// [`SettingsError::Invalid`] naming the section and field.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.check()
            .map_err(|(section, message)| invalid(section, message))
    }

    fn check(&self) -> Result<(), (&'static str, String)> {
        self.recovery
            .validate()
            .map_err(|e| ("recovery", e.to_string()))?;
        #[cfg(feature = "backoff")]
        self.backoff
            .validate()
            .map_err(|e| ("backoff", e.to_string()))?;
        #[cfg(feature = "checkpoint")]
        recovery_checkpoint::CheckpointConfig {
            max_checkpoints: self.checkpoint.max_checkpoints,
        }
        .validate()
        .map_err(|e| ("checkpoint", e.to_string()))?;
        #[cfg(feature = "degradation")]
        self.degradation
            .validate()
            .map_err(|e| ("degradation", e.to_string()))?;
        #[cfg(feature = "degradation")]
        if let Some(p) = &self.prediction {
            p.validate().map_err(|e| ("prediction", e.to_string()))?;
        }
        #[cfg(feature = "healing")]
        for rule in &self.healing.rules {
            rule.validate().map_err(|e| ("healing", e.to_string()))?;
        }
        #[cfg(feature = "breaker")]
        if let Some(b) = &self.breaker {
            b.validate().map_err(|e| ("breaker", e.to_string()))?;
        }
        if let Some(l) = &self.learning {
            l.validate().map_err(|e| ("learning", e.to_string()))?;
        }
        #[cfg(feature = "workflow")]
        {
            let mut ids = std::collections::BTreeSet::new();
            for w in &self.workflows {
                if !ids.insert(w.id.as_str()) {
                    return Err((
                        "workflows",
                        format!("two workflows have the id `{}`; give each its own", w.id),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The workflows of the `[[workflows]]` sections, built with `registry` (whose actions
    /// and conditions their steps may name).
    ///
    /// # Errors
    ///
    /// [`SettingsError::Invalid`] in section `workflows`, naming the workflow and the step at
    /// fault (an unknown action, a bad or unknown parameter, an unknown condition).
    #[cfg(feature = "workflow")]
    pub fn workflows<T: ?Sized + Send + Sync + 'static>(
        &self,
        registry: &recovery_workflow::StepRegistry<T>,
    ) -> Result<Vec<recovery_workflow::Workflow<T>>, SettingsError> {
        self.workflows
            .iter()
            .map(|spec| {
                spec.build(registry)
                    .map_err(|e| invalid("workflows", e.to_string()))
            })
            .collect()
    }

    /// The backoff strategy of the `[backoff]` section.
    ///
    /// # Errors
    ///
    /// [`SettingsError::Invalid`] if the section does not validate.
    #[cfg(feature = "backoff")]
    pub fn backoff_strategy(
        &self,
    ) -> Result<recovery_backoff::ExponentialBackoffStrategy, SettingsError> {
        recovery_backoff::ExponentialBackoffStrategy::new(self.backoff)
            .map_err(|e| invalid("backoff", e.to_string()))
    }

    /// The checkpoint strategy of the `[checkpoint]` section: checkpoints in `dir` when one is
    /// given (the directory is created if missing), else in memory.
    ///
    /// # Errors
    ///
    /// [`SettingsError::Invalid`] if the section does not validate or the directory cannot be
    /// opened.
    #[cfg(feature = "checkpoint")]
    pub fn checkpoint_strategy(
        &self,
    ) -> Result<recovery_checkpoint::CheckpointRecoveryStrategy, SettingsError> {
        use recovery_checkpoint::{
            CheckpointRecoveryStrategy, CheckpointStore, FileStore, MemoryStore,
        };
        let store: std::sync::Arc<dyn CheckpointStore> = match &self.checkpoint.dir {
            Some(dir) => std::sync::Arc::new(
                FileStore::open(dir)
                    .map_err(|e| invalid("checkpoint", format!("dir = {}: {e}", dir.display())))?,
            ),
            None => std::sync::Arc::new(MemoryStore::new()),
        };
        CheckpointRecoveryStrategy::with_store(store, self.checkpoint.max_checkpoints)
            .map_err(|e| invalid("checkpoint", e.to_string()))
    }

    /// The degradation strategy of the `[degradation]` section, with a fresh resource monitor.
    ///
    /// # Errors
    ///
    /// [`SettingsError::Invalid`] if the section does not validate.
    #[cfg(feature = "degradation")]
    pub fn degradation_strategy(
        &self,
    ) -> Result<recovery_degradation::GracefulDegradationStrategy, SettingsError> {
        let strategy = recovery_degradation::GracefulDegradationStrategy::new(
            self.degradation.clone(),
            std::sync::Arc::new(recovery_degradation::ResourceMonitor::new()),
        )
        .map_err(|e| invalid("degradation", e.to_string()))?;
        match &self.prediction {
            Some(p) => strategy
                .with_prediction(p.clone())
                .map_err(|e| invalid("prediction", e.to_string())),
            None => Ok(strategy),
        }
    }

    /// The healing strategy of the `[healing]` section: the default rules (unless
    /// `default_rules = false`), then the section's rules.
    ///
    /// # Errors
    ///
    /// [`SettingsError::Invalid`] if a rule is not valid (its pattern, a duplicate id).
    #[cfg(feature = "healing")]
    pub async fn healing_strategy(
        &self,
    ) -> Result<recovery_healing::SelfHealingStrategy, SettingsError> {
        let strategy = if self.healing.default_rules {
            recovery_healing::SelfHealingStrategy::new()
        } else {
            recovery_healing::SelfHealingStrategy::empty()
        };
        strategy
            .add_healing_rules(self.healing.rules.iter().cloned())
            .await
            .map_err(|e| invalid("healing", e.to_string()))?;
        Ok(strategy)
    }

    /// A [`RecoveryManagerBuilder`] with these settings for a target with all four
    /// capabilities: the configuration and each strategy built from its section (see the
    /// `*_strategy` methods, to build a manager for a target with fewer), and with the
    /// `sysinfo` feature the host sampler.
    ///
    /// # Errors
    ///
    /// [`SettingsError::Invalid`] as the `*_strategy` methods.
    #[cfg(all(
        feature = "backoff",
        feature = "checkpoint",
        feature = "degradation",
        feature = "healing"
    ))]
    pub async fn builder<T>(&self) -> Result<RecoveryManagerBuilder<T>, SettingsError>
    where
        T: recovery_backoff::Retry
            + recovery_checkpoint::Checkpointable
            + recovery_degradation::Degradable
            + recovery_healing::Healable
            + ?Sized
            + 'static,
    {
        self.validate()?;
        let builder = RecoveryManagerBuilder::default()
            .config(self.recovery.clone())
            .backoff(self.backoff_strategy()?)
            .checkpoint(self.checkpoint_strategy()?)
            .degradation(self.degradation_strategy()?)
            .healing(self.healing_strategy().await?);
        #[cfg(feature = "sysinfo")]
        let builder = builder.sampler(recovery_degradation::SystemSampler::host());
        let builder = match &self.learning {
            Some(l) => builder.learned_order(l.clone()),
            None => builder,
        };
        #[cfg(feature = "workflow")]
        let builder = {
            let mut builder = builder;
            if !self.workflows.is_empty() {
                let tools = crate::workflow::StepTools {
                    checkpoint: builder.parts.checkpoint.clone().expect("registered above"),
                    backoff: builder.parts.backoff.clone().expect("registered above"),
                    alerts: std::sync::Arc::new(recovery_healing::TracingAlertSink),
                };
                for w in self.workflows(&crate::workflow::registry::<T>(&tools))? {
                    builder = builder.strategy(std::sync::Arc::new(w));
                }
            }
            builder
        };
        Ok(builder)
    }
}
