//! The old API's reads: one processed image, the list of recent ones, health.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

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
    // Either key scheme: newest-first keys, and the UUIDs handed out before.
    let prefix = inbox::legacy_prefix(&image_key)
        .ok_or_else(|| ApiError::not_found(format!("no image {image_key:?}")))?;
    // An upload this process answered is remembered: then the image is
    // one GetObject. Otherwise its folder is listed for the manifest first.
    let manifest = match state.watcher.recently_finished(&prefix) {
        Some(manifest) => manifest,
        None => state
            .store
            .find_manifest(&prefix)
            .await?
            .map(Arc::new)
            .ok_or_else(not_found)?,
    };
    let output = manifest.outputs.first().cloned().ok_or_else(|| {
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
    /// Finished images: all of them, or [`MAX_LISTED`] when `hasMore`.
    pub total: usize,
    /// Whether older images exist past the ones counted.
    pub has_more: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListedImage {
    pub image_key: String,
    pub image_url: String,
    pub last_modified: String,
}

/// How deep pages go and how far `total` counts: each request lists at most
/// this many results (about 20 ListObjects calls), however large the outbox.
pub const MAX_LISTED: usize = 10_000;

/// `GET /api/images?page=0&size=20`: finished results, newest first.
///
/// Image keys sort newest first (see [`inbox::new_legacy_id`]), so the
/// outbox lists them in time order: the newest [`MAX_LISTED`] are the first
/// listing pages, whatever the outbox holds. Images from before that scheme (UUID keys) follow all newer
/// ones, sorted by their time.
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
    let deepest = page
        .page
        .checked_mul(page.size)
        .and_then(|n| n.checked_add(page.size));
    if deepest.is_none_or(|n| n > MAX_LISTED) {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("only the newest {MAX_LISTED} images are listed: lower `page` or `size`"),
        ));
    }
    // Counted up to MAX_LISTED, so `total` stays what the old service said
    // (the number of images) for any outbox of up to that many.
    let (mut done, mut has_more) = newest_first(&state, MAX_LISTED).await?;
    if !has_more {
        // The newer scheme is exhausted: the older UUID keys come next.
        let mut older = uuid_keyed(&state).await?;
        older.sort_by(|a, b| b.cmp(a));
        done.extend(older.into_iter().map(|(secs, id)| (id, secs)));
        has_more = done.len() > MAX_LISTED;
        done.truncate(MAX_LISTED);
    }
    let total = done.len();
    let images = done
        .into_iter()
        .skip(page.page * page.size)
        .take(page.size)
        .map(|(id, secs)| ListedImage {
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
        has_more,
    }))
}

/// The newest `want` finished images of the newest-first scheme (key order
/// is time order), and whether the listing went on.
async fn newest_first(
    state: &AppState,
    want: usize,
) -> Result<(Vec<(String, i64)>, bool), ApiError> {
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let page = state
            .store
            .finished_page(inbox::LEGACY_NEWEST_FIRST, token)
            .await?;
        found.extend(page.finished.into_iter().filter_map(|f| {
            Some((
                inbox::legacy_id(&f.manifest_key)?.to_owned(),
                f.last_modified,
            ))
        }));
        token = page.next;
        if found.len() >= want || token.is_none() {
            let more = found.len() > want || token.is_some();
            found.truncate(want);
            return Ok((found, more));
        }
    }
}

/// Every finished image with a UUID key (the scheme before newest-first
/// keys; no longer written, so a fixed set): (time, key).
async fn uuid_keyed(state: &AppState) -> Result<Vec<(i64, String)>, ApiError> {
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let page = state
            .store
            .finished_page(inbox::LEGACY_PREFIX, token)
            .await?;
        found.extend(page.finished.into_iter().filter_map(|f| {
            if f.manifest_key.starts_with(inbox::LEGACY_NEWEST_FIRST) {
                return None;
            }
            Some((
                f.last_modified,
                inbox::legacy_id(&f.manifest_key)?.to_owned(),
            ))
        }));
        // `api/n/` sorts after every UUID folder: past it, nothing is left.
        let past = page
            .last_key
            .is_some_and(|k| k.starts_with(inbox::LEGACY_NEWEST_FIRST));
        match page.next {
            Some(next) if !past => token = Some(next),
            _ => return Ok(found),
        }
    }
}

/// `GET /api/images/health`, as Spring Boot answered it.
#[utoipa::path(get, path = "/api/images/health", responses((status = 200, body = Object)))]
pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "UP", "service": "imgflow"}))
}
