//! `GET /`: the web console, one static page built into the binary (no
//! build step, no CDN). It uses the public API like any other client:
//! presign, PUT straight to S3 with progress, follow the job over SSE with
//! its job token, show the outputs from their presigned URLs.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;

const PAGE: &str = include_str!("console.html");

/// The web console (HTML).
#[utoipa::path(get, path = "/", responses(
    (status = 200, description = "The web console", body = String, content_type = "text/html")))]
pub async fn page(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    // The configured presets fill the page's picker; names are letters,
    // digits, - and _ (config::parse_preset), so they need no escaping.
    let presets: Vec<&str> = state.presets.names().collect();
    let html = PAGE.replace(
        "\"__PRESETS__\"",
        &serde_json::to_string(&presets).unwrap_or_else(|_| "[]".into()),
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        html,
    )
}
