//! Workflows from TOML: a good one loads and runs; each kind of mistake is an error that names
//! the workflow and the step.

mod common;

use std::sync::Arc;

use common::{Rec, Target, comm_error, ctx, steps};
use recovery_core::{ErrorKind, RecoveryStrategy, StepStatus, StrategyInfo};
use recovery_workflow::{
    OnFailure, Params, StepAction, StepProblem, StepRegistry, Workflow, WorkflowError, WorkflowSpec,
};
use serde::{Deserialize, Serialize};

/// The file around the workflows: the caller's own type.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct File {
    workflows: Vec<WorkflowSpec>,
}

fn registry() -> StepRegistry<Target> {
    let mut r = StepRegistry::new();
    r.register("checkpoint", |params: &toml::Table| {
        Params::new(params, &[])?;
        Ok(Rec::ok("checkpoint").arc())
    })
    .register("restart", |params: &toml::Table| {
        let p = Params::new(params, &["component", "fails"])?;
        let component = p.required_str("component")?;
        let name = format!("restart {component}");
        let rec = if p.optional_bool("fails")?.unwrap_or(false) {
            Rec::fail(&name, "did not come up")
        } else {
            Rec::ok(&name)
        };
        Ok(rec.arc())
    })
    .register("set", |params: &toml::Table| {
        let p = Params::new(params, &["key", "value"])?;
        let key = p.required_str("key")?;
        let value = p
            .optional_i64("value")?
            .ok_or("missing parameter `value`")?;
        Ok(Arc::new(Rec::ok(&format!("set {key}")).sets(key, value))
            as Arc<dyn StepAction<Target>>)
    })
    .condition("timeout_raised", |t: &Target| {
        match t.config.lock().unwrap().get("timeout") {
            Some(v) if *v >= 600 => Ok(format!("timeout is {v}")),
            other => Err(format!("timeout is {other:?}")),
        }
    });
    r
}

const GOOD: &str = r#"
[[workflows]]
id = "reconnect_agent"
description = "raise the timeout, restart the protocol, check"
handles = ["CommunicationError", "CoordinationTimeout"]
cost = 0.4

[[workflows.steps]]
name = "snapshot"
action = "checkpoint"

[[workflows.steps]]
name = "raise timeout"
action = "set"
key = "timeout"
value = 600
on_failure = "stop"
required = true

[[workflows.steps]]
name = "restart protocol"
action = "restart"
component = "agent_protocol"
on_failure = "compensate"

[[workflows.steps]]
name = "timeout raised"
action = "verify"
condition = "timeout_raised"
on_failure = "skip"
required = false
"#;

fn parse(text: &str) -> File {
    toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
}

fn build(text: &str) -> Result<Workflow<Target>, WorkflowError> {
    let file = parse(text);
    assert_eq!(file.workflows.len(), 1);
    file.workflows[0].build(&registry())
}

/// `GOOD` with the `from` text replaced by `to` (which must occur).
fn good_with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from}");
    GOOD.replacen(from, to, 1)
}

fn build_err(text: &str) -> String {
    build(text).unwrap_err().to_string()
}

#[tokio::test]
async fn a_good_workflow_loads_and_runs() {
    let wf = build(GOOD).unwrap();
    assert_eq!(wf.strategy_id(), "reconnect_agent");
    assert_eq!(
        wf.description(),
        "raise the timeout, restart the protocol, check"
    );
    assert_eq!(
        wf.handles(),
        [
            ErrorKind::CommunicationError,
            ErrorKind::CoordinationTimeout
        ]
    );
    assert_eq!(wf.cost_estimate().await, 0.4);
    let policies: Vec<(OnFailure, bool)> = wf
        .steps()
        .iter()
        .map(|s| (s.failure_policy(), s.is_required()))
        .collect();
    assert_eq!(
        policies,
        [
            (OnFailure::Stop, true),
            (OnFailure::Stop, true),
            (OnFailure::Compensate, true),
            (OnFailure::Skip, false)
        ]
    );

    let target = Target::with_config(&[("timeout", 30)]);
    let result = wf.recover(&ctx(&target), &comm_error()).await;
    assert!(result.success, "{}", result.action_taken);
    assert_eq!(
        target.log(),
        [
            "run checkpoint",
            "run set timeout",
            "run restart agent_protocol"
        ]
    );
    let kinds: Vec<&str> = steps(&result).iter().map(|s| s.action.as_str()).collect();
    assert_eq!(kinds, ["rec", "rec", "rec", "verify"]);
    assert_eq!(
        result.metadata["step.4.timeout raised"],
        "succeeded: condition `timeout_raised` holds: timeout is 600"
    );
}

#[tokio::test]
async fn a_failing_restart_from_toml_compensates() {
    let wf = build(&good_with(
        "component = \"agent_protocol\"",
        "component = \"agent_protocol\"\nfails = true",
    ))
    .unwrap();
    let target = Target::with_config(&[("timeout", 30)]);
    let result = wf.recover(&ctx(&target), &comm_error()).await;
    assert!(!result.success);
    let statuses: Vec<StepStatus> = steps(&result).iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        [
            StepStatus::Compensated,
            StepStatus::Compensated,
            StepStatus::Failed,
            StepStatus::NotRun
        ]
    );
    assert_eq!(target.config()["timeout"], 30);
}

#[test]
fn defaults_apply() {
    let text = r#"
        [[workflows]]
        id = "w"
        handles = ["Storage"]
        [[workflows.steps]]
        name = "s"
        action = "checkpoint"
    "#;
    let spec = &parse(text).workflows[0];
    assert_eq!(spec.cost, 0.5);
    assert_eq!(spec.description, "");
    assert_eq!(spec.steps[0].on_failure, "stop");
    assert!(spec.steps[0].required);
    assert!(spec.steps[0].params.is_empty());
    let wf = spec.build(&registry()).unwrap();
    assert_eq!(wf.cost(), 0.5);
    assert_eq!(wf.steps()[0].failure_policy(), OnFailure::Stop);
}

#[test]
fn an_unknown_action_names_the_workflow_the_step_and_the_known_actions() {
    assert_eq!(
        build_err(&good_with("action = \"restart\"", "action = \"restartt\"")),
        "workflow `reconnect_agent`, step 3 `restart protocol`: unknown action `restartt` \
         (known: checkpoint, restart, set, verify)"
    );
}

#[test]
fn an_unknown_parameter_names_the_workflow_the_step_and_the_parameter() {
    let err = build(&good_with("component =", "componnet =")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "workflow `reconnect_agent`, step 3 `restart protocol`: unknown parameter `componnet` \
         (expected: component, fails)"
    );
    assert!(matches!(
        err,
        WorkflowError::Step {
            position: 3,
            problem: StepProblem::BadParameters(_),
            ..
        }
    ));
    // A misspelt `on_failure` key is a parameter no action takes.
    assert_eq!(
        build_err(&good_with("on_failure = \"stop\"", "on_falure = \"stop\"")),
        "workflow `reconnect_agent`, step 2 `raise timeout`: unknown parameter `on_falure` \
         (expected: key, value)"
    );
}

#[test]
fn a_missing_or_bad_parameter_is_named() {
    assert_eq!(
        build_err(&good_with("value = 600", "value = \"600\"")),
        "workflow `reconnect_agent`, step 2 `raise timeout`: parameter `value` must be an \
         integer, not string `\"600\"`"
    );
    assert_eq!(
        build_err(&good_with("condition = \"timeout_raised\"", "")),
        "workflow `reconnect_agent`, step 4 `timeout raised`: missing parameter `condition`"
    );
    assert_eq!(
        build_err(&good_with("\"timeout_raised\"", "\"timeout_rased\"")),
        "workflow `reconnect_agent`, step 4 `timeout raised`: unknown condition \
         `timeout_rased` (known: timeout_raised)"
    );
}

#[test]
fn a_bad_on_failure_names_the_workflow_and_the_step() {
    assert_eq!(
        build_err(&good_with(
            "on_failure = \"compensate\"",
            "on_failure = \"rollback\""
        )),
        "workflow `reconnect_agent`, step 3 `restart protocol`: on_failure `rollback` is not \
         one of: stop, skip, compensate"
    );
}

#[test]
fn an_unknown_error_kind_names_the_workflow_and_the_kind() {
    let err = build_err(&good_with("\"CoordinationTimeout\"", "\"CoordTimeout\""));
    assert!(
        err.starts_with(
            "workflow `reconnect_agent`: handles names unknown error kind `CoordTimeout` (known: "
        ),
        "{err}"
    );
    assert!(err.contains("CoordinationTimeout"), "{err}");
    let err = build_err(&good_with(
        "\"CoordinationTimeout\"",
        "\"ProtocolMismatch\"",
    ));
    assert!(
        err.contains("`ProtocolMismatch`, which is not recoverable"),
        "{err}"
    );
}

#[test]
fn a_duplicate_step_name_names_the_workflow_and_both_steps() {
    assert_eq!(
        build_err(&good_with(
            "name = \"timeout raised\"",
            "name = \"snapshot\""
        )),
        "workflow `reconnect_agent`, step 4 `snapshot`: step 1 has the same name; step names \
         must be unique"
    );
}

#[test]
fn workflow_level_mistakes_name_the_workflow() {
    assert_eq!(
        build_err(&good_with("cost = 0.4", "cost = 4.0")),
        "workflow `reconnect_agent`: cost 4 is not in 0.0..=1.0"
    );
    assert_eq!(
        build_err(&good_with(
            "[\"CommunicationError\", \"CoordinationTimeout\"]",
            "[]"
        )),
        "workflow `reconnect_agent` handles no error kind; name at least one in `handles`"
    );
    assert_eq!(
        build_err(&good_with("id = \"reconnect_agent\"", "id = \"\"")),
        "a workflow's id is empty"
    );
}

#[test]
fn a_misspelt_workflow_field_is_a_parse_error() {
    let err = toml::from_str::<File>(&good_with("handles =", "handle =")).unwrap_err();
    assert!(err.to_string().contains("unknown field `handle`"), "{err}");
    let err =
        toml::from_str::<File>(&good_with("required = true", "required = \"yes\"")).unwrap_err();
    assert!(err.to_string().contains("required"), "{err}");
}

#[test]
fn specs_round_trip_through_toml() {
    let file = parse(GOOD);
    let text = toml::to_string(&file).unwrap();
    assert_eq!(parse(&text), file, "{text}");
}
