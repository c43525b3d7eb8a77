//! `ScriptedStrategy`: a custom strategy whose results a test decides.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use recovery_core::{
    AgentId, ErrorKind, RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy,
    StrategyInfo, SwarmError, TaskId, async_trait,
};

/// What a [`ScriptedStrategy`] was asked to recover.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptedCall {
    /// The error.
    pub error: SwarmError,
    /// The context's failed task.
    pub failed_task_id: Option<TaskId>,
    /// The context's failed agent.
    pub failed_agent_id: Option<AgentId>,
    /// The context's retry count.
    pub retry_count: u32,
}

/// A strategy for any target whose results are scripted: the next scripted result for each
/// `recover`, then a default. It handles the kinds it is told (every recoverable kind by
/// default), waits a delay through the context if told to, and records every call. For code
/// that drives a manager: which strategy ran, in what order, with what context.
///
/// ```
/// use std::sync::Arc;
/// use recovery_core::{ErrorKind, RecoveryResult, SwarmError};
/// use recovery_manager::{RecoveryConfig, RecoveryManager};
/// use recovery_testkit::ScriptedStrategy;
///
/// # recovery_testkit::block_on_paused(async {
/// let cheap = Arc::new(ScriptedStrategy::failing("cheap").with_cost(0.1));
/// let costly = Arc::new(ScriptedStrategy::succeeding("costly").with_cost(0.9));
/// let manager = RecoveryManager::<()>::empty(RecoveryConfig::default()).unwrap();
/// manager.add_strategy(costly.clone()).await;
/// manager.add_strategy(cheap.clone()).await;
/// let result = manager.recover(Arc::new(()), SwarmError::CommunicationError("x".into()), None, None).await.unwrap();
/// assert!(result.success);
/// assert_eq!((cheap.call_count(), costly.call_count()), (1, 1));
/// # });
/// ```
#[derive(Debug)]
pub struct ScriptedStrategy {
    id: String,
    cost: f64,
    handles: Option<Vec<ErrorKind>>,
    delay: Duration,
    script: Mutex<VecDeque<RecoveryResult>>,
    then: RecoveryResult,
    calls: Mutex<Vec<ScriptedCall>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ScriptedStrategy {
    /// A strategy `id` of cost 0.5 whose every recovery returns `then`.
    pub fn new(id: impl Into<String>, then: RecoveryResult) -> Self {
        Self {
            id: id.into(),
            cost: 0.5,
            handles: None,
            delay: Duration::ZERO,
            script: Mutex::new(VecDeque::new()),
            then,
            calls: Mutex::new(Vec::new()),
        }
    }

    /// Every recovery succeeds (a `Custom` action named after the strategy).
    pub fn succeeding(id: impl Into<String>) -> Self {
        let id = id.into();
        let result =
            RecoveryResult::success(RecoveryAction::Custom(id.clone()), format!("{id} worked"));
        Self::new(id, result)
    }

    /// Every recovery fails (and lets the next strategy try).
    pub fn failing(id: impl Into<String>) -> Self {
        let id = id.into();
        let result = RecoveryResult::failure(RecoveryAction::None, format!("{id} failed"));
        Self::new(id, result)
    }

    /// The same strategy with this cost.
    pub fn with_cost(mut self, cost: f64) -> Self {
        self.cost = cost;
        self
    }

    /// The same strategy handling only these kinds.
    pub fn handling(mut self, kinds: impl IntoIterator<Item = ErrorKind>) -> Self {
        self.handles = Some(kinds.into_iter().collect());
        self
    }

    /// The same strategy waiting `delay` (through the context's sleeper) in each recovery.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The same strategy returning `result` from its next unscripted recovery.
    pub fn then(self, result: RecoveryResult) -> Self {
        lock(&self.script).push_back(result);
        self
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<ScriptedCall> {
        lock(&self.calls).clone()
    }

    /// How many calls so far.
    pub fn call_count(&self) -> usize {
        lock(&self.calls).len()
    }
}

#[async_trait]
impl StrategyInfo for ScriptedStrategy {
    fn strategy_id(&self) -> &str {
        &self.id
    }

    fn description(&self) -> &str {
        "a strategy whose results a test scripts"
    }

    async fn can_handle(&self, error: &SwarmError) -> bool {
        match &self.handles {
            Some(kinds) => kinds.contains(&error.kind()),
            None => error.is_recoverable(),
        }
    }

    async fn cost_estimate(&self) -> f64 {
        self.cost
    }

    async fn requires_external_resources(&self) -> bool {
        false
    }
}

#[async_trait]
impl<T: ?Sized + Send + Sync> RecoveryStrategy<T> for ScriptedStrategy {
    async fn recover(&self, context: &RecoveryContext<T>, error: &SwarmError) -> RecoveryResult {
        lock(&self.calls).push(ScriptedCall {
            error: error.clone(),
            failed_task_id: context.failed_task_id,
            failed_agent_id: context.failed_agent_id,
            retry_count: context.retry_count,
        });
        context.sleep(self.delay).await;
        let next = lock(&self.script).pop_front();
        next.unwrap_or_else(|| self.then.clone())
    }
}
