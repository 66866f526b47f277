//! `setup --on-delete remove`: deleting a source removes its renditions and
//! manifest; an older delete never removes a newer upload's.

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use imgflow::config::QueueConfig;
use imgflow::outbox::{Manifest, Status, manifest_key};
use imgflow::setup::{self, OnDelete, Options as SetupOptions};

use crate::harness::{ROCKET, TestApp, spans};

/// The outcomes of the jobs the worker ran for `key` so far, in order
/// (from their spans: `done`, `skipped`, `removed`, …).
fn outcomes(app: &TestApp, key: &str) -> Vec<String> {
    let attr = |span: &opentelemetry_sdk::trace::SpanData, name: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == name)
            .map(|kv| kv.value.to_string())
    };
    let mut jobs: Vec<_> = spans()
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|s| {
            attr(s, "bucket").as_deref() == Some(app.resources.inbox.as_str())
                && attr(s, "key").as_deref() == Some(key)
                && attr(s, "outcome").is_some()
        })
        .collect();
    jobs.sort_by_key(|s| s.end_time);
    jobs.iter().filter_map(|s| attr(s, "outcome")).collect()
}

/// Wait until the worker has judged `n` events for `key`; their outcomes.
async fn wait_for_outcomes(app: &TestApp, key: &str, n: usize) -> Vec<String> {
    for _ in 0..120 {
        let seen = outcomes(app, key);
        if seen.len() >= n {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("fewer than {n} jobs for {key}: {:?}", outcomes(app, key));
}

/// The app, re-set-up with `--on-delete remove` (what the binary runs).
async fn app_removing_on_delete() -> TestApp {
    let app = TestApp::spawn().await;
    let options = SetupOptions {
        on_delete: Some(OnDelete::Remove),
        ..SetupOptions::default()
    };
    setup::run(
        &app.clients,
        &app.resources,
        &QueueConfig::default(),
        &[],
        &options,
    )
    .await
    .expect("setup --on-delete remove");
    app
}

async fn delete_source(app: &TestApp, key: &str, version: Option<&str>) {
    app.clients
        .s3
        .delete_object()
        .bucket(&app.resources.inbox)
        .key(key)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await
        .unwrap();
}

/// A manifest for `key` whose source has `etag`.
async fn wait_for_manifest_of(app: &TestApp, key: &str, etag: &str) -> Manifest {
    for _ in 0..240 {
        let manifest = app.wait_for_manifest(key).await;
        if manifest.source.etag.as_deref() == Some(etag) {
            return manifest;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("no manifest of {key} at ETag {etag}");
}

/// Every output and the manifest of `manifest` are (`true`) or are not there.
async fn all_there(app: &TestApp, manifest: &Manifest) -> Vec<bool> {
    let mut keys: Vec<String> = manifest.outputs.iter().map(|o| o.key.clone()).collect();
    keys.push(manifest_key(&manifest.source.key));
    let mut out = vec![];
    for key in keys {
        out.push(app.get_outbox(&key).await.is_some());
    }
    out
}

#[tokio::test]
async fn deleting_a_source_removes_its_outputs_and_manifest() {
    let app = app_removing_on_delete().await;
    let key = "gone/rocket.jpg";
    app.put_inbox(
        key,
        ROCKET,
        &[("recipe", "a:resize,w=40+b:resize,w=60/png")],
    )
    .await;
    let manifest = app.wait_for_manifest(key).await;
    assert_eq!(manifest.status, Status::Done, "{manifest:?}");
    assert_eq!(all_there(&app, &manifest).await, [true, true, true]);

    delete_source(&app, key, None).await;
    for _ in 0..120 {
        if all_there(&app, &manifest).await == [false, false, false] {
            app.wait_until_queue_is_empty().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!(
        "outputs left after the delete: {:?}",
        all_there(&app, &manifest).await
    );
}

#[tokio::test]
async fn deleting_an_older_version_after_a_newer_upload_removes_nothing_of_the_newer() {
    let app = app_removing_on_delete().await;
    app.clients
        .s3
        .put_bucket_versioning()
        .bucket(&app.resources.inbox)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let key = "versions/rocket.jpg";
    let put = |recipe: &'static str| {
        app.clients
            .s3
            .put_object()
            .bucket(&app.resources.inbox)
            .key(key)
            .metadata("recipe", recipe)
            .body(ByteStream::from(ROCKET.to_vec()))
            .send()
    };
    let a = put("a:resize,w=40").await.unwrap();
    wait_for_manifest_of(&app, key, a.e_tag().unwrap().trim_matches('"')).await;
    // Same bytes, different metadata: S3 gives the same ETag, so wait on the recipe.
    let b = put("b:resize,w=48").await.unwrap();
    let newer = loop {
        let manifest = app.wait_for_manifest(key).await;
        if manifest.outputs.first().is_some_and(|o| o.name == "b") {
            break manifest;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    app.wait_until_queue_is_empty().await;

    // A's version goes: S3 sends ObjectRemoved:Delete for it; B stays current.
    delete_source(&app, key, a.version_id()).await;
    let judged = wait_for_outcomes(&app, key, 3).await;
    assert_eq!(
        judged,
        ["done", "done", "skipped"],
        "the removal was judged stale"
    );
    app.wait_until_queue_is_empty().await;
    assert_eq!(
        all_there(&app, &newer).await,
        [true, true],
        "B's outputs stay"
    );
    assert_eq!(app.wait_for_manifest(key).await, newer);
    assert!(b.version_id().is_some());
}

/// A removal event as S3 sends it (`ObjectRemoved:Delete`), with its sequencer.
fn removal_event(bucket: &str, key: &str, sequencer: &str) -> String {
    serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-12-01T00:00:00.000Z", "eventName": "ObjectRemoved:Delete",
        "userIdentity": {"principalId": "AIDAJDPLRKLG7UEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "0ca7e20c", "x-amz-id-2": "x"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": setup::INBOX_ID,
               "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": key, "sequencer": sequencer}},
    }]})
    .to_string()
}

#[tokio::test]
async fn a_removal_older_than_the_manifests_upload_keeps_its_outputs() {
    // Without --on-delete: deleting the source sends no event, so the test
    // delivers removal events itself, in the order it chooses.
    let app = TestApp::spawn().await;
    let key = "stale/rocket.jpg";
    app.put_inbox(key, ROCKET, &[("recipe", "resize,w=40")])
        .await;
    let manifest = app.wait_for_manifest(key).await;
    let upload = manifest
        .source
        .sequencer
        .clone()
        .expect("S3 events carry a sequencer");
    delete_source(&app, key, None).await;

    // One lower than the upload's: a delete from before that upload.
    let older = format!(
        "{:0width$X}",
        u128::from_str_radix(&upload, 16).unwrap() - 1,
        width = upload.len()
    );
    app.send(&removal_event(&app.resources.inbox, key, &older))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    app.wait_until_queue_is_empty().await;
    assert_eq!(
        all_there(&app, &manifest).await,
        [true, true],
        "a stale delete removed outputs"
    );

    // One higher: the delete of this very upload.
    let newer = format!(
        "{:0width$X}",
        u128::from_str_radix(&upload, 16).unwrap() + 1,
        width = upload.len()
    );
    app.send(&removal_event(&app.resources.inbox, key, &newer))
        .await;
    for _ in 0..120 {
        if all_there(&app, &manifest).await == [false, false] {
            let judged = wait_for_outcomes(&app, key, 3).await;
            assert_eq!(judged, ["done", "skipped", "removed"]);
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the current delete removed nothing");
}

#[tokio::test]
async fn a_delete_right_after_its_upload_leaves_nothing_behind() {
    let app = app_removing_on_delete().await;
    let key = "quick/rocket.jpg";
    app.put_inbox(key, ROCKET, &[("recipe", "resize,w=40")])
        .await;
    delete_source(&app, key, None).await;
    // Whichever event the worker sees first, both are judged...
    wait_for_outcomes(&app, key, 2).await;
    app.wait_until_queue_is_empty().await;
    // ...and nothing is left for the deleted source.
    assert!(app.get_outbox(&manifest_key(key)).await.is_none());
    assert!(app.get_outbox(&format!("{key}/main.jpg")).await.is_none());
}

#[tokio::test]
async fn a_delete_between_two_uploads_keeps_the_second_uploads_outputs() {
    let app = app_removing_on_delete().await;
    let key = "between/rocket.jpg";
    app.put_inbox(key, ROCKET, &[("recipe", "a:resize,w=40")])
        .await;
    delete_source(&app, key, None).await;
    app.put_inbox(key, ROCKET, &[("recipe", "b:resize,w=48")])
        .await;
    // Created A, removed, created B: three events, in whatever order.
    wait_for_outcomes(&app, key, 3).await;
    app.wait_until_queue_is_empty().await;
    let manifest = app.wait_for_manifest(key).await;
    assert_eq!(manifest.outputs[0].name, "b", "{manifest:?}");
    assert_eq!(all_there(&app, &manifest).await, [true, true]);
}
