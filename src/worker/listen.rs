//! The worker's own small HTTP listener, for probes and scrapers:
//! `/healthz` (the process runs), `/readyz` (S3 and SQS answer) and
//! `/metrics` (Prometheus text). No API keys: it serves no data.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::aws::Clients;
use crate::config::Resources;
use crate::telemetry::metric;

struct Probe {
    clients: Clients,
    resources: Resources,
}

pub fn router(clients: Clients, resources: Resources) -> Router {
    metric::handle();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(|| async { metric::exposition() }))
        .with_state(Arc::new(Probe { clients, resources }))
}

/// Serve until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    clients: Clients,
    resources: Resources,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "worker probes and metrics listening");
    axum::serve(listener, router(clients, resources))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn ready(State(probe): State<Arc<Probe>>) -> (StatusCode, String) {
    match crate::aws::reachable(&probe.clients, &probe.resources).await {
        Ok(()) => (StatusCode::OK, "ready".to_owned()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}
