//! Random step sequences against a plain reference model of the semantics.

mod common;

use std::sync::Arc;

use common::{Rec, Target, comm_error, ctx, steps};
use proptest::prelude::*;
use recovery_core::{ErrorKind, RecoveryStrategy, StepStatus};
use recovery_workflow::{OnFailure, Step, Workflow};

#[derive(Debug, Clone)]
struct Gen {
    fails: bool,
    retries: u32,
    on_failure: OnFailure,
    required: bool,
    undo_fails: bool,
}

fn gen_step() -> impl Strategy<Value = Gen> {
    (
        any::<bool>(),
        0u32..4,
        prop_oneof![
            Just(OnFailure::Stop),
            Just(OnFailure::Skip),
            Just(OnFailure::Compensate)
        ],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(fails, retries, on_failure, required, undo_fails)| Gen {
            fails,
            retries,
            on_failure,
            required,
            undo_fails,
        })
}

/// What the semantics say should happen.
#[derive(Debug, PartialEq)]
struct Expected {
    statuses: Vec<StepStatus>,
    success: bool,
    continue_recovery: bool,
    /// `run i` and `undo i`, in order.
    log: Vec<String>,
    retries: u32,
}

fn model(gens: &[Gen]) -> Expected {
    let mut statuses = vec![StepStatus::NotRun; gens.len()];
    let mut log = Vec::new();
    let mut succeeded = Vec::new();
    let mut retries = 0;
    let mut compensate = false;
    for (i, g) in gens.iter().enumerate() {
        log.push(format!("run {i}"));
        retries += g.retries;
        if !g.fails {
            statuses[i] = StepStatus::Succeeded;
            succeeded.push(i);
            continue;
        }
        match g.on_failure {
            OnFailure::Skip => statuses[i] = StepStatus::FailedSkipped,
            OnFailure::Stop => {
                statuses[i] = StepStatus::Failed;
                break;
            }
            OnFailure::Compensate => {
                statuses[i] = StepStatus::Failed;
                compensate = true;
                break;
            }
        }
    }
    if compensate {
        for &j in succeeded.iter().rev() {
            log.push(format!("undo {j}"));
            statuses[j] = if gens[j].undo_fails {
                StepStatus::CompensationFailed
            } else {
                StepStatus::Compensated
            };
        }
    }
    let success = !compensate
        && gens
            .iter()
            .zip(&statuses)
            .all(|(g, s)| !g.required || *s == StepStatus::Succeeded);
    let continue_recovery = !success && !statuses.contains(&StepStatus::CompensationFailed);
    Expected {
        statuses,
        success,
        continue_recovery,
        log,
        retries,
    }
}

fn workflow(gens: &[Gen]) -> Workflow<Target> {
    let steps = gens.iter().enumerate().map(|(i, g)| {
        let name = i.to_string();
        let mut rec = if g.fails {
            Rec::fail(&name, "failed")
        } else {
            Rec::ok(&name)
        }
        .retries(g.retries);
        if g.undo_fails {
            rec = rec.undo_fails();
        }
        Step::new(format!("step {i}"), rec.arc())
            .on_failure(g.on_failure)
            .required(g.required)
    });
    Workflow::builder("model")
        .handles([ErrorKind::CommunicationError])
        .steps(steps)
        .build()
        .unwrap()
}

proptest! {
    #[test]
    fn the_engine_follows_the_model(gens in prop::collection::vec(gen_step(), 1..8)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let target = Arc::new(Target::default());
        let result = rt.block_on(workflow(&gens).recover(&ctx(&target), &comm_error()));
        let expected = model(&gens);

        let got = Expected {
            statuses: steps(&result).iter().map(|s| s.status).collect(),
            success: result.success,
            continue_recovery: result.continue_recovery,
            log: target.log(),
            retries: result.retries_made(),
        };
        prop_assert_eq!(got, expected);
        prop_assert_eq!(
            result.metadata.keys().filter(|k| k.starts_with("step.")).count(),
            gens.len()
        );
        prop_assert_eq!(result.confidence > 0.0, result.success);
        prop_assert_eq!(
            !result.continue_recovery && !result.success,
            result.action_taken.contains("manual intervention required")
        );
    }
}
