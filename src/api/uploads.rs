//! `POST /v1/uploads`: a presigned PUT for one image.
//!
//! The server picks the key; the content type, the exact length and the
//! recipe metadata are all signed, so the upload S3 accepts is exactly the
//! one described here.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::Context;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tracing::Span;
use tracing::field::Empty;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, ApiJson, Problem};
use crate::inbox::{self, META_JOB_ID, META_PRESET, META_RECIPE, META_TRACEPARENT};
use crate::store::UploadSpec;
use crate::telemetry;

/// Image types the pipeline decodes.
pub const ACCEPTED_TYPES: &[&str] = &["image/jpeg", "image/png", "image/webp", "image/gif"];

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    pub recipe: Option<String>,
    pub preset: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UploadResponse {
    pub job_id: Uuid,
    pub key: String,
    pub upload_url: String,
    pub method: &'static str,
    /// Send exactly these headers with the PUT (and exactly `size` bytes).
    pub headers: BTreeMap<String, String>,
    pub expires_at: String,
    pub job_url: String,
    /// Server-Sent Events of the job (`?token=` appended by the client).
    pub events_url: String,
    /// A job-scoped read token: reads this job's status and events and
    /// nothing else, until `job_token_expires_at`. Safe to hand to a browser.
    pub job_token: String,
    pub job_token_expires_at: String,
}

/// Ask for a presigned PUT URL for one image.
#[utoipa::path(post, path = "/v1/uploads", request_body = UploadRequest,
    responses(
        (status = 200, description = "Upload with exactly these headers", body = UploadResponse),
        (status = 400, description = "Invalid request, recipe, type or size", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(name = "presign", skip_all, fields(
    bucket = %state.store.inbox(), job_id = Empty, key = Empty, size = Empty, recipe = Empty))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    ApiJson(request): ApiJson<UploadRequest>,
) -> Result<Json<UploadResponse>, ApiError> {
    if request.filename.is_empty() || request.filename.len() > 1024 {
        return Err(ApiError::bad_request(
            "invalid_request",
            "filename must be 1 to 1024 bytes",
        ));
    }
    let content_type = request.content_type.to_ascii_lowercase();
    if !ACCEPTED_TYPES.contains(&content_type.as_str()) {
        return Err(ApiError::bad_request(
            "unsupported_image",
            format!(
                "content_type {:?} is not one of {}",
                request.content_type,
                ACCEPTED_TYPES.join(", ")
            ),
        ));
    }
    let max = state.limits.max_bytes;
    if request.size == 0 || request.size > max {
        return Err(ApiError::bad_request(
            "image_too_large",
            format!("size must be 1 to {max} bytes, not {}", request.size),
        ));
    }
    let resolved = state
        .presets
        .resolve(request.recipe.as_deref(), request.preset.as_deref())
        .map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;

    let job_id = Uuid::new_v4();
    let key = inbox::upload_key(job_id, &request.filename);
    let mut metadata = HashMap::from([(META_JOB_ID.to_owned(), job_id.to_string())]);
    match (&request.recipe, &resolved.preset) {
        // The canonical form: what the worker will parse is what we validated.
        (Some(_), _) => metadata.insert(META_RECIPE.to_owned(), resolved.recipe.to_string()),
        (None, Some(preset)) if request.preset.is_some() => {
            metadata.insert(META_PRESET.to_owned(), preset.clone())
        }
        _ => None,
    };
    // The job's trace will link back to this request's.
    let span = Span::current();
    if let Some(traceparent) = telemetry::traceparent(&span) {
        metadata.insert(META_TRACEPARENT.to_owned(), traceparent);
    }
    span.record("job_id", job_id.to_string());
    span.record("key", key.as_str());
    span.record("size", request.size);
    span.record("recipe", resolved.recipe.to_string());

    let expiry = state.config.upload_expiry();
    let upload = UploadSpec {
        key: &key,
        content_type: &content_type,
        length: request.size,
        metadata,
    };
    let presigned = state.store.presign_upload(upload, expiry).await?;
    // Its first `?wait=` need not look before the job can have run.
    state.watcher.presigned(job_id);

    let headers = presigned
        .headers()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("host"))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
        .collect();
    let rfc3339 = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .context("formatting an expiry")
    };
    let expires_at = rfc3339(time::OffsetDateTime::now_utc() + expiry)?;
    let (job_token, token_expires) = state.tokens.issue(job_id, state.config.job_token_expiry());
    let token_expires = time::OffsetDateTime::from_unix_timestamp(token_expires as i64)
        .context("the token's expiry")?;
    Ok(Json(UploadResponse {
        job_id,
        upload_url: presigned.uri().to_owned(),
        method: "PUT",
        headers,
        expires_at,
        job_url: format!("/v1/jobs/{job_id}"),
        events_url: format!("/v1/jobs/{job_id}/events"),
        job_token,
        job_token_expires_at: rfc3339(token_expires)?,
        key,
    }))
}
