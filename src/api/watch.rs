//! One watcher per job, shared by every client waiting on it: a thousand
//! browsers on one job cost the S3 calls of one.
//!
//! The first waiter starts a task that lists the job's outbox folder (one
//! `ListObjectsV2`; one `GetObject` of the manifest once it appears) at once,
//! then after 100 ms, backing off by half each time to one check a second:
//! at most about 60 calls a minute per waited-on job, however many wait. The
//! task ends when the job is finished or nobody waits any more. Under
//! `imgflow up` the worker in the same process announces each manifest it
//! writes (`Store::finished_here`): the watcher then checks once at the
//! start, once when its job's manifest is announced, and every 10 s in case
//! another worker process finished it: about 3 calls per job plus 6 a minute.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use uuid::Uuid;

use crate::inbox;
use crate::outbox::Manifest;
use crate::store::Store;
use crate::telemetry::metric;

const FIRST_RECHECK: Duration = Duration::from_millis(100);
const SLOWEST_RECHECK: Duration = Duration::from_secs(1);
/// Under `imgflow up`, where the worker announces its manifests: a check
/// this often anyway, for jobs another worker process finishes.
const ANNOUNCED_RECHECK: Duration = Duration::from_secs(10);

/// What the watcher has seen of a job so far.
#[derive(Debug, Clone)]
pub enum Seen {
    /// Not checked yet.
    Unknown,
    Pending,
    Finished(Arc<Manifest>),
}

pub struct Watcher {
    store: Store,
    jobs: Mutex<HashMap<Uuid, watch::Sender<Seen>>>,
}

impl Watcher {
    pub fn new(store: Store) -> Arc<Watcher> {
        Arc::new(Watcher {
            store,
            jobs: Mutex::new(HashMap::new()),
        })
    }

    /// Follow `job`: joins its watcher, or starts one.
    pub fn subscribe(self: &Arc<Self>, job: Uuid) -> watch::Receiver<Seen> {
        let mut jobs = self.jobs.lock().expect("watcher lock");
        if let Some(sender) = jobs.get(&job) {
            return sender.subscribe();
        }
        let (sender, receiver) = watch::channel(Seen::Unknown);
        jobs.insert(job, sender.clone());
        tokio::spawn(Arc::clone(self).watch(job, sender));
        receiver
    }

    /// Jobs being watched now.
    pub fn watching(&self) -> usize {
        self.jobs.lock().expect("watcher lock").len()
    }

    async fn watch(self: Arc<Self>, job: Uuid, sender: watch::Sender<Seen>) {
        let folder = inbox::job_prefix(job);
        let mut every = FIRST_RECHECK;
        // Subscribed before the first check, so no announcement falls between.
        let mut announced = self.store.finished_here();
        loop {
            metric::manifest_check();
            match self.store.find_manifest(&folder).await {
                Ok(Some(manifest)) => {
                    sender.send_replace(Seen::Finished(Arc::new(manifest)));
                    break;
                }
                Ok(None) => {
                    sender.send_if_modified(|seen| {
                        let first = matches!(seen, Seen::Unknown);
                        *seen = Seen::Pending;
                        first
                    });
                }
                // Waiters keep waiting: S3 may be back at the next check.
                Err(error) => {
                    tracing::warn!(%job, error = format!("{error:#}"), "checking a job's manifest failed")
                }
            }
            // Decided under the lock, so a waiter arriving now either joins
            // this task before it stops or finds it gone and starts another.
            {
                let mut jobs = self.jobs.lock().expect("watcher lock");
                if sender.receiver_count() == 0 {
                    jobs.remove(&job);
                    return;
                }
            }
            match &mut announced {
                Some(finished) => {
                    let _ = tokio::time::timeout(ANNOUNCED_RECHECK, async {
                        loop {
                            match finished.recv().await {
                                Ok(key) if key.starts_with(&folder) => return,
                                Ok(_) => {}
                                // Missed some: check S3 to be sure.
                                Err(_) => return,
                            }
                        }
                    })
                    .await;
                }
                None => {
                    tokio::time::sleep(every).await;
                    every = (every * 3 / 2).min(SLOWEST_RECHECK);
                }
            }
        }
        self.jobs.lock().expect("watcher lock").remove(&job);
    }
}
