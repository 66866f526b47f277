//! The native flow: presign, PUT straight to the inbox, and the manifest.
//!
//! "Upload complete → manifest" is measured from the moment the PUT's 200
//! arrived to the manifest's own `finished_at` (written by the worker just
//! before it PUTs the manifest; same machine, same clock), so it does not
//! include any client's polling. At a fixed rate each job also waits on
//! `GET /v1/jobs/{id}?wait=20`, as a client would, and that latency is kept
//! too (it includes the API's 250 ms polling of the outbox).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use imgflow::outbox::{self, Manifest};
use serde::Deserialize;

#[derive(Deserialize)]
struct Presigned {
    job_id: String,
    key: String,
    upload_url: String,
    headers: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, Default)]
pub struct Job {
    pub index: usize,
    pub job_id: String,
    pub key: String,
    /// Unix seconds.
    pub presign_start: f64,
    pub put_done: f64,
    pub finished: f64,
    pub client_done: f64,
    pub presign_ms: f64,
    pub put_ms: f64,
    pub download_ms: u64,
    pub process_ms: u64,
    pub upload_ms: u64,
    pub status: String,
    pub error: String,
}

pub struct Flow {
    pub api_url: String,
    pub image: &'static [u8],
    pub http: reqwest::Client,
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Flow {
    /// POST /v1/uploads, then the PUT; the job's key, or why not.
    async fn upload(&self, index: usize) -> Job {
        let mut job = Job {
            index,
            presign_start: unix(SystemTime::now()),
            ..Job::default()
        };
        let started = Instant::now();
        let body = serde_json::json!({
            "filename": "photo.jpg", "content_type": "image/jpeg", "size": self.image.len(),
        });
        let presigned = async {
            let answer = self
                .http
                .post(format!("{}/v1/uploads", self.api_url))
                .json(&body)
                .send()
                .await?
                .error_for_status()?;
            answer.json::<Presigned>().await
        }
        .await;
        job.presign_ms = started.elapsed().as_secs_f64() * 1e3;
        let presigned = match presigned {
            Ok(p) => p,
            Err(e) => {
                job.status = "upload_error".into();
                job.error = format!("presign: {}", crate::short_error(&e));
                return job;
            }
        };
        job.job_id = presigned.job_id;
        job.key = presigned.key;
        let putting = Instant::now();
        let mut put = self.http.put(&presigned.upload_url).body(self.image);
        for (name, value) in &presigned.headers {
            put = put.header(name, value);
        }
        let put = async { put.send().await?.error_for_status() }.await;
        job.put_ms = putting.elapsed().as_secs_f64() * 1e3;
        job.put_done = unix(SystemTime::now());
        if let Err(e) = put {
            job.status = "upload_error".into();
            job.error = format!("put: {}", crate::short_error(&e));
            job.key.clear();
        }
        job
    }

    /// Uploads at `rate` per second (open loop: a slow answer delays no
    /// later upload), each then waiting for its job through the API.
    pub async fn fixed_rate(self: &Arc<Self>, n: usize, rate: f64) -> Vec<Job> {
        let started = tokio::time::Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..n {
            tokio::time::sleep_until(started + Duration::from_secs_f64(index as f64 / rate)).await;
            let flow = Arc::clone(self);
            tasks.spawn(async move {
                let mut job = flow.upload(index).await;
                if !job.key.is_empty() {
                    let url = format!("{}/v1/jobs/{}?wait=20", flow.api_url, job.job_id);
                    for _ in 0..3 {
                        let answer = async {
                            flow.http
                                .get(&url)
                                .send()
                                .await?
                                .error_for_status()?
                                .json::<serde_json::Value>()
                                .await
                        }
                        .await;
                        if let Ok(view) = answer
                            && view["status"] != "pending"
                        {
                            job.client_done = unix(SystemTime::now());
                            break;
                        }
                    }
                }
                job
            });
        }
        let mut jobs: Vec<Job> = tasks.join_all().await;
        jobs.sort_by_key(|j| j.index);
        jobs
    }

    /// `n` uploads as fast as `uploaders` clients can send them.
    pub async fn saturate(self: &Arc<Self>, n: usize, uploaders: usize) -> Vec<Job> {
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..uploaders {
            let (flow, next) = (Arc::clone(self), Arc::clone(&next));
            tasks.spawn(async move {
                let mut mine = vec![];
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= n {
                        return mine;
                    }
                    mine.push(flow.upload(index).await);
                }
            });
        }
        let mut jobs: Vec<Job> = tasks.join_all().await.into_iter().flatten().collect();
        jobs.sort_by_key(|j| j.index);
        jobs
    }
}

/// Wait until the outbox holds a manifest for every uploaded job, listing
/// it once a second (or give up after `stall` without progress).
pub async fn wait_for_manifests(
    s3: &aws_sdk_s3::Client,
    outbox: &str,
    jobs: &[Job],
    stall: Duration,
) -> anyhow::Result<()> {
    let ours: std::collections::HashSet<String> = jobs
        .iter()
        .filter(|j| !j.key.is_empty())
        .map(|j| outbox::manifest_key(&j.key))
        .collect();
    let want = ours.len();
    let (mut seen, mut moved) = (0, Instant::now());
    loop {
        let mut count = 0;
        let mut pages = s3
            .list_objects_v2()
            .bucket(outbox)
            .prefix("uploads/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.context("listing the outbox")?;
            count += page
                .contents()
                .iter()
                .filter(|o| o.key().is_some_and(|k| ours.contains(k)))
                .count();
        }
        if count >= want {
            break;
        }
        if count != seen {
            (seen, moved) = (count, Instant::now());
        } else if moved.elapsed() > stall {
            eprintln!("loadgen: {count} of {want} manifests after a {stall:?} stall; giving up");
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

/// Read each job's manifest: when it finished, the worker's timings, the outcome.
pub async fn read_manifests(
    s3: &aws_sdk_s3::Client,
    outbox: &str,
    jobs: &mut [Job],
) -> anyhow::Result<()> {
    for job in jobs.iter_mut().filter(|j| !j.key.is_empty()) {
        match read_manifest(s3, outbox, &job.key).await {
            Ok(Some(m)) => {
                job.finished = finished_at(&m)?;
                job.download_ms = m.timings.download_ms;
                job.process_ms = m.timings.process_ms;
                job.upload_ms = m.timings.upload_ms;
                job.status = format!("{:?}", m.status).to_lowercase();
                if let Some(e) = m.error {
                    job.error = e.code;
                }
            }
            Ok(None) => {
                job.status = "lost".into();
                job.error = "no manifest".into();
            }
            Err(e) => bail!("reading the manifest of {}: {e:#}", job.key),
        }
    }
    Ok(())
}

async fn read_manifest(
    s3: &aws_sdk_s3::Client,
    outbox: &str,
    key: &str,
) -> anyhow::Result<Option<Manifest>> {
    match s3
        .get_object()
        .bucket(outbox)
        .key(outbox::manifest_key(key))
        .send()
        .await
    {
        Ok(object) => {
            let bytes = object.body.collect().await?.into_bytes();
            Ok(Some(serde_json::from_slice(&bytes)?))
        }
        Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(404) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn finished_at(m: &Manifest) -> anyhow::Result<f64> {
    let t = time::OffsetDateTime::parse(
        &m.finished_at,
        &time::format_description::well_known::Rfc3339,
    )
    .with_context(|| format!("parsing finished_at {:?}", m.finished_at))?;
    Ok(t.unix_timestamp_nanos() as f64 / 1e9)
}
