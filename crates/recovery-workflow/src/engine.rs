//! Running a workflow: `impl RecoveryStrategy<T> for Workflow<T>`.

use recovery_core::{
    RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy, StepOutcome, StepStatus,
    SwarmError, async_trait,
};
use tokio::time::Instant;

use crate::step::{OnFailure, StepDone};
use crate::workflow::Workflow;

/// The tracing target of the engine's events.
const TARGET: &str = "recovery_workflow";

/// Confidence of a success in which every step succeeded.
const CONFIDENCE_ALL: f64 = 0.8;
/// Confidence of a success in which an optional step failed or did not run.
const CONFIDENCE_SOME: f64 = 0.6;

/// How the run of the steps ended.
enum End {
    /// Every step ran (some may have failed and been skipped).
    Completed,
    /// A step failed with [`OnFailure::Stop`]; its index and message.
    Stopped(usize, String),
    /// A step failed with [`OnFailure::Compensate`]; its index and message.
    Compensated(usize, String),
}

#[async_trait]
impl<T: ?Sized + Send + Sync> RecoveryStrategy<T> for Workflow<T> {
    /// Run the steps in order (see the crate docs for the semantics). An error the workflow
    /// does not handle runs nothing and gives [`RecoveryResult::no_change`].
    async fn recover(&self, context: &RecoveryContext<T>, error: &SwarmError) -> RecoveryResult {
        if !self.handles_error(error) {
            return RecoveryResult::no_change(format!(
                "workflow `{}` does not handle {}",
                self.id,
                error.kind()
            ));
        }
        let started = Instant::now();
        let mut outcomes: Vec<StepOutcome> = self
            .steps
            .iter()
            .map(|s| StepOutcome {
                name: s.name().to_owned(),
                action: s.kind().to_owned(),
                required: s.is_required(),
                status: StepStatus::NotRun,
                detail: String::new(),
                retries: 0,
            })
            .collect();
        // The steps that succeeded, in order, with what their undo needs.
        let mut done: Vec<(usize, StepDone)> = Vec::new();
        let mut end = End::Completed;

        for (i, step) in self.steps.iter().enumerate() {
            let step_started = Instant::now();
            let ran = step.action().run(context, error).await;
            let took = step_started.elapsed();
            let outcome = &mut outcomes[i];
            match ran {
                Ok(d) => {
                    tracing::info!(target: TARGET, workflow = %self.id, position = i + 1, step = %step.name(),
                        kind = %step.kind(), took = ?took, retries = d.retries, "step succeeded: {}", d.detail);
                    outcome.status = StepStatus::Succeeded;
                    outcome.detail.clone_from(&d.detail);
                    outcome.retries = d.retries;
                    done.push((i, d));
                }
                Err(f) => {
                    outcome.detail.clone_from(&f.message);
                    outcome.retries = f.retries;
                    let policy = step.failure_policy();
                    tracing::warn!(target: TARGET, workflow = %self.id, position = i + 1, step = %step.name(),
                        kind = %step.kind(), took = ?took, retries = f.retries, required = step.is_required(),
                        on_failure = %policy, "step failed: {}", f.message);
                    match policy {
                        OnFailure::Skip => outcome.status = StepStatus::FailedSkipped,
                        OnFailure::Stop => {
                            outcome.status = StepStatus::Failed;
                            end = End::Stopped(i, f.message);
                            break;
                        }
                        OnFailure::Compensate => {
                            outcome.status = StepStatus::Failed;
                            end = End::Compensated(i, f.message);
                            break;
                        }
                    }
                }
            }
        }

        if let End::Stopped(at, _) | End::Compensated(at, _) = &end {
            let why = format!(
                "the workflow stopped at step {} `{}`",
                at + 1,
                self.steps[*at].name()
            );
            for (i, outcome) in outcomes.iter_mut().enumerate().skip(at + 1) {
                tracing::debug!(target: TARGET, workflow = %self.id, position = i + 1, step = %outcome.name,
                    "step not run: {why}");
                outcome.detail.clone_from(&why);
            }
        }

        // Undo, latest first; a failing undo does not stop the others.
        let mut undone: Vec<usize> = Vec::new();
        let mut undo_failed: Vec<(usize, String)> = Vec::new();
        if matches!(end, End::Compensated(..)) {
            for (i, d) in done.iter().rev() {
                let step = &self.steps[*i];
                let outcome = &mut outcomes[*i];
                match step.action().undo(context, d).await {
                    Ok(what) => {
                        tracing::info!(target: TARGET, workflow = %self.id, position = i + 1, step = %step.name(),
                            kind = %step.kind(), "step compensated: {what}");
                        outcome.status = StepStatus::Compensated;
                        outcome.detail = format!("{}; undone: {what}", d.detail);
                        undone.push(*i);
                    }
                    Err(why) => {
                        tracing::error!(target: TARGET, workflow = %self.id, position = i + 1, step = %step.name(),
                            kind = %step.kind(), "compensation failed, the target may be half-changed: {why}");
                        outcome.status = StepStatus::CompensationFailed;
                        outcome.detail = format!("{}; undo failed: {why}", d.detail);
                        undo_failed.push((*i, why));
                    }
                }
            }
        }

        let success = matches!(end, End::Stopped(..) | End::Completed)
            && outcomes
                .iter()
                .all(|o| !o.required || o.status == StepStatus::Succeeded);
        let text = self.summary(&end, &outcomes, &undone, &undo_failed, success);
        let action = RecoveryAction::Workflow {
            workflow_id: self.id.clone(),
            steps: outcomes.clone(),
        };
        let result = if success {
            let all = outcomes.iter().all(|o| o.status == StepStatus::Succeeded);
            tracing::info!(target: TARGET, workflow = %self.id, "{text}");
            RecoveryResult::success(action, text).with_confidence(if all {
                CONFIDENCE_ALL
            } else {
                CONFIDENCE_SOME
            })
        } else {
            tracing::warn!(target: TARGET, workflow = %self.id, "{text}");
            RecoveryResult::failure(action, text).with_continue_recovery(undo_failed.is_empty())
        };
        let mut result = result
            .with_duration(started.elapsed())
            .with_metadata("workflow_id", self.id.clone());
        for (i, o) in outcomes.iter().enumerate() {
            result.metadata.insert(
                format!("step.{}.{}", i + 1, o.name),
                format!("{}: {}", o.status, o.detail),
            );
        }
        result
    }
}

impl<T: ?Sized + Send + Sync> Workflow<T> {
    /// The result's `action_taken`.
    fn summary(
        &self,
        end: &End,
        outcomes: &[StepOutcome],
        undone: &[usize],
        undo_failed: &[(usize, String)],
        success: bool,
    ) -> String {
        let id = &self.id;
        let n = outcomes.len();
        let name = |i: usize| format!("{} `{}`", i + 1, outcomes[i].name);
        let ok = outcomes
            .iter()
            .filter(|o| o.status == StepStatus::Succeeded)
            .count();
        let failed: Vec<String> = outcomes
            .iter()
            .enumerate()
            .filter(|(_, o)| matches!(o.status, StepStatus::Failed | StepStatus::FailedSkipped))
            .map(|(i, o)| format!("step {} failed: {}", name(i), o.detail))
            .collect();
        match end {
            _ if success && ok == n => {
                format!("workflow `{id}` completed: all {n} steps succeeded")
            }
            _ if success => format!(
                "workflow `{id}` completed: every required step succeeded ({ok} of {n} steps; {})",
                failed.join("; ")
            ),
            End::Completed => format!(
                "workflow `{id}` failed: it ran every step, but a required one failed ({})",
                failed.join("; ")
            ),
            End::Stopped(at, message) => {
                let not_run = n - at - 1;
                format!(
                    "workflow `{id}` failed: stopped at step {}: {message}; {not_run} later step(s) not run",
                    name(*at)
                )
            }
            End::Compensated(at, message) => {
                let head = format!(
                    "workflow `{id}` failed at step {}: {message}; compensated",
                    name(*at)
                );
                let undone: Vec<String> = undone.iter().map(|&i| name(i)).collect();
                let undone = if undone.is_empty() {
                    "nothing".to_owned()
                } else {
                    format!("steps {} (latest first)", undone.join(", "))
                };
                if undo_failed.is_empty() {
                    format!("{head}: undid {undone}")
                } else {
                    let failed: Vec<String> = undo_failed
                        .iter()
                        .map(|(i, why)| format!("undoing step {} failed: {why}", name(*i)))
                        .collect();
                    format!(
                        "{head}: undid {undone}; {}; the target may be half-changed: \
                         manual intervention required, a person should look",
                        failed.join("; ")
                    )
                }
            }
        }
    }
}
