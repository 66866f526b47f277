//! `imgflow dlq`: what is in the dead-letter queue, and sending it back.

use std::time::Duration;

use anyhow::Context;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};

use crate::aws::{Clients, queue_url, receive_count};
use crate::config::{AwsConfig, Resources};
use crate::event::{self, Notification};
use crate::store::Store;

/// `imgflow dlq list|redrive`.
#[derive(clap::Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    action: DlqAction,
    #[command(flatten)]
    pub aws: AwsConfig,
    #[command(flatten)]
    resources: Resources,
    /// At most this many messages
    #[arg(long, default_value_t = 100, global = true)]
    max: usize,
}

#[derive(clap::Subcommand, Clone, Copy)]
enum DlqAction {
    /// Show each message, the objects it names and why it is there
    List,
    /// Move the messages back to the job queue, to be processed again
    Redrive,
}

/// Run `imgflow dlq`.
pub async fn run(args: &DlqArgs) -> anyhow::Result<()> {
    let clients = Clients::new(&args.aws).await;
    match args.action {
        DlqAction::List => print_list(&clients, &args.resources, args.max).await,
        DlqAction::Redrive => print_redrive(&clients, &args.resources, args.max).await,
    }
}

/// One dead-lettered message.
#[derive(Debug, Clone)]
pub struct Entry {
    pub message_id: String,
    pub receives: u32,
    /// `bucket/key` of each object the message names.
    pub objects: Vec<String>,
    /// Why it is here, as far as can be told from the message and the outbox.
    pub reason: String,
}

/// Take up to `max` messages off the DLQ, hidden for `hide` while we look.
async fn take(
    clients: &Clients,
    url: &str,
    max: usize,
    hide: Duration,
) -> anyhow::Result<Vec<Message>> {
    let mut taken = Vec::new();
    while taken.len() < max {
        let batch = clients
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages((max - taken.len()).min(10) as i32)
            .visibility_timeout(hide.as_secs() as i32)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .context("reading the DLQ")?
            .messages
            .unwrap_or_default();
        if batch.is_empty() {
            break;
        }
        taken.extend(batch);
    }
    Ok(taken)
}

/// List up to `max` messages; they stay in the DLQ.
pub async fn list(clients: &Clients, res: &Resources, max: usize) -> anyhow::Result<Vec<Entry>> {
    let url = queue_url(&clients.sqs, &res.dlq()).await?;
    let messages = take(clients, &url, max, Duration::from_secs(30)).await?;
    let mut entries = Vec::with_capacity(messages.len());
    for message in &messages {
        entries.push(describe(clients, res, message).await);
        if let Some(receipt) = &message.receipt_handle {
            // Visible again at once: listing must not hide anything.
            let _ = clients
                .sqs
                .change_message_visibility()
                .queue_url(&url)
                .receipt_handle(receipt)
                .visibility_timeout(0)
                .send()
                .await;
        }
    }
    Ok(entries)
}

async fn describe(clients: &Clients, res: &Resources, message: &Message) -> Entry {
    let receives = receive_count(message);
    let body = message.body.as_deref().unwrap_or_default();
    let (objects, reason) = match event::parse(body) {
        Err(error) => (vec![], error.to_string()),
        Ok(Notification::Test) => (vec![], "an s3:TestEvent (harmless)".to_owned()),
        Ok(Notification::Created(objects)) => {
            let store = Store::new(clients.s3.clone(), res);
            let mut reasons = Vec::new();
            for object in &objects {
                reasons.push(match store.has_manifest(&object.key).await {
                    Ok(true) => format!("{}: finished since (a manifest exists)", object.key),
                    Ok(false) | Err(_) => format!(
                        "{}: no manifest after {receives} attempts (transient errors or a crash; see the worker's logs)",
                        object.key
                    ),
                });
            }
            let names = objects
                .iter()
                .map(|o| format!("{}/{}", o.bucket, o.key))
                .collect();
            (names, reasons.join("; "))
        }
    };
    Entry {
        message_id: message.message_id.clone().unwrap_or_default(),
        receives,
        objects,
        reason,
    }
}

/// `imgflow dlq list`: print what [`list`] finds.
pub async fn print_list(clients: &Clients, res: &Resources, max: usize) -> anyhow::Result<()> {
    let entries = list(clients, res, max).await?;
    // Keys are anyone's bytes (a decoded `%0A%1B[31m` is a newline and an
    // escape sequence): print them escaped, so no key can forge a line.
    for e in &entries {
        let objects: Vec<String> = e
            .objects
            .iter()
            .map(|o| o.escape_debug().to_string())
            .collect();
        println!(
            "{}  receives={}  objects=[{}]\n    {}",
            e.message_id.escape_debug(),
            e.receives,
            objects.join(", "),
            e.reason.escape_debug()
        );
    }
    println!("{} message(s) in {}", entries.len(), res.dlq());
    Ok(())
}

/// `imgflow dlq redrive`: move them back and say how many.
pub async fn print_redrive(clients: &Clients, res: &Resources, max: usize) -> anyhow::Result<()> {
    let moved = redrive(clients, res, max).await?;
    println!(
        "moved {moved} message(s) from {} to {}",
        res.dlq(),
        res.queue
    );
    Ok(())
}

/// Move up to `max` messages back to the job queue; returns how many.
pub async fn redrive(clients: &Clients, res: &Resources, max: usize) -> anyhow::Result<usize> {
    let dlq = queue_url(&clients.sqs, &res.dlq()).await?;
    let jobs = queue_url(&clients.sqs, &res.queue).await?;
    let mut moved = 0;
    while moved < max {
        let messages = take(
            clients,
            &dlq,
            (max - moved).min(10),
            Duration::from_secs(60),
        )
        .await?;
        if messages.is_empty() {
            break;
        }
        for message in messages {
            // Send first, then delete: a failure in between duplicates, never loses.
            clients
                .sqs
                .send_message()
                .queue_url(&jobs)
                .message_body(message.body.clone().unwrap_or_default())
                .send()
                .await
                .context("sending a message back to the job queue")?;
            clients
                .sqs
                .delete_message()
                .queue_url(&dlq)
                .receipt_handle(message.receipt_handle.clone().unwrap_or_default())
                .send()
                .await
                .context("deleting a redriven message from the DLQ")?;
            moved += 1;
        }
    }
    Ok(moved)
}
