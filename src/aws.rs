//! The only place SDK clients are built, and the small SQS helpers every
//! queue reader shares.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{ConfigBag, Credentials, Intercept, Region, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

use crate::config::{AwsConfig, Resources};

#[derive(Clone, Debug)]
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// Every S3 request these clients sent and S3 answered, by operation and status.
    pub calls: Calls,
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
        let calls = Calls::default();
        let s3 = aws_sdk_s3::config::Builder::from(&shared)
            // LocalStack (and most S3 look-alikes) need path-style addressing.
            .force_path_style(config.endpoint().is_some())
            .interceptor(calls.clone())
            .build();
        Clients {
            s3: aws_sdk_s3::Client::from_conf(s3),
            sqs: aws_sdk_sqs::Client::new(&shared),
            calls,
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

/// S3 requests counted by operation and HTTP status (each attempt S3
/// answered; presigning sends nothing and counts nothing): calls are money on AWS and the ceiling on LocalStack, and the
/// tests assert how many a flow makes.
#[derive(Clone, Debug, Default)]
pub struct Calls(Arc<Mutex<BTreeMap<(String, u16), u64>>>);

impl Calls {
    /// How many `operation` requests answered `status` (`None`: any status).
    pub fn count(&self, operation: &str, status: Option<u16>) -> u64 {
        let counts = self.0.lock().expect("calls lock");
        counts
            .iter()
            .filter(|((op, st), _)| op == operation && status.is_none_or(|s| s == *st))
            .map(|(_, n)| n)
            .sum()
    }

    /// Every count so far: ((operation, status), requests).
    pub fn snapshot(&self) -> BTreeMap<(String, u16), u64> {
        self.0.lock().expect("calls lock").clone()
    }
}

impl Intercept for Calls {
    fn name(&self) -> &'static str {
        "imgflow::aws::Calls"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // No response: presigned (never sent), or S3 never answered.
        let Some(response) = context.response() else {
            return Ok(());
        };
        let status = response.status().as_u16();
        let operation = cfg
            .load::<Metadata>()
            .map_or("unknown", |m| m.name())
            .to_owned();
        *self
            .0
            .lock()
            .expect("calls lock")
            .entry((operation, status))
            .or_default() += 1;
        Ok(())
    }
}
