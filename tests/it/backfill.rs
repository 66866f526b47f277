//! `imgflow backfill` (the real binary) on objects already in the inbox.

use std::time::Duration;

use aws_sdk_s3::types::NotificationConfiguration;
use futures_util::{FutureExt, StreamExt};
use imgflow::outbox::Status;

use crate::harness::{CHELSEA, Options, TestApp};

/// `imgflow backfill ARGS` on the app's resources; its stdout.
async fn backfill(app: &TestApp, args: &[&str]) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_imgflow"))
        .arg("backfill")
        .args(args)
        .env("IMGFLOW_INBOX", &app.resources.inbox)
        .env("IMGFLOW_OUTBOX", &app.resources.outbox)
        .env("IMGFLOW_QUEUE", &app.resources.queue)
        .output()
        .await
        .expect("run imgflow backfill");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "imgflow backfill {args:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A small JPEG, so that 500 jobs stay quick.
fn tiny_jpeg() -> Vec<u8> {
    let image = image::RgbImage::from_fn(48, 32, |x, y| image::Rgb([x as u8 * 5, y as u8 * 7, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(image)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

/// Manifest keys in the outbox.
async fn manifests(app: &TestApp) -> Vec<String> {
    let mut keys = Vec::new();
    let mut pages = app
        .clients
        .s3
        .list_objects_v2()
        .bucket(&app.resources.outbox)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for object in page.unwrap().contents() {
            let key = object.key().unwrap();
            if key.ends_with("/manifest.json") {
                keys.push(key.to_owned());
            }
        }
    }
    keys
}

/// The same `bytes` at every key of `keys`, 32 uploads at a time.
async fn put_all(app: &TestApp, keys: &[String], bytes: &[u8]) {
    futures_util::stream::iter(keys)
        .for_each_concurrent(32, |key| app.put_inbox(key, bytes, &[]).map(drop))
        .await;
}

/// Remove imgflow's notification and the test event it sent: the inbox
/// as it was before imgflow was set up on it.
async fn without_notification(app: &TestApp) {
    app.clients
        .s3
        .put_bucket_notification_configuration()
        .bucket(&app.resources.inbox)
        .notification_configuration(NotificationConfiguration::builder().build())
        .send()
        .await
        .unwrap();
    app.clients
        .sqs
        .purge_queue()
        .queue_url(&app.queues.queue_url)
        .send()
        .await
        .unwrap();
    app.wait_until_queue_is_empty().await;
}

#[tokio::test]
async fn a_backfill_in_two_parts_enqueues_500_objects_once_each_and_then_nothing_is_missing() {
    let app = TestApp::spawn_with(Options {
        worker: None,
        ..Options::default()
    })
    .await;
    without_notification(&app).await;
    let jpeg = tiny_jpeg();
    let keys: Vec<String> = (0..500).map(|i| format!("old/{i:04}.jpg")).collect();
    put_all(&app, &keys, &jpeg).await;
    // A folder marker, which is not an image to process.
    app.put_inbox("old/", b"", &[]).await;
    assert_eq!(app.messages_on(&app.queues.queue_url).await, 0);

    let dir = std::env::temp_dir().join(format!("imgflow-backfill-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let cursor = dir.join("cursor.json");
    let cursor = cursor.to_str().unwrap();
    let target = format!("s3://{}/old/", app.resources.inbox);
    let recipe = "small:resize,w=16/png";
    let common = [
        target.as_str(),
        "--recipe",
        recipe,
        "--rate",
        "2000",
        "--cursor",
        cursor,
    ];

    // Interrupted half-way (--limit), then resumed from the cursor file.
    let first = backfill(&app, &[&common[..], &["--limit", "250"]].concat()).await;
    assert!(
        first.contains("listed 251, enqueued 250, skipped 1 (0 already done, 1 folders)"),
        "{first}"
    );
    assert!(first.contains("resume with --cursor"), "{first}");
    assert_eq!(app.messages_on(&app.queues.queue_url).await, 250);
    let second = backfill(&app, &common).await;
    assert!(
        second.contains("listed 250, enqueued 250, skipped 0 (0 already done, 0 folders)"),
        "{second}"
    );
    assert!(!std::path::Path::new(cursor).exists(), "removed at the end");
    // 500 messages, and (below) a manifest for each of the 500 keys: each key once.
    assert_eq!(app.messages_on(&app.queues.queue_url).await, 500);

    let mut worker = app.worker_process(&[("IMGFLOW_WORKER_CONCURRENCY", "4")]);
    let mut found = Vec::new();
    for _ in 0..600 {
        found = manifests(&app).await;
        if found.len() >= 500 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    found.sort();
    let expected: Vec<String> = keys.iter().map(|k| format!("{k}/manifest.json")).collect();
    assert_eq!(found, expected, "one manifest per object");
    app.wait_until_queue_is_empty().await;
    let sample = app.wait_for_manifest("old/0123.jpg").await;
    assert_eq!(sample.status, Status::Done);
    assert_eq!(sample.recipe.as_deref(), Some("small:resize,w=16/png"));
    assert_eq!(sample.outputs[0].width, 16);

    // Everything is done with this recipe: nothing to enqueue.
    let again = backfill(
        &app,
        &[target.as_str(), "--recipe", recipe, "--only-missing"],
    )
    .await;
    assert!(
        again.contains("enqueued 0, skipped 501 (500 already done"),
        "{again}"
    );
    assert_eq!(app.messages_on(&app.queues.queue_url).await, 0);
    // Another recipe for a tenth of them: those are missing.
    let other = backfill(
        &app,
        &[
            &format!("{target}00"),
            "--preset",
            "thumbnail",
            "--only-missing",
            "--dry-run",
        ],
    )
    .await;
    assert!(other.contains("would enqueue 100, skipped 0"), "{other}");
    assert_eq!(
        app.messages_on(&app.queues.queue_url).await,
        0,
        "a dry run sends nothing"
    );

    worker.kill().unwrap();
    worker.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_backfill_killed_mid_way_resumes_from_its_cursor_resending_at_most_one_batch() {
    let app = TestApp::spawn_with(Options {
        worker: None,
        ..Options::default()
    })
    .await;
    without_notification(&app).await;
    let jpeg = tiny_jpeg();
    let keys: Vec<String> = (0..300).map(|i| format!("k/{i:04}.jpg")).collect();
    put_all(&app, &keys, &jpeg).await;
    let dir = std::env::temp_dir().join(format!("imgflow-backfill-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let cursor = dir.join("cursor.json");
    let target = format!("s3://{}/k/", app.resources.inbox);
    let args = [
        target.as_str(),
        "--rate",
        "100",
        "--cursor",
        cursor.to_str().unwrap(),
    ];
    // About 3 s at 100 a second: killed (SIGKILL, no chance to save) after 1.5 s.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_imgflow"))
        .arg("backfill")
        .args(args)
        .env("IMGFLOW_INBOX", &app.resources.inbox)
        .env("IMGFLOW_OUTBOX", &app.resources.outbox)
        .env("IMGFLOW_QUEUE", &app.resources.queue)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().await.unwrap();
    let sent_before = app.messages_on(&app.queues.queue_url).await;
    // --rate bounds it: at most 100 a second (plus the batch that starts
    // each second's budget) since the process started.
    assert!(
        (1..=160).contains(&sent_before),
        "killed half-way: {sent_before} sent"
    );
    assert!(cursor.exists(), "the cursor was saved along the way");
    backfill(&app, &args).await;

    // Every key at least once; the extra ones (at most one batch) are the
    // batch in flight when the process died.
    let mut seen: std::collections::BTreeMap<String, u32> = Default::default();
    loop {
        let batch = app
            .clients
            .sqs
            .receive_message()
            .queue_url(&app.queues.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if batch.is_empty() {
            break;
        }
        for message in batch {
            let body: serde_json::Value = serde_json::from_str(message.body().unwrap()).unwrap();
            *seen
                .entry(body["key"].as_str().unwrap().to_owned())
                .or_default() += 1;
            app.clients
                .sqs
                .delete_message()
                .queue_url(&app.queues.queue_url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    assert_eq!(seen.keys().cloned().collect::<Vec<_>>(), keys);
    let twice: Vec<&String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(
        twice.len() <= 10,
        "more than one batch sent twice: {twice:?}"
    );
    assert!(seen.values().all(|n| *n <= 2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn backfilling_with_another_preset_regenerates_the_renditions() {
    let app = TestApp::spawn().await;
    app.put_inbox("re/cat.png", CHELSEA, &[]).await;
    let before = app.wait_for_manifest("re/cat.png").await;
    assert_eq!(before.preset.as_deref(), Some("default"));

    let target = format!("s3://{}/re/", app.resources.inbox);
    let out = backfill(&app, &[&target, "--preset", "avatar", "--only-missing"]).await;
    assert!(out.contains("enqueued 1,"), "{out}");
    let mut after = before.clone();
    for _ in 0..240 {
        after = app.wait_for_manifest("re/cat.png").await;
        if after.preset.as_deref() == Some("avatar") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(after.status, Status::Done, "{after:?}");
    assert_eq!(after.preset.as_deref(), Some("avatar"));
    let sizes: Vec<_> = after
        .outputs
        .iter()
        .map(|o| (o.key.as_str(), o.width, o.height))
        .collect();
    assert_eq!(
        sizes,
        [
            ("re/cat.png/avatar.webp", 128, 128),
            ("re/cat.png/avatar-2x.webp", 256, 256)
        ]
    );
    assert!(app.get_outbox("re/cat.png/avatar.webp").await.is_some());
    app.wait_until_queue_is_empty().await;
    let none = backfill(&app, &[&target, "--preset", "avatar", "--only-missing"]).await;
    assert!(none.contains("enqueued 0,"), "{none}");
}

#[tokio::test]
async fn backfill_refuses_the_outbox_and_unknown_presets() {
    let app = TestApp::spawn_with(Options {
        worker: None,
        ..Options::default()
    })
    .await;
    let run = |args: Vec<String>| {
        let app = &app;
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_imgflow"))
                .arg("backfill")
                .args(args)
                .env("IMGFLOW_INBOX", &app.resources.inbox)
                .env("IMGFLOW_OUTBOX", &app.resources.outbox)
                .env("IMGFLOW_QUEUE", &app.resources.queue)
                .output()
                .await
                .unwrap()
        }
    };
    let outbox = run(vec![format!("s3://{}/", app.resources.outbox)]).await;
    assert!(!outbox.status.success());
    assert!(String::from_utf8_lossy(&outbox.stderr).contains("is the outbox"));
    let preset = run(vec![
        format!("s3://{}/", app.resources.inbox),
        "--preset".into(),
        "nope".into(),
    ])
    .await;
    assert!(!preset.status.success());
    assert!(String::from_utf8_lossy(&preset.stderr).contains("no preset named \"nope\""));
}
