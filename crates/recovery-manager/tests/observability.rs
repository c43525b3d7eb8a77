//! The manager's tracing event and metrics, captured and checked.

use std::sync::{Arc, Mutex};

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use recovery_core::{
    RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy, StrategyInfo, SwarmError,
    async_trait,
};
use recovery_manager::{RecoveryConfig, RecoveryManager, metrics as names};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

struct Always;

#[async_trait]
impl StrategyInfo for Always {
    fn strategy_id(&self) -> &str {
        "always"
    }
    fn description(&self) -> &str {
        "succeeds"
    }
    async fn can_handle(&self, _: &SwarmError) -> bool {
        true
    }
    async fn cost_estimate(&self) -> f64 {
        0.1
    }
    async fn requires_external_resources(&self) -> bool {
        false
    }
}

#[async_trait]
impl RecoveryStrategy<()> for Always {
    async fn recover(&self, _: &RecoveryContext<()>, _: &SwarmError) -> RecoveryResult {
        RecoveryResult::success(RecoveryAction::Custom("ok".into()), "ok").with_confidence(0.75)
    }
}

/// One captured event: its fields as text, and the names of the spans it was inside.
#[derive(Debug, Default, Clone)]
struct Captured {
    fields: Vec<(String, String)>,
    spans: Vec<String>,
}

impl Captured {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut c = Captured::default();
        event.record(&mut Fields(&mut c.fields));
        if let Some(scope) = ctx.event_scope(event) {
            c.spans = scope.map(|s| s.name().to_owned()).collect();
        }
        self.0.lock().unwrap().push(c);
    }
}

#[test]
fn every_attempt_emits_the_specs_event_inside_a_span_and_records_metrics() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    tracing::subscriber::with_default(subscriber, || {
        metrics::with_local_recorder(&recorder, || {
            rt.block_on(async {
                let m = RecoveryManager::empty(RecoveryConfig::default()).unwrap();
                m.add_strategy(Arc::new(Always)).await;
                let e = SwarmError::CommunicationError("Network timeout".into());
                m.recover(Arc::new(()), e, None, None).await.unwrap();
                m.recover(
                    Arc::new(()),
                    SwarmError::ProtocolMismatch("v1".into()),
                    None,
                    None,
                )
                .await
                .unwrap();
            })
        })
    });

    let events = capture.0.lock().unwrap().clone();
    let done: Vec<_> = events
        .iter()
        .filter(|e| e.get("message") == Some("Recovery attempt completed"))
        .collect();
    assert_eq!(done.len(), 2, "{events:#?}");
    let first = done[0];
    assert_eq!(first.get("strategy_used"), Some("always"));
    assert_eq!(
        first.get("error_type"),
        Some("communication error: Network timeout")
    );
    assert_eq!(first.get("success"), Some("true"));
    assert_eq!(first.get("confidence"), Some("0.75"));
    assert!(first.get("duration_ms").is_some());
    assert!(uuid::Uuid::parse_str(first.get("recovery_attempt_id").unwrap()).is_ok());
    assert_eq!(first.spans, ["recovery"]);
    assert_eq!(done[1].get("strategy_used"), Some("none"));
    assert_eq!(done[1].get("success"), Some("false"));

    let metrics = snapshotter.snapshot().into_vec();
    let find = |name: &str, label: (&str, &str)| {
        metrics
            .iter()
            .find(|(key, ..)| {
                key.key().name() == name
                    && key
                        .key()
                        .labels()
                        .any(|l| l.key() == label.0 && l.value() == label.1)
            })
            .map(|(_, _, _, v)| v)
    };
    assert_eq!(
        find(names::ATTEMPTS, ("strategy", "always")),
        Some(&DebugValue::Counter(1))
    );
    assert_eq!(
        find(
            names::MANUAL_INTERVENTIONS,
            ("error_kind", "ProtocolMismatch")
        ),
        Some(&DebugValue::Counter(1))
    );
    match find(names::DURATION, ("strategy", "always")) {
        Some(DebugValue::Histogram(v)) => assert_eq!(v.len(), 1),
        other => panic!("no duration histogram: {other:?}"),
    }
}
