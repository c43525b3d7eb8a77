//! `FakeLevel`: a system that runs at a degradation level.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use recovery_core::{SwarmError, async_trait};
use recovery_degradation::{Degradable, DegradationLevel};

/// A [`Degradable`] target: it runs at a level, records each level it was asked to apply, and
/// can refuse (an error) or pretend (`Ok`, but the level stays).
///
/// ```
/// use recovery_degradation::{Degradable, DegradationLevel};
/// use recovery_testkit::FakeLevel;
///
/// # recovery_testkit::block_on_paused(async {
/// let fake = FakeLevel::new();
/// fake.apply_level(DegradationLevel::Minimal).await.unwrap();
/// assert_eq!(fake.level(), DegradationLevel::Minimal);
/// fake.pretend(true);
/// fake.apply_level(DegradationLevel::Normal).await.unwrap();
/// assert_eq!(fake.level(), DegradationLevel::Minimal, "it said Ok and stayed");
/// assert_eq!(fake.applied(), [DegradationLevel::Minimal, DegradationLevel::Normal]);
/// # });
/// ```
#[derive(Debug, Default)]
pub struct FakeLevel {
    level: AtomicU8,
    refuse: AtomicBool,
    pretend: AtomicBool,
    applied: Mutex<Vec<DegradationLevel>>,
}

impl FakeLevel {
    /// A system at the normal level.
    pub fn new() -> Self {
        Self::default()
    }

    /// The level it runs at.
    pub fn level(&self) -> DegradationLevel {
        DegradationLevel::from_u8(self.level.load(Ordering::SeqCst))
            .unwrap_or(DegradationLevel::Critical)
    }

    /// Put it at `level` directly (not recorded as applied).
    pub fn set_level(&self, level: DegradationLevel) {
        self.level.store(level.as_u8(), Ordering::SeqCst);
    }

    /// Refuse every level with `ResourceConflict` (or accept again).
    pub fn refuse(&self, refuse: bool) {
        self.refuse.store(refuse, Ordering::SeqCst);
    }

    /// Answer `Ok` to every level but stay where it is (or apply again).
    pub fn pretend(&self, pretend: bool) {
        self.pretend.store(pretend, Ordering::SeqCst);
    }

    /// Every level it was asked to apply, in order.
    pub fn applied(&self) -> Vec<DegradationLevel> {
        self.applied
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl Degradable for FakeLevel {
    async fn apply_level(&self, level: DegradationLevel) -> Result<(), SwarmError> {
        self.applied
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(level);
        if self.refuse.load(Ordering::SeqCst) {
            return Err(SwarmError::ResourceConflict(format!(
                "level {level} refused (fake)"
            )));
        }
        if !self.pretend.load(Ordering::SeqCst) {
            self.set_level(level);
        }
        Ok(())
    }

    async fn current_level(&self) -> DegradationLevel {
        self.level()
    }
}
