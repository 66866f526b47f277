//! `imgflow submit`: the client side of the presigned flow, as a user's
//! program would do it: ask the API for an upload URL, PUT the bytes straight
//! to S3 with exactly the signed headers, then wait for the job.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};

#[derive(Args, Debug, Clone)]
pub struct SubmitArgs {
    /// The image to upload
    pub file: PathBuf,

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

    /// Download the outputs into this folder
    #[arg(long, short = 'o')]
    pub output_dir: Option<PathBuf>,
}

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
    let bytes = tokio::fs::read(&args.file)
        .await
        .with_context(|| format!("reading {}", args.file.display()))?;
    let format = image::guess_format(&bytes)
        .with_context(|| format!("{} is not an image imgflow reads", args.file.display()))?;
    let filename = args
        .file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("upload");
    let http = api_client(args.api_key.as_deref())?;
    let s3 = reqwest::Client::new();
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
    println!("job {job_id}: uploading {} bytes to the inbox", bytes.len());

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
    println!(
        "job {job_id}: done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for output in job["outputs"].as_array().context("no outputs")? {
        println!(
            "  {:<8} {:<5} {}x{} {:>8} bytes  outbox key: {}",
            output["name"].as_str().unwrap_or("?"),
            output["format"].as_str().unwrap_or("?"),
            output["width"],
            output["height"],
            output["bytes"],
            output["key"].as_str().unwrap_or("?"),
        );
        if let Some(dir) = &args.output_dir {
            download(&s3, output, dir).await?;
        }
    }
    Ok(())
}

/// Save one output and report what it decodes to, as a check on the manifest.
async fn download(
    http: &reqwest::Client,
    output: &Value,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
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
    println!(
        "           saved {} ({:?}, decodes to {}x{})",
        path.display(),
        format,
        decoded.width(),
        decoded.height()
    );
    Ok(())
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
