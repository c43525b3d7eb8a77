//! The crate's errors, one per concern.

use std::path::PathBuf;

use crate::pattern::PatternError;
use crate::supervisor::RestartIntensity;

/// A rule that cannot be added to a strategy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HealingError {
    /// The rule's `error_pattern` does not parse.
    #[error("rule `{rule_id}`: error pattern `{pattern}` is not valid: {reason}")]
    InvalidPattern {
        /// The rule.
        rule_id: String,
        /// The pattern as written.
        pattern: String,
        /// Why it does not parse.
        reason: PatternError,
    },
    /// The rule id is empty.
    #[error("a rule's rule_id is empty")]
    EmptyRuleId,
    /// A rule with this id is already present.
    #[error("rule `{rule_id}` is already present")]
    DuplicateRule {
        /// The id.
        rule_id: String,
    },
    /// An `ExecuteScript` rule names a script the strategy's runner does not allow (or the
    /// strategy has no runner).
    #[error("rule `{rule_id}`: script `{script}` is not in the script runner's allow-list")]
    UnknownScript {
        /// The rule.
        rule_id: String,
        /// The script name.
        script: String,
    },
    /// A `RestartComponent` rule names no component.
    #[error("rule `{rule_id}`: RestartComponent names no component")]
    EmptyComponent {
        /// The rule.
        rule_id: String,
    },
    /// An `AdjustConfig` rule's patch is empty.
    #[error("rule `{rule_id}`: AdjustConfig patch is empty")]
    EmptyPatch {
        /// The rule.
        rule_id: String,
    },
    /// A `RestartComponent` rule names a component the target does not have (see
    /// `SelfHealingStrategy::restrict_components`).
    #[error(
        "rule `{rule_id}`: RestartComponent names `{component}`, which the target does not have; its components are: {known}"
    )]
    UnknownComponent {
        /// The rule.
        rule_id: String,
        /// The name.
        component: String,
        /// The target's components, comma-separated.
        known: String,
    },
}

/// Why a component was not restarted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RestartError {
    /// No component has this name.
    #[error("unknown component `{component}`")]
    UnknownComponent {
        /// The name asked for.
        component: String,
    },
    /// The restart intensity is used up: the failure escalates instead of looping.
    #[error(
        "component `{component}` was restarted {restarts} times within the intensity window ({intensity}); escalating"
    )]
    IntensityExceeded {
        /// The component.
        component: String,
        /// Restarts already in the window.
        restarts: usize,
        /// The intensity.
        intensity: RestartIntensity,
    },
    /// Stopping or starting failed.
    #[error("restarting `{component}` failed: {reason}")]
    Failed {
        /// The component.
        component: String,
        /// Why.
        reason: String,
    },
    /// It was started but does not say it is running.
    #[error("component `{component}` is not running after its restart")]
    NotRunning {
        /// The component.
        component: String,
    },
    /// Nothing about it needed a restart (no connection was down, no work was stuck); nothing
    /// was done. The strategy reports this as no change, not as a success.
    #[error("component `{component}` needs no restart: {reason}")]
    NotNeeded {
        /// The component.
        component: String,
        /// What was found.
        reason: String,
    },
}

/// Why a configuration patch was refused; the configuration is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigPatchError {
    /// The patch names a key the configuration does not have (or does not let rules tune).
    #[error("unknown configuration key `{key}`")]
    UnknownKey {
        /// The key.
        key: String,
    },
    /// The value is of the wrong type or out of range.
    #[error("bad value for `{key}`: {reason}")]
    BadValue {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The patch changes nothing.
    #[error("the configuration patch is empty")]
    Empty,
    /// The target failed to apply it for another reason.
    #[error("applying the configuration patch failed: {0}")]
    Failed(String),
}

/// Why an allow-listed script did not run (a script that ran and failed is a
/// [`ScriptOutput`](crate::ScriptOutput) with a non-zero status, not this).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// The name is not in the allow-list.
    #[error("script `{0}` is not in the allow-list")]
    NotAllowed(String),
    /// The program path is not absolute.
    #[error("script program `{}` is not an absolute path", .0.display())]
    RelativeProgram(PathBuf),
    /// A script name was allow-listed twice.
    #[error("script `{0}` is already in the allow-list")]
    Duplicate(String),
    /// The program could not be started.
    #[error("script `{name}`: cannot start `{}`: {source}", program.display())]
    Spawn {
        /// The script name.
        name: String,
        /// The program.
        program: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Waiting for or reading from the program failed.
    #[error("script `{name}`: {source}")]
    Io {
        /// The script name.
        name: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A rules file that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuleFileError {
    /// The file could not be read.
    #[error("cannot read rules file `{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file's name does not end in `.toml` or `.json`.
    #[error("rules file `{}` must end in .toml or .json", .0.display())]
    UnknownFormat(PathBuf),
    /// TOML syntax or a field is wrong; the message names the line, column and field.
    #[error("{}: not valid TOML: {source}", in_file(path))]
    Toml {
        /// The file, if read from one.
        path: Option<PathBuf>,
        /// The parser's error (with line, column and field).
        source: toml::de::Error,
    },
    /// JSON syntax or a field is wrong; the message names the line, column and field.
    #[error("{}: not valid JSON: {source}", in_file(path))]
    Json {
        /// The file, if read from one.
        path: Option<PathBuf>,
        /// The parser's error (with line, column and field).
        source: serde_json::Error,
    },
    /// A rule is not valid (unknown pattern, duplicate id, ...).
    #[error("{}: {source}", in_file(path))]
    Rule {
        /// The file, if read from one.
        path: Option<PathBuf>,
        /// What is wrong with the rule.
        source: HealingError,
    },
}

fn in_file(path: &Option<PathBuf>) -> String {
    match path {
        Some(path) => format!("rules file `{}`", path.display()),
        None => "rules".to_owned(),
    }
}
