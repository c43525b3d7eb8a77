//! The schema, created and migrated by the crate itself: versioned SQL files checked into the
//! crate (`migrations/`), applied in order, each in its own transaction, under a
//! transaction-level advisory lock so that two instances starting at once do not race.

use deadpool_postgres::Pool;

use crate::error::{PgError, Step};

/// The migrations, in order: version `i + 1` is `MIGRATIONS[i]`.
const MIGRATIONS: &[(&str, &str)] = &[("0001_init", include_str!("../migrations/0001_init.sql"))];

/// The advisory lock taken while migrating (an arbitrary constant: "swarm" in ASCII).
const MIGRATION_LOCK: i64 = 0x73_77_61_72_6d;

/// The schema version this build expects.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Create or migrate the schema `swarm` to [`SCHEMA_VERSION`]. Safe to call from every
/// instance at every start: the first one migrates, the others wait for it and find nothing to
/// do. Returns the versions applied by this call.
///
/// # Errors
///
/// [`PgError`] if the database refuses a statement, or already holds a newer schema than this
/// build knows (an older instance must not write into a newer schema).
pub async fn migrate(pool: &Pool) -> Result<Vec<i32>, PgError> {
    let mut client = pool.get().await.map_err(PgError::pool)?;
    let mut applied = Vec::new();
    loop {
        let tx = client
            .transaction()
            .await
            .map_err(|e| PgError::db(Step::Migrate, e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(|e| PgError::db(Step::Migrate, e))?;
        tx.batch_execute(
            "CREATE SCHEMA IF NOT EXISTS swarm;
             CREATE TABLE IF NOT EXISTS swarm.schema_versions (
                 version    integer     PRIMARY KEY,
                 name       text        NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
             );",
        )
        .await
        .map_err(|e| PgError::db(Step::Migrate, e))?;
        let current: i32 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM swarm.schema_versions",
                &[],
            )
            .await
            .map_err(|e| PgError::db(Step::Migrate, e))?
            .get(0);
        if current > SCHEMA_VERSION {
            return Err(PgError::NewerSchema {
                found: current,
                supported: SCHEMA_VERSION,
            });
        }
        if current == SCHEMA_VERSION {
            tx.commit()
                .await
                .map_err(|e| PgError::db(Step::Migrate, e))?;
            return Ok(applied);
        }
        let (name, sql) = MIGRATIONS[current as usize];
        let version = current + 1;
        tx.batch_execute(sql)
            .await
            .map_err(|e| PgError::db(Step::Migrate, e))?;
        tx.execute(
            "INSERT INTO swarm.schema_versions (version, name) VALUES ($1, $2)",
            &[&version, &name],
        )
        .await
        .map_err(|e| PgError::db(Step::Migrate, e))?;
        tx.commit()
            .await
            .map_err(|e| PgError::db(Step::Migrate, e))?;
        tracing::info!(target: "swarm_postgres", version, name, "schema migrated");
        applied.push(version);
    }
}
