//! `imgflow setup` against LocalStack.

use aws_sdk_sqs::types::QueueAttributeName;
use imgflow::aws::Clients;
use imgflow::config::QueueConfig;
use imgflow::outbox::Status;
use imgflow::setup;

use crate::harness::{ROCKET, TestApp, aws_config, fresh_resources};

#[tokio::test]
async fn running_setup_twice_is_harmless() {
    let app = TestApp::spawn().await;
    let again = setup::setup(&app.clients, &app.resources, &QueueConfig::default())
        .await
        .expect("second setup");
    assert_eq!(again.queue_url, app.queues.queue_url);
    assert_eq!(again.dlq_url, app.queues.dlq_url);

    let attrs = app
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(&app.queues.queue_url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let redrive: serde_json::Value =
        serde_json::from_str(&attrs[&QueueAttributeName::RedrivePolicy]).unwrap();
    let dlq_arn = setup::queue_arn(&app.clients, &app.queues.dlq_url)
        .await
        .unwrap();
    assert_eq!(redrive["deadLetterTargetArn"], dlq_arn.as_str());
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        QueueConfig::default().max_receive_count.to_string()
    );
    let dlq = app
        .queue_attributes(
            &app.queues.dlq_url,
            &[QueueAttributeName::MessageRetentionPeriod],
        )
        .await;
    assert_eq!(
        dlq[&QueueAttributeName::MessageRetentionPeriod],
        "1209600",
        "a DLQ keeps its messages 14 days"
    );
    assert!(attrs.contains_key(&QueueAttributeName::Policy));

    let notifications = app
        .clients
        .s3
        .get_bucket_notification_configuration()
        .bucket(&app.resources.inbox)
        .send()
        .await
        .unwrap();
    assert_eq!(
        notifications.queue_configurations().len(),
        1,
        "one notification, not two"
    );

    // Still one job per upload, done once.
    app.put_inbox("twice.jpg", ROCKET, &[("recipe", "resize,w=32")])
        .await;
    assert_eq!(
        app.wait_for_manifest("twice.jpg").await.status,
        Status::Done
    );
    app.wait_until_queue_is_empty().await;
    assert_eq!(app.messages_on(&app.queues.dlq_url).await, 0);
}

#[tokio::test]
async fn setup_refuses_one_bucket_as_both_inbox_and_outbox() {
    let clients = Clients::new(&aws_config()).await;
    let mut resources = fresh_resources();
    resources.outbox = resources.inbox.clone();
    let err = setup::setup(&clients, &resources, &QueueConfig::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("inbox and the outbox"), "{err}");
    let created = clients
        .s3
        .head_bucket()
        .bucket(&resources.inbox)
        .send()
        .await;
    assert!(created.is_err(), "nothing is created before refusing");
}
