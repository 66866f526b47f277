//! One manifest watcher per API process, shared by everything that waits
//! for a job: `GET /v1/jobs/{id}?wait=`, its event streams and the old
//! API's uploads. A thousand clients on one job cost the S3 calls of one,
//! and one poll loop serves every waited-on job.
//!
//! What a check costs:
//! - an API job (`uploads/<job>/`, file name unknown): one `ListObjectsV2`
//!   of its folder, one `GetObject` of the manifest once it is there;
//! - the old API's uploads (known keys under `api/n/`, newest first): one
//!   `ListObjectsV2` for all of them together (their keys are adjacent:
//!   all recent), one `GetObject` per manifest found.
//!
//! Each job is checked at once, then after 100 ms, backing off by half each
//! time to once a second; checks that fall due together share the loop's
//! turn. A job that cannot be finished yet waits 100 ms for its first check:
//! an old-API upload just written (`fresh`), or a job this process presigned
//! in the last 30 s (young: its client has only just uploaded it).
//!
//! Under `imgflow up` the worker in the same process announces each
//! manifest it writes, with its contents (`Store::finished_here`): a job it
//! finishes costs no S3 call at all, and the watcher only checks every 10 s
//! in case another worker process finished it (an old-API upload, not at
//! once either: its first check is that 10 s one).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;
use uuid::Uuid;

use crate::inbox;
use crate::outbox::{self, Manifest};
use crate::store::{Announced, Store};
use crate::telemetry::metric;

const FIRST_RECHECK: Duration = Duration::from_millis(100);
const SLOWEST_RECHECK: Duration = Duration::from_secs(1);
/// Under `imgflow up`, where the worker announces its manifests: a check
/// this often anyway, for jobs another worker process finishes.
const ANNOUNCED_RECHECK: Duration = Duration::from_secs(10);
/// A job presigned by this process this recently is young: its first
/// check waits [`FIRST_RECHECK`], since the upload has hardly arrived.
const YOUNG: Duration = Duration::from_secs(30);
/// Young jobs remembered (the oldest are forgotten first).
const YOUNG_JOBS: usize = 4096;
/// API jobs checked at once in one turn.
const CONCURRENT_CHECKS: usize = 16;
/// Finished old-API uploads remembered for `GET /api/images/{key}`.
const RECENT: usize = 1024;

/// What the watcher has seen of a job so far.
#[derive(Debug, Clone)]
pub enum Seen {
    /// Not checked yet.
    Unknown,
    /// The first check failed (S3 did not answer); later ones go on.
    Unavailable(String),
    Pending,
    Finished(Arc<Manifest>),
}

/// What to wait for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// An API job: the one upload in `uploads/<job>/`.
    Job(Uuid),
    /// The manifest of this inbox key (an old-API upload).
    Key(String),
}

impl Target {
    fn announced(&self, manifest_key: &str) -> bool {
        match self {
            Target::Job(job) => {
                outbox::is_manifest_in_folder_of(&inbox::job_prefix(*job), manifest_key)
            }
            Target::Key(key) => outbox::manifest_key(key) == manifest_key,
        }
    }
}

struct Entry {
    sender: watch::Sender<Seen>,
    due: Instant,
    every: Duration,
}

#[derive(Default)]
struct Targets {
    entries: HashMap<Target, Entry>,
    /// Whether the poll loop runs (it ends when nothing is watched).
    running: bool,
    /// When old-API keys were last listed: at most once a [`FIRST_RECHECK`],
    /// however many uploads arrive.
    keys_listed: Option<Instant>,
}

pub struct Watcher {
    store: Store,
    targets: Mutex<Targets>,
    /// A new target arrived: the loop's next turn may be sooner.
    wake: Notify,
    /// Old-API folders (`api/n/<id>/`) → their manifest, newest last.
    recent: Mutex<VecDeque<(String, Arc<Manifest>)>>,
    /// Jobs this process presigned, and when, oldest first.
    young: Mutex<VecDeque<(Uuid, Instant)>>,
}

impl Watcher {
    pub fn new(store: Store) -> Arc<Watcher> {
        Arc::new(Watcher {
            store,
            targets: Mutex::default(),
            wake: Notify::new(),
            recent: Mutex::default(),
            young: Mutex::default(),
        })
    }

    /// `POST /v1/uploads` has just presigned `job` in this process.
    pub fn presigned(&self, job: Uuid) {
        let mut young = self.young.lock().expect("watcher lock");
        let now = Instant::now();
        while young
            .front()
            .is_some_and(|(_, at)| young.len() >= YOUNG_JOBS || now - *at > YOUNG)
        {
            young.pop_front();
        }
        young.push_back((job, now));
    }

    fn is_young(&self, target: &Target) -> bool {
        let Target::Job(job) = target else {
            return false;
        };
        let young = self.young.lock().expect("watcher lock");
        young
            .iter()
            .rev()
            .find(|(j, _)| j == job)
            .is_some_and(|(_, at)| at.elapsed() <= YOUNG)
    }

    /// Follow `target`: joins its watch, or starts one. `fresh`: the
    /// caller has only just uploaded it, so there is no point looking now.
    pub fn subscribe(self: &Arc<Self>, target: Target, fresh: bool) -> watch::Receiver<Seen> {
        let young = !fresh && self.is_young(&target);
        let mut targets = self.targets.lock().expect("watcher lock");
        if let Some(entry) = targets.entries.get(&target) {
            return entry.sender.subscribe();
        }
        let announced = self.store.announces();
        let now = Instant::now();
        let due = match (fresh, young, announced) {
            (true, _, false) | (false, true, _) => now + FIRST_RECHECK,
            (true, _, true) => now + ANNOUNCED_RECHECK,
            (false, false, _) => now,
        };
        let (sender, receiver) = watch::channel(Seen::Unknown);
        let entry = Entry {
            sender,
            due,
            every: if fresh {
                FIRST_RECHECK * 3 / 2
            } else {
                FIRST_RECHECK
            },
        };
        targets.entries.insert(target, entry);
        if !targets.running {
            targets.running = true;
            // Subscribed before the upload, so no announcement falls before it.
            tokio::spawn(Arc::clone(self).poll(self.store.finished_here()));
        }
        drop(targets);
        self.wake.notify_one();
        receiver
    }

    /// Wait until `seen` shows the job finished, at most `wait`. `Err`: S3
    /// did not answer the first check.
    pub async fn finished(
        mut seen: watch::Receiver<Seen>,
        wait: Duration,
    ) -> anyhow::Result<Option<Arc<Manifest>>> {
        let deadline = Instant::now() + wait;
        loop {
            match &*seen.borrow_and_update() {
                Seen::Finished(manifest) => return Ok(Some(Arc::clone(manifest))),
                Seen::Unavailable(why) => anyhow::bail!("checking the job: {why}"),
                Seen::Unknown | Seen::Pending => {}
            }
            match tokio::time::timeout_at(deadline, seen.changed()).await {
                Ok(Ok(())) => {}
                _ => return Ok(None),
            }
        }
    }

    /// The manifest of an old-API upload in `folder` this process saw finish.
    pub fn recently_finished(&self, folder: &str) -> Option<Arc<Manifest>> {
        let recent = self.recent.lock().expect("watcher lock");
        recent
            .iter()
            .rev()
            .find(|(f, _)| f == folder)
            .map(|(_, manifest)| Arc::clone(manifest))
    }

    /// Jobs being watched now.
    pub fn watching(&self) -> usize {
        self.targets.lock().expect("watcher lock").entries.len()
    }

    /// The poll loop: one per process while anything is watched.
    async fn poll(self: Arc<Self>, mut announced: Option<broadcast::Receiver<Announced>>) {
        loop {
            let Some((due, next)) = self.due() else {
                return;
            };
            self.check(due).await;
            let next = next.min(Instant::now() + SLOWEST_RECHECK);
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                () = self.wake.notified() => {}
                heard = recv(&mut announced) => match heard {
                    Err(broadcast::error::RecvError::Closed) => announced = None,
                    heard => self.heard(heard),
                },
            }
        }
    }

    /// Targets due for a check now (their next check rescheduled), and when
    /// the next falls due; `None` (and the loop marked stopped) when
    /// nobody waits any more. Targets nobody waits on are dropped.
    fn due(&self) -> Option<(Vec<Target>, Instant)> {
        let mut targets = self.targets.lock().expect("watcher lock");
        targets
            .entries
            .retain(|_, entry| entry.sender.receiver_count() > 0);
        if targets.entries.is_empty() {
            targets.running = false;
            return None;
        }
        let now = Instant::now();
        let announced = self.store.announces();
        // Old-API keys share one listing, at most once a FIRST_RECHECK:
        // when one is due, all ride along.
        let keys_free = targets
            .keys_listed
            .map_or(now, |listed| listed + FIRST_RECHECK);
        let keys_due = keys_free <= now
            && targets
                .entries
                .iter()
                .any(|(t, e)| matches!(t, Target::Key(_)) && e.due <= now);
        if keys_due {
            targets.keys_listed = Some(now);
        }
        let mut due = vec![];
        let mut next = now + ANNOUNCED_RECHECK;
        for (target, entry) in &mut targets.entries {
            let key = matches!(target, Target::Key(_));
            if key && !keys_due {
                next = next.min(entry.due.max(keys_free));
                continue;
            }
            if entry.due <= now || key {
                due.push(target.clone());
                let wait = if announced {
                    ANNOUNCED_RECHECK
                } else {
                    entry.every
                };
                entry.every = (entry.every * 3 / 2).min(SLOWEST_RECHECK);
                entry.due = now + wait;
            }
            next = next.min(entry.due);
        }
        Some((due, next))
    }

    /// Check `due` in S3: API jobs one by one, old-API keys all at once.
    async fn check(&self, due: Vec<Target>) {
        let (mut jobs, mut keys) = (vec![], vec![]);
        for target in due {
            match target {
                Target::Job(job) => jobs.push(job),
                Target::Key(key) => keys.push(key),
            }
        }
        // A few at a time, so one slow answer does not hold up the rest.
        futures_util::stream::iter(jobs)
            .for_each_concurrent(CONCURRENT_CHECKS, |job| async move {
                metric::manifest_check();
                let found = self.store.find_manifest(&inbox::job_prefix(job)).await;
                self.found(&Target::Job(job), found.map(|m| m.map(Arc::new)));
            })
            .await;
        if keys.is_empty() {
            return;
        }
        metric::manifest_check();
        match self.store.finished_keys(&keys).await {
            Ok(finished) => {
                for key in keys {
                    let found = match finished.contains(&key) {
                        true => self
                            .store
                            .read_manifest(&key)
                            .await
                            .map(|m| m.map(Arc::new)),
                        false => Ok(None),
                    };
                    self.found(&Target::Key(key), found);
                }
            }
            Err(error) => {
                for key in keys {
                    self.found(&Target::Key(key), Err(anyhow::anyhow!("{error:#}")));
                }
            }
        }
    }

    /// Tell `target`'s waiters what a check found.
    fn found(&self, target: &Target, found: anyhow::Result<Option<Arc<Manifest>>>) {
        let mut targets = self.targets.lock().expect("watcher lock");
        let Some(entry) = targets.entries.get(target) else {
            return;
        };
        match found {
            Ok(Some(manifest)) => {
                if let Some(entry) = targets.entries.remove(target) {
                    drop(targets);
                    self.finish(target, entry, manifest);
                }
            }
            Ok(None) => {
                entry.sender.send_if_modified(|seen| {
                    let first = matches!(seen, Seen::Unknown | Seen::Unavailable(_));
                    *seen = Seen::Pending;
                    first
                });
            }
            // Waiters keep waiting: S3 may be back at the next check.
            Err(error) => {
                tracing::warn!(
                    ?target,
                    error = format!("{error:#}"),
                    "checking a job's manifest failed"
                );
                entry.sender.send_if_modified(|seen| {
                    let first = matches!(seen, Seen::Unknown);
                    if first {
                        *seen = Seen::Unavailable(format!("{error:#}"));
                    }
                    first
                });
            }
        }
    }

    fn finish(&self, target: &Target, entry: Entry, manifest: Arc<Manifest>) {
        if let Target::Key(key) = target
            && let Some(id) = inbox::legacy_id(key)
            && let Some(folder) = inbox::legacy_prefix(id)
        {
            let mut recent = self.recent.lock().expect("watcher lock");
            if recent.len() == RECENT {
                recent.pop_front();
            }
            recent.push_back((folder, Arc::clone(&manifest)));
        }
        entry.sender.send_replace(Seen::Finished(manifest));
    }

    /// The worker in this process wrote a manifest (or we missed some).
    fn heard(&self, heard: Result<Announced, broadcast::error::RecvError>) {
        let mut targets = self.targets.lock().expect("watcher lock");
        match heard {
            Ok(announced) => {
                let matching: Vec<Target> = targets
                    .entries
                    .keys()
                    .filter(|t| t.announced(&announced.key))
                    .cloned()
                    .collect();
                for target in matching {
                    if let Some(entry) = targets.entries.remove(&target) {
                        self.finish(&target, entry, Arc::clone(&announced.manifest));
                    }
                }
            }
            // Missed some: check everything in S3 to be sure.
            Err(_) => {
                let now = Instant::now();
                for entry in targets.entries.values_mut() {
                    entry.due = now;
                }
            }
        }
    }
}

/// The next announcement; never, without an announcing worker.
async fn recv(
    announced: &mut Option<broadcast::Receiver<Announced>>,
) -> Result<Announced, broadcast::error::RecvError> {
    match announced {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}
