//! Setup's writes: create what is missing, then write the merged policies,
//! notification configurations and CORS rules that [`super::Desired`] holds.

use anyhow::Context;
use aws_sdk_s3::operation::create_bucket::CreateBucketError;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError;
use aws_sdk_sqs::types::QueueAttributeName;

use super::Desired;
use crate::aws::Clients;
use crate::config::Resources;

pub async fn create_bucket(
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
pub async fn ensure_queue(clients: &Clients, name: &str) -> anyhow::Result<String> {
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

/// The topic's ARN, creating it if it does not exist (CreateTopic is idempotent).
pub async fn ensure_topic(clients: &Clients, name: &str) -> anyhow::Result<String> {
    clients
        .sns
        .create_topic()
        .name(name)
        .send()
        .await
        .with_context(|| format!("creating topic {name}"))?
        .topic_arn
        .context("CreateTopic returned no ARN")
}

/// Write everything `desired` holds, in the order S3 needs: policies
/// before the notifications whose destinations S3 checks.
pub async fn write(clients: &Clients, res: &Resources, desired: &Desired) -> anyhow::Result<()> {
    let set = |url: &str, name: &str, attributes: &[(QueueAttributeName, String)]| {
        let mut request = clients.sqs.set_queue_attributes().queue_url(url);
        for (key, value) in attributes {
            request = request.attributes(key.clone(), value);
        }
        let name = name.to_owned();
        async move {
            request
                .send()
                .await
                .with_context(|| format!("setting the attributes of queue {name}"))
        }
    };
    set(&desired.dlq.url, &res.dlq(), &desired.dlq_attributes).await?;
    set(&desired.queue.url, &res.queue, &desired.queue_attributes).await?;
    if let Some((events, policy)) = &desired.events_queue {
        let attributes = [(QueueAttributeName::Policy, policy.to_string())];
        set(&events.url, "of job-finished events", &attributes).await?;
    }
    if let Some((arn, policy)) = &desired.topic {
        clients
            .sns
            .set_topic_attributes()
            .topic_arn(arn)
            .attribute_name("Policy")
            .attribute_value(policy.to_string())
            .send()
            .await
            .with_context(|| format!("setting the policy of topic {arn}"))?;
        if let Some(queue_arn) = &desired.subscribe {
            // Raw delivery: the queue receives S3's event itself, not an SNS envelope.
            clients
                .sns
                .subscribe()
                .topic_arn(arn)
                .protocol("sqs")
                .endpoint(queue_arn)
                .attributes("RawMessageDelivery", "true")
                .send()
                .await
                .with_context(|| format!("subscribing {queue_arn} to topic {arn}"))?;
        }
    }
    let (inbox_changed, outbox_changed) = desired.notifications_changed;
    for (bucket, config) in [
        (
            &res.inbox,
            Some(&desired.inbox_notifications).filter(|_| inbox_changed),
        ),
        (
            &res.outbox,
            desired
                .outbox_notifications
                .as_ref()
                .filter(|_| outbox_changed),
        ),
    ] {
        let Some(config) = config else { continue };
        clients
            .s3
            .put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(config.clone())
            .send()
            .await
            .with_context(|| format!("configuring notifications on bucket {bucket}"))?;
    }
    for (bucket, rules) in &desired.cors {
        super::cors::write(clients, bucket, rules.clone()).await?;
    }
    Ok(())
}
