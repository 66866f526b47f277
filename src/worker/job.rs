//! One job: inbox object → pipeline → renditions and manifest in the
//! outbox. Knows S3 (through [`Store`]) and images, nothing of SQS: its
//! caller turns the [`Outcome`] into a verdict on the message.

use std::time::{Duration, Instant};

use anyhow::Context;
use tracing::field::Empty;
use tracing::{Instrument, Span, info_span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::budget::PixelBudget;
use crate::event::CreatedObject;
use crate::inbox::{META_JOB_ID, META_PRESET, META_RECIPE, META_TRACEPARENT};
use crate::outbox::{JobError, META_OWN_OUTPUT, Manifest, OutputRef, SourceRef, Status, Timings};
use crate::pipeline::{self, Limits, PipelineError};
use crate::recipe::Presets;
use crate::store::{Fetched, Store};
use crate::telemetry::{self, metric};

/// What every job needs: where objects are, how to read recipes, how much it may use.
pub struct Jobs {
    pub store: Store,
    pub presets: Presets,
    pub limits: Limits,
    pub budget: PixelBudget,
}

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

impl Jobs {
    /// Run the job for one inbox object. `Err` means "try again later": S3
    /// unreachable, a write that failed.
    ///
    /// Runs inside the job's span (see `Worker::handle`): records the
    /// object, recipe and outcome on it, links it to the upload's trace,
    /// and opens the `download`, pipeline, `upload` and `manifest` spans
    /// beneath it.
    pub async fn run(&self, object: &CreatedObject) -> anyhow::Result<Outcome> {
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
            bucket = ?object.bucket,
            key = ?object.key,
            bytes = Empty
        );
        let fetched = self
            .store
            .get_source(&object.key, object.etag.as_deref())
            .instrument(download.clone())
            .await?;
        let mut source = match fetched {
            Fetched::Found(source) => source,
            Fetched::Superseded => return Ok(Outcome::Superseded),
            Fetched::Gone => return Ok(Outcome::Gone),
        };

        let metadata = std::mem::take(&mut source.metadata);
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
                etag: source.etag.clone(),
                size: source.size,
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
        let bytes = source
            .bytes()
            .instrument(download.clone())
            .await
            .with_context(|| format!("downloading s3://{}/{}", object.bucket, object.key))?;
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
        let reservation = self.budget.reserve(pixels).await;

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
        drop(reservation);
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
            let key = crate::outbox::output_key(
                &object.key,
                &rendition.name,
                rendition.format.extension(),
            );
            let size = rendition.bytes.len() as u64;
            self.store
                .put_output(&key, rendition.format.content_type(), rendition.bytes)
                .instrument(
                    info_span!("upload", output = %rendition.name, key = ?key, bytes = size),
                )
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

    /// Has the inbox object been overwritten while we worked? Then the newer
    /// upload's own event writes the outputs, and ours must not.
    async fn superseded(&self, object: &CreatedObject) -> anyhow::Result<bool> {
        let Some(ours) = &object.etag else {
            return Ok(false);
        };
        let current = self.store.source_etag(&object.key).await?;
        Ok(current.as_deref() != Some(ours.trim_matches('"')))
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
        let status = manifest.status.as_str();
        let key = crate::outbox::manifest_key(&manifest.source.key);
        self.store
            .put_manifest(manifest)
            .instrument(info_span!("manifest", key = ?key, status))
            .await?;
        metric::stage("manifest", started.elapsed());
        Ok(())
    }
}

/// How long ago `ms` (since the Unix epoch) was; `None` if in the future.
fn since_epoch_ms(ms: i64) -> Option<Duration> {
    let then = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).ok()?);
    std::time::SystemTime::now().duration_since(then).ok()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn elapsed_ms(since: Instant) -> u64 {
    millis(since.elapsed())
}
