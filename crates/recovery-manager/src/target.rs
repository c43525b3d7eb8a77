//! What a target system must implement for the strategies of the enabled features.

/// Declares a marker trait that means "implements `$bound`" when `$feature` is on, and
/// "nothing" when it is off, so [`RecoveryTarget`] asks only for what the build uses.
macro_rules! capability {
    ($(#[$doc:meta])* $feature:literal, $name:ident, $bound:path) => {
        $(#[$doc])*
        #[cfg(feature = $feature)]
        pub trait $name: $bound {}
        #[cfg(feature = $feature)]
        impl<T: $bound + ?Sized> $name for T {}

        $(#[$doc])*
        #[cfg(not(feature = $feature))]
        pub trait $name {}
        #[cfg(not(feature = $feature))]
        impl<T: ?Sized> $name for T {}
    };
}

capability!(
    /// `recovery_backoff::Retry` with the `backoff` feature; nothing without it.
    "backoff",
    RetryIfEnabled,
    recovery_backoff::Retry
);
capability!(
    /// `recovery_checkpoint::Checkpointable` with the `checkpoint` feature; nothing without it.
    "checkpoint",
    CheckpointableIfEnabled,
    recovery_checkpoint::Checkpointable
);
capability!(
    /// `recovery_degradation::Degradable` with the `degradation` feature; nothing without it.
    "degradation",
    DegradableIfEnabled,
    recovery_degradation::Degradable
);
capability!(
    /// `recovery_healing::Healable` with the `healing` feature; nothing without it.
    "healing",
    HealableIfEnabled,
    recovery_healing::Healable
);

/// A system the default strategies can recover: it implements the capability trait of every
/// enabled strategy feature (`Retry`, `Checkpointable`, `Degradable`, `Healable`), and nothing
/// more. Implemented automatically.
///
/// [`RecoveryManager::new`](crate::RecoveryManager::new) and
/// [`with_config`](crate::RecoveryManager::with_config) need it because they register the
/// enabled strategies; [`RecoveryManager::empty`](crate::RecoveryManager::empty) does not.
pub trait RecoveryTarget:
    RetryIfEnabled
    + CheckpointableIfEnabled
    + DegradableIfEnabled
    + HealableIfEnabled
    + Send
    + Sync
    + 'static
{
}

impl<T> RecoveryTarget for T where
    T: RetryIfEnabled
        + CheckpointableIfEnabled
        + DegradableIfEnabled
        + HealableIfEnabled
        + Send
        + Sync
        + 'static
        + ?Sized
{
}
