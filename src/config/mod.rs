//! Every setting: a flag, its environment variable and its default.
//!
//! AWS settings use the SDK's own variables (`AWS_ENDPOINT_URL`,
//! `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...); imgflow's own start with
//! `IMGFLOW_`. With no configuration at all, everything points at LocalStack
//! on 127.0.0.1:4566.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

mod browser;
mod webhook;

pub use browser::{BrowserConfig, CorsOrigins, DEFAULT_JOB_TOKEN_SECS};
pub use webhook::{RetrySchedule, WebhookConfig, WebhookEndpoints, WebhookSecret};

use crate::pipeline::Limits;
use crate::recipe::{Presets, Recipe, RecipeError, Route};

pub const LOCALSTACK_ENDPOINT: &str = "http://127.0.0.1:4566";

// Each default is written once, here; the flags and the `Default` impls read it.
/// SQS long-poll wait, in seconds.
pub const DEFAULT_POLL_WAIT_SECS: i32 = 20;
/// Decoded pixels all of a worker's jobs may hold together.
pub const DEFAULT_PIXEL_BUDGET: u64 = 200_000_000;
/// Seconds in-flight jobs may run after SIGTERM.
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 25;
/// Seconds a received message stays hidden (set on the queue by `setup`).
pub const DEFAULT_VISIBILITY_TIMEOUT_SECS: u32 = 120;
/// Receives before SQS moves a message to the DLQ.
pub const DEFAULT_MAX_RECEIVES: u32 = 5;
/// Seconds of work a job may take before it fails with `timeout`.
pub const DEFAULT_JOB_DEADLINE_SECS: u64 = 60;
/// A sandbox child's address-space limit, in bytes (2 GiB).
pub const DEFAULT_SANDBOX_MEMORY: u64 = 2 << 30;
/// How long a presigned upload URL stays valid, in seconds.
pub const DEFAULT_UPLOAD_EXPIRY_SECS: u64 = 900;
/// How long a presigned download URL stays valid, in seconds.
pub const DEFAULT_DOWNLOAD_EXPIRY_SECS: u64 = 3600;
/// Longest lifetime of a presigned upload URL, whatever is configured.
pub const MAX_UPLOAD_EXPIRY_SECS: u64 = 3600;
/// Longest lifetime of a presigned download URL: SigV4 refuses to sign for
/// more than 7 days.
pub const MAX_DOWNLOAD_EXPIRY_SECS: u64 = 7 * 24 * 3600;
/// Seconds a client has to send a request's headers (HTTP/1), counted from
/// when the server waits for them, so it also ends idle keep-alive waits.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// Seconds a connection may move no bytes, with no request being answered,
/// before the API closes it (HTTP/1 and HTTP/2).
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
/// Connections the API holds open at once; more wait in the listen backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Upload bytes the old multipart API holds in memory at once, all requests
/// together: half the API's 512 MiB Kubernetes limit.
pub const DEFAULT_LEGACY_UPLOAD_MEMORY: u64 = 256 * 1024 * 1024;

/// Where S3 and SQS are.
#[derive(Args, Debug, Clone)]
pub struct AwsConfig {
    /// S3 and SQS endpoint [default: LocalStack, http://127.0.0.1:4566, unless --real-aws]
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,

    /// Use AWS's own endpoints and credential chain instead of LocalStack's defaults
    #[arg(long, env = "IMGFLOW_REAL_AWS")]
    pub real_aws: bool,

    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
}

impl AwsConfig {
    /// The endpoint to use, or `None` for AWS's own.
    pub fn endpoint(&self) -> Option<&str> {
        match (&self.endpoint_url, self.real_aws) {
            (Some(url), _) => Some(url),
            (None, true) => None,
            (None, false) => Some(LOCALSTACK_ENDPOINT),
        }
    }
}

/// The buckets and queue imgflow works with.
#[derive(Args, Debug, Clone)]
pub struct Resources {
    /// Bucket users upload to
    #[arg(long, env = "IMGFLOW_INBOX", default_value = "imgflow-inbox")]
    pub inbox: String,

    /// Bucket renditions and manifests are written to
    #[arg(long, env = "IMGFLOW_OUTBOX", default_value = "imgflow-outbox")]
    pub outbox: String,

    /// SQS queue fed by the inbox's notifications; its DLQ is `<queue>-dlq`
    #[arg(long, env = "IMGFLOW_QUEUE", default_value = "imgflow-jobs")]
    pub queue: String,
}

impl Resources {
    pub fn dlq(&self) -> String {
        format!("{}-dlq", self.queue)
    }
}

/// What every long-running command (`up`, `api`, `worker`) shares.
#[derive(Args, Debug, Clone)]
pub struct ServiceConfig {
    #[command(flatten)]
    pub aws: AwsConfig,
    #[command(flatten)]
    pub resources: Resources,
    #[command(flatten)]
    pub limits: LimitsConfig,
    #[command(flatten)]
    pub presets: PresetConfig,
}

/// Size limits, checked before anything is decoded.
#[derive(Args, Debug, Clone)]
pub struct LimitsConfig {
    /// Largest accepted upload, in bytes
    #[arg(long, env = "IMGFLOW_MAX_BYTES", default_value_t = Limits::default().max_bytes)]
    pub max_bytes: u64,

    /// Largest accepted width or height, in pixels
    #[arg(long, env = "IMGFLOW_MAX_DIMENSION", default_value_t = Limits::default().max_width)]
    pub max_dimension: u32,

    /// Largest accepted width x height
    #[arg(long, env = "IMGFLOW_MAX_PIXELS", default_value_t = Limits::default().max_pixels)]
    pub max_pixels: u64,
}

impl LimitsConfig {
    pub fn limits(&self) -> Limits {
        Limits {
            max_bytes: self.max_bytes,
            max_width: self.max_dimension,
            max_height: self.max_dimension,
            max_pixels: self.max_pixels,
            // A worker lends a job its idle slots' threads, job by job.
            threads: 1,
        }
    }
}

/// Named recipes that uploads may ask for instead of spelling one out.
#[derive(Args, Debug, Clone)]
pub struct PresetConfig {
    /// A preset as NAME=RECIPE; repeat the flag, or separate them with spaces in the variable
    #[arg(long = "preset", env = "IMGFLOW_PRESETS", value_delimiter = ' ', value_parser = parse_preset)]
    pub presets: Vec<(String, Recipe)>,

    /// The preset used for uploads that name neither a recipe nor a preset
    #[arg(long, env = "IMGFLOW_DEFAULT_PRESET", default_value = "default")]
    pub default_preset: String,

    /// For objects naming neither: PREFIX=PRESET, the longest matching prefix wins; repeat, or separate with spaces
    #[arg(long = "route", env = "IMGFLOW_ROUTES", value_delimiter = ' ', value_parser = Route::parse)]
    pub routes: Vec<Route>,
}

/// Built in, and replaceable by configuring a preset of the same name.
pub const BUILTIN_PRESETS: &[(&str, &str)] = &[
    (
        "default",
        "thumb:resize,w=256,h=256,fit=cover/jpeg+web:resize,w=1280,h=1280/jpeg",
    ),
    ("thumbnail", "thumb:resize,w=256,h=256,fit=cover/jpeg"),
    // A square profile picture, and the same at twice the density.
    (
        "avatar",
        "avatar:resize,w=128,h=128,fit=cover/webp+avatar-2x:resize,w=256,h=256,fit=cover/webp",
    ),
    // A social-media card (Open Graph, 1.91:1).
    ("og", "og:resize,w=1200,h=630,fit=cover/jpeg,q=85"),
    // One size in the three formats of a `<picture>` (docs/recipes.md).
    (
        "picture",
        "avif:resize,w=1280,h=1280/avif+webp:resize,w=1280,h=1280/webp+jpeg:resize,w=1280,h=1280/jpeg",
    ),
];

impl PresetConfig {
    /// Built-in presets overlaid with the configured ones, and the routes
    /// (each must name one of them).
    pub fn presets(&self) -> Result<Presets, RecipeError> {
        let mut map = BTreeMap::new();
        for (name, text) in BUILTIN_PRESETS {
            map.insert((*name).to_owned(), Recipe::parse(text)?);
        }
        map.extend(self.presets.iter().cloned());
        Presets::new(map, self.default_preset.clone())?.with_routes(self.routes.clone())
    }
}

/// `NAME=RECIPE`, as `--preset` takes it.
pub fn parse_preset(s: &str) -> Result<(String, Recipe), String> {
    let (name, recipe) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=RECIPE, found {s:?}"))?;
    let ok_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok_name {
        return Err(format!(
            "preset name {name:?}: use letters, digits, - and _"
        ));
    }
    let recipe = Recipe::parse(recipe).map_err(|e| format!("preset {name:?}: {e}"))?;
    Ok((name.to_owned(), recipe))
}

#[derive(Args, Debug, Clone)]
pub struct ApiConfig {
    /// Address the HTTP API listens on
    #[arg(long, env = "IMGFLOW_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// How long a presigned upload URL stays valid, in seconds (at most 3600)
    #[arg(long, env = "IMGFLOW_UPLOAD_EXPIRY", default_value_t = DEFAULT_UPLOAD_EXPIRY_SECS)]
    pub upload_expiry_secs: u64,

    /// How long a presigned download URL stays valid, in seconds
    #[arg(long, env = "IMGFLOW_DOWNLOAD_EXPIRY", default_value_t = DEFAULT_DOWNLOAD_EXPIRY_SECS)]
    pub download_expiry_secs: u64,

    /// SHA-256 (hex) of an accepted API key; repeat, or separate with spaces.
    /// Make one with `printf %s "$KEY" | sha256sum`. Without any, the API
    /// listens on loopback only.
    #[arg(long = "api-key-sha256", env = "IMGFLOW_API_KEY_SHA256", value_delimiter = ' ',
          value_parser = parse_key_hash)]
    pub api_key_hashes: Vec<KeyHash>,

    /// Seconds a client has to send a request's headers, idle keep-alive included (0: no limit)
    #[arg(long, env = "IMGFLOW_HEADER_READ_TIMEOUT", default_value_t = DEFAULT_HEADER_READ_TIMEOUT_SECS)]
    pub header_read_timeout_secs: u64,

    /// Seconds a connection may stay silent, with no request in progress, before it is closed (0: no limit)
    #[arg(long, env = "IMGFLOW_IDLE_TIMEOUT", default_value_t = DEFAULT_IDLE_TIMEOUT_SECS)]
    pub idle_timeout_secs: u64,

    /// Connections held open at once; keep it well under the file descriptor limit
    #[arg(long, env = "IMGFLOW_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS,
          value_parser = parse_connections)]
    pub max_connections: usize,

    /// Bytes of uploads the old multipart API (/api/images/upload/*) holds in memory at once
    #[arg(long, env = "IMGFLOW_LEGACY_UPLOAD_MEMORY", default_value_t = DEFAULT_LEGACY_UPLOAD_MEMORY)]
    pub legacy_upload_memory: u64,

    #[command(flatten)]
    pub browser: BrowserConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            upload_expiry_secs: DEFAULT_UPLOAD_EXPIRY_SECS,
            download_expiry_secs: DEFAULT_DOWNLOAD_EXPIRY_SECS,
            api_key_hashes: vec![],
            header_read_timeout_secs: DEFAULT_HEADER_READ_TIMEOUT_SECS,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            legacy_upload_memory: DEFAULT_LEGACY_UPLOAD_MEMORY,
            browser: BrowserConfig {
                job_token_expiry_secs: DEFAULT_JOB_TOKEN_SECS,
                ..BrowserConfig::default()
            },
        }
    }
}

/// The SHA-256 of an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyHash(pub [u8; 32]);

fn parse_connections(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a number of connections, at least 1".into()),
    }
}

fn parse_key_hash(s: &str) -> Result<KeyHash, String> {
    let s = s.trim();
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("expected 64 hex digits: the SHA-256 of the key".into());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(KeyHash(out))
}

impl ApiConfig {
    /// Where to listen: the configured address, or its loopback twin when no
    /// API keys are configured (an open API must not face a network).
    pub fn effective_listen(&self) -> SocketAddr {
        if self.api_key_hashes.is_empty() && !self.listen.ip().is_loopback() {
            SocketAddr::from(([127, 0, 0, 1], self.listen.port()))
        } else {
            self.listen
        }
    }
}

impl ApiConfig {
    /// Capped at an hour: a presigned URL is a bearer credential.
    pub fn upload_expiry(&self) -> Duration {
        Duration::from_secs(self.upload_expiry_secs.clamp(1, MAX_UPLOAD_EXPIRY_SECS))
    }
    /// Capped at SigV4's 7 days: a longer expiry cannot be signed, and
    /// every finished job would answer 503.
    pub fn download_expiry(&self) -> Duration {
        Duration::from_secs(self.download_expiry_secs.clamp(1, MAX_DOWNLOAD_EXPIRY_SECS))
    }

    /// At least a second, at most the 7 days a download URL may live.
    pub fn job_token_expiry(&self) -> Duration {
        Duration::from_secs(
            self.browser
                .job_token_expiry_secs
                .clamp(1, MAX_DOWNLOAD_EXPIRY_SECS),
        )
    }

    /// `None` when configured as 0 (no limit).
    pub fn header_read_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(self.header_read_timeout_secs)).filter(|d| !d.is_zero())
    }

    /// `None` when configured as 0 (no limit).
    pub fn idle_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(self.idle_timeout_secs)).filter(|d| !d.is_zero())
    }
}

#[derive(Args, Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs processed at once [default: the number of CPUs]
    #[arg(long, env = "IMGFLOW_WORKER_CONCURRENCY")]
    pub concurrency: Option<usize>,

    /// SQS long-poll wait, in seconds (0 to 20)
    #[arg(long, env = "IMGFLOW_POLL_WAIT", default_value_t = DEFAULT_POLL_WAIT_SECS,
          value_parser = clap::value_parser!(i32).range(0..=20))]
    pub poll_wait_secs: i32,

    /// Decoded pixels all jobs in flight may hold together (about 4 bytes each)
    #[arg(long, env = "IMGFLOW_PIXEL_BUDGET", default_value_t = DEFAULT_PIXEL_BUDGET)]
    pub pixel_budget: u64,

    /// Seconds in-flight jobs may run after SIGTERM before their messages are handed back
    #[arg(long, env = "IMGFLOW_SHUTDOWN_GRACE", default_value_t = DEFAULT_SHUTDOWN_GRACE_SECS)]
    pub shutdown_grace_secs: u64,

    /// Seconds of work a job may take (decoding to encoding); past it, a `timeout` failure
    #[arg(long, env = "IMGFLOW_JOB_DEADLINE", default_value_t = DEFAULT_JOB_DEADLINE_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub job_deadline_secs: u64,

    /// Address-space limit of each sandbox child that decodes an upload, in bytes
    #[arg(long, env = "IMGFLOW_SANDBOX_MEMORY", default_value_t = DEFAULT_SANDBOX_MEMORY)]
    pub sandbox_memory: u64,

    /// The `imgflow` binary the sandbox children run [default: this one]
    #[arg(long, env = "IMGFLOW_SANDBOX_EXE", hide = true)]
    pub sandbox_exe: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub webhooks: WebhookConfig,
}

impl WorkerConfig {
    /// Jobs at once: the configured number, or one per CPU.
    pub fn concurrency(&self) -> usize {
        self.concurrency
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: None,
            poll_wait_secs: DEFAULT_POLL_WAIT_SECS,
            pixel_budget: DEFAULT_PIXEL_BUDGET,
            shutdown_grace_secs: DEFAULT_SHUTDOWN_GRACE_SECS,
            job_deadline_secs: DEFAULT_JOB_DEADLINE_SECS,
            sandbox_memory: DEFAULT_SANDBOX_MEMORY,
            sandbox_exe: None,
            webhooks: WebhookConfig::default(),
        }
    }
}

/// How `imgflow setup` configures the queue.
#[derive(Args, Debug, Clone)]
pub struct QueueConfig {
    /// Seconds a received message stays hidden; workers extend it while a job runs
    #[arg(long, env = "IMGFLOW_VISIBILITY_TIMEOUT", default_value_t = DEFAULT_VISIBILITY_TIMEOUT_SECS)]
    pub visibility_timeout_secs: u32,

    /// Receives before SQS moves a message to the DLQ
    #[arg(long, env = "IMGFLOW_MAX_RECEIVES", default_value_t = DEFAULT_MAX_RECEIVES)]
    pub max_receive_count: u32,

    /// With endpoints, setup also creates the webhook delivery queue
    #[command(flatten)]
    pub webhooks: WebhookEndpoints,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            visibility_timeout_secs: DEFAULT_VISIBILITY_TIMEOUT_SECS,
            max_receive_count: DEFAULT_MAX_RECEIVES,
            webhooks: WebhookEndpoints::default(),
        }
    }
}

#[cfg(test)]
mod tests;
