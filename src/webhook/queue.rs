//! The delivery queue: `<queue>-webhooks`, one message per (endpoint, event).

use anyhow::{Context, bail};
use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError;
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use tokio::sync::OnceCell;

use crate::aws::Clients;
use crate::config::Resources;

/// Seconds a received delivery stays hidden: twice one attempt's longest
/// timeout (30 s) plus the SQS calls around it. Also how late a delivery
/// is when a worker dies holding it (a killed long poll keeps what it took).
pub const VISIBILITY_SECS: u32 = 60;
/// 14 days, SQS's longest: far past the 25-hour give-up time.
const RETENTION_SECS: u32 = 1_209_600;
/// SQS's longest `DelaySeconds`.
pub const MAX_DELAY_SECS: u64 = 900;

/// Create the delivery queue (idempotent) and set its attributes:
/// `imgflow setup` when webhooks are configured.
pub async fn ensure_queue(clients: &Clients, resources: &Resources) -> anyhow::Result<String> {
    let name = super::queue_name(resources);
    let url = get_or_create(&clients.sqs, &name).await?;
    clients
        .sqs
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            VISIBILITY_SECS.to_string(),
        )
        .attributes(
            QueueAttributeName::MessageRetentionPeriod,
            RETENTION_SECS.to_string(),
        )
        .attributes(QueueAttributeName::ReceiveMessageWaitTimeSeconds, "20")
        .send()
        .await
        .with_context(|| format!("setting the attributes of queue {name}"))?;
    Ok(url)
}

async fn get_or_create(sqs: &aws_sdk_sqs::Client, name: &str) -> anyhow::Result<String> {
    match sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => return out.queue_url.context("GetQueueUrl returned no URL"),
        Err(err) => match err.into_service_error() {
            GetQueueUrlError::QueueDoesNotExist(_) => {}
            err => return Err(err).with_context(|| format!("looking up queue {name}")),
        },
    }
    sqs.create_queue()
        .queue_name(name)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            VISIBILITY_SECS.to_string(),
        )
        .attributes(
            QueueAttributeName::MessageRetentionPeriod,
            RETENTION_SECS.to_string(),
        )
        .send()
        .await
        .with_context(|| format!("creating queue {name}"))?
        .queue_url
        .context("CreateQueue returned no URL")
}

/// The queue's URL, looked up (or, under `imgflow up` without a prior
/// `setup`, created) on first use.
pub struct DeliveryQueue {
    sqs: aws_sdk_sqs::Client,
    name: String,
    url: OnceCell<String>,
}

impl DeliveryQueue {
    pub fn new(sqs: aws_sdk_sqs::Client, name: String) -> DeliveryQueue {
        DeliveryQueue {
            sqs,
            name,
            url: OnceCell::new(),
        }
    }

    pub async fn url(&self) -> anyhow::Result<String> {
        self.url
            .get_or_try_init(|| get_or_create(&self.sqs, &self.name))
            .await
            .cloned()
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Send every message, ten to a call; an error if any was not taken.
pub async fn send_all(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    messages: &[String],
) -> anyhow::Result<()> {
    for chunk in messages.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
                    .context("building a SendMessageBatch entry")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let out = sqs
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .context("queueing webhook deliveries")?;
        if let Some(failed) = out.failed.first() {
            bail!(
                "SQS refused a webhook delivery: {} {}",
                failed.code,
                failed.message.as_deref().unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// Send one message that becomes visible after `delay_secs` (at most 900).
pub async fn send_delayed(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    body: String,
    delay_secs: u64,
) -> anyhow::Result<()> {
    sqs.send_message()
        .queue_url(url)
        .message_body(body)
        .delay_seconds(delay_secs.min(MAX_DELAY_SECS) as i32)
        .send()
        .await
        .context("re-queueing a webhook delivery")?;
    Ok(())
}
