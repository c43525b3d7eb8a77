//! How an instance takes part in a shared swarm: its names, its lease timings, its limits.

use std::time::Duration;

use crate::error::PgError;

/// One instance's settings.
///
/// # Defaults
///
/// | field | default | meaning |
/// |---|---|---|
/// | `lease_ttl` | 15 s | how long a claim holds without renewal (River's) |
/// | `renew_every` | 5 s | how often held leases are renewed |
/// | `margin` | 1 s | a holder trusts a lease until `margin` before it could expire, counted from when it started the claim or renewal |
/// | `reap_every` | 500 ms | how often the instance looks for dead instances and expired leases |
/// | `poll_every` | 250 ms | the longest the instance waits for work without a notification |
/// | `max_in_flight` | 64 | the most tasks it holds at once |
/// | `write_batch` | 128 | the most completions written in one statement |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The shared swarm's name: instances with the same name share its tasks.
    pub swarm: String,
    /// This instance's name (for people, and its checkpoint store).
    pub instance: String,
    /// How long a claim holds without renewal.
    pub lease_ttl: Duration,
    /// How often held leases are renewed.
    pub renew_every: Duration,
    /// How long before a lease could expire its holder stops acting on it.
    pub margin: Duration,
    /// How often dead instances and expired leases are looked for.
    pub reap_every: Duration,
    /// The longest wait for work without a notification.
    pub poll_every: Duration,
    /// The most tasks held at once.
    pub max_in_flight: usize,
    /// The most completions written in one statement.
    pub write_batch: usize,
}

impl ClusterConfig {
    /// The defaults, for instance `instance` of swarm `swarm`.
    pub fn new(swarm: impl Into<String>, instance: impl Into<String>) -> Self {
        Self {
            swarm: swarm.into(),
            instance: instance.into(),
            lease_ttl: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            margin: Duration::from_secs(1),
            reap_every: Duration::from_millis(500),
            poll_every: Duration::from_millis(250),
            max_in_flight: 64,
            write_batch: 128,
        }
    }

    /// Check every field.
    ///
    /// # Errors
    ///
    /// [`PgError::Config`] naming the first bad field.
    pub fn validate(&self) -> Result<(), PgError> {
        let bad = |field: &str, why: String| Err(PgError::Config(format!("`{field}` {why}")));
        if self.swarm.is_empty() || self.swarm.len() > 200 {
            return bad(
                "swarm",
                format!("must have 1 to 200 bytes, has {}", self.swarm.len()),
            );
        }
        if self.instance.is_empty() || self.instance.len() > 200 {
            return bad(
                "instance",
                format!("must have 1 to 200 bytes, has {}", self.instance.len()),
            );
        }
        if self.lease_ttl < Duration::from_millis(100) || self.lease_ttl > Duration::from_secs(3600)
        {
            return bad(
                "lease_ttl",
                format!("is {:?}; it must be within 100 ms..=1 h", self.lease_ttl),
            );
        }
        if self.renew_every.is_zero() || self.renew_every + self.margin >= self.lease_ttl {
            return bad(
                "renew_every",
                format!(
                    "is {:?}; with margin {:?} it must be shorter than lease_ttl {:?}, or a lease expires before it is renewed",
                    self.renew_every, self.margin, self.lease_ttl
                ),
            );
        }
        if self.reap_every.is_zero() || self.poll_every.is_zero() {
            return bad(
                "reap_every",
                "and poll_every must be longer than zero".into(),
            );
        }
        if self.max_in_flight == 0 || self.max_in_flight > 100_000 {
            return bad(
                "max_in_flight",
                format!("is {}; it must be within 1..=100000", self.max_in_flight),
            );
        }
        if self.write_batch == 0 || self.write_batch > 10_000 {
            return bad(
                "write_batch",
                format!("is {}; it must be within 1..=10000", self.write_batch),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_bad_fields_are_named() {
        let c = ClusterConfig::new("s", "i");
        c.validate().unwrap();
        let e = ClusterConfig {
            renew_every: Duration::from_secs(15),
            ..c.clone()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("`renew_every`"), "{e}");
        let e = ClusterConfig {
            swarm: String::new(),
            ..c
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("`swarm`"), "{e}");
    }
}
