//! The old API's reads: one processed image, the list of recent ones, health.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::AppState;
use crate::api::error::{ApiError, ApiQuery, Problem};
use crate::inbox;

/// `GET /api/images/{imageKey}`: the processed image (its first output),
/// streamed from S3.
#[utoipa::path(get, path = "/api/images/{image_key}", params(("image_key" = String, Path)),
    responses(
        (status = 200, description = "The image", content_type = "image/*"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_image(
    State(state): State<Arc<AppState>>,
    Path(image_key): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("no finished image {image_key:?}"));
    let id = Uuid::parse_str(&image_key)
        .map_err(|_| ApiError::not_found(format!("no image {image_key:?}")))?;
    let manifest = state
        .store
        .find_manifest(&inbox::legacy_prefix(id))
        .await?
        .ok_or_else(not_found)?;
    let output = manifest.outputs.into_iter().next().ok_or_else(|| {
        ApiError::not_found(format!("image {image_key:?} failed and has no output"))
    })?;
    let body = state
        .store
        .get_output(&output.key)
        .await?
        .ok_or_else(not_found)?;
    let stream = tokio_util::io::ReaderStream::new(body.into_async_read());
    Ok((
        [(header::CONTENT_TYPE, output.content_type)],
        Body::from_stream(stream),
    )
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    #[serde(default)]
    pub page: usize,
    #[serde(default = "default_size")]
    pub size: usize,
}

fn default_size() -> usize {
    20
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageList {
    pub images: Vec<ListedImage>,
    pub page: usize,
    pub size: usize,
    pub total: usize,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListedImage {
    pub image_key: String,
    pub image_url: String,
    pub last_modified: String,
}

/// `GET /api/images?page=0&size=20`: recent results, newest first (the
/// newest 1000 are considered).
#[utoipa::path(get, path = "/api/images", params(Page),
    responses(
        (status = 200, body = ImageList),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<ImageList>, ApiError> {
    if page.size == 0 || page.size > 100 {
        return Err(ApiError::bad_request(
            "invalid_request",
            "`size` must be 1 to 100",
        ));
    }
    let mut done: Vec<(i64, String)> = state
        .store
        .finished_under(inbox::LEGACY_PREFIX)
        .await?
        .into_iter()
        .filter_map(|f| {
            Some((
                f.last_modified,
                inbox::legacy_id(&f.manifest_key)?.to_owned(),
            ))
        })
        .collect();
    done.sort_by(|a, b| b.cmp(a));
    let total = done.len();
    let images = done
        .into_iter()
        .skip(page.page.saturating_mul(page.size))
        .take(page.size)
        .map(|(secs, id)| ListedImage {
            image_url: format!("/api/images/{id}"),
            image_key: id,
            last_modified: time::OffsetDateTime::from_unix_timestamp(secs)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default(),
        })
        .collect();
    Ok(Json(ImageList {
        images,
        page: page.page,
        size: page.size,
        total,
    }))
}

/// `GET /api/images/health`, as Spring Boot answered it.
#[utoipa::path(get, path = "/api/images/health", responses((status = 200, body = Object)))]
pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "UP", "service": "imgflow"}))
}
