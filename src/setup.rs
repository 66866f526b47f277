//! `imgflow setup`: create, idempotently, everything the flow needs.
//!
//! inbox bucket ──ObjectCreated──▶ queue ──after N receives (default 5)──▶ DLQ
//!                                   ▲ policy: only the inbox may send
//! outbox bucket (never notifies: a resizer must not trigger on its own outputs)

use anyhow::{Context, bail};
use aws_sdk_s3::operation::create_bucket::CreateBucketError;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CorsConfiguration, CorsRule, CreateBucketConfiguration, Event,
    NotificationConfiguration, QueueConfiguration,
};
use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError;
use aws_sdk_sqs::types::QueueAttributeName;

use crate::aws::Clients;
use crate::config::{QueueConfig, Resources};

const NOTIFICATION_ID: &str = "imgflow-inbox-object-created";
/// Our CORS rules' ids: a rerun replaces these and keeps everyone else's.
pub const CORS_UPLOAD_ID: &str = "imgflow-browser-upload";
pub const CORS_DOWNLOAD_ID: &str = "imgflow-browser-download";

/// Request headers a presigned PUT from `POST /v1/uploads` carries, listed
/// one by one: LocalStack 4.13 does not match wildcards such as
/// `x-amz-meta-*` (real S3 does), and explicit names work on both.
pub const UPLOAD_HEADERS: &[&str] = &[
    "content-type",
    "if-none-match",
    "x-amz-meta-job-id",
    "x-amz-meta-recipe",
    "x-amz-meta-preset",
    "x-amz-meta-traceparent",
];

#[derive(Debug, Clone)]
pub struct SetupReport {
    pub queue_url: String,
    pub queue_arn: String,
    pub dlq_url: String,
}

pub async fn setup(
    clients: &Clients,
    res: &Resources,
    queue: &QueueConfig,
) -> anyhow::Result<SetupReport> {
    if res.inbox == res.outbox {
        bail!(
            "the inbox and the outbox are both {:?}: outputs would trigger new jobs forever; use two buckets",
            res.inbox
        );
    }
    let region = clients.s3.config().region().map(|r| r.to_string());
    for bucket in [&res.inbox, &res.outbox] {
        create_bucket(clients, bucket, region.as_deref()).await?;
    }

    let dlq_url = ensure_queue(clients, &res.dlq()).await?;
    // The longest SQS allows (14 days, as infra/imgflow.yaml): time for a
    // person to look at what failed before it expires.
    clients
        .sqs
        .set_queue_attributes()
        .queue_url(&dlq_url)
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .with_context(|| format!("setting the retention of queue {}", res.dlq()))?;
    let dlq_arn = queue_arn(clients, &dlq_url).await?;
    let queue_url = ensure_queue(clients, &res.queue).await?;
    let queue_arn = queue_arn(clients, &queue_url).await?;

    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": queue.max_receive_count.to_string(),
    });
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "imgflow-inbox-notifications",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnLike": {"aws:SourceArn": format!("arn:aws:s3:::{}", res.inbox)}},
        }],
    });
    clients
        .sqs
        .set_queue_attributes()
        .queue_url(&queue_url)
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .attributes(QueueAttributeName::Policy, policy.to_string())
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            queue.visibility_timeout_secs.to_string(),
        )
        .attributes(QueueAttributeName::ReceiveMessageWaitTimeSeconds, "20")
        .send()
        .await
        .with_context(|| format!("setting the attributes of queue {}", res.queue))?;

    let notification = NotificationConfiguration::builder()
        .queue_configurations(
            QueueConfiguration::builder()
                .id(NOTIFICATION_ID)
                .queue_arn(&queue_arn)
                .events(Event::from("s3:ObjectCreated:*"))
                .build()
                .context("building the notification configuration")?,
        )
        .build();
    clients
        .s3
        .put_bucket_notification_configuration()
        .bucket(&res.inbox)
        .notification_configuration(notification)
        .send()
        .await
        .with_context(|| format!("configuring notifications on bucket {}", res.inbox))?;
    if !queue.webhooks.is_empty() {
        crate::webhook::ensure_queue(clients, res).await?;
    }

    Ok(SetupReport {
        queue_url,
        queue_arn,
        dlq_url,
    })
}

async fn create_bucket(
    clients: &Clients,
    bucket: &str,
    region: Option<&str>,
) -> anyhow::Result<()> {
    let mut request = clients.s3.create_bucket().bucket(bucket);
    // us-east-1 is the one region that refuses an explicit location constraint.
    if let Some(region) = region.filter(|r| *r != "us-east-1") {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(err) => match err.into_service_error() {
            CreateBucketError::BucketAlreadyOwnedByYou(_) => Ok(()),
            err => Err(err).with_context(|| format!("creating bucket {bucket}")),
        },
    }
}

/// The queue's URL, creating the queue if it does not exist.
async fn ensure_queue(clients: &Clients, name: &str) -> anyhow::Result<String> {
    match clients.sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => return out.queue_url.context("GetQueueUrl returned no URL"),
        Err(err) => match err.into_service_error() {
            GetQueueUrlError::QueueDoesNotExist(_) => {}
            err => return Err(err).with_context(|| format!("looking up queue {name}")),
        },
    }
    clients
        .sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .with_context(|| format!("creating queue {name}"))?
        .queue_url
        .context("CreateQueue returned no URL")
}

pub async fn queue_arn(clients: &Clients, url: &str) -> anyhow::Result<String> {
    clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .with_context(|| format!("reading the ARN of queue {url}"))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .context("the queue has no QueueArn attribute")
}

/// Let pages from `origins` PUT presigned uploads into the inbox and GET /
/// HEAD outputs from the outbox. Merges: other rules on the buckets are kept,
/// and only imgflow's own (by id) are replaced. Without origins the buckets'
/// CORS rules are left as they are.
pub async fn cors(clients: &Clients, res: &Resources, origins: &[String]) -> anyhow::Result<()> {
    if origins.is_empty() {
        return Ok(());
    }
    let rule = |id: &str, methods: &[&str], headers: &[&str]| {
        CorsRule::builder()
            .id(id)
            .set_allowed_origins(Some(origins.to_vec()))
            .set_allowed_methods(Some(methods.iter().map(|m| m.to_string()).collect()))
            .set_allowed_headers(Some(headers.iter().map(|h| h.to_string()).collect()))
            .expose_headers("etag")
            .max_age_seconds(3600)
            .build()
            .context("building a CORS rule")
    };
    let upload = rule(CORS_UPLOAD_ID, &["PUT"], UPLOAD_HEADERS)?;
    let download = rule(CORS_DOWNLOAD_ID, &["GET", "HEAD"], &["range"])?;
    merge_cors(clients, &res.inbox, upload).await?;
    merge_cors(clients, &res.outbox, download).await
}

async fn merge_cors(clients: &Clients, bucket: &str, ours: CorsRule) -> anyhow::Result<()> {
    let mut rules = match clients.s3.get_bucket_cors().bucket(bucket).send().await {
        Ok(out) => out.cors_rules.unwrap_or_default(),
        // S3 answers NoSuchCORSConfiguration, which the SDK does not model.
        Err(err)
            if err
                .raw_response()
                .is_some_and(|r| r.status().as_u16() == 404) =>
        {
            vec![]
        }
        Err(err) => {
            return Err(err.into_service_error())
                .with_context(|| format!("reading the CORS rules of bucket {bucket}"));
        }
    };
    rules.retain(|r| r.id() != ours.id());
    rules.push(ours);
    let config = CorsConfiguration::builder()
        .set_cors_rules(Some(rules))
        .build()
        .context("building the CORS configuration")?;
    clients
        .s3
        .put_bucket_cors()
        .bucket(bucket)
        .cors_configuration(config)
        .send()
        .await
        .with_context(|| format!("setting the CORS rules of bucket {bucket}"))?;
    Ok(())
}
