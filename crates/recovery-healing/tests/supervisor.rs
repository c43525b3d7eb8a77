//! The supervisor's restart intensity on paused time, and validated configuration patches.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::Counted;
use recovery_healing::{
    ConfigPatch, ConfigPatchError, ConfigSchema, ConfigValue, DuplicateComponent, RestartError,
    RestartIntensity, Supervisor, TunableConfig,
};

fn supervisor(intensity: RestartIntensity) -> (Supervisor, Arc<Counted>) {
    let s = Supervisor::with_intensity(intensity);
    let c = Arc::new(Counted::default());
    s.register("worker", c.clone()).unwrap();
    (s, c)
}

#[tokio::test(start_paused = true)]
async fn otp_default_is_one_restart_in_five_seconds() {
    let (s, c) = supervisor(RestartIntensity::default());
    s.restart("worker").await.unwrap();
    tokio::time::advance(Duration::from_millis(4999)).await;
    let err = s.restart("worker").await.unwrap_err();
    assert!(matches!(
        err,
        RestartError::IntensityExceeded { ref component, restarts: 1, .. } if component == "worker"
    ));
    assert!(err.to_string().contains("escalating"));
    assert_eq!(c.starts.load(Ordering::SeqCst), 1);
    tokio::time::advance(Duration::from_millis(1)).await;
    s.restart("worker").await.unwrap();
    assert_eq!(c.starts.load(Ordering::SeqCst), 2);
    assert_eq!(s.is_running("worker").await, Some(true));
}

#[tokio::test(start_paused = true)]
async fn three_in_ten_seconds() {
    let (s, c) = supervisor(RestartIntensity::new(3, Duration::from_secs(10)).unwrap());
    for _ in 0..3 {
        s.restart("worker").await.unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    assert!(s.restart("worker").await.is_err());
    // The first restart (at 0 s) leaves the window at 10 s.
    tokio::time::advance(Duration::from_secs(7)).await;
    s.restart("worker").await.unwrap();
    assert!(s.restart("worker").await.is_err());
    assert_eq!(c.starts.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn unknown_and_duplicate_components() {
    let (s, _) = supervisor(RestartIntensity::default());
    let err = s.restart("ghost").await.unwrap_err();
    assert_eq!(
        err,
        RestartError::UnknownComponent {
            component: "ghost".into()
        }
    );
    assert_eq!(s.is_running("ghost").await, None);
    assert_eq!(
        s.register("worker", Arc::new(Counted::default())),
        Err(DuplicateComponent("worker".into()))
    );
    assert_eq!(s.names(), ["worker"]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_start_is_an_error_and_counts_against_the_intensity() {
    let (s, c) = supervisor(RestartIntensity::default());
    c.fail_start.store(true, Ordering::SeqCst);
    let err = s.restart("worker").await.unwrap_err();
    assert!(matches!(err, RestartError::Failed { ref reason, .. } if reason.contains("port 7000")));
    assert_eq!(s.is_running("worker").await, Some(false));
    c.fail_start.store(false, Ordering::SeqCst);
    assert!(matches!(
        s.restart("worker").await,
        Err(RestartError::IntensityExceeded { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn zero_restarts_means_never() {
    let (s, c) = supervisor(RestartIntensity::new(0, Duration::from_secs(1)).unwrap());
    assert!(s.restart("worker").await.is_err());
    assert_eq!(c.starts.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_restarts_respect_the_intensity() {
    let (s, c) = supervisor(RestartIntensity::new(2, Duration::from_secs(3600)).unwrap());
    let s = Arc::new(s);
    let handles: Vec<_> = (0..50)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.restart("worker").await })
        })
        .collect();
    let mut ok = 0;
    for h in handles {
        if h.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 2);
    assert_eq!(c.starts.load(Ordering::SeqCst), 2);
    assert_eq!(c.stops.load(Ordering::SeqCst), 2);
}

#[test]
fn restart_intensity_reads_human_durations() {
    let i: RestartIntensity =
        serde_json::from_str(r#"{"max_restarts": 3, "period": "5s"}"#).unwrap();
    assert_eq!(i, RestartIntensity::new(3, Duration::from_secs(5)).unwrap());
}

#[test]
fn config_patches_are_all_or_nothing() {
    let schema = ConfigSchema::new()
        .integer("task_timeout_secs", 1, 3600)
        .float("jitter", 0.0, 1.0)
        .one_of("mode", ["fast", "safe"])
        .text("label");
    let config = TunableConfig::new(
        schema,
        [
            ("task_timeout_secs", ConfigValue::Integer(30)),
            ("jitter", ConfigValue::Float(0.1)),
            ("mode", ConfigValue::from("safe")),
        ],
    )
    .unwrap();
    let before = config.snapshot();

    let cases = [
        (
            ConfigPatch::new()
                .set("task_timeout_secs", 600)
                .set("nope", 1),
            ConfigPatchError::UnknownKey { key: "nope".into() },
        ),
        (
            ConfigPatch::new().set("task_timeout_secs", 4000),
            ConfigPatchError::BadValue {
                key: "task_timeout_secs".into(),
                reason: "4000 is outside 1..=3600".into(),
            },
        ),
        (
            ConfigPatch::new().set("jitter", f64::NAN).set("label", "x"),
            ConfigPatchError::BadValue {
                key: "jitter".into(),
                reason: "NaN is not a finite number".into(),
            },
        ),
        (
            ConfigPatch::new().set("mode", "reckless"),
            ConfigPatchError::BadValue {
                key: "mode".into(),
                reason: "\"reckless\" is not one of fast, safe".into(),
            },
        ),
        (
            ConfigPatch::new().set("task_timeout_secs", "600"),
            ConfigPatchError::BadValue {
                key: "task_timeout_secs".into(),
                reason: "expected integer, got text \"600\"".into(),
            },
        ),
        (ConfigPatch::new(), ConfigPatchError::Empty),
    ];
    for (patch, expected) in cases {
        assert_eq!(config.apply(&patch), Err(expected), "{patch}");
        assert_eq!(config.snapshot(), before, "{patch}");
    }

    config
        .apply(
            &ConfigPatch::new()
                .set("task_timeout_secs", 600)
                .set("jitter", 1)
                .set("mode", "fast"),
        )
        .unwrap();
    assert_eq!(
        config.get("task_timeout_secs"),
        Some(ConfigValue::Integer(600))
    );
    // An integer for a float key is widened.
    assert_eq!(config.get("jitter"), Some(ConfigValue::Float(1.0)));
    assert_eq!(config.get("mode"), Some(ConfigValue::from("fast")));

    // Initial values are checked too.
    let err = TunableConfig::new(
        ConfigSchema::new().boolean("verbose"),
        [("verbose", ConfigValue::Integer(1))],
    )
    .unwrap_err();
    assert!(matches!(err, ConfigPatchError::BadValue { ref key, .. } if key == "verbose"));
}
