//! `GET /v1/jobs/{job_id}`: job state, read from the outbox manifest.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_s3::presigning::PresigningConfig;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ApiError, AppState};
use crate::inbox;
use crate::outbox::{self, JobError, Manifest, Status};

/// Longest `?wait=` honoured, in seconds.
pub const MAX_WAIT_SECS: u64 = 20;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// Wait up to this many seconds for the job to finish.
    #[serde(default)]
    pub wait: Option<u64>,
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
        (status = 400, body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, body = super::openapi::Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(job_id): Path<String>,
    query: Result<Query<JobQuery>, QueryRejection>,
) -> Result<Json<JobView>, ApiError> {
    let Query(query) = query?;
    let job_id = Uuid::parse_str(&job_id)
        .map_err(|_| ApiError::not_found(format!("no job {job_id:?}: job ids are UUIDs")))?;
    let wait = Duration::from_secs(query.wait.unwrap_or(0).min(MAX_WAIT_SECS));
    let manifest = super::poll(wait, || find_manifest(&state, job_id)).await?;
    Ok(Json(match manifest {
        Some(manifest) => view(&state, job_id, manifest).await?,
        None => JobView {
            job_id,
            status: "pending",
            outputs: vec![],
            error: None,
        },
    }))
}

/// The manifest sits at `uploads/<job>/<file>/manifest.json`; the file name
/// is not known here, so list the job's folder.
async fn find_manifest(state: &AppState, job_id: Uuid) -> anyhow::Result<Option<Manifest>> {
    let s3 = &state.clients.s3;
    let outbox = &state.resources.outbox;
    let prefix = inbox::job_prefix(job_id);
    let listing = s3
        .list_objects_v2()
        .bucket(outbox)
        .prefix(&prefix)
        .send()
        .await
        .with_context(|| format!("listing s3://{outbox}/{prefix}"))?;
    let key = listing
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .find(|key| {
            key.strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(outbox::MANIFEST_NAME))
                .is_some_and(|file| file.ends_with('/') && file.matches('/').count() == 1)
        });
    let Some(key) = key else {
        return Ok(None);
    };
    let body = s3
        .get_object()
        .bucket(outbox)
        .key(key)
        .send()
        .await
        .with_context(|| format!("reading s3://{outbox}/{key}"))?
        .body
        .collect()
        .await
        .with_context(|| format!("reading s3://{outbox}/{key}"))?
        .into_bytes();
    let manifest =
        serde_json::from_slice(&body).with_context(|| format!("parsing s3://{outbox}/{key}"))?;
    Ok(Some(manifest))
}

async fn view(state: &AppState, job_id: Uuid, manifest: Manifest) -> anyhow::Result<JobView> {
    let presigning = PresigningConfig::expires_in(state.config.download_expiry())
        .context("presigning config")?;
    let mut outputs = Vec::with_capacity(manifest.outputs.len());
    for output in manifest.outputs {
        let url = state
            .clients
            .s3
            .get_object()
            .bucket(&state.resources.outbox)
            .key(&output.key)
            .presigned(presigning.clone())
            .await
            .context("presigning a download")?
            .uri()
            .to_owned();
        outputs.push(OutputView {
            name: output.name,
            url,
            key: output.key,
            format: output.format,
            width: output.width,
            height: output.height,
            bytes: output.bytes,
        });
    }
    Ok(JobView {
        job_id,
        status: match manifest.status {
            Status::Done => "done",
            Status::Failed => "failed",
        },
        outputs,
        error: manifest.error,
    })
}
