//! A test target that logs what steps did to it, and a step that records and can be told to
//! fail.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use recovery_core::{RecoveryAction, RecoveryContext, RecoveryResult, StepOutcome, SwarmError};
use recovery_workflow::{StepAction, StepDone, StepFailed};

/// The system recovered: a log of what happened, in order, and a configuration map.
#[derive(Debug, Default)]
pub struct Target {
    pub log: Mutex<Vec<String>>,
    pub config: Mutex<BTreeMap<String, i64>>,
}

impl Target {
    pub fn with_config(pairs: &[(&str, i64)]) -> Arc<Self> {
        let t = Self::default();
        t.config
            .lock()
            .unwrap()
            .extend(pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)));
        Arc::new(t)
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn config(&self) -> BTreeMap<String, i64> {
        self.config.lock().unwrap().clone()
    }

    fn push(&self, entry: String) {
        self.log.lock().unwrap().push(entry);
    }
}

/// A step that logs `run <name>` and `undo <name>`, can set a config key (and restore it on
/// undo), and fails, reports retries or fails its undo as told.
#[derive(Debug, Clone)]
pub struct Rec {
    pub name: String,
    pub fail: Option<String>,
    pub retries: u32,
    pub undo_fails: bool,
    pub set: Option<(String, i64)>,
}

impl Rec {
    pub fn ok(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            fail: None,
            retries: 0,
            undo_fails: false,
            set: None,
        }
    }

    pub fn fail(name: &str, message: &str) -> Self {
        Self {
            fail: Some(message.to_owned()),
            ..Self::ok(name)
        }
    }

    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    pub fn undo_fails(mut self) -> Self {
        self.undo_fails = true;
        self
    }

    pub fn sets(mut self, key: &str, value: i64) -> Self {
        self.set = Some((key.to_owned(), value));
        self
    }

    pub fn arc(self) -> Arc<dyn StepAction<Target>> {
        Arc::new(self)
    }
}

#[recovery_core::async_trait]
impl StepAction<Target> for Rec {
    fn kind(&self) -> &str {
        "rec"
    }

    async fn run(
        &self,
        ctx: &RecoveryContext<Target>,
        _error: &SwarmError,
    ) -> Result<StepDone, StepFailed> {
        ctx.target.push(format!("run {}", self.name));
        if let Some(message) = &self.fail {
            return Err(StepFailed::new(message.clone()).with_retries(self.retries));
        }
        let mut done = StepDone::new(format!("{} done", self.name)).with_retries(self.retries);
        if let Some((key, value)) = &self.set {
            let old = ctx
                .target
                .config
                .lock()
                .unwrap()
                .insert(key.clone(), *value);
            done = done.with_undo((key.clone(), old));
        }
        Ok(done)
    }

    async fn undo(&self, ctx: &RecoveryContext<Target>, done: &StepDone) -> Result<String, String> {
        ctx.target.push(format!("undo {}", self.name));
        if self.undo_fails {
            return Err(format!("{} cannot be undone", self.name));
        }
        if let Some((key, old)) = done.undo_data::<(String, Option<i64>)>() {
            let mut config = ctx.target.config.lock().unwrap();
            match old {
                Some(v) => config.insert(key.clone(), *v),
                None => config.remove(key),
            };
            return Ok(format!("{key} restored"));
        }
        Ok(format!("{} undone", self.name))
    }
}

pub fn comm_error() -> SwarmError {
    SwarmError::CommunicationError("connection reset".into())
}

pub fn ctx(target: &Arc<Target>) -> RecoveryContext<Target> {
    RecoveryContext::new(Arc::clone(target))
}

/// The step outcomes of a workflow result.
pub fn steps(result: &RecoveryResult) -> &[StepOutcome] {
    match &result.action {
        RecoveryAction::Workflow { steps, .. } => steps,
        other => panic!("expected a workflow action, got {other:?}"),
    }
}
