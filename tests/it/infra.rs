//! `infra/imgflow.yaml` deployed with CloudFormation to LocalStack, an image
//! through the flow on the resources the stack made, and the stack and
//! `imgflow setup` configuring the queue and notification alike.
//!
//! Needs LocalStack with `cloudformation,iam,sts` enabled, as
//! `scripts/localstack.sh` starts it. Against an older LocalStack with only
//! S3 and SQS this test says so and passes, except under CI, where it fails.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};
use aws_sdk_sqs::types::QueueAttributeName;
use imgflow::aws::Clients;
use imgflow::config::QueueConfig;
use imgflow::outbox::Status;
use imgflow::setup::{self, SetupReport};

use crate::harness::{Options, ROCKET, TestApp, aws_config, decoded, fresh_resources};

const TEMPLATE: &str = include_str!("../../infra/imgflow.yaml");

#[tokio::test]
async fn the_cloudformation_stack_carries_an_image_through_the_flow() {
    let Some(cfn) = cloudformation().await else {
        return;
    };
    let resources = fresh_resources();
    let stack = format!("{}-stack", resources.queue);
    let parameters = [
        ("InboxBucketName", &resources.inbox),
        ("OutboxBucketName", &resources.outbox),
        ("QueueName", &resources.queue),
    ]
    .map(|(k, v)| {
        Parameter::builder()
            .parameter_key(k)
            .parameter_value(v)
            .build()
    });
    cfn.create_stack()
        .stack_name(&stack)
        .template_body(TEMPLATE)
        .set_parameters(Some(parameters.to_vec()))
        .capabilities(Capability::CapabilityIam)
        .send()
        .await
        .expect("CreateStack");
    let outputs = wait_for_stack(&cfn, &stack).await;
    assert_eq!(outputs["InboxBucket"], resources.inbox);
    assert_eq!(outputs["OutboxBucket"], resources.outbox);
    assert_eq!(outputs["QueueName"], resources.queue);

    // The flow, on nothing but what the stack made.
    let clients = Clients::new(&aws_config()).await;
    let queues = SetupReport {
        queue_url: outputs["QueueUrl"].clone(),
        queue_arn: outputs["QueueArn"].clone(),
        dlq_url: outputs["DeadLetterQueueUrl"].clone(),
    };
    let app = TestApp::spawn_on(clients.clone(), resources, queues, Options::default()).await;
    app.put_inbox(
        "stack/rocket.jpg",
        ROCKET,
        &[("recipe", "small:resize,w=120/webp")],
    )
    .await;
    let manifest = app.wait_for_manifest("stack/rocket.jpg").await;
    assert_eq!(manifest.status, Status::Done, "{manifest:?}");
    let bytes = app.get_outbox(&manifest.outputs[0].key).await.unwrap();
    assert_eq!(decoded(&bytes), (120, 80, image::ImageFormat::WebP));
    app.wait_until_queue_is_empty().await;

    // The template and `imgflow setup` must not drift apart on what the worker relies on.
    let by_setup = fresh_resources();
    let made = setup::setup(&clients, &by_setup, &QueueConfig::default())
        .await
        .unwrap();
    assert_eq!(
        queue_shape(&app, &app.queues.queue_url, &app.resources.inbox).await,
        queue_shape(&app, &made.queue_url, &by_setup.inbox).await,
        "infra/imgflow.yaml and src/setup/ configure the queue differently"
    );
    assert_eq!(
        notification_events(&app, &app.resources.inbox).await,
        notification_events(&app, &by_setup.inbox).await,
    );

    cfn.delete_stack().stack_name(&stack).send().await.unwrap();
}

/// A CloudFormation client, or `None` (and why) when this LocalStack has no
/// CloudFormation; under CI that is a failure.
async fn cloudformation() -> Option<aws_sdk_cloudformation::Client> {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_sdk_cloudformation::config::Region::new("us-east-1"))
        .endpoint_url(aws_config().endpoint().unwrap())
        .credentials_provider(aws_sdk_cloudformation::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "localstack",
        ))
        .load()
        .await;
    let client = aws_sdk_cloudformation::Client::new(&shared);
    match client.list_stacks().send().await {
        Ok(_) => Some(client),
        Err(err) => {
            let why = format!(
                "LocalStack answers no CloudFormation ({}): restart it with scripts/localstack.sh, \
                 which enables cloudformation,iam,sts",
                aws_sdk_cloudformation::error::DisplayErrorContext(err)
            );
            assert!(std::env::var_os("CI").is_none(), "{why}");
            eprintln!("skipped: {why}");
            None
        }
    }
}

/// The stack's outputs once it is created; panics on failure, with the events.
async fn wait_for_stack(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> HashMap<String, String> {
    for _ in 0..240 {
        let described = cfn
            .describe_stacks()
            .stack_name(stack)
            .send()
            .await
            .unwrap();
        let stack_state = &described.stacks()[0];
        match stack_state.stack_status() {
            Some(StackStatus::CreateInProgress) => {}
            Some(StackStatus::CreateComplete) => {
                return stack_state
                    .outputs()
                    .iter()
                    .map(|o| {
                        let key = o.output_key().unwrap_or_default().to_owned();
                        (key, o.output_value().unwrap_or_default().to_owned())
                    })
                    .collect();
            }
            status => {
                let events = cfn.describe_stack_events().stack_name(stack).send().await;
                panic!("stack {stack}: {status:?}; events: {events:#?}");
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("stack {stack} not created after 60 s");
}

/// What the worker depends on in a queue, with the resource names taken out.
async fn queue_shape(app: &TestApp, queue_url: &str, inbox: &str) -> serde_json::Value {
    let attrs = app
        .queue_attributes(queue_url, &[QueueAttributeName::All])
        .await;
    let json = |name: QueueAttributeName| -> serde_json::Value {
        serde_json::from_str(&attrs[&name]).unwrap()
    };
    let redrive = json(QueueAttributeName::RedrivePolicy);
    let queue_arn = &attrs[&QueueAttributeName::QueueArn];
    let policy = json(QueueAttributeName::Policy);
    let allow = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Effect"] == "Allow")
        .expect("an Allow statement for S3")
        .clone();
    serde_json::json!({
        "visibility": attrs[&QueueAttributeName::VisibilityTimeout],
        "wait": attrs[&QueueAttributeName::ReceiveMessageWaitTimeSeconds],
        "dlq_is_queue_dash_dlq": redrive["deadLetterTargetArn"] == format!("{queue_arn}-dlq"),
        "max_receives": redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "allow_principal": allow["Principal"],
        "allow_action": allow["Action"],
        "allow_resource_is_queue": allow["Resource"] == queue_arn.as_str(),
        "allow_only_from_inbox": allow["Condition"]["ArnLike"]["aws:SourceArn"] == format!("arn:aws:s3:::{inbox}"),
    })
}

async fn notification_events(app: &TestApp, bucket: &str) -> Vec<Vec<String>> {
    app.clients
        .s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap()
        .queue_configurations()
        .iter()
        .map(|q| q.events().iter().map(|e| e.as_str().to_owned()).collect())
        .collect()
}
