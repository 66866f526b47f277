//! `imgflow backfill s3://INBOX/PREFIX`: enqueue a job for objects already
//! in the inbox (put there before imgflow's notification existed, or to
//! re-run them after a preset changed).
//!
//! It lists the inbox in key order (`ListObjectsV2`) and sends one
//! [`ProcessMessage`] per object to the job queue with `SendMessageBatch`
//! (10 a call), at most `--rate` messages a second. `--recipe` / `--preset`
//! travel in the message and override the object's metadata.
//!
//! Resuming: with `--cursor FILE`, the last key of every batch SQS accepted
//! is saved there (atomically) and a later run starts after it. Ctrl-C stops
//! between batches and prints the `--start-after` key to resume from, so it
//! never sends anything twice. A kill (or crash) after SQS accepted a batch
//! and before the cursor was saved re-sends that one batch, at most 10
//! messages, on resume: SQS standard queues cannot deduplicate, and the
//! worker turns a duplicate into an identical rewrite.

mod args;
mod cursor;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use crate::aws::{Clients, queue_url};
use crate::config::PresetConfig;
use crate::event::{PROCESS_MESSAGE, ProcessMessage, Requested};
use crate::inbox::mangled_recipe;
use crate::recipe::{Presets, Recipe};
use crate::store::{Listed, Store};
pub use args::{BackfillArgs, DEFAULT_RATE, parse_target};
pub use cursor::{Cursor, CursorFile};

/// Manifests read at once by `--only-missing`.
const CHECKS_AT_ONCE: usize = 16;

/// What a backfill did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub listed: u64,
    pub enqueued: u64,
    /// Already done (`--only-missing`).
    pub done: u64,
    /// Folder markers (keys ending in `/`).
    pub folders: u64,
}

/// Run `imgflow backfill` and print its counts.
pub async fn run(args: &BackfillArgs) -> anyhow::Result<()> {
    let (bucket, prefix) = parse_target(&args.target)?;
    let res = &args.resources;
    anyhow::ensure!(
        bucket != res.outbox,
        "s3://{bucket} is the outbox: backfilling it would process imgflow's own outputs"
    );
    anyhow::ensure!(
        bucket == res.inbox,
        "s3://{bucket} is not the inbox (s3://{}): workers only process the inbox; \
         pass --inbox {bucket} (IMGFLOW_INBOX) if it is",
        res.inbox
    );
    anyhow::ensure!(
        args.rate.is_finite() && args.rate > 0.0,
        "--rate must be a positive number of messages a second"
    );
    let presets = PresetConfig {
        presets: args.define_presets.clone(),
        default_preset: args.default_preset.clone(),
        routes: args.routes.clone(),
    }
    .presets()
    .context("the presets and routes")?;
    let requested = Requested {
        recipe: args
            .recipe
            .as_deref()
            .map(|text| -> anyhow::Result<String> {
                let recipe = Recipe::parse(text)?;
                recipe.check_cost()?;
                Ok(recipe.to_string())
            })
            .transpose()?,
        preset: args.preset.clone(),
    };
    if let Some(name) = &requested.preset {
        presets.resolve(None, Some(name))?;
    }

    let clients = Clients::new(&args.aws).await;
    let store = Store::new(clients.s3.clone(), res);
    let queue = if args.dry_run {
        String::new()
    } else {
        queue_url(&clients.sqs, &res.queue).await?
    };
    let cursor = args
        .cursor
        .as_deref()
        .map(|path| CursorFile::new(path, &bucket, &prefix, &requested));
    let start_after = match cursor.as_ref().map(CursorFile::load).transpose()?.flatten() {
        Some(key) => Some(key),
        None => args.start_after.clone(),
    };
    if let Some(key) = &start_after {
        eprintln!("resuming after {key:?}");
    }

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::SeqCst);
            }
        });
    }
    let mut backfill = Backfill {
        sqs: clients.sqs.clone(),
        queue,
        store,
        presets,
        bucket: bucket.clone(),
        requested,
        only_missing: args.only_missing,
        dry_run: args.dry_run,
        rate: args.rate,
        started: Instant::now(),
        counts: Counts::default(),
        bar: progress_bar(),
    };
    let finished = backfill
        .run(&prefix, start_after, args.limit, cursor.as_ref(), &stop)
        .await?;
    backfill.bar.finish_and_clear();
    let c = &backfill.counts;
    let verb = if args.dry_run {
        "would enqueue"
    } else {
        "enqueued"
    };
    println!(
        "s3://{bucket}/{prefix}: listed {}, {verb} {}, skipped {} ({} already done, {} folders)",
        c.listed,
        c.enqueued,
        c.done + c.folders,
        c.done,
        c.folders
    );
    match finished {
        Finished::All => {
            if let (Some(cursor), false) = (&cursor, args.dry_run) {
                cursor.remove()?;
            }
        }
        Finished::Stopped(last) => {
            let hint = match &args.cursor {
                Some(path) => format!("--cursor {}", path.display()),
                None => format!("--start-after '{}'", last.unwrap_or_default()),
            };
            println!("stopped before the end; resume with {hint}");
        }
    }
    Ok(())
}

fn progress_bar() -> ProgressBar {
    // Drawn on stderr, and not at all when it is not a terminal.
    let bar = ProgressBar::no_length();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {pos} listed ({per_sec}) {msg}")
            .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

enum Decision {
    Enqueue,
    /// `--only-missing`: the manifest names this ETag and recipe.
    Done,
    Folder,
}

enum Finished {
    All,
    /// Interrupted or at `--limit`: the last key dealt with.
    Stopped(Option<String>),
}

struct Backfill {
    sqs: aws_sdk_sqs::Client,
    queue: String,
    store: Store,
    presets: Presets,
    bucket: String,
    requested: Requested,
    only_missing: bool,
    dry_run: bool,
    rate: f64,
    started: Instant,
    counts: Counts,
    bar: ProgressBar,
}

impl Backfill {
    async fn run(
        &mut self,
        prefix: &str,
        mut start_after: Option<String>,
        limit: Option<u64>,
        cursor: Option<&CursorFile>,
        stop: &AtomicBool,
    ) -> anyhow::Result<Finished> {
        let mut last_done: Option<String> = start_after.clone();
        loop {
            let (page, more) = self.store.list_inbox(prefix, start_after.clone()).await?;
            let Some(last) = page.last() else {
                return Ok(Finished::All);
            };
            start_after = Some(last.key.clone());
            let this = &*self;
            let decided: Vec<(Listed, Decision)> = futures_util::stream::iter(page)
                .map(|object| async move {
                    let wanted = this.wanted(&object).await?;
                    anyhow::Ok((object, wanted))
                })
                .buffered(CHECKS_AT_ONCE)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_, _>>()?;
            let mut batch: Vec<Listed> = Vec::with_capacity(10);
            for (object, wanted) in decided {
                if stop.load(Ordering::SeqCst) {
                    return Ok(Finished::Stopped(last_done));
                }
                self.counts.listed += 1;
                self.bar.inc(1);
                match wanted {
                    Decision::Enqueue => batch.push(object),
                    Decision::Done => self.counts.done += 1,
                    Decision::Folder => self.counts.folders += 1,
                }
                let full = limit.is_some_and(|l| self.counts.enqueued + batch.len() as u64 >= l);
                if batch.len() == 10 || (full && !batch.is_empty()) {
                    last_done = Some(self.send(&mut batch, cursor).await?);
                }
                if full {
                    return Ok(Finished::Stopped(last_done));
                }
            }
            if !batch.is_empty() {
                last_done = Some(self.send(&mut batch, cursor).await?);
            }
            if !more {
                return Ok(Finished::All);
            }
        }
    }

    /// Should `object` be enqueued? Not folder markers, and with
    /// `--only-missing` not objects whose manifest names their ETag and
    /// the recipe that would run now.
    async fn wanted(&self, object: &Listed) -> anyhow::Result<Decision> {
        if object.key.ends_with('/') && object.size == 0 {
            return Ok(Decision::Folder);
        }
        if !self.only_missing {
            return Ok(Decision::Enqueue);
        }
        let Some(manifest) = self.store.read_manifest(&object.key).await? else {
            return Ok(Decision::Enqueue);
        };
        if manifest.source.etag.is_none() || manifest.source.etag != object.etag {
            return Ok(Decision::Enqueue);
        }
        let would_run = match (&self.requested.recipe, &self.requested.preset) {
            (Some(recipe), _) => Some(recipe.clone()),
            (None, Some(preset)) => {
                Some(self.presets.resolve(None, Some(preset))?.recipe.to_string())
            }
            (None, None) => {
                let Some(meta) = self.store.source_metadata(&object.key).await? else {
                    return Ok(Decision::Done); // deleted since the listing: nothing to do
                };
                let recipe = meta.get(crate::inbox::META_RECIPE).map(String::as_str);
                let preset = meta.get(crate::inbox::META_PRESET).map(String::as_str);
                match mangled_recipe(&meta) {
                    Some(_) => None,
                    None => self
                        .presets
                        .resolve_for(&object.key, recipe, preset)
                        .ok()
                        .map(|r| r.recipe.to_string()),
                }
            }
        };
        Ok(if manifest.recipe == would_run {
            Decision::Done
        } else {
            Decision::Enqueue
        })
    }

    /// Send one batch (waiting for the rate), then save the cursor; the
    /// batch's last key.
    async fn send(
        &mut self,
        batch: &mut Vec<Listed>,
        cursor: Option<&CursorFile>,
    ) -> anyhow::Result<String> {
        let sent = self.counts.enqueued;
        let due = self.started + Duration::from_secs_f64(sent as f64 / self.rate);
        tokio::time::sleep_until(due.into()).await;
        if !self.dry_run {
            self.send_batch(batch).await?;
        }
        let last = batch.last().expect("a batch is never empty").key.clone();
        self.counts.enqueued += batch.len() as u64;
        batch.clear();
        if let (Some(cursor), false) = (cursor, self.dry_run) {
            cursor.save(&last)?;
        }
        self.bar
            .set_message(format!("enqueued {}", self.counts.enqueued));
        Ok(last)
    }

    /// `SendMessageBatch`, retrying the entries SQS refused (up to 5 times).
    async fn send_batch(&self, batch: &[Listed]) -> anyhow::Result<()> {
        let mut entries: Vec<SendMessageBatchRequestEntry> = batch
            .iter()
            .enumerate()
            .map(|(i, object)| {
                let body = serde_json::to_string(&ProcessMessage {
                    imgflow: PROCESS_MESSAGE.to_owned(),
                    bucket: self.bucket.clone(),
                    key: object.key.clone(),
                    etag: object.etag.clone(),
                    size: Some(object.size),
                    requested: self.requested.clone(),
                })?;
                Ok(SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()?)
            })
            .collect::<anyhow::Result<_>>()?;
        for attempt in 1..=5u32 {
            let out = self
                .sqs
                .send_message_batch()
                .queue_url(&self.queue)
                .set_entries(Some(entries.clone()))
                .send()
                .await
                .context("sending a batch of jobs")?;
            if out.failed.is_empty() {
                return Ok(());
            }
            let failed: Vec<&str> = out.failed.iter().map(|f| f.id.as_str()).collect();
            entries.retain(|e| failed.contains(&e.id.as_str()));
            let why = out.failed.first().and_then(|f| f.message.clone());
            eprintln!(
                "SQS refused {} of the batch ({}); retrying",
                failed.len(),
                why.unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
        anyhow::bail!("SQS kept refusing part of a batch; resume to send the rest")
    }
}
