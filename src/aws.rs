//! The only place SDK clients are built, and the small SQS helpers every
//! queue reader shares.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Credentials, Region};

use crate::config::{AwsConfig, Resources};

#[derive(Clone, Debug)]
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// Only `setup --events-topic` uses it.
    pub sns: aws_sdk_sns::Client,
}

impl Clients {
    pub async fn new(config: &AwsConfig) -> Clients {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            // Fail fast when the endpoint is down; an attempt must outlast a 20 s long poll.
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .build(),
            );
        if let Some(endpoint) = config.endpoint() {
            loader = loader.endpoint_url(endpoint);
        }
        // LocalStack accepts any credentials; do not make users invent some.
        if !config.real_aws && std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader.credentials_provider(Credentials::new(
                "test",
                "test",
                None,
                None,
                "imgflow-localstack-default",
            ));
        }
        let shared = loader.load().await;
        let s3 = aws_sdk_s3::config::Builder::from(&shared)
            // LocalStack (and most S3 look-alikes) need path-style addressing.
            .force_path_style(config.endpoint().is_some())
            .build();
        Clients {
            s3: aws_sdk_s3::Client::from_conf(s3),
            sqs: aws_sdk_sqs::Client::new(&shared),
            sns: aws_sdk_sns::Client::new(&shared),
        }
    }
}

/// The URL of an existing queue.
pub async fn queue_url(sqs: &aws_sdk_sqs::Client, name: &str) -> anyhow::Result<String> {
    use anyhow::Context;
    sqs.get_queue_url()
        .queue_name(name)
        .send()
        .await
        .with_context(|| format!("looking up queue {name:?} (has `imgflow setup` run?)"))?
        .queue_url
        .context("GetQueueUrl returned no URL")
}

/// SQS's `ApproximateReceiveCount` of a received message (1 on its first delivery).
pub fn receive_count(message: &aws_sdk_sqs::types::Message) -> u32 {
    message
        .attributes
        .as_ref()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// Do both buckets and the queue answer? The readiness probe of the API and
/// of the worker. `Err` says which does not, and why.
pub async fn reachable(clients: &Clients, resources: &Resources) -> Result<(), String> {
    for bucket in [&resources.inbox, &resources.outbox] {
        clients
            .s3
            .head_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "bucket {bucket}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(e)
                )
            })?;
    }
    clients
        .sqs
        .get_queue_url()
        .queue_name(&resources.queue)
        .send()
        .await
        .map_err(|e| {
            format!(
                "queue {}: {}",
                resources.queue,
                aws_sdk_sqs::error::DisplayErrorContext(e)
            )
        })?;
    Ok(())
}
