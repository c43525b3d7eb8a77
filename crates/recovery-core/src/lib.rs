//! The core of the swarm recovery system: the [`RecoveryStrategy`] trait, its
//! [`RecoveryContext`] and [`RecoveryResult`], the [`SwarmError`] every part speaks, and typed
//! ids.
//!
//! ```
//! use std::sync::Arc;
//! use recovery_core::{ErrorKind, RecoveryContext, RecoveryResult, SwarmError, TaskId};
//!
//! let error = SwarmError::CommunicationError("Network timeout".to_string());
//! assert_eq!(error.kind(), ErrorKind::CommunicationError);
//! assert!(error.is_recoverable());
//!
//! // A context names the target system and what failed in it.
//! struct Coordinator;
//! let context = RecoveryContext::new(Arc::new(Coordinator)).with_task(TaskId::new());
//! assert_eq!(context.retry_count, 0);
//!
//! let result = RecoveryResult::manual_intervention("agent speaks an older protocol");
//! assert!(!result.success && !result.continue_recovery);
//! ```
//!
//! # Why this crate is small
//!
//! Every strategy crate, the manager and every user's custom strategy depend on this crate, so a
//! breaking change here breaks all of them at once. It holds only the vocabulary they share and
//! changes slowly, as `tower-service` and `tracing-core` do: new trait methods come with default
//! bodies, new error variants and actions are covered by `#[non_exhaustive]`.
//!
//! # The seam
//!
//! recovery-core knows nothing of coordinators. The context is generic over the target `T`, and a
//! strategy acts on it only through a small capability trait of its own crate (recovery-backoff's
//! `Retry`, recovery-checkpoint's `Checkpointable`, recovery-degradation's `Degradable`,
//! recovery-healing's `Healable`). A system takes one strategy by implementing one trait.

mod context;
mod error;
mod id;
mod priority;
mod result;
mod strategy;

pub use context::{RecoveryContext, Sleeper};
pub use error::{ErrorKind, SwarmError, SwarmResult, UnknownErrorKind};
pub use id::{AgentId, TaskId};
pub use priority::{Priority, UnknownPriority};
pub use result::{RecoveryAction, RecoveryResult, StepOutcome, StepStatus};
pub use strategy::{RecoveryStrategy, StrategyInfo};

/// Re-exported so strategy crates and users name one `async_trait`.
pub use async_trait::async_trait;
