//! A context sleeper that records the delays a strategy asks for.

use std::sync::Mutex;
use std::time::Duration;

use recovery_core::{Sleeper, async_trait};

/// A [`Sleeper`] that records each delay and returns at once, so a test can check a strategy's
/// schedule without any clock (`RecoveryContext::with_sleeper`).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use recovery_core::RecoveryContext;
/// use recovery_testkit::RecordingSleeper;
///
/// # recovery_testkit::block_on_paused(async {
/// let sleeper = Arc::new(RecordingSleeper::new());
/// let ctx = RecoveryContext::new(Arc::new(())).with_sleeper(sleeper.clone());
/// ctx.sleep(Duration::from_millis(100)).await;
/// ctx.sleep(Duration::ZERO).await; // a zero delay never reaches the sleeper
/// assert_eq!(sleeper.delays(), [Duration::from_millis(100)]);
/// # });
/// ```
#[derive(Debug, Default)]
pub struct RecordingSleeper {
    delays: Mutex<Vec<Duration>>,
}

impl RecordingSleeper {
    /// A sleeper that has recorded nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The delays asked for, in order.
    pub fn delays(&self) -> Vec<Duration> {
        self.delays
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl Sleeper for RecordingSleeper {
    async fn sleep(&self, delay: Duration) {
        self.delays
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(delay);
    }
}
