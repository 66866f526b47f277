//! `imgflow setup` on a bucket and queue that already do things: it merges
//! (notifications, queue policy, CORS), refuses what S3 would refuse, and
//! `--dry-run` changes nothing. Runs the real binary.

use std::process::{Command, Output};
use std::time::Duration;

use aws_sdk_s3::types::{
    CorsConfiguration, CorsRule, Event, FilterRule, FilterRuleName, NotificationConfiguration,
    NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
};
use aws_sdk_sqs::types::QueueAttributeName;
use imgflow::aws::Clients;
use imgflow::config::Resources;
use imgflow::outbox::Status;
use imgflow::setup::{self, SetupReport};

use crate::harness::{Options, ROCKET, TestApp, aws_config, fresh_resources};

/// `imgflow setup ARGS` on `res`, against the test's LocalStack.
pub fn imgflow_setup(res: &Resources, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_imgflow"));
    command
        .arg("setup")
        .args(args)
        .env("IMGFLOW_INBOX", &res.inbox)
        .env("IMGFLOW_OUTBOX", &res.outbox)
        .env("IMGFLOW_QUEUE", &res.queue)
        .env_remove("IMGFLOW_CORS_ORIGINS");
    for flag in imgflow_setup_variables() {
        command.env_remove(flag);
    }
    if let Some(endpoint) = aws_config().endpoint_url {
        command.env("AWS_ENDPOINT_URL", endpoint);
    }
    command.output().expect("run imgflow setup")
}

/// The variables behind setup's own flags: a test sets flags, not these.
pub fn imgflow_setup_variables() -> [&'static str; 5] {
    [
        "IMGFLOW_NOTIFY_PREFIX",
        "IMGFLOW_NOTIFY_SUFFIX",
        "IMGFLOW_ON_DELETE",
        "IMGFLOW_EVENTS_QUEUE",
        "IMGFLOW_EVENTS_TOPIC",
    ]
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const THEIRS: &str = "someone-elses-entry";
const THEIR_SID: &str = "someone-elses-statement";
const THEIR_CORS: &str = "someone-elses-cors";

/// A bucket, a queue of someone else's that it notifies (ObjectCreated on
/// `prefix`, or on every key), a CORS rule of theirs, and imgflow's job
/// queue already holding a policy statement of theirs. The other queue's URL.
async fn someone_elses_setup(clients: &Clients, res: &Resources, prefix: Option<&str>) -> String {
    clients
        .s3
        .create_bucket()
        .bucket(&res.inbox)
        .send()
        .await
        .unwrap();
    let other_name = format!("{}-other", res.queue);
    let other = clients
        .sqs
        .create_queue()
        .queue_name(&other_name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let other_arn = setup::queue_arn(clients, &other).await.unwrap();
    let allow = |sid: &str, arn: &str| {
        serde_json::json!({"Version": "2012-10-17", "Statement": [{
            "Sid": sid, "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": arn,
        }]})
        .to_string()
    };
    clients
        .sqs
        .set_queue_attributes()
        .queue_url(&other)
        .attributes(QueueAttributeName::Policy, allow(THEIR_SID, &other_arn))
        .send()
        .await
        .unwrap();
    // imgflow's job queue exists already, with someone else's statement.
    let jobs = clients
        .sqs
        .create_queue()
        .queue_name(&res.queue)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let jobs_arn = setup::queue_arn(clients, &jobs).await.unwrap();
    clients
        .sqs
        .set_queue_attributes()
        .queue_url(&jobs)
        .attributes(QueueAttributeName::Policy, allow(THEIR_SID, &jobs_arn))
        .send()
        .await
        .unwrap();

    let mut entry = QueueConfiguration::builder()
        .id(THEIRS)
        .queue_arn(&other_arn)
        .events(Event::from("s3:ObjectCreated:*"));
    if let Some(prefix) = prefix {
        entry = entry.filter(
            NotificationConfigurationFilter::builder()
                .key(
                    S3KeyFilter::builder()
                        .filter_rules(
                            FilterRule::builder()
                                .name(FilterRuleName::Prefix)
                                .value(prefix)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        );
    }
    clients
        .s3
        .put_bucket_notification_configuration()
        .bucket(&res.inbox)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(entry.build().unwrap())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let rule = CorsRule::builder()
        .id(THEIR_CORS)
        .allowed_origins("https://theirs.example")
        .allowed_methods("GET")
        .build()
        .unwrap();
    clients
        .s3
        .put_bucket_cors()
        .bucket(&res.inbox)
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(rule)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    other
}

/// Everything setup could touch, as text to compare before and after.
async fn snapshot(clients: &Clients, res: &Resources) -> String {
    let notifications = clients
        .s3
        .get_bucket_notification_configuration()
        .bucket(&res.inbox)
        .send()
        .await
        .unwrap();
    let cors = clients
        .s3
        .get_bucket_cors()
        .bucket(&res.inbox)
        .send()
        .await
        .map(|c| format!("{:?}", c.cors_rules()))
        .unwrap_or_else(|e| format!("no CORS: {:?}", e.raw_response().map(|r| r.status())));
    let mut queues = String::new();
    for name in [
        res.queue.clone(),
        res.dlq(),
        format!("{}-other", res.queue),
        format!("{}-events", res.queue),
    ] {
        match clients.sqs.get_queue_url().queue_name(&name).send().await {
            Ok(out) => {
                let attrs = clients
                    .sqs
                    .get_queue_attributes()
                    .queue_url(out.queue_url.unwrap())
                    .attribute_names(QueueAttributeName::Policy)
                    .attribute_names(QueueAttributeName::RedrivePolicy)
                    .attribute_names(QueueAttributeName::VisibilityTimeout)
                    .send()
                    .await
                    .unwrap();
                let mut attrs: Vec<_> = attrs.attributes.unwrap_or_default().into_iter().collect();
                attrs.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
                queues += &format!("{name}: {attrs:?}\n");
            }
            Err(_) => queues += &format!("{name}: none\n"),
        }
    }
    let outbox = clients.s3.head_bucket().bucket(&res.outbox).send().await;
    format!(
        "queues {:?}\ntopics {:?}\nlambdas {:?}\ncors {cors}\n{queues}outbox exists: {}",
        notifications.queue_configurations(),
        notifications.topic_configurations(),
        notifications.lambda_function_configurations(),
        outbox.is_ok()
    )
}

fn statement_sids(policy: &str) -> Vec<String> {
    let policy: serde_json::Value = serde_json::from_str(policy).unwrap();
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Sid"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A message on `queue` about `key`, within 20 s.
async fn wait_for_event(clients: &Clients, queue: &str, key: &str) {
    for _ in 0..20 {
        let got = clients
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for message in got.messages() {
            let body = message.body().unwrap_or_default();
            if body.contains(&format!("\"key\":\"{key}\""))
                || body.contains(&format!("\"key\": \"{key}\""))
            {
                return;
            }
        }
    }
    panic!("no event for {key} on {queue}");
}

#[tokio::test]
async fn setup_twice_keeps_someone_elses_notification_policy_and_cors_and_both_queues_get_events() {
    let clients = Clients::new(&aws_config()).await;
    let res = fresh_resources();
    let other = someone_elses_setup(&clients, &res, Some("other/")).await;

    // The dry run first: it changes nothing.
    let before = snapshot(&clients, &res).await;
    let dry = imgflow_setup(
        &res,
        &["--prefix", "photos/", "--on-delete", "remove", "--dry-run"],
    );
    assert!(dry.status.success(), "{}", text(&dry));
    let plan = String::from_utf8_lossy(&dry.stdout);
    assert!(plan.contains(&format!("= {THEIRS}: queue ")), "{plan}");
    assert!(
        plan.contains("+ imgflow-inbox-object-created: queue "),
        "{plan}"
    );
    assert!(plan.contains("dry run: nothing was changed"), "{plan}");
    assert_eq!(
        snapshot(&clients, &res).await,
        before,
        "--dry-run changed something"
    );

    for run in 0..2 {
        let out = imgflow_setup(
            &res,
            &[
                "--prefix",
                "photos/",
                "--cors-origin",
                "http://127.0.0.1:3000",
            ],
        );
        assert!(out.status.success(), "run {run}: {}", text(&out));
    }
    let after_twice = snapshot(&clients, &res).await;
    let again = imgflow_setup(
        &res,
        &[
            "--prefix",
            "photos/",
            "--cors-origin",
            "http://127.0.0.1:3000",
        ],
    );
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing to change"),
        "{}",
        text(&again)
    );
    assert_eq!(
        snapshot(&clients, &res).await,
        after_twice,
        "a third run is a no-op"
    );

    let notifications = clients
        .s3
        .get_bucket_notification_configuration()
        .bucket(&res.inbox)
        .send()
        .await
        .unwrap();
    let ids: Vec<_> = notifications
        .queue_configurations()
        .iter()
        .map(|q| q.id().unwrap_or_default())
        .collect();
    assert_eq!(
        ids,
        [THEIRS, setup::INBOX_ID],
        "theirs kept, ours added once"
    );
    let cors = clients
        .s3
        .get_bucket_cors()
        .bucket(&res.inbox)
        .send()
        .await
        .unwrap();
    let cors_ids: Vec<_> = cors
        .cors_rules()
        .iter()
        .map(|r| r.id().unwrap_or_default())
        .collect();
    assert_eq!(cors_ids, [THEIR_CORS, setup::CORS_UPLOAD_ID]);
    let jobs = imgflow::aws::queue_url(&clients.sqs, &res.queue)
        .await
        .unwrap();
    let policy = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&jobs)
        .attribute_names(QueueAttributeName::Policy)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
        .remove(&QueueAttributeName::Policy)
        .unwrap();
    assert_eq!(statement_sids(&policy), [THEIR_SID, setup::INBOX_SID]);

    // Both queues receive their events: theirs under other/, imgflow's under photos/.
    let queues = SetupReport {
        queue_arn: setup::queue_arn(&clients, &jobs).await.unwrap(),
        queue_url: jobs,
        dlq_url: imgflow::aws::queue_url(&clients.sqs, &res.dlq())
            .await
            .unwrap(),
    };
    let app = TestApp::spawn_on(clients.clone(), res.clone(), queues, Options::default()).await;
    app.put_inbox("other/theirs.jpg", ROCKET, &[]).await;
    app.put_inbox("photos/ours.jpg", ROCKET, &[("recipe", "resize,w=40")])
        .await;
    wait_for_event(&clients, &other, "other/theirs.jpg").await;
    let manifest = app.wait_for_manifest("photos/ours.jpg").await;
    assert_eq!(manifest.status, Status::Done, "{manifest:?}");
    app.wait_until_queue_is_empty().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        app.get_outbox("other/theirs.jpg/manifest.json")
            .await
            .is_none(),
        "imgflow processed a key outside its prefix"
    );
}

#[tokio::test]
async fn setup_refuses_a_configuration_s3_would_refuse_and_changes_nothing() {
    let clients = Clients::new(&aws_config()).await;
    let res = fresh_resources();
    // Theirs: every new object, no filter.
    someone_elses_setup(&clients, &res, None).await;
    let before = snapshot(&clients, &res).await;
    for args in [
        &[][..],
        &["--prefix", "photos/"][..],
        &["--suffix", ".jpg", "--dry-run"][..],
    ] {
        let out = imgflow_setup(&res, args);
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("{THEIRS:?}")),
            "{args:?}: names the entry: {stderr}"
        );
        assert!(
            stderr.contains(&format!("{}-other", res.queue)),
            "names its target: {stderr}"
        );
        assert!(stderr.contains("Nothing was changed"), "{stderr}");
        assert_eq!(
            snapshot(&clients, &res).await,
            before,
            "{args:?} changed something"
        );
    }
}
