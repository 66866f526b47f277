//! `imgflow submit`: the client side of the presigned flow, as a user's
//! program would do it: ask the API for an upload URL, PUT the bytes straight
//! to S3 with exactly the signed headers, then wait for the job.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use futures_util::StreamExt;
use serde_json::{Value, json};

#[derive(Args, Debug, Clone)]
pub struct SubmitArgs {
    /// The images to upload (each is one job)
    #[arg(required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,

    /// Jobs submitted and waited on at once
    #[arg(short = 'j', long = "jobs", default_value_t = DEFAULT_SUBMIT_JOBS,
          value_parser = clap::value_parser!(u64).range(1..=64))]
    pub jobs: u64,

    /// Recipe to run, e.g. `resize,w=800/jpeg,q=80`
    #[arg(long)]
    pub recipe: Option<String>,

    /// Configured preset to run instead of a recipe
    #[arg(long, conflicts_with = "recipe")]
    pub preset: Option<String>,

    /// Base URL of the imgflow API
    #[arg(long, env = "IMGFLOW_API", default_value = "http://127.0.0.1:8080")]
    pub api: String,

    /// API key, sent as `Authorization: Bearer` to deployments that require one
    #[arg(long, env = "IMGFLOW_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Give up waiting for the job after this many seconds
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,

    /// Download the outputs into this folder (several files: one subfolder per file)
    #[arg(long, short = 'o')]
    pub output_dir: Option<PathBuf>,
}

/// Jobs `imgflow submit` runs at once.
pub const DEFAULT_SUBMIT_JOBS: u64 = 4;

/// A client that sends `key` to the API on every request. The S3 PUT and
/// GETs go through a plain client: presigned URLs carry their own signature,
/// and the key must not leave for another host.
fn api_client(key: Option<&str>) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(key) = key {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
            .context("the API key has characters a header cannot carry")?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .context("building the HTTP client")
}

pub async fn submit(args: &SubmitArgs) -> anyhow::Result<()> {
    let http = api_client(args.api_key.as_deref())?;
    let s3 = reqwest::Client::new();
    if let [file] = args.files.as_slice() {
        let print = |line: String| println!("{line}");
        return submit_one(args, file, args.output_dir.clone(), &http, &s3, &print).await;
    }
    let started = Instant::now();
    let bar = crate::progress::bar(args.files.len() as u64, "jobs");
    // A hidden bar (stderr not a TTY) prints nothing of its own.
    let print = |line: String| {
        if bar.is_hidden() {
            println!("{line}");
        } else {
            bar.println(line);
        }
    };
    let results: Vec<_> = futures_util::stream::iter(&args.files)
        .map(|file| {
            // Each file's outputs in a folder of its own.
            let dir = args
                .output_dir
                .as_ref()
                .map(|dir| dir.join(file.file_name().unwrap_or(file.as_os_str())));
            let (http, s3, print, bar) = (&http, &s3, &print, &bar);
            async move {
                let result = submit_one(args, file, dir, http, s3, print).await;
                bar.inc(1);
                (file, result)
            }
        })
        .buffer_unordered(args.jobs as usize)
        .collect()
        .await;
    bar.finish_and_clear();
    let failed: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
    println!(
        "{} of {} jobs done in {:.1} s",
        results.len() - failed.len(),
        results.len(),
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        return Ok(());
    }
    eprintln!("failed:");
    for (file, result) in &failed {
        if let Err(err) = result {
            eprintln!("  {}: {err:#}", file.display());
        }
    }
    bail!("{} of {} jobs failed", failed.len(), results.len())
}

/// One file through the presigned flow; `print` writes the report lines.
async fn submit_one(
    args: &SubmitArgs,
    file: &Path,
    output_dir: Option<PathBuf>,
    http: &reqwest::Client,
    s3: &reqwest::Client,
    print: &(dyn Fn(String) + Sync),
) -> anyhow::Result<()> {
    let bytes = tokio::fs::read(file)
        .await
        .with_context(|| format!("reading {}", file.display()))?;
    let format = image::guess_format(&bytes)
        .with_context(|| format!("{} is not an image imgflow reads", file.display()))?;
    let filename = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("upload");
    let api = args.api.trim_end_matches('/');

    let upload: Value = http
        .post(format!("{api}/v1/uploads"))
        .json(&json!({
            "filename": filename,
            "content_type": format.to_mime_type(),
            "size": bytes.len(),
            "recipe": args.recipe,
            "preset": args.preset,
        }))
        .send()
        .await
        .with_context(|| format!("asking {api} for an upload URL"))?
        .error_for_status_json()
        .await?;
    let job_id = upload["job_id"]
        .as_str()
        .context("no job_id in the answer")?;
    print(format!(
        "job {job_id}: uploading {} ({} bytes) to the inbox",
        file.display(),
        bytes.len()
    ));

    let mut put = s3.put(upload["upload_url"].as_str().context("no upload_url")?);
    for (name, value) in upload["headers"].as_object().context("no headers")? {
        // reqwest sets Content-Length from the body, which is exactly the signed size.
        if name != "content-length" {
            put = put.header(name, value.as_str().unwrap_or_default());
        }
    }
    let response = put.body(bytes).send().await.context("uploading to S3")?;
    if !response.status().is_success() {
        bail!(
            "S3 refused the upload: {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }

    let started = Instant::now();
    let job = loop {
        let job: Value = http
            .get(format!("{api}/v1/jobs/{job_id}?wait=20"))
            .send()
            .await
            .context("asking for the job's status")?
            .error_for_status_json()
            .await?;
        if job["status"] != "pending" {
            break job;
        }
        if started.elapsed() > Duration::from_secs(args.timeout) {
            bail!("job {job_id} still pending after {} s", args.timeout);
        }
    };
    if job["status"] != "done" {
        bail!("job {job_id} failed: {}", job["error"]);
    }
    print(format!(
        "job {job_id}: done in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    for output in job["outputs"].as_array().context("no outputs")? {
        print(format!(
            "  {:<8} {:<5} {}x{} {:>8} bytes  outbox key: {}",
            output["name"].as_str().unwrap_or("?"),
            output["format"].as_str().unwrap_or("?"),
            output["width"],
            output["height"],
            output["bytes"],
            output["key"].as_str().unwrap_or("?"),
        ));
        if let Some(dir) = &output_dir {
            print(download(s3, output, dir).await?);
        }
    }
    Ok(())
}

/// Save one output; the line that says what it decodes to, as a check on the manifest.
async fn download(http: &reqwest::Client, output: &Value, dir: &Path) -> anyhow::Result<String> {
    let url = output["url"].as_str().context("no url")?;
    let bytes = http
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .context("downloading an output")?
        .bytes()
        .await?;
    let key = output["key"].as_str().context("no key")?;
    let name = key.rsplit('/').next().unwrap_or(key);
    tokio::fs::create_dir_all(dir).await?;
    let path = dir.join(name);
    tokio::fs::write(&path, &bytes).await?;
    let decoded = image::load_from_memory(&bytes).context("the output does not decode")?;
    let format = image::guess_format(&bytes)?;
    Ok(format!(
        "           saved {} ({:?}, decodes to {}x{})",
        path.display(),
        format,
        decoded.width(),
        decoded.height()
    ))
}

trait JsonOrError {
    async fn error_for_status_json(self) -> anyhow::Result<Value>;
}

impl JsonOrError for reqwest::Response {
    /// The JSON body, or an error carrying the API's own error message.
    async fn error_for_status_json(self) -> anyhow::Result<Value> {
        let status = self.status();
        let body: Value = self.json().await.context("the API's answer is not JSON")?;
        if !status.is_success() {
            bail!(
                "the API answered {status}: {} ({})",
                body["detail"],
                body["code"]
            );
        }
        Ok(body)
    }
}

/// `imgflow healthcheck`: `Ok` when `url` answers 2xx within 3 s (a
/// container's HEALTHCHECK; distroless images have no curl).
pub async fn healthcheck(url: &str) -> anyhow::Result<()> {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    anyhow::ensure!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    Ok(())
}
