//! The worker: long-poll SQS, run the jobs the messages name, settle the
//! messages.
//!
//! - `consumer`: the SQS side (receive batches, keep-alive, delete / hand back).
//! - `job`: one inbox object to its outputs and manifest (S3 and images, no SQS).
//! - this module joins them: receive loops, job slots, the job span, the verdict.
//!
//! Architecture invariant: a message is deleted only after every object it
//! names has its manifest in the outbox (or needs no processing: a test
//! event, an object deleted or overwritten since, one of imgflow's own
//! outputs). A transient failure hands the message back to SQS after a
//! backoff with jitter; after the queue's maximum receive count (set by
//! `imgflow setup`, default 5) SQS moves it to the DLQ. A crash is the same
//! as a timeout: the message reappears when its visibility runs out.

mod budget;
mod consumer;
mod job;
pub mod listen;
mod removal;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::field::Empty;
use tracing::{Instrument, Span, debug, info, info_span, warn};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::aws::Clients;
use crate::config::{Resources, WorkerConfig};
use crate::event::{self, Notification};
use crate::pipeline::Limits;
use crate::recipe::Presets;
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::store::Store;
use crate::telemetry::{self, metric};
use crate::webhook::Webhooks;

use consumer::{Backoff, Consumer, Delivery, Verdict, report, retry_delay};
use job::Jobs;
pub use job::Outcome;

/// Messages a worker holds at most (received, running or waiting for a
/// slot), whatever its concurrency: KEDA's default `queueLength` per pod.
const MESSAGES_IN_HAND: usize = 10;

/// How long a finished message may wait for others of its batch, so that
/// they are deleted with one call. Its outcome is already in the outbox:
/// waiting delays only the delete (a crash meanwhile means one redelivery,
/// an identical rewrite). At 100 ms a saturated worker deleted in batches
/// of 2-3.5 (0.28-0.45 `DeleteMessageBatch` per image, `bench/RESULTS.md`):
/// a batch of 5 takes longer than that to run on 2 slots.
const LINGER: Duration = Duration::from_secs(1);

/// What a worker needs; shared by its receive loops.
pub struct Worker {
    jobs: Jobs,
    sqs: aws_sdk_sqs::Client,
    inbox: String,
    queue: String,
    config: WorkerConfig,
    /// One permit per job running at once.
    slots: Semaphore,
}

impl Worker {
    pub fn new(
        clients: &Clients,
        store: Store,
        resources: &Resources,
        limits: Limits,
        presets: Presets,
        config: WorkerConfig,
    ) -> Worker {
        metric::handle();
        Worker {
            jobs: Jobs {
                store,
                presets,
                limits,
                budget: budget::PixelBudget::new(config.pixel_budget),
                sandbox: Sandbox::new(SandboxConfig {
                    exe: config
                        .sandbox_exe
                        .clone()
                        .or_else(|| std::env::current_exe().ok())
                        .unwrap_or_else(|| "imgflow".into()),
                    memory_bytes: config.sandbox_memory,
                    deadline: Duration::from_secs(config.job_deadline_secs),
                    warm: config.concurrency(),
                }),
                sandbox_deadline: Duration::from_secs(config.job_deadline_secs),
                webhooks: Webhooks::new(clients, resources, &config),
            },
            sqs: clients.sqs.clone(),
            inbox: resources.inbox.clone(),
            queue: resources.queue.clone(),
            slots: Semaphore::new(config.concurrency()),
            config,
        }
    }

    /// Threads a job starting now may use: its own, and one for each idle
    /// job slot, at most one per core. At light load a job has the whole
    /// machine; at saturation each has one thread, as before.
    fn threads(&self) -> u32 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (1 + self.slots.available_permits()).min(cores) as u32
    }

    /// Messages per `ReceiveMessage`: one receive loop per job slot, and
    /// together they hold about [`MESSAGES_IN_HAND`].
    fn batch(&self) -> usize {
        MESSAGES_IN_HAND
            .div_ceil(self.config.concurrency())
            .clamp(1, 10)
    }

    /// Run until `shutdown` fires: find the queue (waiting, with backoff,
    /// while S3/SQS are unreachable), then one receive loop per job slot.
    /// On shutdown nothing new is received; in-flight jobs get the grace
    /// period, then their messages are handed back to SQS.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let webhooks = (self.jobs.webhooks.clone()).map(|w| tokio::spawn(w.run(shutdown.clone())));
        let Some(consumer) = self.connect(&shutdown).await else {
            return;
        };
        let consumer = Arc::new(consumer);
        let concurrency = self.config.concurrency();
        info!(
            queue = %consumer.url(),
            concurrency,
            batch = self.batch(),
            pixel_budget = self.config.pixel_budget,
            "worker started"
        );
        // Fires when the grace period after `shutdown` has run out.
        let hard_stop = CancellationToken::new();
        let timer = {
            let (shutdown, hard_stop) = (shutdown.clone(), hard_stop.clone());
            let grace = self.config.shutdown_grace();
            tokio::spawn(async move {
                shutdown.cancelled().await;
                tokio::time::sleep(grace).await;
                hard_stop.cancel();
            })
        };
        let mut loops = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let (worker, consumer) = (Arc::clone(&self), Arc::clone(&consumer));
            let stop = Stop {
                shutdown: shutdown.clone(),
                hard: hard_stop.clone(),
            };
            loops.spawn(async move { worker.receive_loop(&consumer, &stop).await });
        }
        while loops.join_next().await.is_some() {}
        timer.abort();
        if let Some(webhooks) = webhooks {
            let _ = webhooks.await;
        }
        info!("worker stopped");
    }

    async fn connect(&self, shutdown: &CancellationToken) -> Option<Consumer> {
        let mut backoff = Backoff::new();
        loop {
            let poll_wait = self.config.poll_wait_secs;
            match Consumer::connect(self.sqs.clone(), &self.queue, poll_wait, self.batch()).await {
                Ok(consumer) => return Some(consumer),
                Err(error) => {
                    let wait = backoff.next();
                    warn!(
                        message = "Cannot reach the queue yet; retrying",
                        error = ?format!("{error:#}"),
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

    async fn receive_loop(&self, consumer: &Consumer, stop: &Stop) {
        let mut backoff = Backoff::new();
        loop {
            let receive = consumer.receive();
            tokio::pin!(receive);
            let received = tokio::select! {
                received = &mut receive => received,
                _ = stop.shutdown.cancelled() => {
                    // Dropping the call would not end the long poll on the
                    // SQS side: a message it took would stay invisible for a
                    // whole visibility timeout. Let it finish (at most the
                    // poll wait) and hand back whatever it brought.
                    if let Ok(batch) = receive.await
                        && !batch.is_empty()
                    {
                        info!(count = batch.len(), "handing back messages that arrived while stopping");
                        let back: Vec<_> = batch.iter().map(|d| (d, Verdict::HandBack)).collect();
                        consumer.settle(&back).await;
                    }
                    return;
                }
            };
            match received {
                Ok(batch) => {
                    backoff = Backoff::new();
                    if !batch.is_empty() {
                        self.handle_batch(consumer, batch, stop).await;
                    }
                }
                Err(error) => {
                    let wait = backoff.next();
                    report("receive", format!("{error:#}; retrying in {wait:?}"));
                    tokio::select! {
                        _ = stop.shutdown.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// Work on a batch's messages at once (each waits for a job slot), kept
    /// invisible meanwhile. Finished messages are settled together: when
    /// the batch is done, or [`LINGER`] after the first of them finished,
    /// whichever comes first.
    async fn handle_batch(&self, consumer: &Consumer, mut batch: Vec<Delivery>, stop: &Stop) {
        for delivery in &mut batch {
            delivery.span = self.job_span(delivery);
        }
        let mut work: FuturesUnordered<_> = batch
            .iter()
            .map(|delivery| async move { (delivery, self.handle(delivery, stop).await) })
            .collect();
        let mut finished = Vec::new();
        let keep_alive = consumer.keep_alive(&batch);
        let linger = tokio::time::sleep(LINGER);
        tokio::pin!(keep_alive, linger);
        loop {
            tokio::select! {
                next = work.next() => match next {
                    Some(done) => {
                        if finished.is_empty() {
                            linger.as_mut().reset(tokio::time::Instant::now() + LINGER);
                        }
                        finished.push(done);
                    }
                    None => break,
                },
                () = &mut linger, if !finished.is_empty() => {
                    consumer.settle(&std::mem::take(&mut finished)).await;
                }
                () = &mut keep_alive => unreachable!("keep_alive never returns"),
            }
        }
        consumer.settle(&finished).await;
    }

    /// One message, start to end, under its job span.
    async fn handle(&self, delivery: &Delivery, stop: &Stop) -> Verdict {
        // A message not started when the worker stops goes straight back.
        let _slot = tokio::select! {
            slot = self.slots.acquire() => slot.expect("the job slots are never closed"),
            _ = stop.shutdown.cancelled() => return Verdict::HandBack,
            _ = delivery.lost.cancelled() => return Verdict::HandBack,
        };
        let _in_flight = metric::InFlight::start();
        tokio::select! {
            verdict = self.judge(delivery).instrument(delivery.span.clone()) => verdict,
            _ = delivery.lost.cancelled() => Verdict::HandBack,
            _ = stop.hard.cancelled() => {
                info!(message_id = delivery.id(), "releasing an unfinished job");
                Verdict::HandBack
            }
        }
    }

    /// The job's trace root. Messaging conventions: a consumer span per
    /// message; the upload that caused it is linked (in `job`), not a parent.
    fn job_span(&self, delivery: &Delivery) -> Span {
        let name = format!("process {}", self.queue);
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
        span.set_attribute("messaging.destination.name", self.queue.clone());
        span.set_attribute("messaging.message.id", delivery.id().to_owned());
        telemetry::record_trace_id(&span);
        span
    }

    /// Run the jobs of every object the message names, and judge the message.
    async fn judge(&self, delivery: &Delivery) -> Verdict {
        let id = delivery.id();
        let body = delivery.body();
        let receive = info_span!(
            "receive",
            messaging.message.id = id,
            receives = delivery.receives,
            body_bytes = body.len(),
            objects = Empty
        );
        let retry = Verdict::Retry(retry_delay(delivery.receives));
        let objects = match receive.in_scope(|| event::parse(body)) {
            Ok(Notification::Test) => {
                debug!(message_id = id, "deleting s3:TestEvent");
                return Verdict::Delete;
            }
            Ok(Notification::Created(objects)) => objects,
            Err(error) => {
                // Not ours to judge lost: left alone, it ends in the DLQ for a person to see.
                warn!(message = "Message is not an S3 notification; leaving it for the DLQ", message_id = id, %error);
                return retry;
            }
        };
        receive.record("objects", objects.len());
        drop(receive);
        let job = Span::current();
        let mut verdict = Verdict::Delete;
        for object in objects {
            if object.bucket != self.inbox {
                // The loop guard: never act on the outbox or any other bucket.
                warn!(message = "Ignoring an event from a bucket that is not the inbox", bucket = ?object.bucket, key = ?object.key);
                continue;
            }
            let started = Instant::now();
            let result = self.jobs.run(&object, self.threads()).await;
            let (outcome, code) = match &result {
                Ok(Outcome::Done { .. }) => ("done", ""),
                Ok(Outcome::Failed { code }) => ("failed", *code),
                Ok(Outcome::Superseded | Outcome::Gone | Outcome::OwnOutput) => ("skipped", ""),
                Ok(Outcome::Removed { .. }) => ("removed", ""),
                Err(_) => ("retry", ""),
            };
            metric::job_finished(outcome, code, started.elapsed());
            job.record("outcome", outcome);
            match result {
                Ok(outcome) => info!(key = ?object.key, ?outcome, "job finished"),
                Err(error) => {
                    warn!(message = "Job failed for a reason that may pass; it will be retried", key = ?object.key, error = ?format!("{error:#}"));
                    verdict = retry;
                }
            }
        }
        if let Verdict::Retry(wait) = verdict {
            debug!(
                receives = delivery.receives,
                ?wait,
                "handing the message back for a retry"
            );
        }
        verdict
    }
}

/// The two stops: `shutdown` (take no new work) and `hard` (the grace
/// period after it is over: hand back what still runs).
struct Stop {
    shutdown: CancellationToken,
    hard: CancellationToken,
}
