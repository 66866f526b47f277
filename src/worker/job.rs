//! One job: inbox object → pipeline → renditions and manifest in the
//! outbox. Knows S3 (through [`Store`]) and images, nothing of SQS: its
//! caller turns the [`Outcome`] into a verdict on the message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tracing::field::Empty;
use tracing::{Instrument, Span, info_span, warn};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::budget::PixelBudget;
use crate::event::CreatedObject;
use crate::inbox::{
    META_JOB_ID, META_PRESET, META_RECIPE, META_TRACEPARENT, RECIPE_MANGLED, mangled_recipe,
};
use crate::outbox::{
    JobError, MAX_KEY_BYTES, META_OWN_OUTPUT, Manifest, OutputRef, SandboxUse, SourceRef, Status,
    Timings, output_key,
};
use crate::pipeline::{Limits, PipelineError};
use crate::recipe::{Presets, Recipe};
use crate::sandbox::{Failure, Ran, Sandbox};
use crate::store::{Fetched, Store};
use crate::telemetry::{self, metric};
use crate::webhook::Webhooks;

/// What every job needs: where objects are, how to read recipes, how much it may use.
pub struct Jobs {
    pub store: Store,
    pub presets: Presets,
    pub limits: Limits,
    pub budget: PixelBudget,
    pub sandbox: Sandbox,
    pub sandbox_deadline: Duration,
    /// Told of every final manifest, when webhooks are configured.
    pub webhooks: Option<Arc<Webhooks>>,
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
    /// A removal event (`setup --on-delete remove`): the deleted source's
    /// outputs and manifest are gone (`Superseded` when a newer upload owns them).
    Removed { outputs: usize },
}

impl Jobs {
    /// Run the job for one inbox object. `Err` means "try again later": S3
    /// unreachable, a write that failed.
    ///
    /// Runs inside the job's span (see `Worker::handle`): records the
    /// object, recipe and outcome on it, links it to the upload's trace,
    /// and opens the `download`, pipeline, `upload` and `manifest` spans
    /// beneath it.
    /// `threads`: how many the pipeline may use (see [`Limits::threads`]).
    pub async fn run(&self, object: &CreatedObject, threads: u32) -> anyhow::Result<Outcome> {
        let job = Span::current();
        job.record("bucket", object.bucket.as_str());
        job.record("key", object.key.as_str());
        if let Some(lag) = object.event_time_ms.and_then(since_epoch_ms) {
            metric::queue_lag(lag);
            job.record("queue_lag_ms", lag.as_millis() as u64);
        }
        if object.removed {
            let removed = super::removal::remove(&self.store, object).await?;
            return Ok(removed.map_or(Outcome::Superseded, |outputs| Outcome::Removed { outputs }));
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
        // The GET above was at the event's ETag; only keys that can be
        // uploaded again need a second look before the outputs are written.
        let rewritable =
            !crate::inbox::written_once(&object.key, metadata.get(META_JOB_ID).map(String::as_str));
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
            route: None,
            outputs: vec![],
            srcset: Default::default(),
            analysis: None,
            timings: Timings::default(),
            error: None,
            sandbox: None,
            finished_at: String::new(),
            worker: concat!("imgflow ", env!("CARGO_PKG_VERSION")).to_owned(),
        };
        if let Some(job_id) = &manifest.job_id {
            job.record("job_id", job_id.as_str());
        }

        // A backfill's --recipe / --preset stands in for the metadata's.
        let (recipe, preset) = match &object.requested {
            Some(r) => (r.recipe.as_deref(), r.preset.as_deref()),
            None => (
                metadata.get(META_RECIPE).map(String::as_str),
                metadata.get(META_PRESET).map(String::as_str),
            ),
        };
        if object.requested.is_none()
            && let Some(why) = mangled_recipe(&metadata)
        {
            return self.fail(manifest, RECIPE_MANGLED, why).await;
        }
        let resolved = match self.presets.resolve_for(&object.key, recipe, preset) {
            Ok(resolved) => resolved,
            Err(err) => return self.fail(manifest, err.code(), err.to_string()).await,
        };
        let recipe_text = resolved.recipe.to_string();
        job.record("recipe", recipe_text.as_str());
        manifest.recipe = Some(recipe_text);
        manifest.preset = resolved.preset;
        manifest.route = resolved.route;

        // Outputs are named after the inbox key; S3 refuses keys over 1 KiB.
        let longest = resolved
            .recipe
            .outputs
            .iter()
            // A ladder's rungs add `-<width>` to its name.
            .map(|o| output_key(&object.key, &o.name, "webp-16384").len())
            .max()
            .unwrap_or(0);
        if longest > MAX_KEY_BYTES {
            let message = format!(
                "the key is {} bytes: its outputs' keys would be longer than S3's {MAX_KEY_BYTES}",
                object.key.len()
            );
            return self.fail(manifest, "key_too_long", message).await;
        }

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

        let processing = Instant::now();
        let limits = Limits {
            threads,
            ..self.limits
        };
        let (result, attempts) = self.sandboxed(&bytes, &resolved.recipe, &limits).await;
        manifest.sandbox = Some(SandboxUse {
            attempts,
            peak_rss_bytes: None,
        });
        let ran = match result {
            Ok(ran) => ran,
            Err(Failure::Job { code, message }) => return self.fail(manifest, code, message).await,
            Err(Failure::Timeout) => {
                let message = format!(
                    "the job did not finish within its deadline ({} s)",
                    self.sandbox_deadline.as_secs()
                );
                return self.fail(manifest, "timeout", message).await;
            }
            Err(Failure::Died(why)) => return self.fail(manifest, "resource_limit", why).await,
        };
        manifest.timings.process_ms = elapsed_ms(processing);
        manifest.sandbox = Some(SandboxUse {
            attempts,
            peak_rss_bytes: ran.peak_rss_bytes,
        });
        telemetry::replay(&Span::current(), &ran.spans);
        let times = ran.times;
        manifest.timings.decode_ms = millis(times.decode);
        manifest.timings.encode_ms = millis(times.encode);
        metric::stage("decode", times.decode);
        metric::stage("process", times.process);
        metric::stage("encode", times.encode);
        let renditions = ran.renditions;
        manifest.analysis = ran.analysis;

        if rewritable && self.superseded(object).await? {
            return Ok(Outcome::Superseded);
        }
        let uploading = Instant::now();
        for rendition in renditions {
            let key = output_key(&object.key, &rendition.name, rendition.format.extension());
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
                ladder: rendition.ladder,
            });
        }
        manifest.srcset =
            crate::outbox::srcsets(&manifest.outputs, |o| crate::outbox::file_name(&o.key));
        manifest.timings.upload_ms = elapsed_ms(uploading);
        metric::stage("upload", uploading.elapsed());
        manifest.status = Status::Done;
        let outputs = manifest.outputs.len();
        self.write_manifest(&mut manifest).await?;
        Ok(Outcome::Done { outputs })
    }

    /// Run the pipeline in a sandbox child, holding the job's share of the
    /// pixel budget while it decodes. A child that dies gets one retry in a
    /// fresh child (the first death may have been a neighbour's doing, such
    /// as the kernel's OOM killer); a second is the input's fault.
    /// Returns how many children it took, too.
    async fn sandboxed(
        &self,
        bytes: &[u8],
        recipe: &Recipe,
        limits: &Limits,
    ) -> (Result<Ran, Failure>, u32) {
        let mut attempt = 1;
        loop {
            let result = async {
                let planned = self.sandbox.start(bytes, recipe, limits).await?;
                let _reservation = self.budget.reserve(planned.peak_pixels).await;
                planned.finish().await
            }
            .await;
            match result {
                Err(Failure::Died(why)) if attempt == 1 => {
                    warn!(
                        message = "A sandbox child died; retrying the job once in a fresh one",
                        why
                    );
                    metric::sandbox_died();
                    attempt += 1;
                }
                Err(Failure::Died(why)) => {
                    metric::sandbox_died();
                    return (Err(Failure::Died(format!("{why} (twice)"))), attempt);
                }
                other => return (other, attempt),
            }
        }
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
        // Before the job's message goes: a crash here re-runs the job.
        if let Some(webhooks) = &self.webhooks {
            webhooks.enqueue(manifest).await?;
        }
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
