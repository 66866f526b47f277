//! The old synchronous service's API, kept working for its clients:
//! multipart upload, answer when the job is done.
//!
//! ```sh
//! curl -F file=@photo.jpg -F width=300 http://localhost:8080/api/images/upload/resize
//! curl -F file=@photo.jpg -F text="© Me" -F position=bottom-right http://localhost:8080/api/images/upload/watermark
//! curl -F file=@photo.jpg -F filter=sepia http://localhost:8080/api/images/upload/filter
//! ```
//!
//! Each upload goes into the inbox like any other (`api/<id>/<file>`, see
//! [`crate::inbox::legacy_key`]), with the recipe the form describes; the
//! answer comes from the manifest.

mod budget;
mod form;
pub(super) mod images;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Json;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tracing::{Instrument, Span, info_span};
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, Problem};
use super::watch::{Target, Watcher};
use crate::inbox::{self, META_JOB_ID, META_RECIPE, META_TRACEPARENT};
use crate::outbox::{self, Status};
use crate::recipe::{Recipe, encode_text};
use crate::telemetry;

pub use budget::Budget;
use budget::Reservation;
pub use form::{FilterForm, ResizeForm, WatermarkForm};
use form::{Form, dimension, read_form};
pub use images::{get_image, health, list};

/// How long an upload waits for its job before answering 504.
pub const WAIT: Duration = Duration::from_secs(30);

/// What the old service answered when an upload was done.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LegacyAnswer {
    pub success: bool,
    pub message: String,
    pub image_url: String,
    pub image_key: String,
    pub original_name: String,
    pub timestamp: String,
}

/// What the three old upload endpoints answer (for the OpenAPI document).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum UploadAnswers {
    #[response(status = 200, description = "The job is done")]
    Done(LegacyAnswer),
    #[response(
        status = 400,
        description = "Invalid form, parameters or image",
        content_type = "application/problem+json"
    )]
    BadRequest(Problem),
    #[response(
        status = 401,
        description = "API key missing or wrong",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
    #[response(
        status = 413,
        description = "Over the byte limit",
        content_type = "application/problem+json"
    )]
    TooLarge(Problem),
    #[response(
        status = 422,
        description = "The job failed",
        content_type = "application/problem+json"
    )]
    Failed(Problem),
    #[response(
        status = 503,
        description = "S3 or SQS did not answer",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
    #[response(
        status = 504,
        description = "Still processing",
        content_type = "application/problem+json"
    )]
    Timeout(Problem),
}

/// The old service's `resize`: upload, wait, answer.
#[utoipa::path(post, path = "/api/images/upload/resize", request_body(content = ResizeForm, content_type = "multipart/form-data"),
    responses(UploadAnswers))]
pub async fn resize(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, ApiError> {
    let (form, held) = upload(&state, &headers, multipart).await?;
    let (w, h) = (
        dimension(&form.fields, "width")?,
        dimension(&form.fields, "height")?,
    );
    let recipe = match (w, h) {
        (None, None) => "resize,w=800".to_owned(),
        (Some(w), None) => format!("resize,w={w}"),
        (None, Some(h)) => format!("resize,h={h}"),
        (Some(w), Some(h)) => format!("resize,w={w},h={h}"),
    };
    run(&state, form, held, &recipe, "Image resized successfully").await
}

/// The old service's `watermark`: upload, wait, answer.
#[utoipa::path(post, path = "/api/images/upload/watermark", request_body(content = WatermarkForm, content_type = "multipart/form-data"),
    responses(UploadAnswers))]
pub async fn watermark(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, ApiError> {
    let (form, held) = upload(&state, &headers, multipart).await?;
    let text = form
        .fields
        .get("text")
        .map(String::as_str)
        .unwrap_or("© imgflow");
    let position = form
        .fields
        .get("position")
        .map(String::as_str)
        .unwrap_or("bottom-right");
    if ![
        "top-left",
        "top-right",
        "bottom-left",
        "bottom-right",
        "center",
    ]
    .contains(&position)
    {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!(
                "`position` must be top-left, top-right, bottom-left, bottom-right or center, not {position:?}"
            ),
        ));
    }
    let recipe = format!("watermark,text={},pos={position}", encode_text(text));
    run(&state, form, held, &recipe, "Watermark added successfully").await
}

/// The old service's `filter`: upload, wait, answer.
#[utoipa::path(post, path = "/api/images/upload/filter", request_body(content = FilterForm, content_type = "multipart/form-data"),
    responses(UploadAnswers))]
pub async fn filter(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, ApiError> {
    let (form, held) = upload(&state, &headers, multipart).await?;
    let recipe = match form
        .fields
        .get("filter")
        .map(String::as_str)
        .unwrap_or("grayscale")
    {
        "grayscale" | "greyscale" => "grayscale",
        "sepia" => "sepia",
        "blur" => "blur,sigma=2",
        "sharpen" => "sharpen,sigma=1,amount=1",
        other => {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("`filter` must be grayscale, sepia, blur or sharpen, not {other:?}"),
            ));
        }
    };
    run(&state, form, held, recipe, "Filter applied successfully").await
}

/// Reserve room in the memory budget for this upload, then read its form.
async fn upload(
    state: &AppState,
    headers: &HeaderMap,
    multipart: Multipart,
) -> Result<(Form, Reservation), ApiError> {
    let held = state.legacy_memory.reserve(headers).await?;
    let form = read_form(multipart, state.limits.max_bytes, held.bytes).await?;
    Ok((form, held))
}

/// Put the file in the inbox and wait for its manifest. `held` is the
/// upload's room in the memory budget, given back once its bytes are in S3.
async fn run(
    state: &AppState,
    form: Form,
    held: Reservation,
    recipe: &str,
    message: &str,
) -> Result<Response, ApiError> {
    let recipe = Recipe::parse(recipe)
        .map_err(|e| ApiError::bad_request("invalid_recipe", e.to_string()))?;
    // The forms cannot ask for an upscale, so this never fires; it keeps the
    // rule that every recipe is costed before it is accepted.
    recipe
        .check_cost()
        .map_err(|e| ApiError::bad_request("recipe_too_expensive", e.to_string()))?;
    let Form {
        file,
        filename,
        fields: _,
    } = form;
    // Refuse what is not an image now, as the old service did, not after a
    // round trip. Off the async threads: a probe parses untrusted headers
    // and may take its time.
    let limits = state.limits;
    let (file, probed) = tokio::task::spawn_blocking(move || {
        let probed = crate::pipeline::probe(&file, &limits);
        (file, probed)
    })
    .await
    .context("the image probe panicked")?;
    probed.map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
    let id = inbox::new_legacy_id(std::time::SystemTime::now(), Uuid::new_v4());
    let key = inbox::legacy_key(&id, &filename);
    let mut metadata = HashMap::from([
        (META_RECIPE.to_owned(), recipe.to_string()),
        (META_JOB_ID.to_owned(), id.to_string()),
    ]);
    if let Some(traceparent) = telemetry::traceparent(&Span::current()) {
        metadata.insert(META_TRACEPARENT.to_owned(), traceparent);
    }
    // Watched before the upload, so the worker's announcement (under
    // `imgflow up`) cannot come first; not checked until it can be done.
    let seen = state.watcher.subscribe(Target::Key(key.clone()), true);
    state
        .store
        .put_inbox(&key, metadata, file)
        .instrument(info_span!("upload", bucket = %state.store.inbox(), key = ?key))
        .await?;
    // The bytes are in S3 and dropped: the next upload may use the room.
    drop(held);

    let manifest = Watcher::finished(seen, WAIT)
        .instrument(info_span!("wait", key = ?key))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                format!(
                    "still processing after {} s; GET /api/images/{id} later",
                    WAIT.as_secs()
                ),
            )
        })?;
    if manifest.status == Status::Failed {
        let error = manifest.error.clone().unwrap_or_else(|| outbox::JobError {
            code: "failed".into(),
            message: "the job failed".into(),
        });
        let code: &'static str = match error.code.as_str() {
            "unsupported_image" => "unsupported_image",
            "image_too_large" => "image_too_large",
            "corrupt_image" => "corrupt_image",
            _ => "job_failed",
        };
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
            error.message,
        ));
    }
    let answer = LegacyAnswer {
        success: true,
        message: message.to_owned(),
        image_url: format!("/api/images/{id}"),
        image_key: id.to_string(),
        original_name: filename,
        timestamp: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .context("formatting the time")?,
    };
    Ok(Json(answer).into_response())
}
