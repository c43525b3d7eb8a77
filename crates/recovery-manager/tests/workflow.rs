//! Recovery workflows through the manager: written in the TOML file, their steps acting
//! through the strategies of this workspace on a real target, every step's outcome in the
//! result and the history, and a bad step named.

#![cfg(all(
    feature = "workflow",
    feature = "backoff",
    feature = "checkpoint",
    feature = "degradation",
    feature = "healing"
))]

use std::sync::Arc;

use recovery_core::{RecoveryAction, StepStatus, SwarmError};
use recovery_healing::ConfigValue;
use recovery_manager::{RecoveryManager, RecoverySettings, SettingsError};
use recovery_testkit::FakeTarget;

const WORKFLOW: &str = r#"
[[workflows]]
id = "rebuild_protocol"
handles = ["CommunicationError"]
cost = 0.05

[[workflows.steps]]
name = "snapshot"
action = "checkpoint"

[[workflows.steps]]
name = "longer timeout"
action = "adjust_config"
set = { task_timeout_secs = 900 }
undo = { task_timeout_secs = 300 }
on_failure = "compensate"

[[workflows.steps]]
name = "restart protocol"
action = "restart"
component = "agent_protocol"
on_failure = "compensate"

[[workflows.steps]]
name = "tell someone"
action = "alert"
message = "the agent protocol was rebuilt"
severity = "info"
required = false
on_failure = "skip"
"#;

/// The steps of `WORKFLOW` when its restart fails: the two before it undone, the last not run.
const RESTART_FAILED: [StepStatus; 4] = [
    StepStatus::Compensated,
    StepStatus::Compensated,
    StepStatus::Failed,
    StepStatus::NotRun,
];

fn timeout(target: &FakeTarget) -> Option<ConfigValue> {
    target.healing.config().get("task_timeout_secs")
}

/// Recover `target` from a connection reset.
async fn reset(
    manager: &RecoveryManager<FakeTarget>,
    target: &Arc<FakeTarget>,
) -> recovery_core::RecoveryResult {
    manager
        .recover(
            Arc::clone(target),
            SwarmError::CommunicationError("reset".into()),
            None,
            None,
        )
        .await
        .unwrap()
}

async fn manager(text: &str) -> RecoveryManager<FakeTarget> {
    let settings = RecoverySettings::from_toml_str(text).unwrap();
    settings
        .builder::<FakeTarget>()
        .await
        .unwrap()
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_workflow_from_toml_runs_every_step_and_the_history_keeps_them() {
    let manager = manager(WORKFLOW).await;
    let target = Arc::new(FakeTarget::new());
    let result = reset(&manager, &target).await;
    assert!(result.success, "{}", result.action_taken);
    // The workflow (cost 0.05) ran before the backoff strategy (0.1), and was enough.
    assert!(!result.metadata.contains_key("strategies_tried"));
    assert_eq!(timeout(&target), Some(ConfigValue::Integer(900)));
    assert_eq!(target.healing.restarts(), ["agent_protocol"]);
    assert_eq!(target.state.snapshots(), 1);
    let RecoveryAction::Workflow { workflow_id, steps } = &result.action else {
        panic!("{:?}", result.action)
    };
    assert_eq!(workflow_id, "rebuild_protocol");
    let statuses: Vec<StepStatus> = steps.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [StepStatus::Succeeded; 4]);
    let history = manager.get_recovery_history().await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].strategy_id, "rebuild_protocol");
    assert_eq!(history[0].result.action, result.action);
}

#[tokio::test]
async fn a_failing_restart_compensates_by_setting_the_config_back_and_restoring_the_checkpoint() {
    let manager = manager(WORKFLOW).await;
    let target = Arc::new(FakeTarget::new());
    target.state.set(7);
    target.healing.fail_restarts(true);
    let result = reset(&manager, &target).await;
    let history = manager.get_recovery_history().await;
    let workflow = history
        .iter()
        .find(|a| a.strategy_id == "rebuild_protocol")
        .expect("the workflow ran");
    assert!(!workflow.result.success);
    let RecoveryAction::Workflow { steps, .. } = &workflow.result.action else {
        panic!("{:?}", workflow.result.action)
    };
    let statuses: Vec<StepStatus> = steps.iter().map(|s| s.status).collect();
    assert_eq!(statuses, RESTART_FAILED, "{steps:?}");
    assert_eq!(
        timeout(&target),
        Some(ConfigValue::Integer(300)),
        "set back"
    );
    assert_eq!(target.state.restores(), 1, "the snapshot was restored");
    // The manager went on to the next strategy, the backoff, whose retry worked.
    assert!(result.success, "{}", result.action_taken);
    assert_eq!(
        result.metadata["strategies_tried"],
        "rebuild_protocol,exponential_backoff"
    );
}

#[tokio::test]
async fn a_compensation_that_fails_stops_the_recovery_for_a_person() {
    // No `undo` for the config step: compensating it fails.
    let text = WORKFLOW.replace("undo = { task_timeout_secs = 300 }\n", "");
    let manager = manager(&text).await;
    let target = Arc::new(FakeTarget::new());
    target.healing.fail_restarts(true);
    let result = reset(&manager, &target).await;
    assert!(!result.success);
    assert!(!result.continue_recovery, "a person must look");
    assert!(
        result.action_taken.contains("half-changed"),
        "{}",
        result.action_taken
    );
    let RecoveryAction::Workflow { steps, .. } = &result.action else {
        panic!("{:?}", result.action)
    };
    assert_eq!(steps[1].status, StepStatus::CompensationFailed);
    assert!(
        steps[1].detail.contains("no `undo` patch"),
        "{}",
        steps[1].detail
    );
    // The other undo still ran.
    assert_eq!(steps[0].status, StepStatus::Compensated);
    assert_eq!(target.state.restores(), 1);
    assert_eq!(target.retry.call_count(), 0, "no strategy ran after it");
}

#[tokio::test]
async fn a_bad_step_is_an_error_naming_the_workflow_and_the_step() {
    for (from, to, expect) in [
        (
            "action = \"restart\"",
            "action = \"restartt\"",
            "step 3 `restart protocol`: unknown action `restartt`",
        ),
        (
            "component = \"agent_protocol\"",
            "componnet = \"agent_protocol\"",
            "step 3 `restart protocol`: unknown parameter `componnet`",
        ),
        (
            "set = { task_timeout_secs = 900 }",
            "set = 900",
            "step 2 `longer timeout`: `set` is not a table",
        ),
        (
            "severity = \"info\"",
            "severity = \"loud\"",
            "step 4 `tell someone`: `severity` is `loud`",
        ),
    ] {
        let text = WORKFLOW.replace(from, to);
        let settings = RecoverySettings::from_toml_str(&text).unwrap();
        let e = match settings.builder::<FakeTarget>().await {
            Ok(_) => panic!("{to} was accepted"),
            Err(e) => e,
        };
        assert!(
            matches!(
                e,
                SettingsError::Invalid {
                    section: "workflows",
                    ..
                }
            ),
            "{e}"
        );
        let message = e.to_string();
        assert!(message.contains("workflow `rebuild_protocol`"), "{message}");
        assert!(message.contains(expect), "{message}");
    }
    let twice = format!(
        "{WORKFLOW}\n{}",
        &WORKFLOW[WORKFLOW.find("[[workflows]]").unwrap()..]
    );
    let e = RecoverySettings::from_toml_str(&twice).unwrap_err();
    assert!(
        e.to_string()
            .contains("two workflows have the id `rebuild_protocol`"),
        "{e}"
    );
}

#[tokio::test]
async fn the_learning_section_turns_the_learned_order_on() {
    let manager = manager("[learning]\nseed = 4\n").await;
    let target = Arc::new(FakeTarget::new());
    reset(&manager, &target).await;
    let stats = manager.statistics().await;
    assert!(!stats.learned_order.is_empty());
    let e = RecoverySettings::from_toml_str("[learning]\ndecay = 2.0\n").unwrap_err();
    assert!(
        e.to_string().contains("[learning]") && e.to_string().contains("decay"),
        "{e}"
    );
}

/// Sixteen recoveries of one workflow at once on a multi-thread runtime, each of whose restarts
/// fails: every one undoes its own steps (its own checkpoint restored, the config set back), and
/// none sees another's.
#[test]
fn concurrent_workflows_each_compensate_their_own_steps() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let text = format!(
            "[recovery]\nmax_concurrent_recoveries = 16\nhistory_retention = 1000\n[checkpoint]\nmax_checkpoints = 64\n{WORKFLOW}"
        );
        let manager = Arc::new(manager(&text).await);
        let target = Arc::new(FakeTarget::new());
        target.healing.fail_restarts(true);
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (manager, target) = (Arc::clone(&manager), Arc::clone(&target));
            callers.spawn(async move { reset(&manager, &target).await });
        }
        while let Some(result) = callers.join_next().await {
            // The backoff, after the workflow, recovered each.
            assert!(result.unwrap().success);
        }
        let history = manager.get_recovery_history().await;
        let workflows: Vec<_> = history
            .iter()
            .filter(|a| a.strategy_id == "rebuild_protocol")
            .collect();
        assert_eq!(workflows.len(), 16);
        let mut restored = std::collections::BTreeSet::new();
        for a in workflows {
            let RecoveryAction::Workflow { steps, .. } = &a.result.action else {
                panic!("{:?}", a.result.action)
            };
            let statuses: Vec<StepStatus> = steps.iter().map(|s| s.status).collect();
            assert_eq!(statuses, RESTART_FAILED, "{steps:?}");
            // Each undid the checkpoint it took itself, and no two took the same.
            let detail = &steps[0].detail;
            let id = |after: &str| {
                let at = detail.find(after).unwrap_or_else(|| panic!("{detail}")) + after.len();
                detail[at..at + 36].to_owned()
            };
            let taken = id("checkpoint ");
            assert_eq!(id("restored checkpoint "), taken, "{detail}");
            assert!(restored.insert(taken), "two recoveries took one checkpoint");
        }
        // One snapshot per checkpoint taken, one per restore checked.
        assert_eq!(target.state.snapshots(), 32);
        assert_eq!(target.state.restores(), 16);
        assert_eq!(timeout(&target), Some(ConfigValue::Integer(300)));
    });
}
