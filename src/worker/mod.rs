//! The worker: long-poll SQS, process what the messages name, delete them.
//!
//! Architecture invariant: a message is deleted only after every object it
//! names has its manifest in the outbox (or needs no processing: a test
//! event, a superseded or deleted object). Anything else leaves the message
//! to reappear after its visibility timeout; after
//! [`crate::setup::MAX_RECEIVE_COUNT`] receives SQS moves it to the DLQ.

mod job;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::aws::Clients;
use crate::config::Resources;
use crate::event::{self, Notification};
use crate::pipeline::Limits;
use crate::recipe::Presets;

pub use job::Outcome;

/// What a worker needs; cheap to share between its receive tasks.
pub struct Worker {
    pub clients: Clients,
    pub resources: Resources,
    pub queue_url: String,
    pub limits: Limits,
    pub presets: Presets,
    pub concurrency: usize,
    pub poll_wait_secs: i32,
}

impl Worker {
    /// Look up the queue and get ready; fails clearly when S3/SQS are unreachable
    /// or `imgflow setup` has not run.
    pub async fn new(
        clients: Clients,
        resources: Resources,
        limits: Limits,
        presets: Presets,
        concurrency: usize,
        poll_wait_secs: i32,
    ) -> anyhow::Result<Worker> {
        let queue_url = clients
            .sqs
            .get_queue_url()
            .queue_name(&resources.queue)
            .send()
            .await
            .with_context(|| {
                format!(
                    "looking up queue {:?} (is S3/SQS reachable, and has `imgflow setup` run?)",
                    resources.queue
                )
            })?
            .queue_url
            .context("GetQueueUrl returned no URL")?;
        Ok(Worker {
            clients,
            resources,
            queue_url,
            limits,
            presets,
            concurrency: concurrency.max(1),
            poll_wait_secs,
        })
    }

    /// Run `concurrency` receive loops until `shutdown` fires. In-flight jobs
    /// finish before this returns; nothing new is received after the signal.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        info!(
            queue = %self.queue_url,
            concurrency = self.concurrency,
            "worker started"
        );
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..self.concurrency {
            let worker = Arc::clone(&self);
            let shutdown = shutdown.clone();
            tasks.spawn(async move { worker.receive_loop(shutdown).await });
        }
        while tasks.join_next().await.is_some() {}
        info!("worker stopped");
    }

    async fn receive_loop(&self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(500);
        loop {
            let received = tokio::select! {
                _ = shutdown.cancelled() => return,
                received = self.receive() => received,
            };
            match received {
                Ok(messages) => {
                    backoff = Duration::from_millis(500);
                    self.handle_batch(messages).await;
                }
                Err(error) => {
                    warn!(
                        message = "Failed to receive from SQS; retrying",
                        error = format!("{error:#}"),
                        ?backoff
                    );
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    async fn receive(&self) -> anyhow::Result<Vec<Message>> {
        let out = self
            .clients
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(1)
            .wait_time_seconds(self.poll_wait_secs)
            .send()
            .await
            .context("ReceiveMessage")?;
        Ok(out.messages.unwrap_or_default())
    }

    /// Handle every message, then delete in one call the ones that are done.
    async fn handle_batch(&self, messages: Vec<Message>) {
        let mut done = Vec::new();
        for message in messages {
            if self.handle_message(&message).await
                && let Some(handle) = message.receipt_handle
            {
                done.push(handle);
            }
        }
        if let Err(error) = self.delete(done).await {
            // The messages reappear and are processed again: an identical rewrite.
            warn!(
                message = "Failed to delete processed messages",
                error = format!("{error:#}")
            );
        }
    }

    /// `true` when the message can be deleted.
    async fn handle_message(&self, message: &Message) -> bool {
        let id = message.message_id.as_deref().unwrap_or("?");
        let body = message.body.as_deref().unwrap_or_default();
        let objects = match event::parse(body) {
            Ok(Notification::Test) => {
                debug!(message_id = id, "deleting s3:TestEvent");
                return true;
            }
            Ok(Notification::Created(objects)) => objects,
            Err(error) => {
                // Not ours to judge lost: left alone, it ends in the DLQ for a person to see.
                warn!(message = "Message is not an S3 notification; leaving it for the DLQ", message_id = id, %error);
                return false;
            }
        };
        let mut all_done = true;
        for object in objects {
            if object.bucket != self.resources.inbox {
                warn!(message = "Ignoring an event from a bucket that is not the inbox", bucket = %object.bucket, key = %object.key);
                continue;
            }
            match self.process(&object).await {
                Ok(outcome) => {
                    info!(key = %object.key, ?outcome, "job finished");
                }
                Err(error) => {
                    warn!(message = "Job failed for a reason that may pass; it will be retried", key = %object.key, error = format!("{error:#}"));
                    all_done = false;
                }
            }
        }
        all_done
    }

    async fn delete(&self, handles: Vec<String>) -> anyhow::Result<()> {
        if handles.is_empty() {
            return Ok(());
        }
        let entries = handles
            .into_iter()
            .enumerate()
            .map(|(i, handle)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .build()
                    .context("building a delete entry")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let out = self
            .clients
            .sqs
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .context("DeleteMessageBatch")?;
        for failed in out.failed {
            warn!(message = "Failed to delete a message", id = %failed.id, code = %failed.code);
        }
        Ok(())
    }
}
