//! docs/setup.md runs as written: every line of its `sh` blocks, in
//! order, as the real binary, on fresh buckets and queue (set through
//! `IMGFLOW_INBOX`, `IMGFLOW_OUTBOX`, `IMGFLOW_QUEUE`).

use std::process::Command;

use imgflow::aws::Clients;
use imgflow::setup::SetupReport;

use crate::harness::{Options, ROCKET, TestApp, aws_config, fresh_resources};

fn guide_commands() -> Vec<String> {
    let guide = include_str!("../../docs/setup.md");
    let mut commands = vec![];
    let mut in_sh = false;
    for line in guide.lines() {
        match line.trim() {
            "```sh" => in_sh = true,
            "```" => in_sh = false,
            command if in_sh && !command.is_empty() => commands.push(command.to_owned()),
            _ => {}
        }
    }
    commands
}

/// Receive and delete everything on `queue` (left by earlier runs).
async fn drain(clients: &Clients, url: &str) {
    loop {
        let got = clients
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        if got.messages().is_empty() {
            return;
        }
        for message in got.messages() {
            let receipt = message.receipt_handle().unwrap();
            let deleted = clients
                .sqs
                .delete_message()
                .queue_url(url)
                .receipt_handle(receipt);
            deleted.send().await.unwrap();
        }
    }
}

#[tokio::test]
async fn the_guide_runs_as_written() {
    let clients = Clients::new(&aws_config()).await;
    let res = fresh_resources();
    let commands = guide_commands();
    assert_eq!(commands.len(), 3, "{commands:?}");
    let mut app = None;
    for line in commands {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[0], "imgflow", "{line}");
        if words[1..3] == ["events", "tail"] {
            // Something to tail: a worker, a fresh events queue, one finished job.
            let jobs = imgflow::aws::queue_url(&clients.sqs, &res.queue)
                .await
                .unwrap();
            let queues = SetupReport {
                queue_arn: imgflow::setup::queue_arn(&clients, &jobs).await.unwrap(),
                queue_url: jobs,
                dlq_url: imgflow::aws::queue_url(&clients.sqs, &res.dlq())
                    .await
                    .unwrap(),
            };
            let events = imgflow::aws::queue_url(&clients.sqs, "imgflow-events")
                .await
                .unwrap();
            drain(&clients, &events).await;
            let started =
                TestApp::spawn_on(clients.clone(), res.clone(), queues, Options::default());
            let started = app.insert(started.await);
            started.put_inbox("photos/cat.jpg", ROCKET, &[]).await;
            started.wait_for_manifest("photos/cat.jpg").await;
        }
        let mut command = Command::new(env!("CARGO_BIN_EXE_imgflow"));
        command
            .args(&words[1..])
            .env("IMGFLOW_INBOX", &res.inbox)
            .env("IMGFLOW_OUTBOX", &res.outbox)
            .env("IMGFLOW_QUEUE", &res.queue);
        for variable in crate::setup_merge::imgflow_setup_variables() {
            command.env_remove(variable);
        }
        if let Some(endpoint) = aws_config().endpoint_url {
            command.env("AWS_ENDPOINT_URL", endpoint);
        }
        let out = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{line}\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if words.contains(&"--dry-run") {
            assert!(stdout.contains("dry run: nothing was changed"), "{stdout}");
            let inbox = clients.s3.head_bucket().bucket(&res.inbox).send().await;
            assert!(inbox.is_err(), "a dry run created the inbox");
        }
        if words[1..3] == ["events", "tail"] {
            let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
            assert_eq!(line["key"], "photos/cat.jpg", "{line}");
            assert_eq!(line["status"], "done", "{line}");
            let names: Vec<_> = line["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["name"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(names, ["thumb", "web"], "the default preset's outputs");
        }
    }
    assert!(app.is_some(), "the guide tails events");
}
