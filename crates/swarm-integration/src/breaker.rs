//! The agents' circuit breakers (`CoordinatorOptions::breaker`): every run asks its agent's
//! breaker first and tells it how the run ended; a breaker that opens takes the agent out of
//! the pick (trust lowered, its waiting tasks moved; its status is left alone, so a restore
//! keeps it out) until its open time is up, and then the agent's next run is the breaker's one
//! probe.

use recovery_breaker::{BreakerStats, Outcome, Permit, Transition};
use recovery_core::AgentId;
use tokio::time::Instant;

use crate::coordinator::SwarmCoordinator;
use crate::state::RunOutcome;

impl SwarmCoordinator {
    /// The breaker's permit for a run of `agent` (none without breakers, or if it refuses: a
    /// run already dispatched goes on).
    pub(crate) fn breaker_permit(&self, agent: AgentId) -> Option<Permit<AgentId>> {
        let set = self.breakers.as_ref()?;
        set.try_acquire(&agent, Instant::now().into_std()).ok()
    }

    /// When a run started, for its breaker's slow-call check (`None` without breakers: no
    /// clock read on every run).
    pub(crate) fn breaker_clock(&self) -> Option<Instant> {
        self.breakers.as_ref().map(|_| Instant::now())
    }

    /// What the run's end says of its agent, for its breaker (`None`: nothing, the run was told
    /// to stop, or there are no breakers).
    pub(crate) fn breaker_outcome(
        &self,
        outcome: &RunOutcome,
        started: Option<Instant>,
    ) -> Option<Outcome> {
        let (set, started) = (self.breakers.as_ref()?, started?);
        let succeeded = match outcome {
            RunOutcome::Output(_) => true,
            RunOutcome::Error(_) | RunOutcome::TimedOut(_) => false,
            RunOutcome::Cancelled => return None,
        };
        Some(Outcome::of(succeeded, started.elapsed(), set.config()))
    }

    /// Tell `agent`'s breaker how its run ended (after the run's end was applied); take the
    /// agent out if the breaker opened. A permit without a verdict is dropped: a probe's goes
    /// back.
    pub(crate) fn breaker_record(
        &self,
        agent: AgentId,
        permit: Option<Permit<AgentId>>,
        verdict: Option<Outcome>,
    ) {
        let (Some(permit), Some(verdict)) = (permit, verdict) else {
            return;
        };
        let now = Instant::now();
        let until = match permit.record(verdict, now.into_std()) {
            Transition::Opened { until } | Transition::Reopened { until } => until,
            _ => return,
        };
        if self.transition(|s, t| s.eject_agent(agent, t)).is_err() {
            return;
        }
        let me = self.me.clone();
        let at = Instant::from_std(until);
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            if let Some(c) = me.upgrade() {
                // Back in the pick: its next run is the probe.
                c.transition(|s, now| s.readmit_agent(agent, now));
            }
        });
    }

    /// The agents an open breaker keeps out of the pick now.
    pub fn ejected_agents(&self) -> Vec<AgentId> {
        self.read(|s| s.ejected.iter().copied().collect())
    }

    /// What the agents' breakers did so far, when they are on.
    pub fn breaker_stats(&self) -> Option<BreakerStats> {
        self.breakers.as_ref().map(|b| b.stats())
    }
}
