//! The worker: long-poll SQS, process what the messages name, delete them.
//!
//! Architecture invariant: a message is deleted only after every object it
//! names has its manifest in the outbox (or needs no processing: a test
//! event, an object deleted or overwritten since, one of imgflow's own
//! outputs). A transient failure hands the message back to SQS after a
//! backoff with jitter; after the queue's maximum receive count (set by
//! `imgflow setup`, default 5) SQS moves it to the DLQ. A crash is the same as a timeout: the message
//! reappears when its visibility runs out.

mod job;
pub mod listen;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::field::Empty;
use tracing::{Instrument, Span, debug, info, info_span, warn};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::aws::Clients;
use crate::config::Resources;
use crate::event::{self, Notification};
use crate::pipeline::Limits;
use crate::recipe::Presets;
use crate::telemetry::{self, metric};

pub use job::Outcome;

/// How a worker runs; see `WorkerConfig` for the flags behind each.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Jobs in flight at once (each a receive loop).
    pub concurrency: usize,
    /// SQS long-poll wait, in seconds.
    pub poll_wait_secs: i32,
    /// Decoded pixels all jobs in flight may hold together; a job larger
    /// than the whole budget runs alone.
    pub pixel_budget: u64,
    /// After a shutdown signal, how long in-flight jobs may run before
    /// their messages are handed back.
    pub shutdown_grace: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            concurrency: 2,
            poll_wait_secs: 20,
            pixel_budget: 200_000_000,
            shutdown_grace: Duration::from_secs(25),
        }
    }
}

/// What a worker needs; shared by its receive loops.
pub struct Worker {
    pub clients: Clients,
    pub resources: Resources,
    pub limits: Limits,
    pub presets: Presets,
    pub settings: Settings,
    /// One permit per megapixel of [`Settings::pixel_budget`].
    pixels: Semaphore,
}

/// The queue as found at start-up.
struct Queue {
    url: String,
    visibility: Duration,
}

impl Worker {
    pub fn new(
        clients: Clients,
        resources: Resources,
        limits: Limits,
        presets: Presets,
        settings: Settings,
    ) -> Worker {
        metric::handle();
        let permits = megapixels(settings.pixel_budget).min(Semaphore::MAX_PERMITS as u64) as usize;
        Worker {
            clients,
            resources,
            limits,
            presets,
            settings,
            pixels: Semaphore::new(permits.max(1)),
        }
    }

    /// Run until `shutdown` fires: find the queue (waiting, with backoff,
    /// while S3/SQS are unreachable), then `concurrency` receive loops. On
    /// shutdown nothing new is received; in-flight jobs get the grace
    /// period, then their messages are handed back to SQS.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let Some(queue) = self.find_queue(&shutdown).await else {
            return;
        };
        let queue = Arc::new(queue);
        info!(
            queue = %queue.url,
            concurrency = self.settings.concurrency,
            pixel_budget = self.settings.pixel_budget,
            "worker started"
        );
        // Fires when the grace period after `shutdown` has run out.
        let hard_stop = CancellationToken::new();
        let grace = self.settings.shutdown_grace;
        let timer = {
            let (shutdown, hard_stop) = (shutdown.clone(), hard_stop.clone());
            tokio::spawn(async move {
                shutdown.cancelled().await;
                tokio::time::sleep(grace).await;
                hard_stop.cancel();
            })
        };
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..self.settings.concurrency.max(1) {
            let (worker, queue) = (Arc::clone(&self), Arc::clone(&queue));
            let (shutdown, hard_stop) = (shutdown.clone(), hard_stop.clone());
            tasks.spawn(async move { worker.receive_loop(&queue, shutdown, hard_stop).await });
        }
        while tasks.join_next().await.is_some() {}
        timer.abort();
        info!("worker stopped");
    }

    async fn find_queue(&self, shutdown: &CancellationToken) -> Option<Queue> {
        let mut backoff = Backoff::new();
        loop {
            match self.lookup_queue().await {
                Ok(queue) => return Some(queue),
                Err(error) => {
                    let wait = backoff.next();
                    warn!(
                        message = "Cannot reach the queue yet; retrying",
                        error = format!("{error:#}"),
                        ?wait
                    );
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    async fn lookup_queue(&self) -> anyhow::Result<Queue> {
        let sqs = &self.clients.sqs;
        let name = &self.resources.queue;
        let url = crate::aws::queue_url(sqs, name).await?;
        let visibility = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send()
            .await
            .context("reading the queue's visibility timeout")?
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout).cloned())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(30);
        Ok(Queue {
            url,
            visibility: Duration::from_secs(visibility.max(1)),
        })
    }

    async fn receive_loop(
        &self,
        queue: &Queue,
        shutdown: CancellationToken,
        hard_stop: CancellationToken,
    ) {
        let mut backoff = Backoff::new();
        loop {
            let receive = self.receive(queue);
            tokio::pin!(receive);
            let received = tokio::select! {
                received = &mut receive => received,
                _ = shutdown.cancelled() => {
                    // Dropping the call would not end the long poll on the
                    // SQS side: a message it took would stay invisible for a
                    // whole visibility timeout. Let it finish (at most the
                    // poll wait) and hand back whatever it brought.
                    if let Ok(messages) = receive.await
                        && !messages.is_empty()
                    {
                        info!(count = messages.len(), "handing back messages that arrived while stopping");
                        for receipt in messages.into_iter().filter_map(|m| m.receipt_handle) {
                            self.set_visibility(queue, &receipt, Duration::ZERO).await;
                        }
                    }
                    return;
                }
            };
            match received {
                Ok(messages) => {
                    backoff = Backoff::new();
                    for message in messages {
                        self.handle(queue, message, &hard_stop).await;
                    }
                }
                Err(error) => {
                    metric::queue_error("receive");
                    let wait = backoff.next();
                    warn!(
                        message = "Failed to receive from SQS; retrying",
                        error = format!("{error:#}"),
                        ?wait
                    );
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    async fn receive(&self, queue: &Queue) -> anyhow::Result<Vec<Message>> {
        let out = self
            .clients
            .sqs
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(1)
            .wait_time_seconds(self.settings.poll_wait_secs)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .context("ReceiveMessage")?;
        Ok(out.messages.unwrap_or_default())
    }

    /// One message, start to end, in one span: the job's trace root.
    async fn handle(&self, queue: &Queue, message: Message, hard_stop: &CancellationToken) {
        let Some(receipt) = message.receipt_handle.clone() else {
            return;
        };
        metric::message_received();
        let _in_flight = metric::InFlight::start();
        let name = format!("process {}", self.resources.queue);
        // Messaging conventions: a consumer span per message; the upload
        // that caused it is linked (in `process`), not a parent.
        let span = info_span!(
            parent: None,
            "job",
            otel.name = name.as_str(),
            otel.kind = "consumer",
            trace_id = Empty,
            job_id = Empty,
            bucket = Empty,
            key = Empty,
            recipe = Empty,
            queue_lag_ms = Empty,
            outcome = Empty,
        );
        // Trace attributes only, kept out of the log lines.
        span.set_attribute("messaging.system", "aws_sqs");
        span.set_attribute("messaging.operation.type", "process");
        span.set_attribute("messaging.destination.name", self.resources.queue.clone());
        if let Some(id) = &message.message_id {
            span.set_attribute("messaging.message.id", id.clone());
        }
        telemetry::record_trace_id(&span);
        self.settle(queue, &message, receipt, hard_stop)
            .instrument(span)
            .await;
    }

    /// Run the message's job under its heartbeat, then delete the message,
    /// hand it back after a backoff or, past the grace period, at once.
    async fn settle(
        &self,
        queue: &Queue,
        message: &Message,
        receipt: String,
        hard_stop: &CancellationToken,
    ) {
        let heartbeat = self.heartbeat(queue, receipt.clone());
        let outcome = tokio::select! {
            done = self.handle_message(message) => Some(done),
            _ = heartbeat => None,
            _ = hard_stop.cancelled() => None,
        };
        match outcome {
            Some(true) => {
                let deleted = self
                    .delete(queue, vec![receipt])
                    .instrument(info_span!("delete"))
                    .await;
                if let Err(error) = deleted {
                    metric::queue_error("delete");
                    // The message reappears and is processed again: an identical rewrite.
                    warn!(
                        message = "Failed to delete a processed message",
                        error = format!("{error:#}")
                    );
                }
            }
            Some(false) => {
                let receives = receive_count(message);
                let wait = retry_delay(receives);
                debug!(receives, ?wait, "handing the message back for a retry");
                self.set_visibility(queue, &receipt, wait).await;
            }
            None => {
                info!(
                    message_id = message.message_id.as_deref().unwrap_or("?"),
                    "releasing an unfinished job"
                );
                self.set_visibility(queue, &receipt, Duration::ZERO).await;
            }
        }
    }

    /// Extend the message's invisibility at half its timeout, for as long
    /// as the job runs. Never returns unless the extension fails, in which
    /// case the job is abandoned (another worker may already have it).
    async fn heartbeat(&self, queue: &Queue, receipt: String) {
        let every = queue.visibility / 2;
        loop {
            tokio::time::sleep(every).await;
            let extended = self
                .clients
                .sqs
                .change_message_visibility()
                .queue_url(&queue.url)
                .receipt_handle(&receipt)
                .visibility_timeout(secs(queue.visibility))
                .send()
                .await;
            if let Err(error) = extended {
                metric::queue_error("change_visibility");
                warn!(message = "Failed to extend a job's visibility; abandoning it", error = %aws_sdk_sqs::error::DisplayErrorContext(error));
                return;
            }
            debug!("extended a job's visibility");
        }
    }

    async fn set_visibility(&self, queue: &Queue, receipt: &str, after: Duration) {
        let result = self
            .clients
            .sqs
            .change_message_visibility()
            .queue_url(&queue.url)
            .receipt_handle(receipt)
            .visibility_timeout(secs(after))
            .send()
            .await;
        if let Err(error) = result {
            metric::queue_error("change_visibility");
            // Harmless: the message reappears when its current visibility runs out.
            warn!(message = "Failed to hand a message back", error = %aws_sdk_sqs::error::DisplayErrorContext(error));
        }
    }

    /// `true` when the message can be deleted.
    async fn handle_message(&self, message: &Message) -> bool {
        let id = message.message_id.as_deref().unwrap_or("?");
        let body = message.body.as_deref().unwrap_or_default();
        let receive = info_span!(
            "receive",
            messaging.message.id = id,
            receives = receive_count(message),
            body_bytes = body.len(),
            objects = Empty
        );
        let objects = match receive.in_scope(|| event::parse(body)) {
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
        receive.record("objects", objects.len());
        drop(receive);
        let job = Span::current();
        let mut all_done = true;
        for object in objects {
            if object.bucket != self.resources.inbox {
                // The loop guard: never act on the outbox or any other bucket.
                warn!(message = "Ignoring an event from a bucket that is not the inbox", bucket = %object.bucket, key = %object.key);
                continue;
            }
            let started = Instant::now();
            let result = self.process(&object).await;
            let (outcome, code) = match &result {
                Ok(Outcome::Done { .. }) => ("done", ""),
                Ok(Outcome::Failed { code }) => ("failed", *code),
                Ok(Outcome::Superseded | Outcome::Gone | Outcome::OwnOutput) => ("skipped", ""),
                Err(_) => ("retry", ""),
            };
            metric::job_finished(outcome, code, started.elapsed());
            job.record("outcome", outcome);
            match result {
                Ok(outcome) => info!(key = %object.key, ?outcome, "job finished"),
                Err(error) => {
                    warn!(message = "Job failed for a reason that may pass; it will be retried", key = %object.key, error = format!("{error:#}"));
                    all_done = false;
                }
            }
        }
        all_done
    }

    async fn delete(&self, queue: &Queue, handles: Vec<String>) -> anyhow::Result<()> {
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
            .queue_url(&queue.url)
            .set_entries(Some(entries))
            .send()
            .await
            .context("DeleteMessageBatch")?;
        if let Some(failed) = out.failed.first() {
            anyhow::bail!(
                "SQS refused to delete {} message(s): {} {}",
                out.failed.len(),
                failed.code,
                failed.message.as_deref().unwrap_or("")
            );
        }
        Ok(())
    }
}

fn receive_count(message: &Message) -> u32 {
    message
        .attributes
        .as_ref()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// Exponential backoff from 2 s, capped at 5 min, with full jitter, so a
/// fleet retrying after an outage does not come back in lockstep.
pub fn retry_delay(receives: u32) -> Duration {
    let cap = 2u64.saturating_pow(receives.clamp(1, 16)).min(300);
    Duration::from_millis(fastrand::u64(cap * 500..=cap * 1000))
}

/// Backoff for reconnecting: 0.5 s doubling to 30 s, with jitter.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Backoff {
        Backoff(Duration::from_millis(500))
    }

    fn next(&mut self) -> Duration {
        let wait = self.0.mul_f64(fastrand::f64() * 0.5 + 0.75);
        self.0 = (self.0 * 2).min(Duration::from_secs(30));
        wait
    }
}

fn secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX).min(43_200)
}

pub(crate) fn megapixels(pixels: u64) -> u64 {
    pixels.div_ceil(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_with_jitter_up_to_five_minutes() {
        for receives in 1..10 {
            let d = retry_delay(receives).as_secs_f64();
            let cap = 2f64.powi(receives as i32).min(300.0);
            assert!(d >= cap / 2.0 && d <= cap, "{receives}: {d}");
        }
        assert!(retry_delay(40).as_secs() <= 300);
    }
}
