//! How important a piece of work is, which decides what is shed first under pressure.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The priority of a task, lowest first, so `Ord` sorts what to shed first.
///
/// It lives in the core because both sides of the degradation seam speak it: the coordinator
/// tags its tasks with it, and a degradation level says which priorities it still admits.
///
/// ```
/// use recovery_core::Priority;
/// assert!(Priority::Low < Priority::Critical);
/// assert_eq!("high".parse::<Priority>().unwrap(), Priority::High);
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Work that can wait or be dropped at submission without harm (batch, prefetch).
    Low,
    /// Ordinary work.
    #[default]
    Normal,
    /// Work users are waiting on.
    High,
    /// Work the swarm cannot do without (health checks, recovery itself).
    Critical,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Priority; 4] = [Self::Low, Self::Normal, Self::High, Self::Critical];

    /// The lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`Priority`] from a name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown priority `{0}`; expected low, normal, high or critical")]
pub struct UnknownPriority(pub String);

impl FromStr for Priority {
    type Err = UnknownPriority;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownPriority(s.to_owned()))
    }
}
