//! Connections: a pool for statements, and a dedicated session for what must live as long as
//! the instance (its advisory lock, its LISTEN).

use deadpool_postgres::{Config, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::error::{PgError, Step};

/// A pool of at most `max_size` connections to `url` (a `postgres://` URL or a key=value
/// string), without TLS (a server on the same host or a private network).
///
/// # Errors
///
/// [`PgError::Config`] if `url` does not parse.
pub fn pool(url: &str, max_size: usize) -> Result<Pool, PgError> {
    let pg: tokio_postgres::Config = url
        .parse()
        .map_err(|e| PgError::Config(format!("the database URL does not parse: {e}")))?;
    let mut config = Config::new();
    config.user = pg.get_user().map(str::to_owned);
    config.dbname = pg.get_dbname().map(str::to_owned);
    config.password = pg
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    config.application_name = Some("swarm-postgres".into());
    config.hosts = Some(
        pg.get_hosts()
            .iter()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(s) => s.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(p) => p.to_string_lossy().into_owned(),
            })
            .collect(),
    );
    config.ports = Some(pg.get_ports().to_vec());
    config.manager = Some(ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    });
    config.pool = Some(deadpool_postgres::PoolConfig::new(max_size.max(1)));
    config
        .create_pool(Some(Runtime::Tokio1), NoTls)
        .map_err(|e| PgError::Config(format!("cannot make a pool for the database URL: {e}")))
}

/// One connection of its own, named `application_name` (in `pg_stat_activity`), driven on a
/// spawned task; the returned receiver yields the notifications (LISTEN) it gets, and closes
/// when the connection ends.
pub(crate) async fn session(
    url: &str,
    application_name: &str,
) -> Result<
    (
        tokio_postgres::Client,
        tokio::sync::mpsc::UnboundedReceiver<tokio_postgres::Notification>,
    ),
    PgError,
> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| PgError::Config(format!("the database URL does not parse: {e}")))?;
    config.application_name(application_name);
    let (client, mut connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| PgError::db(Step::Connect, e))?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        use futures_util::StreamExt;
        while let Some(message) = messages.next().await {
            match message {
                // Nobody listening any more (the instance is leaving): the connection still
                // serves its last statements.
                Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                    let _ = tx.send(n);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(target: "swarm_postgres", error = %e, "the instance's session ended");
                    break;
                }
            }
        }
    });
    Ok((client, rx))
}
