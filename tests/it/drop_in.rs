//! Jobs started with no API at all: anything that writes to the inbox.

use imgflow::outbox::Status;

use crate::harness::{CHELSEA, NOT_AN_IMAGE, ROCKET, TestApp, decoded};

#[tokio::test]
async fn a_file_dropped_in_the_inbox_is_processed_with_the_recipe_in_its_metadata() {
    let app = TestApp::spawn().await;
    // A space and a plus: S3 events URL-encode keys, and the worker must decode them.
    let key = "drop/my photo+1.jpg";
    app.put_inbox(key, ROCKET, &[("recipe", "small:resize,h=100/png")])
        .await;

    let manifest = app.wait_for_manifest(key).await;
    assert_eq!(manifest.status, Status::Done, "{manifest:?}");
    assert_eq!(manifest.source.key, key);
    assert_eq!(manifest.job_id, None);
    let output = &manifest.outputs[0];
    assert_eq!(output.key, "drop/my photo+1.jpg/small.png");
    assert_eq!((output.width, output.height), (150, 100));
    let bytes = app
        .get_outbox(&output.key)
        .await
        .expect("the output is in the outbox");
    assert_eq!(decoded(&bytes), (150, 100, image::ImageFormat::Png));
    app.wait_until_queue_is_empty().await;
}

#[tokio::test]
async fn an_upload_without_a_recipe_gets_the_default_preset() {
    let app = TestApp::spawn().await;
    app.put_inbox("plain.png", CHELSEA, &[]).await;
    let manifest = app.wait_for_manifest("plain.png").await;
    assert_eq!(manifest.status, Status::Done);
    assert_eq!(manifest.preset.as_deref(), Some("default"));
    let names: Vec<_> = manifest.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["thumb", "web"]);
    assert_eq!(
        (manifest.outputs[0].width, manifest.outputs[0].height),
        (256, 256)
    );
    // Never upscaled: the source is smaller than the "web" box.
    assert_eq!(
        (manifest.outputs[1].width, manifest.outputs[1].height),
        (451, 300)
    );
}

#[tokio::test]
async fn a_file_that_is_not_an_image_fails_cleanly_and_the_worker_carries_on() {
    let app = TestApp::spawn().await;
    app.put_inbox("notes.txt", NOT_AN_IMAGE, &[("recipe", "resize,w=10")])
        .await;

    let manifest = app.wait_for_manifest("notes.txt").await;
    assert_eq!(manifest.status, Status::Failed);
    let error = manifest.error.expect("a failed manifest carries its error");
    assert_eq!(error.code, "unsupported_image");
    assert!(error.message.contains("not an image"), "{}", error.message);
    assert!(manifest.outputs.is_empty());
    // Deleted, not left to be redelivered: the failure is permanent.
    app.wait_until_queue_is_empty().await;
    assert_eq!(app.messages_on(&app.queues.dlq_url).await, 0);

    app.put_inbox("after.jpg", ROCKET, &[("recipe", "resize,w=64")])
        .await;
    assert_eq!(
        app.wait_for_manifest("after.jpg").await.status,
        Status::Done
    );
}

#[tokio::test]
async fn a_bad_recipe_in_metadata_fails_with_its_position() {
    let app = TestApp::spawn().await;
    app.put_inbox("bad.jpg", ROCKET, &[("recipe", "resize,w=12x")])
        .await;
    let manifest = app.wait_for_manifest("bad.jpg").await;
    assert_eq!(manifest.status, Status::Failed);
    let error = manifest.error.unwrap();
    assert_eq!(error.code, "invalid_recipe");
    assert!(error.message.contains("column 10"), "{}", error.message);
}

#[tokio::test]
async fn the_s3_test_event_is_deleted_not_retried() {
    let app = TestApp::spawn().await;
    // Setup already made S3 send one; send another the way S3 words it.
    let body = include_str!("../fixtures/events/s3-test-event.json");
    app.send(body).await;
    app.wait_until_queue_is_empty().await;
    assert_eq!(app.messages_on(&app.queues.dlq_url).await, 0);
}
