//! One job: inbox object → pipeline → renditions and manifest in the outbox.

use std::time::{Duration, Instant};

use anyhow::Context;
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use aws_sdk_s3::primitives::ByteStream;
use tracing::field::Empty;
use tracing::{Instrument, Span, info_span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::Worker;
use crate::event::CreatedObject;
use crate::inbox::{META_JOB_ID, META_PRESET, META_RECIPE, META_TRACEPARENT};
use crate::outbox::{self, JobError, Manifest, OutputRef, SourceRef, Status, Timings};
use crate::pipeline::{self, PipelineError};
use crate::telemetry::{self, metric};

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
    ///
    /// Runs inside the job's span (see `Worker::handle`): records the
    /// object, recipe and outcome on it, links it to the upload's trace,
    /// and opens the `download`, pipeline, `upload` and `manifest` spans
    /// beneath it.
    pub(super) async fn process(&self, object: &CreatedObject) -> anyhow::Result<Outcome> {
        let job = Span::current();
        job.record("bucket", object.bucket.as_str());
        job.record("key", object.key.as_str());
        if let Some(lag) = object.event_time_ms.and_then(since_epoch_ms) {
            metric::queue_lag(lag);
            job.record("queue_lag_ms", lag.as_millis() as u64);
        }

        let started = Instant::now();
        let download = info_span!(
            "download",
            bucket = %object.bucket,
            key = %object.key,
            bytes = Empty
        );
        let response = match self.get_source(object).instrument(download.clone()).await? {
            Source::Found(response) => response,
            Source::Superseded => return Ok(Outcome::Superseded),
            Source::Gone => return Ok(Outcome::Gone),
        };

        let metadata = response.metadata.clone().unwrap_or_default();
        if let Some(linked) = metadata
            .get(META_TRACEPARENT)
            .and_then(|tp| telemetry::linked_context(tp))
        {
            // A link, not a parent: the upload's trace ended long ago.
            job.add_link(linked);
        }
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
        if let Some(job_id) = &manifest.job_id {
            job.record("job_id", job_id.as_str());
        }

        let resolved = match self.presets.resolve(
            metadata.get(META_RECIPE).map(String::as_str),
            metadata.get(META_PRESET).map(String::as_str),
        ) {
            Ok(resolved) => resolved,
            Err(err) => return self.fail(manifest, err.code(), err.to_string()).await,
        };
        let recipe_text = resolved.recipe.to_string();
        job.record("recipe", recipe_text.as_str());
        manifest.recipe = Some(recipe_text);
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
            .instrument(download.clone())
            .await
            .with_context(|| format!("downloading s3://{}/{}", object.bucket, object.key))?
            .into_bytes();
        download.record("bytes", bytes.len());
        drop(download);
        manifest.timings.download_ms = elapsed_ms(started);
        metric::stage("download", started.elapsed());
        metric::bytes_in(bytes.len() as u64);

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
        let span = Span::current();
        let result = tokio::task::spawn_blocking(move || {
            span.in_scope(|| pipeline::run_timed(&bytes, &recipe, &limits))
        })
        .await
        // A panic is a bug: retried, it panics again and ends in the DLQ.
        .context("the image pipeline panicked")?;
        manifest.timings.process_ms = elapsed_ms(processing);
        drop(_permit);
        let renditions = match result {
            Ok((renditions, times)) => {
                manifest.timings.decode_ms = millis(times.decode);
                manifest.timings.encode_ms = millis(times.encode);
                metric::stage("decode", times.decode);
                metric::stage("process", times.process);
                metric::stage("encode", times.encode);
                renditions
            }
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
            s3_put(
                &self.clients.s3,
                &self.resources.outbox,
                &key,
                rendition.format.content_type(),
                rendition.bytes,
            )
            .instrument(info_span!("upload", output = %rendition.name, key = %key, bytes = size))
            .await?;
            metric::bytes_out(size);
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
        metric::stage("upload", uploading.elapsed());
        manifest.status = Status::Done;
        let outputs = manifest.outputs.len();
        self.write_manifest(&mut manifest).await?;
        Ok(Outcome::Done { outputs })
    }

    /// GET the object this event announced, if it is still there unchanged.
    async fn get_source(&self, object: &CreatedObject) -> anyhow::Result<Source> {
        let mut request = self
            .clients
            .s3
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key);
        if let Some(etag) = &object.etag {
            // Only the version this event announced; a newer one has its own event.
            request = request.if_match(quoted(etag));
        }
        match request.send().await {
            Ok(response) => Ok(Source::Found(Box::new(response))),
            Err(err) => {
                if err.raw_response().map(|r| r.status().as_u16()) == Some(412) {
                    return Ok(Source::Superseded);
                }
                match err.into_service_error() {
                    GetObjectError::NoSuchKey(_) => Ok(Source::Gone),
                    err => Err(err)
                        .with_context(|| format!("reading s3://{}/{}", object.bucket, object.key)),
                }
            }
        }
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
        let started = Instant::now();
        manifest.finished_at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .context("formatting the time")?;
        let key = outbox::manifest_key(&manifest.source.key);
        let body = serde_json::to_vec_pretty(manifest).context("serialising the manifest")?;
        let status = match manifest.status {
            Status::Done => "done",
            Status::Failed => "failed",
        };
        s3_put(
            &self.clients.s3,
            &self.resources.outbox,
            &key,
            "application/json",
            body,
        )
        .instrument(info_span!("manifest", key = %key, status))
        .await?;
        metric::stage("manifest", started.elapsed());
        Ok(())
    }
}

/// What the GET found.
enum Source {
    Found(Box<GetObjectOutput>),
    /// Overwritten since the event: the newer upload has its own event.
    Superseded,
    /// Deleted since the event.
    Gone,
}

/// Write one object to the outbox, marked as ours (the loop guard).
async fn s3_put(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    content_type: &str,
    body: Vec<u8>,
) -> anyhow::Result<()> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .metadata(META_OWN_OUTPUT, "1")
        .body(ByteStream::from(body))
        .send()
        .await
        .with_context(|| format!("writing s3://{bucket}/{key}"))?;
    Ok(())
}

/// How long ago `ms` (since the Unix epoch) was; `None` if in the future.
fn since_epoch_ms(ms: i64) -> Option<Duration> {
    let then = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).ok()?);
    std::time::SystemTime::now().duration_since(then).ok()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn quoted(etag: &str) -> String {
    if etag.starts_with('"') {
        etag.to_owned()
    } else {
        format!("\"{etag}\"")
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    millis(since.elapsed())
}
