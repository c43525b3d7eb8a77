//! What `Workflow::builder(..).build()` refuses.

mod common;

use common::{Rec, Target};
use recovery_core::ErrorKind;
use recovery_workflow::{Step, StepProblem, Workflow, WorkflowBuilder, WorkflowError};

fn good() -> WorkflowBuilder<Target> {
    Workflow::builder("wf")
        .handles([ErrorKind::CommunicationError])
        .step(Step::new("a", Rec::ok("a").arc()))
}

#[test]
fn a_good_workflow_builds() {
    let wf = good()
        .handles([ErrorKind::CommunicationError, ErrorKind::Storage])
        .cost(0.0)
        .description("does a")
        .build()
        .unwrap();
    assert_eq!(wf.id(), "wf");
    assert_eq!(
        wf.handles(),
        [ErrorKind::CommunicationError, ErrorKind::Storage],
        "repeats dropped"
    );
    assert_eq!(wf.cost(), 0.0);
    assert_eq!(wf.steps().len(), 1);
    assert!(good().cost(1.0).build().is_ok());
}

#[test]
fn an_empty_id_is_refused() {
    let err = Workflow::<Target>::builder("  ")
        .handles([ErrorKind::CommunicationError])
        .step(Step::new("a", Rec::ok("a").arc()))
        .build()
        .unwrap_err();
    assert_eq!(err, WorkflowError::EmptyId);
}

#[test]
fn no_steps_is_refused() {
    let err = Workflow::<Target>::builder("wf")
        .handles([ErrorKind::CommunicationError])
        .build()
        .unwrap_err();
    assert_eq!(err.to_string(), "workflow `wf` has no steps");
}

#[test]
fn no_error_kind_is_refused() {
    let err = Workflow::<Target>::builder("wf")
        .step(Step::new("a", Rec::ok("a").arc()))
        .build()
        .unwrap_err();
    assert!(matches!(err, WorkflowError::NoErrorKinds { .. }), "{err}");
}

#[test]
fn an_unrecoverable_kind_is_refused() {
    let err = good()
        .handles([ErrorKind::ProtocolMismatch])
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        WorkflowError::NotRecoverable {
            workflow: "wf".into(),
            kind: ErrorKind::ProtocolMismatch
        }
    );
}

#[test]
fn a_cost_outside_zero_to_one_is_refused() {
    for cost in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
        let err = good().cost(cost).build().unwrap_err();
        assert!(
            matches!(err, WorkflowError::InvalidCost { .. }),
            "{cost}: {err}"
        );
        assert!(err.to_string().contains("workflow `wf`"), "{err}");
    }
}

#[test]
fn duplicate_and_empty_step_names_are_refused() {
    let err = good()
        .step(Step::new("b", Rec::ok("b").arc()))
        .step(Step::new("a", Rec::ok("a2").arc()))
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        WorkflowError::Step {
            workflow: "wf".into(),
            position: 3,
            step: "a".into(),
            problem: StepProblem::DuplicateName { first: 1 },
        }
    );
    let err = good()
        .step(Step::new("", Rec::ok("b").arc()))
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "workflow `wf`, step 2 ``: the step's name is empty"
    );
}
