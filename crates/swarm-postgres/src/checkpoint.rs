//! [`PgCheckpointStore`]: recovery-checkpoint's `CheckpointStore` on PostgreSQL.

use std::time::SystemTime;

use async_trait::async_trait;
use deadpool_postgres::Pool;
use recovery_checkpoint::format::{self, stored_time};
use recovery_checkpoint::{Checkpoint, CheckpointError, CheckpointInfo, CheckpointStore, Codec};
use uuid::Uuid;

/// Checkpoints in the table `swarm.checkpoints`, one store per name: each row holds the bytes
/// the file store would write (the same header, codec and crc32c checksum, see
/// `recovery_checkpoint::format`), so damage is found and handled the same way: a row that
/// does not verify is refused by `get` with a corruption error, and `latest` passes it over
/// for the next older one (with a tracing warning).
///
/// Sequence numbers come from the database (a counter row per store, incremented in the same
/// transaction as the insert), so several instances may write to one store and "newest" is
/// still well defined. `put` returns once the transaction has committed (durable as far as the
/// server's `fsync` and `synchronous_commit` are). Retention is recovery-checkpoint's:
/// `CheckpointRecoveryStrategy::with_store(store, keep)` keeps the newest `keep`.
///
/// ```no_run
/// use std::sync::Arc;
/// use recovery_checkpoint::CheckpointRecoveryStrategy;
/// use swarm_postgres::{PgCheckpointStore, migrate, pool};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = pool("postgres://postgres@127.0.0.1:5432/postgres", 8)?;
/// migrate(&pool).await?;
/// let store = Arc::new(PgCheckpointStore::new(pool, "swarm-a/instance-1"));
/// let strategy = CheckpointRecoveryStrategy::with_store(store, 10)?;
/// # let _ = strategy; Ok(()) }
/// ```
#[derive(Clone)]
pub struct PgCheckpointStore {
    pool: Pool,
    store: String,
}

impl std::fmt::Debug for PgCheckpointStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCheckpointStore")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

fn backend(op: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> CheckpointError {
    CheckpointError::Backend {
        store: "postgres",
        op,
        source: Box::new(e),
    }
}

impl PgCheckpointStore {
    /// The store named `store` in the database of `pool` (whose schema
    /// [`migrate`](crate::migrate) has created).
    pub fn new(pool: Pool, store: impl Into<String>) -> Self {
        Self {
            pool,
            store: store.into(),
        }
    }

    /// The store of one instance of a shared swarm, named `{swarm}/{instance}`: where its
    /// coordinator's checkpoints (its agents and their state) go, and where the instance finds
    /// them again when it restarts under the same name.
    #[cfg(feature = "cluster")]
    pub fn for_instance(pool: Pool, config: &crate::ClusterConfig) -> Self {
        Self::new(pool, format!("{}/{}", config.swarm, config.instance))
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        &self.store
    }

    async fn client(&self, op: &'static str) -> Result<deadpool_postgres::Object, CheckpointError> {
        self.pool.get().await.map_err(|e| backend(op, e))
    }

    /// The stored bytes of `info` (header and payload), unchecked: for damage tests.
    ///
    /// # Errors
    ///
    /// `NotFound`, or the database's error.
    pub async fn raw(&self, info: CheckpointInfo) -> Result<Vec<u8>, CheckpointError> {
        let client = self.client("read").await?;
        let row = client
            .query_opt(
                "SELECT data FROM swarm.checkpoints WHERE store = $1 AND id = $2",
                &[&self.store, &info.id],
            )
            .await
            .map_err(|e| backend("read", e))?;
        row.map(|r| r.get(0))
            .ok_or(CheckpointError::NotFound { id: info.id })
    }

    /// Replace the stored bytes of `info`, unchecked: for damage tests.
    ///
    /// # Errors
    ///
    /// The database's error.
    pub async fn overwrite_raw(
        &self,
        info: CheckpointInfo,
        bytes: &[u8],
    ) -> Result<(), CheckpointError> {
        let client = self.client("write").await?;
        client
            .execute(
                "UPDATE swarm.checkpoints SET data = $3 WHERE store = $1 AND id = $2",
                &[&self.store, &info.id, &bytes],
            )
            .await
            .map_err(|e| backend("write", e))?;
        Ok(())
    }
}

#[async_trait]
impl CheckpointStore for PgCheckpointStore {
    async fn put(&self, codec: Codec, payload: Vec<u8>) -> Result<CheckpointInfo, CheckpointError> {
        let mut client = self.client("put").await?;
        let tx = client.transaction().await.map_err(|e| backend("put", e))?;
        let sequence: i64 = tx
            .query_one(
                "INSERT INTO swarm.checkpoint_sequences (store, last) VALUES ($1, 1)
                 ON CONFLICT (store) DO UPDATE SET last = swarm.checkpoint_sequences.last + 1
                 RETURNING last",
                &[&self.store],
            )
            .await
            .map_err(|e| backend("put", e))?
            .get(0);
        let checkpoint = Checkpoint {
            id: Uuid::new_v4(),
            sequence: sequence as u64,
            created_at: stored_time(SystemTime::now()),
            codec,
            payload,
        };
        let data = format::encode(&checkpoint)?;
        tx.execute(
            "INSERT INTO swarm.checkpoints (store, sequence, id, data) VALUES ($1, $2, $3, $4)",
            &[&self.store, &sequence, &checkpoint.id, &data],
        )
        .await
        .map_err(|e| backend("put", e))?;
        tx.commit().await.map_err(|e| backend("put", e))?;
        Ok(checkpoint.info())
    }

    async fn get(&self, id: Uuid) -> Result<Checkpoint, CheckpointError> {
        let client = self.client("get").await?;
        let row = client
            .query_opt(
                "SELECT sequence, data FROM swarm.checkpoints WHERE store = $1 AND id = $2",
                &[&self.store, &id],
            )
            .await
            .map_err(|e| backend("get", e))?
            .ok_or(CheckpointError::NotFound { id })?;
        let sequence: i64 = row.get(0);
        let data: Vec<u8> = row.get(1);
        let checkpoint = format::decode(&data)?;
        // The header must name the row it is in, as a file's header must match its name.
        if checkpoint.id != id || checkpoint.sequence != sequence as u64 {
            return Err(CheckpointError::Malformed {
                reason: format!(
                    "the row of checkpoint {id} (#{sequence}) holds checkpoint {} (#{})",
                    checkpoint.id, checkpoint.sequence
                ),
            });
        }
        Ok(checkpoint)
    }

    async fn list(&self) -> Result<Vec<CheckpointInfo>, CheckpointError> {
        let client = self.client("list").await?;
        let rows = client
            .query(
                "SELECT id, sequence FROM swarm.checkpoints WHERE store = $1 ORDER BY sequence DESC",
                &[&self.store],
            )
            .await
            .map_err(|e| backend("list", e))?;
        Ok(rows
            .iter()
            .map(|r| CheckpointInfo {
                id: r.get(0),
                sequence: r.get::<_, i64>(1) as u64,
            })
            .collect())
    }

    async fn delete(&self, id: Uuid) -> Result<(), CheckpointError> {
        let client = self.client("delete").await?;
        let deleted = client
            .execute(
                "DELETE FROM swarm.checkpoints WHERE store = $1 AND id = $2",
                &[&self.store, &id],
            )
            .await
            .map_err(|e| backend("delete", e))?;
        if deleted == 0 {
            return Err(CheckpointError::NotFound { id });
        }
        Ok(())
    }

    fn uses_external_resources(&self) -> bool {
        true
    }
}
