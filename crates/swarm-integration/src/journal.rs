//! A record of the recovery loop's rounds kept outside the coordinator, and what earlier
//! callers did: how a shared swarm (several coordinator instances on one database) makes each
//! failure's recovery one owner's at a time, and carries it on when the owner dies.

use async_trait::async_trait;
use recovery_core::{RecoveryResult, SwarmError, SwarmResult, TaskId};

/// What earlier holders of a task already did about its failures: the loop of
/// [`execute_task_with_journal`](crate::SwarmCoordinator::execute_task_with_journal) counts
/// these re-runs against the same limit and reports these rounds when it gives up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriorRecovery {
    /// Re-runs already made.
    pub retries: u32,
    /// The rounds already made, as `ErrorKind -> action` lines.
    pub tried: Vec<String>,
}

/// Told about every round of the recovery loop, and able to stop it.
///
/// An error from either method stops the loop at once, and the call returns it: the task is
/// not this caller's any more (for a shared swarm, its lease was lost), so nothing else is done
/// for it, not even failing it.
#[async_trait]
pub trait RecoveryJournal: Send + Sync {
    /// A run of `task` failed with `error`; recovery round `round` (from 0) is about to start,
    /// with `retries` re-runs made so far (the prior ones included).
    async fn before_round(
        &self,
        task: TaskId,
        round: u32,
        error: &SwarmError,
        retries: u32,
    ) -> SwarmResult<()>;

    /// Round `round` of `task` came to `result`, with `retries` re-runs made so far (the prior
    /// ones and this round's included).
    async fn after_round(
        &self,
        task: TaskId,
        round: u32,
        result: &RecoveryResult,
        retries: u32,
    ) -> SwarmResult<()>;
}

/// The journal of a caller that keeps none.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NoJournal;

#[async_trait]
impl RecoveryJournal for NoJournal {
    async fn before_round(&self, _: TaskId, _: u32, _: &SwarmError, _: u32) -> SwarmResult<()> {
        Ok(())
    }

    async fn after_round(&self, _: TaskId, _: u32, _: &RecoveryResult, _: u32) -> SwarmResult<()> {
        Ok(())
    }
}
