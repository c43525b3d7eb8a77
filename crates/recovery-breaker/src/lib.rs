//! Circuit breakers per agent, as every mature resilience library has them (Resilience4j,
//! Polly, failsafe): closed, open, half-open, with a count-based window.
//!
//! - **Closed**: every call is counted in a window of the last `window` calls. Once it holds
//!   `minimum_calls`, the breaker opens when the share of failures reaches
//!   `failure_rate_threshold`, or the share of slow calls (slower than `slow_call_duration`; tie
//!   it to the task timeout) reaches `slow_call_rate_threshold`.
//! - **Open**: calls are refused for the open time: `open_for`, then `open_multiplier` times
//!   longer for each open in a row, at most `max_open_for`, shortened at random by up to
//!   `jitter` so that breakers opened together do not probe together.
//! - **Half-open**: one probe at a time. Its [`Permit`] gives the probe back when dropped
//!   unrecorded. A success closes the breaker; a failure opens it again, for longer.
//! - **A cap**: at most `max_open_share` of the members (at least one) open or half-open at
//!   once, as Envoy's outlier ejection (10 %), so a bad deploy cannot eject the whole swarm.
//!
//! Transitions emit tracing events (target `recovery_breaker`) and metrics
//! ([`TRANSITIONS`], [`OPEN`]).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use recovery_breaker::{BreakerConfig, BreakerSet, Outcome, State, Transition};
//!
//! let set = BreakerSet::new(BreakerConfig { minimum_calls: 4, window: 4, ..BreakerConfig::default() }).unwrap();
//! for agent in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"] {
//!     set.insert(agent);
//! }
//! let t0 = Instant::now();
//! let mut last = Transition::Stayed;
//! for _ in 0..4 {
//!     last = set.try_acquire(&"a", t0).unwrap().record(Outcome::Failure, t0);
//! }
//! assert!(matches!(last, Transition::Opened { .. }));
//! assert!(set.try_acquire(&"a", t0).is_err(), "open: refused");
//! // After the open time (10 s at most, jittered), one probe goes through.
//! let later = t0 + Duration::from_secs(10);
//! assert_eq!(set.state(&"a", later), Some(State::HalfOpen));
//! let probe = set.try_acquire(&"a", later).unwrap();
//! assert!(set.try_acquire(&"a", later).is_err(), "one probe at a time");
//! assert_eq!(probe.record(Outcome::Success, later), Transition::Closed);
//! ```

mod breaker;
mod config;
mod set;

pub use breaker::{Admission, Breaker, Outcome, State, Transition, open_time};
pub use config::{BreakerConfig, BreakerConfigError};
pub use set::{BreakerSet, BreakerStats, OPEN, Permit, Refusal, TRANSITIONS};
