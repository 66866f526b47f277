//! What browsers rely on, without a browser: CORS rules merged by setup, the
//! API's CORS answers, job tokens, Server-Sent Events, `submit --api-key`.
//! `scripts/browser-tests.sh` runs the same flows in headless Chromium.

use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
use imgflow::setup;

use crate::harness::{Options, ROCKET, TestApp};

fn keyed() -> Options {
    Options {
        api_keys: vec!["operator-key".into()],
        ..Options::default()
    }
}

async fn presign(app: &TestApp, key: &str) -> serde_json::Value {
    let response = app
        .http
        .post(format!("{}/v1/uploads", app.api))
        .bearer_auth(key)
        .json(&serde_json::json!({
            "filename": "rocket.jpg", "content_type": "image/jpeg",
            "size": ROCKET.len(), "recipe": "small:resize,w=64/png",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn put(app: &TestApp, upload: &serde_json::Value) {
    let mut put = app.http.put(upload["upload_url"].as_str().unwrap());
    for (name, value) in upload["headers"].as_object().unwrap() {
        if name != "content-length" {
            put = put.header(name, value.as_str().unwrap());
        }
    }
    let status = put.body(ROCKET).send().await.unwrap().status();
    assert!(status.is_success(), "PUT answered {status}");
}

#[tokio::test]
async fn setup_merges_its_cors_rules_with_the_buckets_own() {
    let app = TestApp::spawn_with(Options {
        worker: None,
        ..Options::default()
    })
    .await;
    let theirs = CorsRule::builder()
        .id("someone-elses")
        .allowed_origins("https://other.example")
        .allowed_methods("GET")
        .build()
        .unwrap();
    app.clients
        .s3
        .put_bucket_cors()
        .bucket(&app.resources.inbox)
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(theirs)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let origins = ["http://127.0.0.1:3000".to_owned()];
    setup::cors(&app.clients, &app.resources, &origins)
        .await
        .unwrap();
    // Twice: a rerun replaces imgflow's rule, never adds a second.
    setup::cors(&app.clients, &app.resources, &origins)
        .await
        .unwrap();

    let rules = |bucket: String| {
        let s3 = app.clients.s3.clone();
        async move {
            s3.get_bucket_cors()
                .bucket(bucket)
                .send()
                .await
                .unwrap()
                .cors_rules
                .unwrap()
        }
    };
    let inbox = rules(app.resources.inbox.clone()).await;
    let ids: Vec<_> = inbox.iter().map(|r| r.id().unwrap_or_default()).collect();
    assert_eq!(ids, ["someone-elses", setup::CORS_UPLOAD_ID]);
    let ours = &inbox[1];
    assert_eq!(ours.allowed_methods(), ["PUT"]);
    assert_eq!(ours.allowed_origins(), origins);
    assert!(
        ours.allowed_headers()
            .contains(&"x-amz-meta-recipe".to_owned())
    );
    assert_eq!(ours.expose_headers(), ["etag"]);
    let outbox = rules(app.resources.outbox.clone()).await;
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].allowed_methods(), ["GET", "HEAD"]);
}

#[tokio::test]
async fn a_job_token_reads_its_own_job_and_nothing_else() {
    let app = TestApp::spawn_with(keyed()).await;
    let first = presign(&app, "operator-key").await;
    let second = presign(&app, "operator-key").await;
    let token = first["job_token"].as_str().unwrap();
    assert!(token.starts_with("jt1."));
    put(&app, &first).await;

    let get = |path: String| app.http.get(format!("{}{path}", app.api)).send();
    let own = get(format!(
        "/v1/jobs/{}?wait=20&token={token}",
        first["job_id"].as_str().unwrap()
    ))
    .await
    .unwrap();
    assert_eq!(own.status(), 200);
    let job: serde_json::Value = own.json().await.unwrap();
    assert_eq!(job["status"], "done");

    let other = get(format!(
        "/v1/jobs/{}?token={token}",
        second["job_id"].as_str().unwrap()
    ))
    .await
    .unwrap();
    assert_eq!(other.status(), 403);
    let as_header = app
        .http
        .post(format!("{}/v1/uploads", app.api))
        .bearer_auth(token)
        .json(&serde_json::json!({"filename": "a.jpg", "content_type": "image/jpeg", "size": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(as_header.status(), 403, "a job token cannot presign");
    let without = get(format!("/v1/jobs/{}", first["job_id"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(without.status(), 401);
}

#[tokio::test]
async fn job_events_end_with_the_finished_job() {
    let app = TestApp::spawn_with(keyed()).await;
    let upload = presign(&app, "operator-key").await;
    let url = format!(
        "{}{}?token={}",
        app.api,
        upload["events_url"].as_str().unwrap(),
        upload["job_token"].as_str().unwrap()
    );
    let mut stream = app.http.get(url).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    put(&app, &upload).await;
    let mut text = String::new();
    // The stream ends after the final event.
    while let Some(chunk) = stream.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.starts_with("event: pending"), "{text}");
    let done = text.split("event: done\n").nth(1).expect("a done event");
    let data = done.lines().next().unwrap().strip_prefix("data: ").unwrap();
    let job: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(job["outputs"][0]["width"], 64);
}

#[tokio::test]
async fn the_api_answers_cors_for_listed_origins_on_v1_only() {
    let mut api = imgflow::config::ApiConfig::default();
    api.browser.cors.origins = vec!["http://127.0.0.1:3000".into()];
    let app = TestApp::spawn_with_api(keyed(), api).await;
    let preflight = |origin: &'static str, path: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, format!("{}{path}", app.api))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let allowed = preflight("http://127.0.0.1:3000", "/v1/uploads")
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://127.0.0.1:3000"
    );
    let other = preflight("http://evil.example", "/v1/uploads")
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let metrics = preflight("http://127.0.0.1:3000", "/metrics")
        .await
        .unwrap();
    assert!(
        metrics
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

// Multi-threaded: the API serves on this runtime while the test blocks on the child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_sends_the_api_key() {
    let app = TestApp::spawn_with(keyed()).await;
    let file = std::env::temp_dir().join(format!("imgflow-submit-{}.jpg", uuid::Uuid::new_v4()));
    std::fs::write(&file, ROCKET).unwrap();
    let submit = |key: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_imgflow"));
        command
            .arg("submit")
            .arg(&file)
            .args(["--recipe", "small:resize,w=64/png", "--api", &app.api])
            .env_remove("IMGFLOW_API_KEY");
        if let Some(key) = key {
            command.env("IMGFLOW_API_KEY", key);
        }
        command.output().unwrap()
    };
    let refused = submit(None);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("401"),
        "{refused:?}"
    );
    let out = submit(Some("operator-key"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("done"),
        "{out:?}"
    );
    let flag = std::process::Command::new(env!("CARGO_BIN_EXE_imgflow"))
        .arg("submit")
        .arg(&file)
        .args([
            "--api-key",
            "operator-key",
            "--recipe",
            "small:resize,w=64/png",
            "--api",
            &app.api,
        ])
        .output()
        .unwrap();
    assert!(
        flag.status.success(),
        "{}",
        String::from_utf8_lossy(&flag.stderr)
    );
}
