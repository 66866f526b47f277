//! "Job finished" events: `imgflow setup --events-queue NAME` makes the
//! outbox send S3's own event for every `…/manifest.json` written to a queue
//! (or `--events-topic`, an SNS topic); `imgflow events tail` reads that
//! queue and prints one JSON line per finished job.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::aws::{self, Clients};
use crate::config::{AwsConfig, Resources};
use crate::event::{self, Notification};
use crate::outbox::{MANIFEST_SUFFIX, Manifest};
use crate::store::Store;

#[derive(Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    pub action: EventsAction,
}

#[derive(Subcommand)]
pub enum EventsAction {
    /// Print one JSON line per finished job (key, status, outputs), deleting each event read
    Tail(TailArgs),
}

impl EventsArgs {
    pub fn aws(&self) -> &AwsConfig {
        match &self.action {
            EventsAction::Tail(tail) => &tail.aws,
        }
    }
}

#[derive(Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub aws: AwsConfig,
    /// Bucket the manifests are in
    #[arg(long, env = "IMGFLOW_OUTBOX", default_value = "imgflow-outbox")]
    pub outbox: String,
    /// The queue `imgflow setup --events-queue` sends to
    #[arg(long, env = "IMGFLOW_EVENTS_QUEUE", default_value = "imgflow-events")]
    pub queue: String,
    /// Stop after printing this many events
    #[arg(long)]
    pub max: Option<u64>,
    /// Stop after this many seconds [default: run until interrupted]
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
}

pub async fn run(args: &EventsArgs) -> anyhow::Result<()> {
    match &args.action {
        EventsAction::Tail(tail) => self::tail(tail).await,
    }
}

pub async fn tail(args: &TailArgs) -> anyhow::Result<()> {
    let clients = Clients::new(&args.aws).await;
    let resources = Resources {
        inbox: String::new(), // only the outbox is read
        outbox: args.outbox.clone(),
        queue: args.queue.clone(),
    };
    let store = Store::new(clients.s3.clone(), &resources);
    let url = aws::queue_url(&clients.sqs, &args.queue).await?;
    let deadline = args
        .timeout
        .map(|s| Instant::now() + Duration::from_secs(s));
    let mut printed = 0;
    while args.max.is_none_or(|max| printed < max) {
        let wait = match deadline {
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left.as_secs().clamp(1, 20),
                _ => break,
            },
            None => 20,
        };
        let received = clients
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(i32::try_from(wait).unwrap_or(20))
            .send()
            .await
            .with_context(|| format!("receiving from queue {}", args.queue))?;
        for message in received.messages() {
            let body = message.body().unwrap_or_default();
            let lines = match lines(&store, body).await {
                Ok(lines) => lines,
                Err(error) => {
                    // Not ours to drop: left on the queue (and its DLQ, if it has one).
                    eprintln!("imgflow events tail: skipping a message: {error:#}");
                    continue;
                }
            };
            for line in lines {
                println!("{line}");
                printed += 1;
            }
            if let Some(receipt) = message.receipt_handle() {
                clients
                    .sqs
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .with_context(|| format!("deleting a message from queue {}", args.queue))?;
            }
        }
    }
    Ok(())
}

/// The lines one message yields: one per manifest it announces (none for
/// S3's test event, or a manifest deleted since).
async fn lines(store: &Store, body: &str) -> anyhow::Result<Vec<Value>> {
    let notification = match event::parse(body) {
        Ok(n) => n,
        // An SNS subscription without raw delivery wraps the event.
        Err(err) => match serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v["Message"].as_str().map(str::to_owned))
        {
            Some(inner) => event::parse(&inner)?,
            None => return Err(err.into()),
        },
    };
    let Notification::Created(objects) = notification else {
        return Ok(vec![]);
    };
    let mut out = vec![];
    for object in objects {
        if object.removed || !object.key.ends_with(MANIFEST_SUFFIX) {
            continue;
        }
        if object.bucket != store.outbox() {
            eprintln!(
                "imgflow events tail: skipping an event from bucket {} (the outbox is {}; see --outbox)",
                object.bucket,
                store.outbox()
            );
            continue;
        }
        match store.read_manifest_at(&object.key).await? {
            Some(manifest) => out.push(line(&object.key, &manifest)),
            None => eprintln!(
                "imgflow events tail: {} is gone (deleted since the event)",
                object.key
            ),
        }
    }
    Ok(out)
}

/// One finished job, as `events tail` prints it.
pub fn line(manifest_key: &str, manifest: &Manifest) -> Value {
    let outputs: Vec<Value> = manifest
        .outputs
        .iter()
        .map(|o| {
            json!({
                "name": o.name, "key": o.key, "format": o.format,
                "width": o.width, "height": o.height, "bytes": o.bytes,
            })
        })
        .collect();
    let mut line = json!({
        "key": manifest.source.key,
        "status": manifest.status.as_str(),
        "outputs": outputs,
        "manifest": manifest_key,
        "finished_at": manifest.finished_at,
    });
    if let Some(job_id) = &manifest.job_id {
        line["job_id"] = json!(job_id);
    }
    if let Some(error) = &manifest.error {
        line["error"] = json!({"code": error.code, "message": error.message});
    }
    line
}
