//! The HTTP API: presigned uploads, job status, health.
//!
//! The API never touches image bytes: clients upload straight to S3 with the
//! presigned URL, and job state is read from the outbox manifest. It is
//! stateless, so any number of replicas can run.

mod error;
mod jobs;
mod uploads;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::aws::Clients;
use crate::config::{ApiConfig, Resources};
use crate::pipeline::Limits;
use crate::recipe::Presets;

pub use error::ApiError;

pub struct AppState {
    pub clients: Clients,
    pub resources: Resources,
    pub presets: Presets,
    pub limits: Limits,
    pub config: ApiConfig,
}

/// JSON bodies are small: a file name, a type, a size and a recipe.
const MAX_JSON_BODY: usize = 16 * 1024;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/uploads", post(uploads::create))
        .route("/v1/jobs/{job_id}", get(jobs::get))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .with_state(state)
}

/// Serve until `shutdown` fires, then finish in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "api listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Ready when both buckets and the queue answer.
async fn ready(State(state): State<Arc<AppState>>) -> (StatusCode, String) {
    let s3 = &state.clients.s3;
    let checks = async {
        for bucket in [&state.resources.inbox, &state.resources.outbox] {
            s3.head_bucket().bucket(bucket).send().await.map_err(|e| {
                format!(
                    "bucket {bucket}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(e)
                )
            })?;
        }
        state
            .clients
            .sqs
            .get_queue_url()
            .queue_name(&state.resources.queue)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "queue {}: {}",
                    state.resources.queue,
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                )
            })?;
        Ok::<_, String>(())
    };
    match checks.await {
        Ok(()) => (StatusCode::OK, "ready".to_owned()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}
