//! What is there before `imgflow setup` changes anything: read only, so
//! `--dry-run` and the conflict check touch nothing.

use std::collections::HashMap;

use anyhow::Context;
use aws_sdk_s3::types::NotificationConfiguration;
use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError;
use aws_sdk_sqs::types::QueueAttributeName;

use crate::aws::Clients;

/// An existing queue.
#[derive(Debug, Clone)]
pub struct QueueState {
    pub url: String,
    pub arn: String,
    pub attributes: HashMap<QueueAttributeName, String>,
}

/// An existing SNS topic.
#[derive(Debug, Clone)]
pub struct TopicState {
    pub arn: String,
    pub policy: Option<String>,
    /// Endpoints (queue ARNs) of its SQS subscriptions.
    pub sqs_subscribers: Vec<String>,
}

/// Does the bucket exist (and may we see it)?
pub async fn bucket_exists(clients: &Clients, bucket: &str) -> anyhow::Result<bool> {
    match clients.s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(true),
        Err(err)
            if err
                .raw_response()
                .is_some_and(|r| r.status().as_u16() == 404) =>
        {
            Ok(false)
        }
        Err(err) => {
            Err(err.into_service_error()).with_context(|| format!("checking bucket {bucket}"))
        }
    }
}

/// The bucket's notification configuration (empty for a bucket not made yet).
pub async fn notifications(
    clients: &Clients,
    bucket: &str,
    exists: bool,
) -> anyhow::Result<NotificationConfiguration> {
    if !exists {
        return Ok(NotificationConfiguration::builder().build());
    }
    let out = clients
        .s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .with_context(|| format!("reading the notification configuration of bucket {bucket}"))?;
    Ok(NotificationConfiguration::builder()
        .set_queue_configurations(Some(out.queue_configurations().to_vec()))
        .set_topic_configurations(Some(out.topic_configurations().to_vec()))
        .set_lambda_function_configurations(Some(out.lambda_function_configurations().to_vec()))
        .set_event_bridge_configuration(out.event_bridge_configuration().cloned())
        .build())
}

/// The queue and all its attributes, if it exists.
pub async fn queue(clients: &Clients, name: &str) -> anyhow::Result<Option<QueueState>> {
    let url = match clients.sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => out.queue_url.context("GetQueueUrl returned no URL")?,
        Err(err) => match err.into_service_error() {
            GetQueueUrlError::QueueDoesNotExist(_) => return Ok(None),
            err => return Err(err).with_context(|| format!("looking up queue {name}")),
        },
    };
    let attributes = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .with_context(|| format!("reading the attributes of queue {name}"))?
        .attributes
        .unwrap_or_default();
    let arn = attributes
        .get(&QueueAttributeName::QueueArn)
        .cloned()
        .context("the queue has no QueueArn attribute")?;
    Ok(Some(QueueState {
        url,
        arn,
        attributes,
    }))
}

/// The topic called `name`, if it exists (found by listing: SNS looks
/// topics up by ARN only).
pub async fn topic(clients: &Clients, name: &str) -> anyhow::Result<Option<TopicState>> {
    let suffix = format!(":{name}");
    let mut token = None;
    let arn = loop {
        let page = clients
            .sns
            .list_topics()
            .set_next_token(token)
            .send()
            .await
            .context("listing SNS topics")?;
        let found = page
            .topics()
            .iter()
            .filter_map(|t| t.topic_arn())
            .find(|arn| arn.ends_with(&suffix));
        if let Some(arn) = found {
            break arn.to_owned();
        }
        match page.next_token {
            Some(next) => token = Some(next),
            None => return Ok(None),
        }
    };
    topic_at(clients, &arn).await.map(Some)
}

/// The topic at `arn`: its policy and SQS subscribers.
pub async fn topic_at(clients: &Clients, arn: &str) -> anyhow::Result<TopicState> {
    let policy = clients
        .sns
        .get_topic_attributes()
        .topic_arn(arn)
        .send()
        .await
        .with_context(|| format!("reading the attributes of topic {arn}"))?
        .attributes
        .and_then(|mut a| a.remove("Policy"));
    let subscriptions = clients
        .sns
        .list_subscriptions_by_topic()
        .topic_arn(arn)
        .send()
        .await
        .with_context(|| format!("listing the subscriptions of topic {arn}"))?;
    let sqs_subscribers = subscriptions
        .subscriptions()
        .iter()
        .filter(|s| s.protocol() == Some("sqs"))
        .filter_map(|s| s.endpoint().map(str::to_owned))
        .collect();
    Ok(TopicState {
        arn: arn.to_owned(),
        policy,
        sqs_subscribers,
    })
}
