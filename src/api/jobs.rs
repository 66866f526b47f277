//! `GET /v1/jobs/{job_id}`: job state, read from the outbox manifest.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, ApiQuery, Problem};
use super::watch::{Target, Watcher};
use crate::inbox;
use crate::outbox::{JobError, Manifest};

/// Longest `?wait=` honoured, in seconds.
pub const MAX_WAIT_SECS: u64 = 20;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// Wait up to this many seconds for the job to finish.
    #[serde(default)]
    pub wait: Option<u64>,
    /// A job-scoped read token from POST /v1/uploads (or send it as `Authorization: Bearer`).
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "auth::require_key reads it from the raw query; declared for the OpenAPI document"
    )]
    pub token: Option<String>,
}

/// The job token in the query: `EventSource` cannot send headers.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// A job-scoped read token from POST /v1/uploads (or send it as `Authorization: Bearer`).
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "auth::require_key reads it from the raw query; declared for the OpenAPI document"
    )]
    pub token: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobView {
    pub job_id: Uuid,
    #[schema(value_type = String, example = "done")]
    pub status: &'static str,
    pub outputs: Vec<OutputView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OutputView {
    pub name: String,
    pub url: String,
    pub key: String,
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

/// A job's state, read from its manifest.
#[utoipa::path(get, path = "/v1/jobs/{job_id}", params(("job_id" = String, Path, description = "The job id from POST /v1/uploads"), JobQuery),
    responses(
        (status = 200, description = "pending, done or failed", body = JobView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A job token for another job, or expired", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(job_id): Path<String>,
    ApiQuery(query): ApiQuery<JobQuery>,
) -> Result<Json<JobView>, ApiError> {
    let job_id = parse_id(&job_id)?;
    let wait = Duration::from_secs(query.wait.unwrap_or(0).min(MAX_WAIT_SECS));
    let manifest = if wait.is_zero() {
        let folder = inbox::job_prefix(job_id);
        state.store.find_manifest(&folder).await?.map(Arc::new)
    } else {
        // The process's one watcher: no S3 call at all under `imgflow up`.
        let seen = state.watcher.subscribe(Target::Job(job_id), false);
        Watcher::finished(seen, wait).await?
    };
    Ok(Json(match manifest {
        Some(manifest) => view(&state, job_id, &manifest).await?,
        None => JobView::pending(job_id),
    }))
}

pub fn parse_id(job_id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(job_id)
        .map_err(|_| ApiError::not_found(format!("no job {job_id:?}: job ids are UUIDs")))
}

impl JobView {
    pub fn pending(job_id: Uuid) -> JobView {
        JobView {
            job_id,
            status: "pending",
            outputs: vec![],
            error: None,
        }
    }
}

/// The manifest as the client sees it: presigned URLs instead of keys alone.
pub async fn view(state: &AppState, job_id: Uuid, manifest: &Manifest) -> anyhow::Result<JobView> {
    let expiry = state.config.download_expiry();
    let mut outputs = Vec::with_capacity(manifest.outputs.len());
    for output in &manifest.outputs {
        let url = state.store.presign_download(&output.key, expiry).await?;
        outputs.push(OutputView {
            name: output.name.clone(),
            url,
            key: output.key.clone(),
            format: output.format.clone(),
            width: output.width,
            height: output.height,
            bytes: output.bytes,
        });
    }
    Ok(JobView {
        job_id,
        status: manifest.status.as_str(),
        outputs,
        error: manifest.error.clone(),
    })
}
