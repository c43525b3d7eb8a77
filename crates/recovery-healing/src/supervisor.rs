//! A registry of named components that can be restarted, with OTP restart intensity.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use recovery_core::async_trait;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::RestartError;

/// Restart intensity as in Erlang/OTP supervisors: at most `max_restarts` restarts of one
/// component within any `period`. Past it, a restart is refused and the failure escalates.
///
/// # Default
///
/// OTP's: `max_restarts` 1, `period` 5 s.
///
/// ```
/// use std::time::Duration;
/// use recovery_healing::RestartIntensity;
/// let otp = RestartIntensity::default();
/// assert_eq!((otp.max_restarts, otp.period), (1, Duration::from_secs(5)));
/// assert!(RestartIntensity::new(3, Duration::ZERO).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartIntensity {
    /// The most restarts allowed within `period` (0: never restart).
    pub max_restarts: u32,
    /// The window.
    #[serde(with = "humantime_serde")]
    pub period: Duration,
}

impl Default for RestartIntensity {
    fn default() -> Self {
        Self {
            max_restarts: 1,
            period: Duration::from_secs(5),
        }
    }
}

/// A [`RestartIntensity`] whose period is zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("restart intensity period must be greater than zero")]
pub struct InvalidRestartIntensity;

impl RestartIntensity {
    /// `max_restarts` within `period`; `period` must be non-zero.
    pub fn new(max_restarts: u32, period: Duration) -> Result<Self, InvalidRestartIntensity> {
        let intensity = Self {
            max_restarts,
            period,
        };
        intensity.validate()?;
        Ok(intensity)
    }

    /// Check `period` is non-zero.
    pub fn validate(&self) -> Result<(), InvalidRestartIntensity> {
        if self.period.is_zero() {
            Err(InvalidRestartIntensity)
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for RestartIntensity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in {:?}", self.max_restarts, self.period)
    }
}

/// The restart times of components, enforcing a [`RestartIntensity`] on tokio's clock.
///
/// [`RestartWindow::try_record`] checks and records in one step: a restart at `now` is allowed
/// when fewer than `max_restarts` restarts happened in `(now - period, now]`, so no half-open
/// window of length `period` ever holds more than `max_restarts`.
#[derive(Debug, Default)]
pub struct RestartWindow {
    restarts: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RestartWindow {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record a restart of `component` at `now` if `intensity` allows one; otherwise say how
    /// many restarts the window already holds.
    pub fn try_record(
        &self,
        component: &str,
        intensity: RestartIntensity,
        now: Instant,
    ) -> Result<(), RestartError> {
        let mut all = self.restarts.lock().unwrap_or_else(PoisonError::into_inner);
        let times = all.entry(component.to_owned()).or_default();
        while times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= intensity.period)
        {
            times.pop_front();
        }
        if times.len() >= intensity.max_restarts as usize {
            return Err(RestartError::IntensityExceeded {
                component: component.to_owned(),
                restarts: times.len(),
                intensity,
            });
        }
        times.push_back(now);
        Ok(())
    }
}

/// A part of the target that a supervisor can stop and start.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use recovery_core::async_trait;
/// use recovery_healing::Component;
///
/// #[derive(Default)]
/// struct Listener { up: AtomicBool }
///
/// #[async_trait]
/// impl Component for Listener {
///     async fn start(&self) -> Result<(), String> { self.up.store(true, Ordering::SeqCst); Ok(()) }
///     async fn stop(&self) -> Result<(), String> { self.up.store(false, Ordering::SeqCst); Ok(()) }
///     async fn is_running(&self) -> bool { self.up.load(Ordering::SeqCst) }
/// }
/// ```
#[async_trait]
pub trait Component: Send + Sync {
    /// Start the component. An error says why it did not start.
    async fn start(&self) -> Result<(), String>;
    /// Stop the component (a stopped component stops without error).
    async fn stop(&self) -> Result<(), String>;
    /// Whether it runs now.
    async fn is_running(&self) -> bool;
}

#[derive(Clone)]
struct Entry {
    component: Arc<dyn Component>,
    // Held across stop and start, so two restarts of one component never interleave.
    restarting: Arc<tokio::sync::Mutex<()>>,
}

/// A registry of named [`Component`]s with restart intensity, for a target to implement
/// [`Healable::restart_component`](crate::Healable::restart_component) with.
///
/// [`restart`](Self::restart) refuses an unknown name ([`RestartError::UnknownComponent`]),
/// refuses a restart past the intensity ([`RestartError::IntensityExceeded`], the escalation:
/// the supervisor does not loop), and otherwise stops the component, starts it, and returns
/// `Ok` only if it then says it is running. Restarts of one component are serialized; a
/// refused or failed restart still counts against the intensity once it was begun.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use recovery_core::async_trait;
/// use recovery_healing::{Component, RestartError, Supervisor};
///
/// #[derive(Default)]
/// struct Counted { starts: AtomicU32 }
/// #[async_trait]
/// impl Component for Counted {
///     async fn start(&self) -> Result<(), String> { self.starts.fetch_add(1, Ordering::SeqCst); Ok(()) }
///     async fn stop(&self) -> Result<(), String> { Ok(()) }
///     async fn is_running(&self) -> bool { true }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let supervisor = Supervisor::new(); // OTP's 1 restart in 5 s
/// let protocol = Arc::new(Counted::default());
/// supervisor.register("agent_protocol", protocol.clone()).unwrap();
///
/// supervisor.restart("agent_protocol").await.unwrap();
/// assert_eq!(protocol.starts.load(Ordering::SeqCst), 1);
/// // A second restart within 5 s escalates instead of looping.
/// assert!(matches!(supervisor.restart("agent_protocol").await, Err(RestartError::IntensityExceeded { .. })));
/// assert!(matches!(supervisor.restart("nope").await, Err(RestartError::UnknownComponent { .. })));
/// # }
/// ```
pub struct Supervisor {
    intensity: RestartIntensity,
    components: Mutex<HashMap<String, Entry>>,
    window: RestartWindow,
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("intensity", &self.intensity)
            .field("components", &self.names())
            .finish_non_exhaustive()
    }
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

/// A component name registered twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("component `{0}` is already registered")]
pub struct DuplicateComponent(pub String);

impl Supervisor {
    /// An empty supervisor with OTP's intensity (1 restart in 5 s).
    pub fn new() -> Self {
        Self::with_intensity(RestartIntensity::default())
    }

    /// An empty supervisor with `intensity` (see [`RestartIntensity::new`] to check it).
    pub fn with_intensity(intensity: RestartIntensity) -> Self {
        Self {
            intensity,
            components: Mutex::new(HashMap::new()),
            window: RestartWindow::new(),
        }
    }

    /// The restart intensity.
    pub fn intensity(&self) -> RestartIntensity {
        self.intensity
    }

    /// Register `component` under `name`.
    pub fn register(
        &self,
        name: impl Into<String>,
        component: Arc<dyn Component>,
    ) -> Result<(), DuplicateComponent> {
        let name = name.into();
        let mut components = self
            .components
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if components.contains_key(&name) {
            return Err(DuplicateComponent(name));
        }
        components.insert(
            name,
            Entry {
                component,
                restarting: Arc::new(tokio::sync::Mutex::new(())),
            },
        );
        Ok(())
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        let components = self
            .components
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<String> = components.keys().cloned().collect();
        names.sort();
        names
    }

    /// Whether the named component runs now; `None` if unknown.
    pub async fn is_running(&self, name: &str) -> Option<bool> {
        let component = self.lookup(name).ok()?.component;
        Some(component.is_running().await)
    }

    fn lookup(&self, name: &str) -> Result<Entry, RestartError> {
        let components = self
            .components
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        components
            .get(name)
            .cloned()
            .ok_or_else(|| RestartError::UnknownComponent {
                component: name.to_owned(),
            })
    }

    /// Stop and start the named component, within the restart intensity.
    pub async fn restart(&self, name: &str) -> Result<(), RestartError> {
        let Entry {
            component,
            restarting,
        } = self.lookup(name)?;
        let _serial = restarting.lock().await;
        self.window
            .try_record(name, self.intensity, Instant::now())?;
        component
            .stop()
            .await
            .map_err(|reason| RestartError::Failed {
                component: name.to_owned(),
                reason: format!("stop failed: {reason}"),
            })?;
        component
            .start()
            .await
            .map_err(|reason| RestartError::Failed {
                component: name.to_owned(),
                reason: format!("start failed: {reason}"),
            })?;
        if component.is_running().await {
            Ok(())
        } else {
            Err(RestartError::NotRunning {
                component: name.to_owned(),
            })
        }
    }
}
