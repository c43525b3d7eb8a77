//! Every step run, not run or undone emits a tracing event of target `recovery_workflow`.
//!
//! Alone in its test binary: tracing caches a callsite's interest globally, so a test on
//! another thread hitting the same callsites while this one installs its subscriber could hide
//! an event from it.

mod common;

use std::sync::{Arc, Mutex};

use common::{Rec, Target, comm_error, ctx};
use recovery_core::{ErrorKind, RecoveryStrategy};
use recovery_workflow::{OnFailure, Step, Workflow};

#[tokio::test]
async fn each_step_emits_a_tracing_event() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let _guard = tracing::subscriber::set_default(Collect(Arc::clone(&events)));
    let wf = Workflow::builder("wf")
        .handles([ErrorKind::CommunicationError])
        .step(Step::new("a", Rec::ok("a").arc()))
        .step(Step::new("b", Rec::fail("b", "x").arc()).on_failure(OnFailure::Compensate))
        .step(Step::new("c", Rec::ok("c").arc()))
        .build()
        .unwrap();
    wf.recover(&ctx(&Arc::new(Target::default())), &comm_error())
        .await;
    let events = events.lock().unwrap().clone();
    // a succeeded, b failed, c not run, a compensated, and the summary.
    assert_eq!(
        events,
        ["INFO", "WARN", "DEBUG", "INFO", "WARN"],
        "levels of the events with target recovery_workflow"
    );
}

/// A subscriber that keeps the level of every event of target `recovery_workflow`.
struct Collect(Arc<Mutex<Vec<String>>>);

impl tracing::Subscriber for Collect {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target() == "recovery_workflow" {
            self.0
                .lock()
                .unwrap()
                .push(event.metadata().level().to_string());
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
