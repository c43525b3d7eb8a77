//! Where task and agent ids come from: random uuids, or uuids from a seeded generator so that a
//! simulated run replays exactly.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use recovery_core::{AgentId, TaskId};
use uuid::Uuid;

/// A source of v4 uuids.
#[derive(Debug)]
pub(crate) enum IdSource {
    /// From the thread's random generator.
    Random,
    /// From a generator seeded by the user.
    Seeded(Box<SmallRng>),
}

impl IdSource {
    pub(crate) fn seeded(seed: u64) -> Self {
        Self::Seeded(Box::new(SmallRng::seed_from_u64(seed)))
    }

    fn uuid(&mut self) -> Uuid {
        match self {
            Self::Random => Uuid::new_v4(),
            Self::Seeded(rng) => uuid::Builder::from_random_bytes(rng.random()).into_uuid(),
        }
    }

    pub(crate) fn agent(&mut self) -> AgentId {
        AgentId::from_uuid(self.uuid())
    }

    pub(crate) fn task(&mut self) -> TaskId {
        TaskId::from_uuid(self.uuid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_ids_repeat_and_are_v4() {
        let (mut a, mut b) = (IdSource::seeded(7), IdSource::seeded(7));
        let first = a.task();
        assert_eq!(first, b.task());
        assert_eq!(first.as_uuid().get_version_num(), 4);
        assert_ne!(a.agent(), IdSource::seeded(8).agent());
    }
}
