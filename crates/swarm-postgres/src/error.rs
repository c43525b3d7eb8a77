//! What can go wrong talking to PostgreSQL, named by the step.

use std::fmt;

use recovery_core::SwarmError;

/// The step a database error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Connecting, or taking a connection from the pool.
    Connect,
    /// Creating or migrating the schema.
    Migrate,
    /// Registering the instance, or its heartbeat.
    Instance,
    /// Submitting tasks.
    Submit,
    /// Claiming tasks.
    Claim,
    /// Renewing leases.
    Renew,
    /// Writing a holder's result or recovery round.
    Write,
    /// Reclaiming the work of dead instances or expired leases.
    Reap,
    /// Reading tasks or logs.
    Read,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::Migrate => "migrate the schema",
            Self::Instance => "register the instance",
            Self::Submit => "submit tasks",
            Self::Claim => "claim tasks",
            Self::Renew => "renew leases",
            Self::Write => "write a result",
            Self::Reap => "reclaim work",
            Self::Read => "read",
        })
    }
}

/// An error of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The database refused a statement, or the connection failed.
    #[error("postgres: cannot {step}: {source}")]
    Database {
        /// What was being done.
        step: Step,
        /// What the database said.
        #[source]
        source: tokio_postgres::Error,
    },
    /// No connection could be taken from the pool.
    #[error("postgres: no connection from the pool: {0}")]
    Pool(#[source] deadpool_postgres::PoolError),
    /// The database's schema is newer than this build knows.
    #[error(
        "postgres: the schema is at version {found}, newer than this build's {supported}; upgrade this instance"
    )]
    NewerSchema {
        /// The version in the database.
        found: i32,
        /// The newest this build knows.
        supported: i32,
    },
    /// A setting is wrong; the message names it.
    #[error("invalid swarm-postgres setting: {0}")]
    Config(String),
}

impl PgError {
    pub(crate) fn db(step: Step, source: tokio_postgres::Error) -> Self {
        Self::Database { step, source }
    }

    pub(crate) fn pool(e: deadpool_postgres::PoolError) -> Self {
        Self::Pool(e)
    }
}

impl From<PgError> for SwarmError {
    fn from(e: PgError) -> Self {
        match e {
            PgError::Config(m) => SwarmError::InvalidConfiguration(m),
            e => SwarmError::Storage(e.to_string()),
        }
    }
}
