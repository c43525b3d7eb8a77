//! Serving the process's metrics for Prometheus: the drill's `--metrics-listen ADDR`. Any
//! program does the same with one line of `metrics-exporter-prometheus`:
//! `PrometheusBuilder::new().with_http_listener(([127, 0, 0, 1], 9000)).install()?`.

use std::net::{Ipv4Addr, SocketAddr};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use recovery_manager::metrics::DURATION;

use crate::DrillError;

/// The buckets of the attempt-duration histogram, in seconds: from a retry that succeeds at
/// once to a recovery that takes most of the default time limit.
pub const DURATION_BUCKETS: [f64; 12] = [
    0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 30.0,
];

/// A listen address as the flag takes it: `PORT` (on 127.0.0.1) or `IP:PORT`.
///
/// # Errors
///
/// A message saying what it expects.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    s.parse::<SocketAddr>().map_err(|_| {
        format!("`{s}` is not a port or an IP:PORT address (for example 9000 or 127.0.0.1:9000)")
    })
}

/// Install a Prometheus recorder for the whole process, serving at `http://ADDR/metrics` from
/// the current tokio runtime; port 0 picks a free one. Returns the address served.
///
/// # Errors
///
/// [`DrillError::Setup`] if the address cannot be bound or a recorder is already installed.
pub fn serve_metrics(addr: SocketAddr) -> Result<SocketAddr, DrillError> {
    let setup = |e: &dyn std::fmt::Display| {
        DrillError::Setup(format!("cannot serve metrics on {addr}: {e}"))
    };
    // Bind once to learn the port (and to fail here, not in the exporter's task).
    let bound = std::net::TcpListener::bind(addr)
        .and_then(|l| l.local_addr())
        .map_err(|e| setup(&e))?;
    PrometheusBuilder::new()
        .with_http_listener(bound)
        .set_buckets_for_metric(Matcher::Full(DURATION.to_owned()), &DURATION_BUCKETS)
        .map_err(|e| setup(&e))?
        .install()
        .map_err(|e| setup(&e))?;
    Ok(bound)
}
