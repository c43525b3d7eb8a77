//! What a program that recovers a swarm names most, in one `use swarm_recovery::prelude::*;`.
//!
//! Besides the workspace's types it brings `std::sync::Arc` and `std::time::Duration`, which
//! every example of the spec uses, and `async_trait`, which every strategy implementation needs.

pub use std::sync::Arc;
pub use std::time::Duration;

pub use recovery_core::{
    AgentId, ErrorKind, Priority, RecoveryAction, RecoveryContext, RecoveryResult,
    RecoveryStrategy, StrategyInfo, SwarmError, SwarmResult, TaskId, async_trait,
};
pub use recovery_manager::{
    MonitoringHandle, RecoveryAttempt, RecoveryConfig, RecoveryManager, RecoveryManagerBuilder,
    RecoveryRequest, RecoverySettings, RecoveryStatistics,
};

#[cfg(feature = "backoff")]
pub use recovery_backoff::{
    BackoffConfig, ExponentialBackoffStrategy, Jitter, Retry, RetryBudget, RetryRequest, retry,
};
#[cfg(feature = "checkpoint")]
pub use recovery_checkpoint::{
    CheckpointRecoveryStrategy, CheckpointStore, Checkpointable, FileStore, MemoryStore,
};
#[cfg(feature = "degradation")]
pub use recovery_degradation::{
    Degradable, DegradationConfig, DegradationLevel, GracefulDegradationStrategy, ResourceMonitor,
    ResourceUsage,
};
#[cfg(feature = "healing")]
pub use recovery_healing::{
    ConfigPatch, Healable, HealingAction, HealingRule, SelfHealingStrategy, Severity,
};
#[cfg(feature = "coordinator")]
pub use swarm_integration::{
    AgentExecutor, AgentInfo, AgentSpec, SwarmConfig, SwarmCoordinator, TaskInfo, TaskSpec,
};
