//! The old synchronous service's API, kept working for its clients:
//! multipart upload, answer when the job is done.
//!
//! ```sh
//! curl -F file=@photo.jpg -F width=300 http://localhost:8080/api/images/upload/resize
//! curl -F file=@photo.jpg -F text="© Me" -F position=bottom-right http://localhost:8080/api/images/upload/watermark
//! curl -F file=@photo.jpg -F filter=sepia http://localhost:8080/api/images/upload/filter
//! ```
//!
//! Each upload goes into the inbox like any other (`api/<id>/<file>`), with
//! the recipe the form describes; the answer comes from the manifest.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_s3::primitives::ByteStream;
use axum::Json;
use axum::body::Body;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tracing::{Instrument, Span, info_span};
use uuid::Uuid;

use super::openapi::Problem;
use super::{ApiError, AppState};
use crate::inbox::{self, META_JOB_ID, META_RECIPE, META_TRACEPARENT};
use crate::outbox::{self, Manifest, Status};
use crate::recipe::{Recipe, encode_text};
use crate::telemetry;

/// How long an upload waits for its job before answering 504.
pub const WAIT: Duration = Duration::from_secs(30);
const SEED_PREFIX: &str = "api/";

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeedAnswer {
    pub success: bool,
    pub message: String,
    pub image_url: String,
    pub image_key: String,
    pub original_name: String,
    pub timestamp: String,
}

/// The form: the file and the few text fields the old service took.
struct Form {
    file: Vec<u8>,
    filename: String,
    fields: HashMap<String, String>,
}

async fn read_form(mut multipart: Multipart, max_bytes: u64) -> Result<Form, ApiError> {
    let bad = |detail: String| ApiError::bad_request("invalid_request", detail);
    let failed = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                e.body_text(),
            )
        } else {
            ApiError::bad_request("invalid_request", e.body_text())
        }
    };
    let mut file = None;
    let mut fields = HashMap::new();
    while let Some(field) = multipart.next_field().await.map_err(failed)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let filename = field.file_name().unwrap_or("upload").to_owned();
            let bytes = field.bytes().await.map_err(failed)?;
            if bytes.len() as u64 > max_bytes {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "image_too_large",
                    format!("the file is over {max_bytes} bytes"),
                ));
            }
            file = Some((bytes.to_vec(), filename));
        } else {
            let text = field.text().await.map_err(failed)?;
            if text.len() > 1024 || fields.len() >= 16 {
                return Err(bad("form fields are limited to 16 of 1 KiB each".into()));
            }
            fields.insert(name, text);
        }
    }
    let (file, filename) = file.ok_or_else(|| bad("the form has no `file` part".into()))?;
    if file.is_empty() {
        return Err(bad("the `file` part is empty".into()));
    }
    Ok(Form {
        file,
        filename,
        fields,
    })
}

fn pixels(fields: &HashMap<String, String>, name: &str) -> Result<Option<u32>, ApiError> {
    match fields.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=16_384).contains(n))
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_request",
                    format!("`{name}` must be 1 to 16384 pixels, not {v:?}"),
                )
            }),
    }
}

/// What the three old upload endpoints answer (for the OpenAPI document).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum UploadAnswers {
    #[response(status = 200, description = "The job is done")]
    Done(SeedAnswer),
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
#[utoipa::path(post, path = "/api/images/upload/resize", request_body(content = super::openapi::ResizeForm, content_type = "multipart/form-data"),
    responses(UploadAnswers))]
pub async fn resize(
    State(state): State<Arc<AppState>>,
    multipart: Multipart,
) -> Result<Response, ApiError> {
    let form = read_form(multipart, state.limits.max_bytes).await?;
    let (w, h) = (
        pixels(&form.fields, "width")?,
        pixels(&form.fields, "height")?,
    );
    let recipe = match (w, h) {
        (None, None) => "resize,w=800".to_owned(),
        (Some(w), None) => format!("resize,w={w}"),
        (None, Some(h)) => format!("resize,h={h}"),
        (Some(w), Some(h)) => format!("resize,w={w},h={h}"),
    };
    run(&state, form, &recipe, "Image resized successfully").await
}

/// The old service's `watermark`: upload, wait, answer.
#[utoipa::path(post, path = "/api/images/upload/watermark", request_body(content = super::openapi::WatermarkForm, content_type = "multipart/form-data"),
    responses(UploadAnswers))]
pub async fn watermark(
    State(state): State<Arc<AppState>>,
    multipart: Multipart,
) -> Result<Response, ApiError> {
    let form = read_form(multipart, state.limits.max_bytes).await?;
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
    run(&state, form, &recipe, "Watermark added successfully").await
}

/// The old service's `filter`: upload, wait, answer.
#[utoipa::path(post, path = "/api/images/upload/filter", request_body(content = super::openapi::FilterForm, content_type = "multipart/form-data"),
    responses(UploadAnswers))]
pub async fn filter(
    State(state): State<Arc<AppState>>,
    multipart: Multipart,
) -> Result<Response, ApiError> {
    let form = read_form(multipart, state.limits.max_bytes).await?;
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
    run(&state, form, recipe, "Filter applied successfully").await
}

/// Put the file in the inbox and wait for its manifest.
async fn run(
    state: &AppState,
    form: Form,
    recipe: &str,
    message: &str,
) -> Result<Response, ApiError> {
    let recipe = Recipe::parse(recipe)
        .map_err(|e| ApiError::bad_request("invalid_recipe", e.to_string()))?;
    // Refuse what is not an image now, as the old service did, not after a round trip.
    crate::pipeline::probe(&form.file, &state.limits)
        .map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
    let id = Uuid::new_v4();
    let key = format!(
        "{SEED_PREFIX}{id}/{}",
        inbox::clean_filename(&form.filename)
    );
    let mut put = state
        .clients
        .s3
        .put_object()
        .bucket(&state.resources.inbox)
        .key(&key)
        .metadata(META_RECIPE, recipe.to_string())
        .metadata(META_JOB_ID, id.to_string());
    if let Some(traceparent) = telemetry::traceparent(&Span::current()) {
        put = put.metadata(META_TRACEPARENT, traceparent);
    }
    put.body(ByteStream::from(form.file))
        .send()
        .instrument(info_span!("upload", bucket = %state.resources.inbox, key = %key))
        .await
        .with_context(|| format!("writing s3://{}/{key}", state.resources.inbox))?;

    let manifest = super::poll(WAIT, || read_manifest(state, &key))
        .instrument(info_span!("wait", key = %key))
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
        let error = manifest.error.unwrap_or_else(|| outbox::JobError {
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
    let answer = SeedAnswer {
        success: true,
        message: message.to_owned(),
        image_url: format!("/api/images/{id}"),
        image_key: id.to_string(),
        original_name: form.filename,
        timestamp: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .context("formatting the time")?,
    };
    Ok(Json(answer).into_response())
}

async fn read_manifest(state: &AppState, inbox_key: &str) -> anyhow::Result<Option<Manifest>> {
    let key = outbox::manifest_key(inbox_key);
    match state
        .clients
        .s3
        .get_object()
        .bucket(&state.resources.outbox)
        .key(&key)
        .send()
        .await
    {
        Ok(object) => {
            let bytes = object
                .body
                .collect()
                .await
                .context("reading a manifest")?
                .into_bytes();
            Ok(Some(
                serde_json::from_slice(&bytes).context("parsing a manifest")?,
            ))
        }
        Err(err) if err.raw_response().map(|r| r.status().as_u16()) == Some(404) => Ok(None),
        Err(err) => Err(err).context("reading a manifest"),
    }
}

/// The outbox key of an upload's first output, from its image key.
async fn output_of(state: &AppState, image_key: &str) -> Result<(String, String), ApiError> {
    let id = Uuid::parse_str(image_key)
        .map_err(|_| ApiError::not_found(format!("no image {image_key:?}")))?;
    let prefix = format!("{SEED_PREFIX}{id}/");
    let listing = state
        .clients
        .s3
        .list_objects_v2()
        .bucket(&state.resources.outbox)
        .prefix(&prefix)
        .send()
        .await
        .context("listing the outbox")?;
    let manifest_key = listing
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .find(|k| k.ends_with(&format!("/{}", outbox::MANIFEST_NAME)))
        .ok_or_else(|| ApiError::not_found(format!("no finished image {image_key:?}")))?;
    let inbox_key = manifest_key.trim_end_matches(&format!("/{}", outbox::MANIFEST_NAME));
    let manifest = read_manifest(state, inbox_key)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no finished image {image_key:?}")))?;
    let output = manifest.outputs.into_iter().next().ok_or_else(|| {
        ApiError::not_found(format!("image {image_key:?} failed and has no output"))
    })?;
    Ok((output.key, output.content_type))
}

/// `GET /api/images/{imageKey}`: the processed image, streamed from S3.
/// The processed image.
#[utoipa::path(get, path = "/api/images/{image_key}", params(("image_key" = String, Path)),
    responses(
        (status = 200, description = "The image", content_type = "image/*"),
        (status = 401, body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, body = super::openapi::Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_image(
    State(state): State<Arc<AppState>>,
    Path(image_key): Path<String>,
) -> Result<Response, ApiError> {
    let (key, content_type) = output_of(&state, &image_key).await?;
    let object = state
        .clients
        .s3
        .get_object()
        .bucket(&state.resources.outbox)
        .key(&key)
        .send()
        .await
        .with_context(|| format!("reading s3://{}/{key}", state.resources.outbox))?;
    let stream = tokio_util::io::ReaderStream::new(object.body.into_async_read());
    Ok((
        [(header::CONTENT_TYPE, content_type)],
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
        (status = 400, body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, body = super::openapi::Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    page: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ImageList>, ApiError> {
    let Query(page) = page?;
    if page.size == 0 || page.size > 100 {
        return Err(ApiError::bad_request(
            "invalid_request",
            "`size` must be 1 to 100",
        ));
    }
    let listing = state
        .clients
        .s3
        .list_objects_v2()
        .bucket(&state.resources.outbox)
        .prefix(SEED_PREFIX)
        .send()
        .await
        .context("listing the outbox")?;
    let mut done: Vec<(i64, String)> = listing
        .contents()
        .iter()
        .filter_map(|o| {
            let key = o.key()?;
            let id = key.strip_prefix(SEED_PREFIX)?.split('/').next()?;
            key.ends_with(&format!("/{}", outbox::MANIFEST_NAME))
                .then(|| (o.last_modified().map_or(0, |t| t.secs()), id.to_owned()))
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
