//! The failure semantics of a workflow run through `recover`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Rec, Target, comm_error, ctx, steps};
use recovery_core::{
    ErrorKind, RecoveryAction, RecoveryContext, RecoveryStrategy, StepStatus, StrategyInfo,
    SwarmError,
};
use recovery_workflow::{OnFailure, Step, StepDone, Workflow, from_fn};

use StepStatus::{Compensated, CompensationFailed, Failed, FailedSkipped, NotRun, Succeeded};

fn workflow(steps: Vec<Step<Target>>) -> Workflow<Target> {
    Workflow::builder("wf")
        .handles([ErrorKind::CommunicationError])
        .steps(steps)
        .build()
        .unwrap()
}

fn statuses(result: &recovery_core::RecoveryResult) -> Vec<StepStatus> {
    steps(result).iter().map(|s| s.status).collect()
}

#[tokio::test]
async fn stop_leaves_later_steps_unrun_and_keeps_earlier_effects() {
    let target = Target::with_config(&[("timeout", 30)]);
    let wf = workflow(vec![
        Step::new("raise", Rec::ok("raise").sets("timeout", 600).arc()),
        Step::new("restart", Rec::fail("restart", "agent gone").arc()),
        Step::new("verify", Rec::ok("verify").arc()),
    ]);
    let result = wf.recover(&ctx(&target), &comm_error()).await;

    assert!(!result.success);
    assert!(result.continue_recovery);
    assert_eq!(result.confidence, 0.0);
    assert_eq!(statuses(&result), [Succeeded, Failed, NotRun]);
    assert_eq!(target.log(), ["run raise", "run restart"]);
    assert_eq!(target.config()["timeout"], 600, "step 1's effect is kept");
    assert!(
        result
            .action_taken
            .contains("stopped at step 2 `restart`: agent gone"),
        "{}",
        result.action_taken
    );
    assert_eq!(
        steps(&result)[2].detail,
        "the workflow stopped at step 2 `restart`"
    );
}

#[tokio::test]
async fn a_skipped_optional_failure_still_succeeds() {
    let target = Arc::new(Target::default());
    let wf = workflow(vec![
        Step::new("a", Rec::ok("a").arc()),
        Step::new("alert", Rec::fail("alert", "pager down").arc())
            .on_failure(OnFailure::Skip)
            .required(false),
        Step::new("c", Rec::ok("c").arc()),
    ]);
    let result = wf.recover(&ctx(&target), &comm_error()).await;

    assert!(result.success, "{}", result.action_taken);
    assert!(!result.continue_recovery);
    assert_eq!(result.confidence, 0.6, "lower: an optional step failed");
    assert_eq!(statuses(&result), [Succeeded, FailedSkipped, Succeeded]);
    assert_eq!(target.log(), ["run a", "run alert", "run c"]);
    assert!(
        result
            .action_taken
            .contains("step 2 `alert` failed: pager down"),
        "{}",
        result.action_taken
    );
}

#[tokio::test]
async fn a_skipped_required_failure_runs_the_rest_but_fails() {
    let target = Arc::new(Target::default());
    let wf = workflow(vec![
        Step::new("a", Rec::ok("a").arc()),
        Step::new("b", Rec::fail("b", "broken").arc()).on_failure(OnFailure::Skip),
        Step::new("c", Rec::ok("c").arc()),
    ]);
    let result = wf.recover(&ctx(&target), &comm_error()).await;

    assert!(!result.success);
    assert!(result.continue_recovery);
    assert_eq!(statuses(&result), [Succeeded, FailedSkipped, Succeeded]);
    assert_eq!(target.log(), ["run a", "run b", "run c"]);
    assert!(
        result.action_taken.contains("a required one failed"),
        "{}",
        result.action_taken
    );
}

#[tokio::test]
async fn an_optional_step_that_stops_at_the_end_does_not_spoil_success() {
    let target = Arc::new(Target::default());
    let wf = workflow(vec![
        Step::new("a", Rec::ok("a").arc()),
        Step::new("alert", Rec::fail("alert", "pager down").arc()).required(false),
        Step::new("note", Rec::ok("note").arc()).required(false),
    ]);
    let result = wf.recover(&ctx(&target), &comm_error()).await;
    assert!(result.success, "{}", result.action_taken);
    assert_eq!(statuses(&result), [Succeeded, Failed, NotRun]);
}

#[tokio::test]
async fn compensate_undoes_earlier_steps_latest_first() {
    let target = Target::with_config(&[("timeout", 30), ("workers", 4)]);
    let wf = workflow(vec![
        Step::new("raise timeout", Rec::ok("1").sets("timeout", 600).arc()),
        Step::new("more workers", Rec::ok("2").sets("workers", 8).arc()),
        Step::new("restart", Rec::fail("3", "restart failed").arc())
            .on_failure(OnFailure::Compensate),
        Step::new("verify", Rec::ok("4").arc()),
    ]);
    let before = target.config();
    let result = wf.recover(&ctx(&target), &comm_error()).await;

    assert!(!result.success);
    assert!(result.continue_recovery, "every undo worked");
    assert_eq!(
        statuses(&result),
        [Compensated, Compensated, Failed, NotRun]
    );
    assert_eq!(
        target.log(),
        ["run 1", "run 2", "run 3", "undo 2", "undo 1"]
    );
    assert_eq!(target.config(), before, "the target's state is back");
    assert_eq!(steps(&result)[1].detail, "2 done; undone: workers restored");
    assert!(
        result
            .action_taken
            .contains("undid steps 2 `more workers`, 1 `raise timeout` (latest first)"),
        "{}",
        result.action_taken
    );
}

#[tokio::test]
async fn compensation_does_not_undo_skipped_failures() {
    let target = Arc::new(Target::default());
    let wf = workflow(vec![
        Step::new("a", Rec::ok("a").arc()),
        Step::new("b", Rec::fail("b", "x").arc())
            .on_failure(OnFailure::Skip)
            .required(false),
        Step::new("c", Rec::fail("c", "y").arc()).on_failure(OnFailure::Compensate),
    ]);
    let result = wf.recover(&ctx(&target), &comm_error()).await;
    assert_eq!(statuses(&result), [Compensated, FailedSkipped, Failed]);
    assert_eq!(target.log(), ["run a", "run b", "run c", "undo a"]);
}

#[tokio::test]
async fn a_failing_undo_does_not_stop_the_others_and_asks_for_a_person() {
    let target = Target::with_config(&[("timeout", 30)]);
    let wf = workflow(vec![
        Step::new("raise", Rec::ok("1").sets("timeout", 600).arc()),
        Step::new("drain", Rec::ok("2").undo_fails().arc()),
        Step::new("restart", Rec::fail("3", "restart failed").arc())
            .on_failure(OnFailure::Compensate),
    ]);
    let result = wf.recover(&ctx(&target), &comm_error()).await;

    assert!(!result.success);
    assert!(!result.continue_recovery, "the target may be half-changed");
    assert_eq!(statuses(&result), [Compensated, CompensationFailed, Failed]);
    assert_eq!(
        target.log(),
        ["run 1", "run 2", "run 3", "undo 2", "undo 1"]
    );
    assert_eq!(target.config()["timeout"], 30, "step 1 was still undone");
    assert_eq!(
        steps(&result)[1].detail,
        "2 done; undo failed: 2 cannot be undone"
    );
    let text = &result.action_taken;
    assert!(
        text.contains("undoing step 2 `drain` failed: 2 cannot be undone"),
        "{text}"
    );
    assert!(
        text.contains("half-changed") && text.contains("manual intervention"),
        "{text}"
    );
}

#[tokio::test]
async fn every_outcome_is_in_the_action_and_the_metadata_and_retries_add_up() {
    let target = Arc::new(Target::default());
    let wf = workflow(vec![
        Step::new("retry", Rec::ok("r").retries(2).arc()),
        Step::new("again", Rec::fail("g", "still down").retries(3).arc())
            .on_failure(OnFailure::Skip)
            .required(false),
        Step::new("stop here", Rec::fail("s", "no").retries(1).arc()),
        Step::new("never", Rec::ok("n").retries(100).arc()),
    ]);
    let result = wf.recover(&ctx(&target), &comm_error()).await;

    let RecoveryAction::Workflow { workflow_id, steps } = &result.action else {
        panic!("{:?}", result.action)
    };
    assert_eq!(workflow_id, "wf");
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["retry", "again", "stop here", "never"]);
    assert!(steps.iter().all(|s| s.action == "rec"));
    assert_eq!(
        steps.iter().map(|s| s.required).collect::<Vec<_>>(),
        [true, false, true, true]
    );
    assert_eq!(result.retries_made(), 6, "2 + 3 + 1, the unrun step adds 0");
    assert_eq!(steps[3].retries, 0);

    assert_eq!(result.metadata["workflow_id"], "wf");
    assert_eq!(result.metadata["step.1.retry"], "succeeded: r done");
    assert_eq!(
        result.metadata["step.2.again"],
        "failed_skipped: still down"
    );
    assert_eq!(result.metadata["step.3.stop here"], "failed: no");
    assert_eq!(
        result.metadata["step.4.never"],
        "not_run: the workflow stopped at step 3 `stop here`"
    );
    let step_keys = result
        .metadata
        .keys()
        .filter(|k| k.starts_with("step."))
        .count();
    assert_eq!(step_keys, 4);
}

#[tokio::test(start_paused = true)]
async fn the_duration_is_measured() {
    let wf = workflow(vec![Step::new(
        "wait",
        Arc::new(from_fn(
            "wait",
            |ctx: RecoveryContext<Target>, _e: SwarmError| async move {
                ctx.sleep(Duration::from_secs(3)).await;
                Ok(StepDone::new("waited"))
            },
        )),
    )]);
    let result = wf
        .recover(&ctx(&Arc::new(Target::default())), &comm_error())
        .await;
    assert!(result.success);
    assert_eq!(result.confidence, 0.8);
    assert_eq!(result.recovery_duration, Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_recovery_keeps_what_was_done_and_holds_nothing() {
    let target = Arc::new(Target::default());
    let wf = workflow(vec![
        Step::new("a", Rec::ok("a").arc()),
        Step::new(
            "hang",
            Arc::new(from_fn(
                "hang",
                |ctx: RecoveryContext<Target>, _e: SwarmError| async move {
                    ctx.sleep(Duration::from_secs(3600)).await;
                    Ok(StepDone::new("late"))
                },
            )),
        )
        .on_failure(OnFailure::Compensate),
    ]);
    let context = ctx(&target);
    let error = comm_error();
    let timed_out =
        tokio::time::timeout(Duration::from_secs(1), wf.recover(&context, &error)).await;
    assert!(timed_out.is_err());
    assert_eq!(
        target.log(),
        ["run a"],
        "nothing undone for a cancelled run"
    );
    // The workflow is usable again at once.
    let again = tokio::time::timeout(Duration::from_secs(1), wf.recover(&context, &error)).await;
    assert!(again.is_err());
    assert_eq!(target.log(), ["run a", "run a"]);
}

#[tokio::test]
async fn can_handle_only_the_configured_recoverable_kinds() {
    let wf = Workflow::<Target>::builder("wf")
        .handles([ErrorKind::CommunicationError, ErrorKind::Storage])
        .step(Step::new("a", Rec::ok("a").arc()))
        .build()
        .unwrap();
    for &kind in ErrorKind::ALL {
        let error = match kind {
            ErrorKind::CommunicationError => comm_error(),
            ErrorKind::Storage => SwarmError::Storage("disk".into()),
            ErrorKind::CoordinationTimeout => SwarmError::CoordinationTimeout("slow".into()),
            ErrorKind::StateCorruption => SwarmError::StateCorruption("bad".into()),
            ErrorKind::ProtocolMismatch => SwarmError::ProtocolMismatch("v1".into()),
            _ => continue,
        };
        let expected = matches!(kind, ErrorKind::CommunicationError | ErrorKind::Storage);
        assert_eq!(wf.can_handle(&error).await, expected, "{kind}");
    }
    assert_eq!(wf.strategy_id(), "wf");
    assert_eq!(wf.cost_estimate().await, 0.5);
    assert!(!wf.requires_external_resources().await);
    assert_eq!(wf.description(), "recovery workflow: a");
}

#[tokio::test]
async fn an_error_it_does_not_handle_runs_nothing() {
    let target = Arc::new(Target::default());
    let wf = workflow(vec![Step::new("a", Rec::ok("a").arc())]);
    let result = wf
        .recover(&ctx(&target), &SwarmError::Storage("disk".into()))
        .await;
    assert!(!result.success && result.is_no_change(), "{result:?}");
    assert!(target.log().is_empty());
}

#[tokio::test]
async fn external_resources_come_from_the_steps() {
    let external = from_fn(
        "alert",
        |_c: RecoveryContext<Target>, _e: SwarmError| async { Ok(StepDone::new("sent")) },
    )
    .external(true);
    let wf = workflow(vec![
        Step::new("a", Rec::ok("a").arc()),
        Step::new("page", Arc::new(external)),
    ]);
    assert!(wf.requires_external_resources().await);
}
