//! At-least-once delivery: duplicates, stale events, the loop guard, the DLQ.

use imgflow::config::QueueConfig;
use imgflow::config::WorkerConfig;
use imgflow::dlq;
use imgflow::outbox::{self, Status};

use crate::harness::{CHELSEA, Options, ROCKET, TestApp};

/// An S3 `ObjectCreated:Put` notification, worded as LocalStack words it.
fn event(bucket: &str, key: &str, etag: &str, sequencer: &str) -> String {
    let mut body: serde_json::Value = serde_json::from_str(include_str!(
        "../fixtures/events/localstack-object-created.json"
    ))
    .unwrap();
    let s3 = &mut body["Records"][0]["s3"];
    s3["bucket"]["name"] = bucket.into();
    s3["bucket"]["arn"] = format!("arn:aws:s3:::{bucket}").into();
    s3["object"]["key"] = key.replace(' ', "+").into();
    s3["object"]["eTag"] = etag.into();
    s3["object"]["sequencer"] = sequencer.into();
    body.to_string()
}

#[tokio::test]
async fn the_same_event_delivered_twice_gives_one_result() {
    let app = TestApp::spawn().await;
    let etag = app
        .put_inbox("twice.jpg", ROCKET, &[("recipe", "resize,w=100")])
        .await;
    let first = app.wait_for_manifest("twice.jpg").await;
    app.wait_until_queue_is_empty().await;
    let output = app.get_outbox("twice.jpg/main.jpg").await.unwrap();

    // S3 delivers at least once: here is the same notification again.
    app.send(&event(
        &app.resources.inbox,
        "twice.jpg",
        &etag,
        "0055AED6DCD90281E5",
    ))
    .await;
    app.wait_until_queue_is_empty().await;
    let second = app.wait_for_manifest("twice.jpg").await;
    assert_eq!(second.status, Status::Done);
    assert_eq!(second.outputs, first.outputs, "an identical rewrite");
    assert_eq!(app.get_outbox("twice.jpg/main.jpg").await.unwrap(), output);
    assert_eq!(app.messages_on(&app.queues.dlq_url).await, 0);
}

#[tokio::test]
async fn an_older_event_arriving_after_a_newer_upload_keeps_the_newer_outputs() {
    let app = TestApp::spawn().await;
    let old_etag = app
        .put_inbox("photo.jpg", ROCKET, &[("recipe", "resize,w=100")])
        .await;
    app.wait_for_manifest("photo.jpg").await;
    app.wait_until_queue_is_empty().await;
    // A newer upload of the same key, different content and recipe.
    let new_etag = app
        .put_inbox("photo.jpg", CHELSEA, &[("recipe", "resize,w=50")])
        .await;
    assert_ne!(old_etag, new_etag);
    for _ in 0..120 {
        let manifest = app.wait_for_manifest("photo.jpg").await;
        if manifest.source.etag.as_deref() == Some(new_etag.as_str()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    app.wait_until_queue_is_empty().await;

    // Now the first upload's event comes again, late.
    app.send(&event(
        &app.resources.inbox,
        "photo.jpg",
        &old_etag,
        "0055AED6DCD90281E5",
    ))
    .await;
    app.wait_until_queue_is_empty().await;
    let manifest = app.wait_for_manifest("photo.jpg").await;
    assert_eq!(manifest.source.etag.as_deref(), Some(new_etag.as_str()));
    assert_eq!(
        (manifest.outputs[0].width, manifest.outputs[0].height),
        (50, 33)
    );
    let bytes = app.get_outbox(&manifest.outputs[0].key).await.unwrap();
    assert_eq!(
        crate::harness::decoded(&bytes).0,
        50,
        "the newer upload's output stays"
    );
}

#[tokio::test]
async fn imgflow_never_processes_its_own_outputs_or_the_outbox() {
    let app = TestApp::spawn().await;
    app.put_inbox("a.jpg", ROCKET, &[("recipe", "resize,w=64")])
        .await;
    app.wait_for_manifest("a.jpg").await;

    // An event that names the outbox (a misconfigured notification).
    app.send(&event(&app.resources.outbox, "a.jpg/main.jpg", "x", "01"))
        .await;
    // One of our outputs copied back into the inbox, metadata and all.
    app.clients
        .s3
        .copy_object()
        .copy_source(format!("{}/a.jpg/main.jpg", app.resources.outbox))
        .bucket(&app.resources.inbox)
        .key("copied.jpg")
        .send()
        .await
        .unwrap();
    app.wait_until_queue_is_empty().await;
    for key in ["a.jpg/main.jpg", "copied.jpg"] {
        let manifest = app.get_outbox(&outbox::manifest_key(key)).await;
        assert!(manifest.is_none(), "{key} must not be processed");
    }
}

#[tokio::test]
async fn a_message_that_keeps_failing_ends_in_the_dlq_and_can_be_listed_and_redriven() {
    let app = TestApp::spawn_with(Options {
        queue: QueueConfig {
            visibility_timeout_secs: 5,
            max_receive_count: 2,
            ..QueueConfig::default()
        },
        worker: Some(WorkerConfig {
            poll_wait_secs: 1,
            ..WorkerConfig::default()
        }),
        api_keys: vec![],
        upload_expiry_secs: 300,
    })
    .await;
    app.send("this is not an S3 notification").await;
    app.wait_until_empty(&app.queues.queue_url, 40).await;
    assert_eq!(app.messages_on(&app.queues.dlq_url).await, 1);

    let entries = dlq::list(&app.clients, &app.resources, 10).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert!(
        entries[0].reason.contains("not an S3 event notification"),
        "{}",
        entries[0].reason
    );
    assert!(entries[0].receives >= 2);
    // Listing leaves it there.
    assert_eq!(app.messages_on(&app.queues.dlq_url).await, 1);

    let moved = dlq::redrive(&app.clients, &app.resources, 10)
        .await
        .unwrap();
    assert_eq!(moved, 1);
    assert_eq!(app.messages_on(&app.queues.dlq_url).await, 0);
}
