//! How many S3 calls each flow makes, counted on the app's own SDK client
//! (`imgflow::aws::Calls`, every attempt by operation and status): on AWS
//! each is money, on LocalStack the ceiling.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use imgflow::aws::Calls;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::harness::{Options, ROCKET, TestApp};

/// The calls made since `before`, as "Operation status" → count.
fn since(calls: &Calls, before: &BTreeMap<(String, u16), u64>) -> BTreeMap<String, u64> {
    calls
        .snapshot()
        .into_iter()
        .filter_map(|((op, status), n)| {
            let n = n - before.get(&(op.clone(), status)).copied().unwrap_or(0);
            (n > 0).then(|| (format!("{op} {status}"), n))
        })
        .collect()
}

fn resize_form() -> Form {
    Form::new()
        .part(
            "file",
            Part::bytes(ROCKET.to_vec())
                .file_name("photo.jpg")
                .mime_str("image/jpeg")
                .unwrap(),
        )
        .text("width", "120")
}

async fn resize(http: &reqwest::Client, api: &str) -> Value {
    let response = http
        .post(format!("{api}/api/images/upload/resize"))
        .multipart(resize_form())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn under_up_an_old_api_upload_hears_of_its_result_without_asking_s3() {
    let app = TestApp::spawn().await;
    let before = app.app_calls.snapshot();
    let answer = resize(&app.http, &app.api).await;
    assert_eq!(answer["success"], true, "{answer}");
    // The upload, the worker's one read of it at the event's ETag (no
    // HeadObject: the old API writes each key once), its output and
    // manifest; the API asks S3 nothing while it waits.
    let calls = since(&app.app_calls, &before);
    assert_eq!(
        calls,
        BTreeMap::from([
            ("GetObject 200".to_owned(), 1),
            ("PutObject 200".to_owned(), 3),
        ]),
        "no outbox polls, no 404s"
    );

    // The image it answered with: one GetObject, no listing, no manifest read.
    let before = app.app_calls.snapshot();
    let image = app
        .http
        .get(format!(
            "{}{}",
            app.api,
            answer["imageUrl"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(image.status(), StatusCode::OK);
    assert_eq!(image.headers()["content-type"], "image/jpeg");
    let bytes = image.bytes().await.unwrap();
    assert_eq!(crate::harness::decoded(&bytes).0, 120);
    assert_eq!(
        since(&app.app_calls, &before),
        BTreeMap::from([("GetObject 200".to_owned(), 1)])
    );
}

#[tokio::test]
async fn under_up_a_waiting_job_read_costs_one_listing_and_the_job_no_head() {
    let app = TestApp::spawn().await;
    let (status, upload) = app
        .post_upload(json!({"filename": "a.jpg", "content_type": "image/jpeg",
                            "size": ROCKET.len(), "recipe": "resize,w=64"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{upload}");
    let before = app.app_calls.snapshot();
    assert!(app.put_upload(&upload, ROCKET).await.is_success());
    let job = app.job(&upload, "?wait=20").await;
    assert_eq!(job["status"], "done", "{job}");
    let calls = since(&app.app_calls, &before);
    // At most the one check when the wait began (the job may already be done
    // then, which costs a GetObject of the manifest too); the announcement
    // brings the rest.
    let lists = calls.get("ListObjectsV2 200").copied().unwrap_or(0);
    assert!(lists <= 1, "{calls:?}");
    // The worker's one read of the upload, and the manifest only if that
    // first check found the job done already.
    let gets = calls.get("GetObject 200").copied().unwrap_or(0);
    assert!(gets == 1 || (gets == 2 && lists == 1), "{calls:?}");
    assert_eq!(calls.get("HeadObject 200"), None, "{calls:?}");
    assert!(calls.keys().all(|k| !k.ends_with(" 404")), "{calls:?}");
}

#[tokio::test]
async fn a_file_dropped_in_the_bucket_is_still_checked_for_a_newer_upload() {
    let app = TestApp::spawn().await;
    let before = app.app_calls.snapshot();
    app.put_inbox("dropped.jpg", ROCKET, &[("recipe", "resize,w=64")])
        .await;
    app.wait_for_manifest("dropped.jpg").await;
    app.wait_until_queue_is_empty().await;
    // Anyone may upload this key again while the job runs: one HeadObject
    // before the outputs are written keeps an older upload from overwriting
    // a newer one's.
    let calls = since(&app.app_calls, &before);
    assert_eq!(calls.get("HeadObject 200"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("GetObject 200"), Some(&1), "{calls:?}");
}

#[tokio::test]
async fn the_api_alone_waits_on_all_old_api_uploads_with_one_listing_per_turn() {
    let app = TestApp::spawn_with(Options {
        worker: None,
        ..Options::default()
    })
    .await;
    let mut worker = app.worker_process(&[]);
    let started = Instant::now();
    let before = app.app_calls.snapshot();
    let uploads = 4;
    let answers =
        futures_util::future::join_all((0..uploads).map(|_| resize(&app.http, &app.api))).await;
    let elapsed = started.elapsed();
    worker.kill().unwrap();
    worker.wait().unwrap();
    for answer in &answers {
        assert_eq!(answer["success"], true, "{answer}");
    }
    let calls = since(&app.app_calls, &before);
    // One manifest read per upload, never a GetObject that finds nothing.
    assert_eq!(calls.get("GetObject 200"), Some(&uploads), "{calls:?}");
    assert!(calls.keys().all(|k| !k.ends_with(" 404")), "{calls:?}");
    // One listing a turn for every waiting upload together, and turns at
    // most every 100 ms: per-request polling would make `uploads` times as many.
    let lists = calls.get("ListObjectsV2 200").copied().unwrap_or(0);
    let turns = elapsed.as_millis() as u64 / 100 + 2;
    assert!(
        lists >= 1 && lists <= turns,
        "{lists} listings in {elapsed:?}: {calls:?}"
    );
    assert_eq!(app.app_calls.count("HeadObject", None), 0);
}

/// Not a check: what LocalStack serves per image (the evaluation's count,
/// read from LocalStack's own request log, so the client's PUT and every
/// process are in it), with `imgflow api` and one `imgflow worker` as in
/// `bench/evaluate.sh`. Run alone against a private LocalStack:
/// `IMGFLOW_LOCALSTACK_LOG=<its log> cargo test --test it calls_per_image -- --ignored --nocapture`
#[tokio::test]
#[ignore = "a measurement: needs a LocalStack of its own and its log"]
async fn calls_per_image_light_with_wait_and_saturated() {
    let log = std::path::PathBuf::from(
        std::env::var("IMGFLOW_LOCALSTACK_LOG").expect("IMGFLOW_LOCALSTACK_LOG"),
    );
    let app = std::sync::Arc::new(
        TestApp::spawn_with(Options {
            worker: None,
            ..Options::default()
        })
        .await,
    );
    let mut worker = app.worker_process(&[("IMGFLOW_POLL_WAIT", "20")]);
    let job = |app: std::sync::Arc<TestApp>, wait: bool| async move {
        let (status, upload) = app
            .post_upload(json!({"filename": "p.jpg", "content_type": "image/jpeg",
                                "size": ROCKET.len()}))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(app.put_upload(&upload, ROCKET).await.is_success());
        if wait {
            let view = app.job(&upload, "?wait=20").await;
            assert_eq!(view["status"], "done", "{view}");
        }
        upload["key"].as_str().unwrap().to_owned()
    };
    let offset = || std::fs::metadata(&log).unwrap().len();
    let count = |from: u64| {
        let text = std::fs::read(&log).unwrap();
        let mut ops = BTreeMap::<String, u64>::new();
        for line in String::from_utf8_lossy(&text[from as usize..]).lines() {
            if let Some((_, rest)) = line.split_once(" AWS ") {
                let mut words = rest.split_whitespace();
                if let (Some(op), Some("=>"), Some(status)) =
                    (words.next(), words.next(), words.next())
                {
                    *ops.entry(format!("{op} {status}")).or_default() += 1;
                }
            }
        }
        ops
    };
    // Warm-up, not counted.
    for _ in 0..4 {
        job(app.clone(), true).await;
    }
    for (phase, n) in [
        ("light, 4/s, ?wait=20", 40usize),
        ("saturation, 8 clients", 120),
    ] {
        let from = offset();
        let started = tokio::time::Instant::now();
        if phase.starts_with("light") {
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..n {
                tokio::time::sleep_until(started + Duration::from_millis(250 * i as u64)).await;
                tasks.spawn(job(app.clone(), true));
            }
            tasks.join_all().await;
        } else {
            let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..8 {
                let (app, next) = (app.clone(), next.clone());
                tasks.spawn(async move {
                    let mut keys = vec![];
                    while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                        keys.push(job(app.clone(), false).await);
                    }
                    keys
                });
            }
            let sent: usize = tasks.join_all().await.iter().map(Vec::len).sum();
            // As the evaluation does: list the outbox once a second.
            loop {
                let mut done = 0;
                let mut pages = app
                    .clients
                    .s3
                    .list_objects_v2()
                    .bucket(&app.resources.outbox)
                    .prefix("uploads/")
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    done += page
                        .unwrap()
                        .contents()
                        .iter()
                        .filter(|o| o.key().is_some_and(|k| k.ends_with("/manifest.json")))
                        .count();
                }
                if done >= sent + 4 + 40 {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        let ops = count(from);
        let total: u64 = ops.values().sum();
        eprintln!(
            "{phase}: {n} images, {:.2} LocalStack calls per image",
            total as f64 / n as f64
        );
        for (op, c) in &ops {
            eprintln!("  {op}: {c} ({:.2} per image)", *c as f64 / n as f64);
        }
    }
    // The old API: 4 users, each 5 rounds of an upload and a GET of its image.
    let from = offset();
    let mut users = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let app = app.clone();
        users.spawn(async move {
            for _ in 0..5 {
                let form = reqwest::multipart::Form::new()
                    .part(
                        "file",
                        reqwest::multipart::Part::bytes(ROCKET.to_vec())
                            .file_name("photo.jpg")
                            .mime_str("image/jpeg")
                            .unwrap(),
                    )
                    .text("width", "120");
                let answer: Value = app
                    .http
                    .post(format!("{}/api/images/upload/resize", app.api))
                    .multipart(form)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(answer["success"], true, "{answer}");
                let url = format!("{}{}", app.api, answer["imageUrl"].as_str().unwrap());
                let image = app.http.get(url).send().await.unwrap();
                assert_eq!(image.status(), StatusCode::OK);
                image.bytes().await.unwrap();
            }
        });
    }
    users.join_all().await;
    let ops = count(from);
    let total: u64 = ops.values().sum();
    eprintln!(
        "old API, 4 users x 5 rounds (upload + GET image): 20 uploads, {:.2} LocalStack calls per upload",
        total as f64 / 20.0
    );
    for (op, c) in &ops {
        eprintln!("  {op}: {c} ({:.2} per upload)", *c as f64 / 20.0);
    }
    worker.kill().unwrap();
    worker.wait().unwrap();
}
