//! LocalStack paused longer than a long poll. This pauses the one LocalStack
//! every test shares, so it lives in its own test binary: cargo runs test
//! binaries one after another, never beside `it`.

#[allow(dead_code)]
#[path = "it/harness.rs"]
mod harness;

use std::time::Duration;

use harness::{Options, ROCKET, TestApp};
use imgflow::config::QueueConfig;
use imgflow::outbox::Status;

/// The process group `scripts/localstack.sh` started LocalStack in.
fn localstack_group() -> String {
    let pidfile = concat!(env!("CARGO_MANIFEST_DIR"), "/.localstack/localstack.pid");
    let pid = std::fs::read_to_string(pidfile).unwrap_or_else(|_| {
        panic!("{pidfile} is missing: start LocalStack with scripts/localstack.sh")
    });
    format!("-{}", pid.trim())
}

fn signal_group(signal: &str, group: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, "--", group])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {group}");
}

/// Resumes LocalStack even if the test fails half-way.
struct Resume(String);

impl Drop for Resume {
    fn drop(&mut self) {
        signal_group("-CONT", &self.0);
    }
}

#[tokio::test]
async fn a_worker_rides_out_localstack_pausing_longer_than_a_long_poll_and_loses_nothing() {
    let app = TestApp::spawn_with(Options {
        queue: QueueConfig {
            visibility_timeout_secs: 10,
            max_receive_count: 5,
            ..QueueConfig::default()
        },
        worker: None,
        api_keys: vec![],
        upload_expiry_secs: 300,
    })
    .await;
    let mut worker = app.worker_process(&[("IMGFLOW_POLL_WAIT", "5")]);
    app.put_inbox("before.jpg", ROCKET, &[("recipe", "resize,w=48")])
        .await;
    assert_eq!(
        app.wait_for_manifest("before.jpg").await.status,
        Status::Done
    );

    // Events in flight when S3 and SQS freeze.
    for i in 0..3 {
        app.put_inbox(
            &format!("during-{i}.jpg"),
            ROCKET,
            &[("recipe", "resize,w=40")],
        )
        .await;
    }
    let group = localstack_group();
    signal_group("-STOP", &group);
    let resume = Resume(group);
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert!(
        worker.try_wait().unwrap().is_none(),
        "the worker must not exit during the outage"
    );
    drop(resume);

    for i in 0..3 {
        let manifest = app.wait_for_manifest(&format!("during-{i}.jpg")).await;
        assert_eq!(manifest.status, Status::Done);
    }
    app.put_inbox("after.jpg", ROCKET, &[("recipe", "resize,w=32")])
        .await;
    assert_eq!(
        app.wait_for_manifest("after.jpg").await.status,
        Status::Done
    );
    app.wait_until_empty(&app.queues.queue_url, 60).await;
    assert_eq!(app.messages_on(&app.queues.dlq_url).await, 0);
    assert!(
        worker.try_wait().unwrap().is_none(),
        "the same worker process did it all"
    );
    worker.kill().unwrap();
    worker.wait().unwrap();
}
