//! The old paper's experiment against imgflow's copy of the old API.
//!
//! Profile "Base U": U virtual users start together, and each runs 100
//! rounds of the old service's four calls in order (POST resize, POST
//! watermark, POST filter, GET the image one of those three made), waiting
//! for each answer before sending the next: a JMeter thread group of U
//! threads with a loop count of 100. That gives 100 × U requests per
//! endpoint, the paper's 1,000 / 2,000 / 3,000 for U = 10 / 20 / 30.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};

pub const ENDPOINTS: [&str; 4] = ["resize", "watermark", "filter", "get"];

/// One request as the client saw it.
pub struct Request {
    pub user: usize,
    pub round: usize,
    pub endpoint: &'static str,
    /// Seconds from the profile's start to the request's start.
    pub start_s: f64,
    pub latency_ms: f64,
    /// HTTP status, 0 when no answer came.
    pub status: u16,
    pub ok: bool,
    pub error: String,
}

pub struct Load {
    pub api_url: String,
    pub image: &'static [u8],
    pub users: usize,
    pub rounds: usize,
}

/// The form of each processing call: the README's curl examples.
fn form(endpoint: &str, image: &'static [u8]) -> Form {
    let file = Part::bytes(image)
        .file_name("photo.jpg")
        .mime_str("image/jpeg")
        .expect("a valid MIME type");
    let form = Form::new().part("file", file);
    match endpoint {
        "resize" => form.text("width", "300").text("height", "200"),
        "watermark" => form
            .text("text", "© 2024 My Company")
            .text("position", "bottom-right"),
        _ => form.text("filter", "sepia"),
    }
}

/// Runs the profile; returns every request and the wall time.
pub async fn run(load: &Load, http: &reqwest::Client) -> (Vec<Request>, Duration) {
    let started = Instant::now();
    let load = Arc::new(Load {
        api_url: load.api_url.clone(),
        ..*load
    });
    let mut tasks = tokio::task::JoinSet::new();
    for user in 0..load.users {
        let (load, http) = (Arc::clone(&load), http.clone());
        tasks.spawn(async move { user_loop(&load, &http, user, started).await });
    }
    let mut all = Vec::with_capacity(load.users * load.rounds * ENDPOINTS.len());
    while let Some(done) = tasks.join_next().await {
        all.extend(done.expect("a user task panicked"));
    }
    (all, started.elapsed())
}

async fn user_loop(
    load: &Load,
    http: &reqwest::Client,
    user: usize,
    started: Instant,
) -> Vec<Request> {
    let mut out = Vec::with_capacity(load.rounds * ENDPOINTS.len());
    let mut last_key: Option<String> = None;
    for round in 0..load.rounds {
        let mut keys = Vec::with_capacity(3);
        for endpoint in &ENDPOINTS[..3] {
            let url = format!("{}/api/images/upload/{endpoint}", load.api_url);
            let (request, key) = timed(user, round, endpoint, started, async {
                let answer = http
                    .post(&url)
                    .multipart(form(endpoint, load.image))
                    .send()
                    .await?;
                let status = answer.status().as_u16();
                let body: serde_json::Value = answer.json().await.unwrap_or_default();
                let key = body["imageKey"].as_str().map(str::to_owned);
                let ok = status == 200 && body["success"] == true && key.is_some();
                Ok((status, ok, key))
            })
            .await;
            out.push(request);
            keys.extend(key.flatten());
        }
        // The image of one of this round's calls, in turn; else the last one made.
        let key = keys
            .get(round % 3)
            .or(keys.first())
            .cloned()
            .or(last_key.clone());
        let url = format!(
            "{}/api/images/{}",
            load.api_url,
            key.as_deref().unwrap_or("none")
        );
        let (request, _) = timed(user, round, "get", started, async {
            let answer = http.get(&url).send().await?;
            let status = answer.status().as_u16();
            let image = answer.bytes().await?;
            let ok = status == 200 && image.starts_with(&[0xFF, 0xD8]);
            Ok((status, ok, None::<String>))
        })
        .await;
        out.push(request);
        last_key = key;
    }
    out
}

/// Time one call; `call` answers (status, ok, what it made).
async fn timed<T>(
    user: usize,
    round: usize,
    endpoint: &'static str,
    started: Instant,
    call: impl Future<Output = reqwest::Result<(u16, bool, Option<T>)>>,
) -> (Request, Option<Option<T>>) {
    let start = Instant::now();
    let result = call.await;
    let latency_ms = start.elapsed().as_secs_f64() * 1e3;
    let start_s = start.duration_since(started).as_secs_f64();
    let (status, ok, made, error) = match result {
        Ok((status, ok, made)) => {
            let error = if ok {
                String::new()
            } else {
                format!("HTTP {status}")
            };
            (status, ok, Some(made), error)
        }
        Err(e) => (0, false, None, crate::short_error(&e)),
    };
    (
        Request {
            user,
            round,
            endpoint,
            start_s,
            latency_ms,
            status,
            ok,
            error,
        },
        made,
    )
}
