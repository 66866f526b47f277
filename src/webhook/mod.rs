//! Webhooks: one signed POST per final manifest to each operator-configured
//! endpoint, following the Standard Webhooks spec (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`).
//!
//! ```text
//! worker::job ─manifest written─▶ enqueue: one SQS message per endpoint
//!             (on `<queue>-webhooks`) ─▶ then the job's message is deleted
//! deliver::run ─receive─▶ POST ─2xx─▶ delete
//!                              └─fail─▶ re-send with DelaySeconds (attempt + 1)
//! ```
//!
//! Delivery state lives in the queue, not in the process: a worker that
//! restarts (or another worker) picks up where the last one left. Each
//! message carries its attempt number, the time of the first attempt and
//! the time the next one is due; delays longer than SQS's 15-minute
//! `DelaySeconds` are waited out in 15-minute hops.
//!
//! Architecture invariant: the only URLs this module sends to are the
//! configured ones; a queued delivery to a URL no longer configured is dropped.

mod deliver;
mod queue;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::aws::Clients;
use crate::config::{Resources, WebhookConfig, WebhookSecret, WorkerConfig};
use crate::outbox::{JobError, Manifest, OutputRef, Status, manifest_key};
use crate::telemetry::metric;

pub use queue::ensure_queue;

/// The delivery queue of a job queue: `<queue>-webhooks`.
pub fn queue_name(resources: &Resources) -> String {
    format!("{}-webhooks", resources.queue)
}

/// The body of a webhook (Standard Webhooks' `type`, `timestamp`, `data`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `image.processed` or `image.failed`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When the manifest was written (RFC 3339).
    pub timestamp: String,
    pub data: EventData,
}

/// What a downstream system needs to act on a finished job without
/// reading the manifest: where the source was, the status, the outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    pub status: Status,
    pub source: EventSource,
    /// Where the manifest is: `s3://{bucket}/{key}`.
    pub manifest: ObjectRef,
    pub outputs: Vec<OutputRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSource {
    pub bucket: String,
    pub key: String,
    pub etag: Option<String>,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
}

impl Event {
    pub fn from_manifest(manifest: &Manifest, outbox: &str) -> Event {
        let kind = match manifest.status {
            Status::Done => "image.processed",
            Status::Failed => "image.failed",
        };
        Event {
            kind: kind.to_owned(),
            timestamp: manifest.finished_at.clone(),
            data: EventData {
                job_id: manifest.job_id.clone(),
                status: manifest.status,
                source: EventSource {
                    bucket: manifest.source.bucket.clone(),
                    key: manifest.source.key.clone(),
                    etag: manifest.source.etag.clone(),
                    size: manifest.source.size,
                },
                manifest: ObjectRef {
                    bucket: outbox.to_owned(),
                    key: manifest_key(&manifest.source.key),
                },
                outputs: manifest.outputs.clone(),
                recipe: manifest.recipe.clone(),
                error: manifest.error.clone(),
            },
        }
    }
}

/// The `webhook-id`: the same for every write of the same result (a
/// redelivered S3 event, a job retried after a crash), so receivers can
/// drop duplicates; a new upload, recipe or outcome gets a new one.
pub fn event_id(manifest: &Manifest) -> String {
    let mut hash = Sha256::new();
    let source = &manifest.source;
    for part in [
        source.bucket.as_str(),
        source.key.as_str(),
        source.etag.as_deref().unwrap_or(""),
        source.sequencer.as_deref().unwrap_or(""),
        manifest.recipe.as_deref().unwrap_or(""),
        manifest.status.as_str(),
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

/// `webhook-signature`: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).
pub fn sign(key: &[u8], id: &str, timestamp: u64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    let tag = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag)
    )
}

/// One (endpoint, event) delivery, as it waits on the delivery queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pending {
    url: String,
    id: String,
    /// The exact body to send (and sign).
    body: String,
    /// Unix seconds of the first attempt (when the event was queued).
    first_at: u64,
    /// Attempts made so far.
    attempts: u32,
    /// Unix seconds before which the next attempt must not start.
    next_at: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The webhook side of a worker: enqueues events and runs the delivery loop.
pub struct Webhooks {
    sqs: aws_sdk_sqs::Client,
    queue: queue::DeliveryQueue,
    outbox: String,
    urls: Vec<String>,
    secret: WebhookSecret,
    config: WebhookConfig,
    /// The worker's long-poll wait: how long a stop may wait for a receive.
    poll_wait_secs: i32,
}

impl Webhooks {
    /// `None` when no endpoint (or no secret: see [`WebhookConfig::check`]) is configured.
    pub fn new(
        clients: &Clients,
        resources: &Resources,
        worker: &WorkerConfig,
    ) -> Option<Arc<Webhooks>> {
        let config = &worker.webhooks;
        let urls = config.endpoints.list();
        let secret = config.webhook_secret.clone()?;
        if urls.is_empty() {
            return None;
        }
        metric::handle();
        Some(Arc::new(Webhooks {
            sqs: clients.sqs.clone(),
            queue: queue::DeliveryQueue::new(clients.sqs.clone(), queue_name(resources)),
            outbox: resources.outbox.clone(),
            urls,
            secret,
            config: config.clone(),
            poll_wait_secs: worker.poll_wait_secs,
        }))
    }

    /// Queue one delivery per endpoint for this final manifest. Called after
    /// the manifest is written and before the job's message is deleted: an
    /// error here retries the job (same manifest, same `webhook-id`).
    pub async fn enqueue(&self, manifest: &Manifest) -> anyhow::Result<()> {
        let event = Event::from_manifest(manifest, &self.outbox);
        let body = serde_json::to_string(&event).context("serialising the webhook event")?;
        let id = event_id(manifest);
        let now = now_secs();
        let messages: Vec<String> = self
            .urls
            .iter()
            .map(|url| {
                serde_json::to_string(&Pending {
                    url: url.clone(),
                    id: id.clone(),
                    body: body.clone(),
                    first_at: now,
                    attempts: 0,
                    next_at: now,
                })
            })
            .collect::<Result<_, _>>()?;
        let url = self.queue.url().await?;
        queue::send_all(&self.sqs, &url, &messages).await?;
        metric::webhook_enqueued(messages.len() as u64);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
