//! The SQS side of the worker, in Vector's `aws_sqs` shape: receive up to
//! ten messages per call, keep them invisible while they are worked on, and
//! settle each by its [`Verdict`] in batches (`DeleteMessageBatch`,
//! `ChangeMessageVisibilityBatch`), reporting partial failures.
//!
//! Nothing here knows about S3 or images: that is `super::job`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, ChangeMessageVisibilityBatchRequestEntry,
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};
use tokio_util::sync::CancellationToken;
use tracing::{Span, debug, info_span, warn};

use crate::aws;
use crate::telemetry::metric;

/// What to do with a message once its work has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every object it names is finished (or needs no work): delete it.
    Delete,
    /// Something that may pass failed: visible again after this backoff,
    /// and after the queue's receive count, in the DLQ.
    Retry(Duration),
    /// Not worked on (stopping, or the message was lost to another worker):
    /// visible again at once.
    HandBack,
}

/// One received message, owned by its batch until it is settled.
pub struct Delivery {
    pub message: Message,
    receipt: String,
    /// SQS's `ApproximateReceiveCount`: 1 on the first delivery.
    pub receives: u32,
    /// Fires when keeping the message invisible failed: another worker may
    /// have it now, so its job must stop.
    pub lost: CancellationToken,
    /// The job's span (its trace root), once the worker has opened it; the
    /// settle call is recorded beneath it.
    pub span: Span,
    /// Deleted or handed back: no longer kept alive.
    settled: AtomicBool,
}

impl Delivery {
    pub fn id(&self) -> &str {
        self.message.message_id.as_deref().unwrap_or("?")
    }

    pub fn body(&self) -> &str {
        self.message.body.as_deref().unwrap_or_default()
    }
}

/// The job queue as found at start-up.
pub struct Consumer {
    sqs: aws_sdk_sqs::Client,
    url: String,
    visibility: Duration,
    poll_wait_secs: i32,
    batch: i32,
}

impl Consumer {
    /// Look the queue and its visibility timeout up.
    pub async fn connect(
        sqs: aws_sdk_sqs::Client,
        name: &str,
        poll_wait_secs: i32,
        batch: usize,
    ) -> anyhow::Result<Consumer> {
        let url = aws::queue_url(&sqs, name).await?;
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
        Ok(Consumer {
            sqs,
            url,
            visibility: Duration::from_secs(visibility.max(1)),
            poll_wait_secs,
            batch: batch.clamp(1, 10) as i32,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// One long poll: up to the batch size, as soon as at least one message is there.
    pub async fn receive(&self) -> anyhow::Result<Vec<Delivery>> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(self.batch)
            .wait_time_seconds(self.poll_wait_secs)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .context("ReceiveMessage")?;
        let deliveries: Vec<Delivery> = out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|message| {
                let receipt = message.receipt_handle.clone()?;
                metric::message_received();
                Some(Delivery {
                    receives: aws::receive_count(&message),
                    message,
                    receipt,
                    lost: CancellationToken::new(),
                    span: Span::none(),
                    settled: AtomicBool::new(false),
                })
            })
            .collect();
        Ok(deliveries)
    }

    /// Keep `deliveries` invisible, renewing at half the visibility timeout,
    /// for as long as it is polled (it never returns). A message that cannot
    /// be renewed is marked lost.
    pub async fn keep_alive(&self, deliveries: &[Delivery]) {
        let every = self.visibility / 2;
        loop {
            tokio::time::sleep(every).await;
            let live: Vec<_> = deliveries
                .iter()
                .filter(|d| !d.lost.is_cancelled() && !d.settled.load(Ordering::Relaxed))
                .map(|d| (d, self.visibility))
                .collect();
            for (delivery, why) in self.change_visibility(&live).await {
                report(
                    "change_visibility",
                    format!("cannot extend a job's visibility, abandoning it: {why}"),
                );
                delivery.lost.cancel();
            }
            debug!(messages = live.len(), "extended visibility");
        }
    }

    /// Delete or hand back messages by their verdicts, with one call of each kind.
    pub async fn settle(&self, settled: &[(&Delivery, Verdict)]) {
        let mut delete = Vec::new();
        let mut release = Vec::new();
        for (delivery, verdict) in settled {
            delivery.settled.store(true, Ordering::Relaxed);
            match verdict {
                Verdict::Delete => delete.push(*delivery),
                Verdict::Retry(after) => release.push((*delivery, *after)),
                Verdict::HandBack => release.push((*delivery, Duration::ZERO)),
            }
        }
        if !delete.is_empty() {
            // One call for the batch, recorded as a `delete` span under each job.
            let spans: Vec<Span> = delete
                .iter()
                .map(|d| info_span!(parent: &d.span, "delete", batch = delete.len()))
                .collect();
            for (delivery, why) in self.delete(&delete).await {
                // The message reappears and is processed again: an identical rewrite.
                report(
                    "delete",
                    format!("cannot delete message {}: {why}", delivery.id()),
                );
            }
            drop(spans);
        }
        for (delivery, why) in self.change_visibility(&release).await {
            // Harmless: the message reappears when its current visibility runs out.
            report(
                "change_visibility",
                format!("cannot hand message {} back: {why}", delivery.id()),
            );
        }
    }

    /// `DeleteMessageBatch`; the entries that failed, with why.
    async fn delete<'a>(&self, batch: &[&'a Delivery]) -> Vec<(&'a Delivery, String)> {
        let entries = batch
            .iter()
            .enumerate()
            .map(|(i, d)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(&d.receipt)
                    .build()
                    .expect("id and receipt are set")
            })
            .collect();
        let sent = self
            .sqs
            .delete_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await;
        let deliveries: Vec<&Delivery> = batch.to_vec();
        failures(&deliveries, sent.map(|out| out.failed))
    }

    /// `ChangeMessageVisibilityBatch`; the entries that failed, with why.
    async fn change_visibility<'a>(
        &self,
        batch: &[(&'a Delivery, Duration)],
    ) -> Vec<(&'a Delivery, String)> {
        if batch.is_empty() {
            return vec![];
        }
        let entries = batch
            .iter()
            .enumerate()
            .map(|(i, (d, after))| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(&d.receipt)
                    .visibility_timeout(secs(*after))
                    .build()
                    .expect("id and receipt are set")
            })
            .collect();
        let sent = self
            .sqs
            .change_message_visibility_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await;
        let deliveries: Vec<&Delivery> = batch.iter().map(|(d, _)| *d).collect();
        failures(&deliveries, sent.map(|out| out.failed))
    }
}

/// Which entries of a batch call failed, and why: those SQS names, or all
/// of them when the call itself failed. Entry ids are indices into `batch`.
fn failures<'a, E: std::error::Error + 'static, R: std::fmt::Debug>(
    batch: &[&'a Delivery],
    sent: Result<Vec<BatchResultErrorEntry>, aws_sdk_sqs::error::SdkError<E, R>>,
) -> Vec<(&'a Delivery, String)> {
    match sent {
        Ok(failed) => failed
            .iter()
            .filter_map(|f| {
                let delivery = batch.get(f.id.parse::<usize>().ok()?)?;
                Some((
                    *delivery,
                    format!("{} {}", f.code, f.message().unwrap_or("")),
                ))
            })
            .collect(),
        Err(error) => {
            let why = aws_sdk_sqs::error::DisplayErrorContext(error).to_string();
            batch.iter().map(|d| (*d, why.clone())).collect()
        }
    }
}

/// Every failed queue call is logged and counted here, by operation.
pub fn report(op: &'static str, error: impl std::fmt::Display) {
    metric::queue_error(op);
    warn!(message = "SQS call failed", op, error = %error);
}

/// Exponential backoff from 2 s, capped at 5 min, with jitter (between half
/// and all of the cap), so a fleet retrying after an outage does not come
/// back in lockstep.
pub fn retry_delay(receives: u32) -> Duration {
    let cap = 2u64.saturating_pow(receives.clamp(1, 16)).min(300);
    Duration::from_millis(fastrand::u64(cap * 500..=cap * 1000))
}

/// Backoff for reconnecting: 0.5 s doubling to 30 s, with jitter.
pub struct Backoff(Duration);

impl Backoff {
    pub fn new() -> Backoff {
        Backoff(Duration::from_millis(500))
    }

    pub fn next(&mut self) -> Duration {
        let wait = self.0.mul_f64(fastrand::f64() * 0.5 + 0.75);
        self.0 = (self.0 * 2).min(Duration::from_secs(30));
        wait
    }
}

fn secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX).min(43_200)
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
