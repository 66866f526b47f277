//! The HTTP API: presigned uploads, job status, health.
//!
//! The API never touches image bytes: clients upload straight to S3 with the
//! presigned URL, and job state is read from the outbox manifest. It is
//! stateless, so any number of replicas can run.

mod auth;
mod console;
mod error;
mod events;
mod jobs;
pub(super) mod legacy;
mod observe;
pub mod openapi;
mod server;
mod token;
mod uploads;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;

use crate::aws::Clients;
use crate::config::{ApiConfig, Resources};
use crate::pipeline::Limits;
use crate::recipe::Presets;
use crate::store::Store;
use crate::telemetry::metric;

pub use error::{ApiError, Problem};

/// What every handler may use.
pub struct AppState {
    /// For `/readyz` only; objects go through `store`.
    pub clients: Clients,
    pub resources: Resources,
    pub store: Store,
    pub presets: Presets,
    pub limits: Limits,
    pub config: ApiConfig,
    /// The old multipart API's upload bytes in memory (see `legacy::Budget`).
    pub legacy_memory: legacy::Budget,
    /// Signs and checks job-scoped read tokens.
    pub tokens: token::Signer,
    /// One manifest watcher per waited-on job, shared by its SSE clients.
    pub watcher: Arc<watch::Watcher>,
}

impl AppState {
    /// `store` is the app's: under `imgflow up` it hears the worker's manifests.
    pub fn new(
        clients: Clients,
        store: Store,
        resources: Resources,
        presets: Presets,
        limits: Limits,
        config: ApiConfig,
    ) -> AppState {
        AppState {
            tokens: token::Signer::new(config.browser.token_secret.as_deref()),
            watcher: watch::Watcher::new(store.clone()),
            store,
            legacy_memory: legacy::Budget::new(
                config.legacy_upload_memory,
                legacy_body_limit(&limits),
            ),
            clients,
            resources,
            presets,
            limits,
            config,
        }
    }
}

/// JSON bodies are small: a file name, a type, a size and a recipe.
const MAX_JSON_BODY: usize = 16 * 1024;

/// Multipart uploads carry the image itself: its limit plus room for the form.
fn legacy_body_limit(limits: &Limits) -> usize {
    usize::try_from(limits.max_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024)
}

/// No request may take longer (a job's `?wait=` is bounded well below it).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

pub fn router(state: Arc<AppState>) -> Router {
    metric::handle();
    let form_limit = DefaultBodyLimit::max(legacy_body_limit(&state.limits));
    let legacy_uploads = Router::new()
        .route("/api/images/upload/resize", post(legacy::resize))
        .route("/api/images/upload/watermark", post(legacy::watermark))
        .route("/api/images/upload/filter", post(legacy::filter))
        .layer(form_limit);
    let cors = cors_layer(&state.config.browser.cors.list());
    let router = Router::new()
        .route("/", get(console::page))
        .route("/v1/uploads", post(uploads::create))
        .route("/v1/jobs/{job_id}", get(jobs::get))
        .route("/v1/jobs/{job_id}/events", get(events::events))
        .route("/api/images", get(legacy::list))
        .route("/api/images/health", get(legacy::health))
        .route("/api/images/{image_key}", get(legacy::get_image))
        .route("/healthz", get(healthz))
        .route(
            "/openapi.json",
            get(|| async { axum::Json(openapi::document()) }),
        )
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .merge(legacy_uploads)
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            auth::require_key,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::from_fn(error::problems_everywhere))
        .layer(axum::middleware::from_fn(observe::observe))
        .with_state(state);
    // Outermost, so preflights are answered before any key is asked for.
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// CORS for pages at `origins`, on `/v1/*` only (the console is same-origin;
/// probes and metrics are not for browsers). `None` without origins.
fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    use axum::http::{HeaderName, Method, header};
    if origins.is_empty() {
        return None;
    }
    let allowed = origins.to_vec();
    let origin = AllowOrigin::predicate(move |origin, request| {
        request.uri.path().starts_with("/v1/")
            && origin
                .to_str()
                .is_ok_and(|o| allowed.iter().any(|a| a.eq_ignore_ascii_case(o)))
    });
    Some(
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("last-event-id"),
                HeaderName::from_static("traceparent"),
            ])
            .max_age(Duration::from_secs(3600)),
    )
}

#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "The process runs", body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// Serve until `shutdown` fires, then finish in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    if state.config.api_key_hashes.is_empty() {
        tracing::warn!(%addr, "api listening WITHOUT API keys, so on loopback only; set IMGFLOW_API_KEY_SHA256 to serve a network");
    } else {
        tracing::info!(%addr, keys = state.config.api_key_hashes.len(), "api listening; API keys required");
    }
    let settings = server::Settings {
        header_read_timeout: state.config.header_read_timeout(),
        idle_timeout: state.config.idle_timeout(),
        max_connections: state.config.max_connections,
    };
    server::run(listener, router(state), settings, shutdown).await
}

/// Ready when both buckets and the queue answer.
#[utoipa::path(get, path = "/readyz", responses(
    (status = 200, description = "S3 and SQS answer", body = String),
    (status = 503, description = "What does not answer", body = String)))]
async fn ready(State(state): State<Arc<AppState>>) -> (StatusCode, String) {
    match crate::aws::reachable(&state.clients, &state.resources).await {
        Ok(()) => (StatusCode::OK, "ready".to_owned()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

/// Prometheus text: the API's request metrics, and the worker's when both
/// run in one process (`imgflow up`).
#[utoipa::path(get, path = "/metrics", responses(
    (status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain")))]
async fn metrics() -> impl axum::response::IntoResponse {
    metric::exposition()
}
