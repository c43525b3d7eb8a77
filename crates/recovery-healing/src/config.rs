//! Rules from configuration files (TOML or JSON).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{HealingError, RuleFileError};
use crate::pattern::ErrorPattern;
use crate::rule::HealingRule;

/// The shape of a rules file: a list of rules under `rules`.
///
/// ```toml
/// [[rules]]
/// rule_id = "protocol_restart"
/// error_pattern = "CommunicationError"
/// healing_action = { RestartComponent = "agent_protocol" }
/// cooldown_duration = "300s"
///
/// [[rules]]
/// rule_id = "timeouts"
/// error_pattern = "CoordinationTimeout"
/// healing_action = { AdjustConfig = { task_timeout_secs = 600 } }
/// cooldown_duration = "10m"
///
/// [[rules]]
/// rule_id = "page_someone"
/// error_pattern = "StateCorruption"
/// healing_action = { TriggerAlert = { severity = "critical", message = "state corrupt" } }
/// cooldown_duration = "1h"
///
/// [[rules]]
/// rule_id = "move_work"
/// error_pattern = "CommunicationError: agent unreachable"
/// healing_action = "ReallocateResources"
/// cooldown_duration = "30s"
/// ```
///
/// Unknown fields are errors, so a misspelt field is named rather than ignored.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    /// The rules, in the order they are tried.
    pub rules: Vec<HealingRule>,
}

/// Parse rules from TOML text (see [`RulesFile`]), checking each rule's pattern and that ids
/// are unique.
///
/// ```
/// use std::time::Duration;
/// use recovery_healing::rules_from_toml_str;
///
/// let rules = rules_from_toml_str(r#"
///     [[rules]]
///     rule_id = "protocol_restart"
///     error_pattern = "CommunicationError"
///     healing_action = { RestartComponent = "agent_protocol" }
///     cooldown_duration = "5m"
/// "#).unwrap();
/// assert_eq!(rules[0].cooldown_duration, Duration::from_secs(300));
///
/// let err = rules_from_toml_str("[[rules]]\nrule_id = \"x\"\nerror_pattern = \"Typo\"\nhealing_action = \"ReallocateResources\"\ncooldown_duration = \"1s\"\n").unwrap_err();
/// assert!(err.to_string().contains("`x`") && err.to_string().contains("Typo"));
/// ```
pub fn rules_from_toml_str(text: &str) -> Result<Vec<HealingRule>, RuleFileError> {
    parse_toml(text, None)
}

/// Parse rules from JSON text (`{"rules": [ ... ]}`, durations as strings such as `"300s"`),
/// checking each rule's pattern and that ids are unique.
pub fn rules_from_json_str(text: &str) -> Result<Vec<HealingRule>, RuleFileError> {
    parse_json(text, None)
}

/// Read rules from a file whose name ends in `.toml` or `.json`.
pub fn load_rules(path: impl AsRef<Path>) -> Result<Vec<HealingRule>, RuleFileError> {
    let path = path.as_ref();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let format: fn(&str, Option<PathBuf>) -> Result<Vec<HealingRule>, RuleFileError> =
        match ext.as_deref() {
            Some("toml") => parse_toml,
            Some("json") => parse_json,
            _ => return Err(RuleFileError::UnknownFormat(path.to_owned())),
        };
    let text = std::fs::read_to_string(path).map_err(|source| RuleFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    format(&text, Some(path.to_owned()))
}

fn parse_toml(text: &str, path: Option<PathBuf>) -> Result<Vec<HealingRule>, RuleFileError> {
    match toml::from_str::<RulesFile>(text) {
        Ok(file) => check(file.rules, path),
        Err(source) => Err(RuleFileError::Toml { path, source }),
    }
}

fn parse_json(text: &str, path: Option<PathBuf>) -> Result<Vec<HealingRule>, RuleFileError> {
    match serde_json::from_str::<RulesFile>(text) {
        Ok(file) => check(file.rules, path),
        Err(source) => Err(RuleFileError::Json { path, source }),
    }
}

fn check(
    rules: Vec<HealingRule>,
    path: Option<PathBuf>,
) -> Result<Vec<HealingRule>, RuleFileError> {
    let mut ids = HashSet::new();
    for rule in &rules {
        let failed = |source| RuleFileError::Rule {
            path: path.clone(),
            source,
        };
        check_rule_shape(rule).map_err(failed)?;
        if !ids.insert(rule.rule_id.as_str()) {
            return Err(failed(HealingError::DuplicateRule {
                rule_id: rule.rule_id.clone(),
            }));
        }
    }
    Ok(rules)
}

/// The checks on a rule that need nothing but the rule: a non-empty id, a pattern that parses,
/// a non-empty component name or patch. Returns the parsed pattern.
pub(crate) fn check_rule_shape(rule: &HealingRule) -> Result<ErrorPattern, HealingError> {
    use crate::rule::HealingAction;
    if rule.rule_id.trim().is_empty() {
        return Err(HealingError::EmptyRuleId);
    }
    let pattern = ErrorPattern::parse(&rule.error_pattern).map_err(|reason| {
        HealingError::InvalidPattern {
            rule_id: rule.rule_id.clone(),
            pattern: rule.error_pattern.clone(),
            reason,
        }
    })?;
    match &rule.healing_action {
        HealingAction::RestartComponent(name) if name.trim().is_empty() => {
            Err(HealingError::EmptyComponent {
                rule_id: rule.rule_id.clone(),
            })
        }
        HealingAction::AdjustConfig(patch) if patch.is_empty() => Err(HealingError::EmptyPatch {
            rule_id: rule.rule_id.clone(),
        }),
        _ => Ok(pattern),
    }
}
