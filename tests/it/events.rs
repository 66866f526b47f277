//! "Job finished" events: `setup --events-queue` / `--events-topic`, and
//! `imgflow events tail` reading them (the real binary).

use std::process::Command;

use imgflow::config::QueueConfig;
use imgflow::outbox::Status;
use imgflow::setup::{self, Options as SetupOptions};

use crate::harness::{ROCKET, TestApp, aws_config};

/// `imgflow events tail --queue QUEUE --max 1 --timeout 60`: its lines.
fn tail_one(app: &TestApp, queue: &str) -> Vec<serde_json::Value> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_imgflow"));
    command
        .args([
            "events",
            "tail",
            "--queue",
            queue,
            "--max",
            "1",
            "--timeout",
            "60",
        ])
        .env("IMGFLOW_OUTBOX", &app.resources.outbox);
    if let Some(endpoint) = aws_config().endpoint_url {
        command.env("AWS_ENDPOINT_URL", endpoint);
    }
    let out = command.output().expect("run imgflow events tail");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

async fn events_setup(app: &TestApp, queue: Option<&str>, topic: Option<&str>) {
    let options = SetupOptions {
        events_queue: queue.map(str::to_owned),
        events_topic: topic.map(str::to_owned),
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
    .expect("setup with job-finished events (is SNS in LocalStack's SERVICES?)");
}

async fn finish_one_job(app: &TestApp, key: &str) {
    app.put_inbox(key, ROCKET, &[("recipe", "small:resize,w=40/png")])
        .await;
    assert_eq!(app.wait_for_manifest(key).await.status, Status::Done);
    app.wait_until_queue_is_empty().await;
}

fn assert_line(line: &serde_json::Value, key: &str) {
    assert_eq!(line["key"], key, "{line}");
    assert_eq!(line["status"], "done", "{line}");
    assert_eq!(line["manifest"], format!("{key}/manifest.json"), "{line}");
    let outputs = line["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 1, "{line}");
    assert_eq!(outputs[0]["name"], "small");
    assert_eq!(outputs[0]["key"], format!("{key}/small.png"));
    assert_eq!(outputs[0]["width"], 40);
}

#[tokio::test]
async fn a_finished_job_puts_one_event_on_the_queue_and_tail_prints_it() {
    let app = TestApp::spawn().await;
    let queue = format!("{}-events", app.resources.queue);
    events_setup(&app, Some(&queue), None).await;
    finish_one_job(&app, "done/rocket.jpg").await;

    let lines = tail_one(&app, &queue);
    assert_eq!(lines.len(), 1);
    assert_line(&lines[0], "done/rocket.jpg");
    // Exactly one: tail deleted what it printed (and S3's test event), and nothing else came.
    let url = imgflow::aws::queue_url(&app.clients.sqs, &queue)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(app.messages_on(&url).await, 0, "more than one event");
}

#[tokio::test]
async fn a_topic_fans_finished_events_out_to_the_queue() {
    let app = TestApp::spawn().await;
    let queue = format!("{}-events", app.resources.queue);
    let topic = format!("{}-finished", app.resources.queue);
    events_setup(&app, Some(&queue), Some(&topic)).await;
    // Idempotent: a second run subscribes nothing twice.
    events_setup(&app, Some(&queue), Some(&topic)).await;
    finish_one_job(&app, "topic/rocket.jpg").await;

    let lines = tail_one(&app, &queue);
    assert_eq!(lines.len(), 1);
    assert_line(&lines[0], "topic/rocket.jpg");
    let url = imgflow::aws::queue_url(&app.clients.sqs, &queue)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(app.messages_on(&url).await, 0, "more than one event");
}
