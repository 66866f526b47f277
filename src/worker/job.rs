//! One job: inbox object → pipeline → renditions and manifest in the outbox.

use std::time::Instant;

use anyhow::Context;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;

use super::Worker;
use crate::event::CreatedObject;
use crate::inbox::{META_JOB_ID, META_PRESET, META_RECIPE};
use crate::outbox::{self, JobError, Manifest, OutputRef, SourceRef, Status, Timings};
use crate::pipeline::{self, PipelineError};

/// How a job ended, when it ended for good (errors that may pass are `Err`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Renditions and a `done` manifest are in the outbox.
    Done { outputs: usize },
    /// A `failed` manifest with this code is in the outbox.
    Failed { code: &'static str },
    /// The object was overwritten since the event: the newer event will do the work.
    Superseded,
    /// The object was deleted since the event: nothing to do.
    Gone,
    /// The object is one of imgflow's own outputs (copied into the inbox):
    /// processing it could loop.
    OwnOutput,
}

/// User metadata (`x-amz-meta-imgflow-output`) on everything the worker
/// writes, so that a rendition copied back into the inbox is recognised.
pub const META_OWN_OUTPUT: &str = "imgflow-output";

impl Worker {
    /// `Err` means "try again later": S3 unreachable, a write that failed.
    pub(super) async fn process(&self, object: &CreatedObject) -> anyhow::Result<Outcome> {
        let started = Instant::now();
        let s3 = &self.clients.s3;
        let mut request = s3.get_object().bucket(&object.bucket).key(&object.key);
        if let Some(etag) = &object.etag {
            // Only the version this event announced; a newer one has its own event.
            request = request.if_match(quoted(etag));
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                if err.raw_response().map(|r| r.status().as_u16()) == Some(412) {
                    return Ok(Outcome::Superseded);
                }
                return match err.into_service_error() {
                    GetObjectError::NoSuchKey(_) => Ok(Outcome::Gone),
                    err => Err(err)
                        .with_context(|| format!("reading s3://{}/{}", object.bucket, object.key)),
                };
            }
        };

        let metadata = response.metadata.clone().unwrap_or_default();
        if metadata.contains_key(META_OWN_OUTPUT) {
            return Ok(Outcome::OwnOutput);
        }
        let mut manifest = Manifest {
            status: Status::Failed,
            job_id: metadata.get(META_JOB_ID).cloned(),
            source: SourceRef {
                bucket: object.bucket.clone(),
                key: object.key.clone(),
                etag: response
                    .e_tag
                    .as_deref()
                    .map(|e| e.trim_matches('"').to_owned()),
                size: response
                    .content_length
                    .and_then(|l| u64::try_from(l).ok())
                    .unwrap_or_default(),
                sequencer: object.sequencer.clone(),
            },
            recipe: None,
            preset: None,
            outputs: vec![],
            timings: Timings::default(),
            error: None,
            finished_at: String::new(),
            worker: concat!("imgflow ", env!("CARGO_PKG_VERSION")).to_owned(),
        };

        let resolved = match self.presets.resolve(
            metadata.get(META_RECIPE).map(String::as_str),
            metadata.get(META_PRESET).map(String::as_str),
        ) {
            Ok(resolved) => resolved,
            Err(err) => return self.fail(manifest, err.code(), err.to_string()).await,
        };
        manifest.recipe = Some(resolved.recipe.to_string());
        manifest.preset = resolved.preset;

        // Refuse oversized sources before reading a byte of them.
        if manifest.source.size > self.limits.max_bytes {
            let err = PipelineError::TooManyBytes {
                bytes: manifest.source.size,
                max_bytes: self.limits.max_bytes,
            };
            return self.fail(manifest, err.code(), err.to_string()).await;
        }
        let bytes = response
            .body
            .collect()
            .await
            .with_context(|| format!("downloading s3://{}/{}", object.bucket, object.key))?
            .into_bytes();
        manifest.timings.download_ms = elapsed_ms(started);

        // Hold the decoded pixels' share of the memory budget while decoding.
        let pixels = match pipeline::probe(&bytes, &self.limits) {
            Ok(probe) => u64::from(probe.width) * u64::from(probe.height),
            Err(err) => return self.fail(manifest, err.code(), err.to_string()).await,
        };
        let wanted = super::megapixels(pixels)
            .clamp(1, self.settings.pixel_budget.div_ceil(1_000_000).max(1));
        let _permit = self
            .pixels
            .acquire_many(u32::try_from(wanted).unwrap_or(u32::MAX))
            .await
            .context("the pixel budget was closed")?;

        let processing = Instant::now();
        let limits = self.limits;
        let recipe = resolved.recipe;
        let renditions =
            tokio::task::spawn_blocking(move || pipeline::run(&bytes, &recipe, &limits))
                .await
                // A panic is a bug: retried, it panics again and ends in the DLQ.
                .context("the image pipeline panicked")?;
        manifest.timings.process_ms = elapsed_ms(processing);
        drop(_permit);
        let renditions = match renditions {
            Ok(renditions) => renditions,
            Err(err) => return self.fail(manifest, err.code(), err.to_string()).await,
        };

        if self.superseded(object).await? {
            return Ok(Outcome::Superseded);
        }
        let uploading = Instant::now();
        for rendition in renditions {
            let key =
                outbox::output_key(&object.key, &rendition.name, rendition.format.extension());
            let size = rendition.bytes.len() as u64;
            s3.put_object()
                .bucket(&self.resources.outbox)
                .key(&key)
                .content_type(rendition.format.content_type())
                .metadata(META_OWN_OUTPUT, "1")
                .body(ByteStream::from(rendition.bytes))
                .send()
                .await
                .with_context(|| format!("writing s3://{}/{key}", self.resources.outbox))?;
            manifest.outputs.push(OutputRef {
                name: rendition.name,
                key,
                format: rendition.format.name().to_owned(),
                content_type: rendition.format.content_type().to_owned(),
                width: rendition.width,
                height: rendition.height,
                bytes: size,
            });
        }
        manifest.timings.upload_ms = elapsed_ms(uploading);
        manifest.status = Status::Done;
        let outputs = manifest.outputs.len();
        self.write_manifest(&mut manifest).await?;
        Ok(Outcome::Done { outputs })
    }

    /// Has the inbox object been overwritten while we worked? Then the newer
    /// upload's own event writes the outputs, and ours must not.
    async fn superseded(&self, object: &CreatedObject) -> anyhow::Result<bool> {
        let Some(ours) = &object.etag else {
            return Ok(false);
        };
        match self
            .clients
            .s3
            .head_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .send()
            .await
        {
            Ok(head) => {
                Ok(head.e_tag().map(|e| e.trim_matches('"')) != Some(ours.trim_matches('"')))
            }
            Err(err) if err.raw_response().map(|r| r.status().as_u16()) == Some(404) => Ok(true),
            Err(err) => {
                Err(err).with_context(|| format!("checking s3://{}/{}", object.bucket, object.key))
            }
        }
    }

    async fn fail(
        &self,
        mut manifest: Manifest,
        code: &'static str,
        message: String,
    ) -> anyhow::Result<Outcome> {
        manifest.status = Status::Failed;
        manifest.error = Some(JobError {
            code: code.to_owned(),
            message,
        });
        self.write_manifest(&mut manifest).await?;
        Ok(Outcome::Failed { code })
    }

    /// The manifest goes last: once it is there, the job is finished.
    async fn write_manifest(&self, manifest: &mut Manifest) -> anyhow::Result<()> {
        manifest.finished_at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .context("formatting the time")?;
        let key = outbox::manifest_key(&manifest.source.key);
        let body = serde_json::to_vec_pretty(manifest).context("serialising the manifest")?;
        self.clients
            .s3
            .put_object()
            .bucket(&self.resources.outbox)
            .key(&key)
            .content_type("application/json")
            .metadata(META_OWN_OUTPUT, "1")
            .body(ByteStream::from(body))
            .send()
            .await
            .with_context(|| format!("writing s3://{}/{key}", self.resources.outbox))?;
        Ok(())
    }
}

fn quoted(etag: &str) -> String {
    if etag.starts_with('"') {
        etag.to_owned()
    } else {
        format!("\"{etag}\"")
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}
