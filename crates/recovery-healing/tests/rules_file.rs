//! Rules from TOML and JSON files.

use std::time::Duration;

use recovery_healing::{
    ConfigPatch, HealingAction, HealingError, RuleFileError, SelfHealingStrategy, Severity,
    load_rules, rules_from_json_str, rules_from_toml_str,
};

const TOML: &str = r#"
[[rules]]
rule_id = "protocol_restart"
error_pattern = "CommunicationError"
healing_action = { RestartComponent = "agent_protocol" }
cooldown_duration = "300s"

[[rules]]
rule_id = "timeouts"
error_pattern = "CoordinationTimeout"
healing_action = { AdjustConfig = { task_timeout_secs = 600, verbose = true } }
cooldown_duration = "10m"

[[rules]]
rule_id = "page_someone"
error_pattern = "StateCorruption"
healing_action = { TriggerAlert = { severity = "critical", message = "state corrupt" } }
cooldown_duration = "1h 30m"

[[rules]]
rule_id = "move_work"
error_pattern = "NetworkTimeout: agent unreachable"
healing_action = "ReallocateResources"
cooldown_duration = "30s"

[[rules]]
rule_id = "flush"
error_pattern = "Storage"
healing_action = { ExecuteScript = "flush_cache" }
cooldown_duration = "5m"
"#;

#[test]
fn toml_rules_load_with_human_durations() {
    let rules = rules_from_toml_str(TOML).unwrap();
    assert_eq!(rules.len(), 5);
    assert_eq!(
        rules[0].healing_action,
        HealingAction::RestartComponent("agent_protocol".into())
    );
    assert_eq!(rules[0].cooldown_duration, Duration::from_secs(300));
    assert_eq!(
        rules[1].healing_action,
        HealingAction::AdjustConfig(
            ConfigPatch::new()
                .set("task_timeout_secs", 600)
                .set("verbose", true)
        )
    );
    assert_eq!(rules[1].cooldown_duration, Duration::from_secs(600));
    assert_eq!(
        rules[2].healing_action,
        HealingAction::TriggerAlert {
            severity: Severity::Critical,
            message: "state corrupt".into()
        }
    );
    assert_eq!(rules[2].cooldown_duration, Duration::from_secs(5400));
    assert_eq!(rules[3].healing_action, HealingAction::ReallocateResources);
    assert_eq!(
        rules[4].healing_action,
        HealingAction::ExecuteScript("flush_cache".into())
    );
    assert!(rules.iter().all(|r| r.last_applied.is_none()));
}

#[test]
fn json_rules_load() {
    let rules = rules_from_json_str(
        r#"{"rules": [
            {"rule_id": "r", "error_pattern": "CommunicationError: timeout",
             "healing_action": {"AdjustConfig": {"task_timeout_secs": 600}},
             "cooldown_duration": "5m"},
            {"rule_id": "m", "error_pattern": "ResourceConflict",
             "healing_action": "ReallocateResources", "cooldown_duration": "2s"}
        ]}"#,
    )
    .unwrap();
    assert_eq!(rules[0].cooldown_duration, Duration::from_secs(300));
    assert_eq!(rules[1].cooldown_duration, Duration::from_secs(2));
}

#[test]
fn a_toml_syntax_error_names_the_line() {
    let err = rules_from_toml_str("[[rules]]\nrule_id = \"a\"\nerror_pattern = \n").unwrap_err();
    assert!(matches!(err, RuleFileError::Toml { .. }));
    let msg = err.to_string();
    assert!(msg.contains("line 3"), "{msg}");
}

#[test]
fn a_bad_field_is_named() {
    let bad_duration = TOML.replace("\"10m\"", "\"ten minutes\"");
    let msg = rules_from_toml_str(&bad_duration).unwrap_err().to_string();
    assert!(msg.contains("cooldown_duration"), "{msg}");

    let misspelt = TOML.replace("cooldown_duration = \"30s\"", "cooldown = \"30s\"");
    let msg = rules_from_toml_str(&misspelt).unwrap_err().to_string();
    assert!(msg.contains("cooldown"), "{msg}");

    let with_state = format!("{TOML}last_applied = \"1s\"\n");
    let msg = rules_from_toml_str(&with_state).unwrap_err().to_string();
    assert!(msg.contains("last_applied"), "{msg}");

    let bad_action = TOML.replace("RestartComponent", "Restart");
    let msg = rules_from_toml_str(&bad_action).unwrap_err().to_string();
    assert!(msg.contains("Restart") && msg.contains("line"), "{msg}");

    let json = r#"{"rules": [{"rule_id": "r", "error_pattern": "Storage",
        "healing_action": "ReallocateResources", "cooldown_duration": 5}]}"#;
    let msg = rules_from_json_str(json).unwrap_err().to_string();
    assert!(msg.contains("line 2") && msg.contains("column"), "{msg}");
}

#[test]
fn an_unknown_pattern_names_the_rule_and_the_pattern() {
    let bad = TOML.replace("\"CoordinationTimeout\"", "\"CoordTimeout\"");
    let err = rules_from_toml_str(&bad).unwrap_err();
    assert!(matches!(
        err,
        RuleFileError::Rule {
            source: HealingError::InvalidPattern { .. },
            ..
        }
    ));
    let msg = err.to_string();
    assert!(
        msg.contains("`timeouts`") && msg.contains("CoordTimeout"),
        "{msg}"
    );
}

#[test]
fn duplicate_ids_are_refused() {
    let dup = TOML.replace("rule_id = \"flush\"", "rule_id = \"timeouts\"");
    let err = rules_from_toml_str(&dup).unwrap_err();
    assert!(
        err.to_string().contains("`timeouts` is already present"),
        "{err}"
    );
}

#[test]
fn files_are_read_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    let toml_path = dir.path().join("rules.toml");
    std::fs::write(&toml_path, TOML).unwrap();
    assert_eq!(load_rules(&toml_path).unwrap().len(), 5);

    let json_path = dir.path().join("rules.JSON");
    std::fs::write(&json_path, r#"{"rules": []}"#).unwrap();
    assert!(load_rules(&json_path).unwrap().is_empty());

    let yaml = dir.path().join("rules.yaml");
    std::fs::write(&yaml, "").unwrap();
    assert!(matches!(
        load_rules(&yaml),
        Err(RuleFileError::UnknownFormat(_))
    ));

    let missing = dir.path().join("missing.toml");
    let err = load_rules(&missing).unwrap_err();
    assert!(matches!(err, RuleFileError::Io { .. }));
    assert!(err.to_string().contains("missing.toml"));

    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[[rules]]\nrule_id = 5\n").unwrap();
    let msg = load_rules(&broken).unwrap_err().to_string();
    assert!(
        msg.contains("broken.toml") && msg.contains("line 2"),
        "{msg}"
    );
}

#[tokio::test]
async fn loaded_rules_go_into_a_strategy() {
    let rules = rules_from_toml_str(TOML).unwrap();
    let without_script: Vec<_> = rules
        .into_iter()
        .filter(|r| !matches!(r.healing_action, HealingAction::ExecuteScript(_)))
        .collect();
    let s = SelfHealingStrategy::empty();
    s.add_healing_rules(without_script).await.unwrap();
    assert_eq!(s.rules().len(), 4);

    // A script rule needs the script in the runner's allow-list.
    let script_rule = rules_from_toml_str(TOML).unwrap().pop().unwrap();
    assert!(matches!(
        s.add_healing_rule(script_rule).await,
        Err(HealingError::UnknownScript { .. })
    ));
}
