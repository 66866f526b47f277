//! Webhooks end to end: real `imgflow worker` processes on LocalStack and a
//! real HTTP receiver on loopback that is down for the first 30 s.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use imgflow::config::{QueueConfig, WebhookEndpoints};
use sha2::Sha256;

use crate::harness::{NOT_AN_IMAGE, Options, ROCKET, TestApp};

/// What the receiver saw: headers and body of every POST.
type Seen = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// Standard Webhooks verification, written from the spec, not from imgflow:
/// HMAC-SHA256 over `id.timestamp.body` with the base64 key after `whsec_`,
/// compared with each `v1,` entry of the space-separated signature header.
fn verify(secret: &str, headers: &HeaderMap, body: &str) -> Result<(), String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(format!("no {name} header"))
    };
    let (id, timestamp, signatures) = (
        header("webhook-id")?,
        header("webhook-timestamp")?,
        header("webhook-signature")?,
    );
    let sent: i64 = timestamp.parse().map_err(|_| "bad timestamp")?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - sent).abs() > 300 {
        return Err(format!("timestamp {sent} is {} s off", now - sent));
    }
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let ok = signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|s| s == expected);
    ok.then_some(())
        .ok_or(format!("no signature matches in {signatures:?}"))
}

async fn receiver(listener: tokio::net::TcpListener, seen: Seen) {
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let seen = Arc::clone(&seen);
            async move {
                let mut seen = seen.lock().unwrap();
                seen.push((headers, body));
                // The first answer is an error, as a receiver that is
                // starting up might give: that delivery must be retried.
                if seen.len() == 1 {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    axum::serve(listener, app).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_job_s_event_arrives_signed_after_a_30_s_outage_and_a_worker_kill_with_stable_ids() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hooks");
    let key: Vec<u8> = (0..32).map(|_| fastrand::u8(..)).collect();
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(&key)
    );
    let app = TestApp::spawn_with(Options {
        queue: QueueConfig {
            webhooks: WebhookEndpoints {
                urls: vec![url.clone()],
            },
            ..QueueConfig::default()
        },
        worker: None,
        ..Options::default()
    })
    .await;
    let deliveries = app
        .clients
        .sqs
        .get_queue_url()
        .queue_name(format!("{}-webhooks", app.resources.queue))
        .send()
        .await
        .expect("setup created the delivery queue")
        .queue_url
        .unwrap();

    let env = [
        ("IMGFLOW_WEBHOOK_URLS", url.as_str()),
        ("IMGFLOW_WEBHOOK_SECRET", secret.as_str()),
        // Production waits 5 s, 5 min, 30 min, ...; this test cannot.
        ("IMGFLOW_WEBHOOK_RETRY", "1s,2s,4s,8s"),
    ];
    let mut worker = app.worker_process(&env);
    let down_since = Instant::now();

    let mut expected = BTreeMap::new();
    for i in 0..6 {
        let key = format!("hooks/photo-{i}.jpg");
        app.put_inbox(&key, ROCKET, &[("recipe", "small:resize,w=64/png")])
            .await;
        expected.insert(key, "image.processed");
    }
    app.put_inbox("hooks/notes.txt", NOT_AN_IMAGE, &[]).await;
    expected.insert("hooks/notes.txt".into(), "image.failed");
    for key in expected.keys() {
        app.wait_for_manifest(key).await;
    }

    // Attempts fail meanwhile (nothing listens). Kill the worker and start
    // another: the deliveries' state is in the queue, not in the process.
    tokio::time::sleep_until((down_since + Duration::from_secs(12)).into()).await;
    worker.kill().unwrap();
    worker.wait().unwrap();
    let mut worker = app.worker_process(&env);
    tokio::time::sleep_until((down_since + Duration::from_secs(30)).into()).await;

    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the receiver's port is still free");
    let server = tokio::spawn(receiver(listener, Arc::clone(&seen)));

    // Deliveries the killed worker's long poll took as it died stay hidden
    // for the queue's visibility timeout (60 s): wait that long and more.
    let deadline = Instant::now() + Duration::from_secs(120);
    let received_keys = |seen: &Seen| -> BTreeSet<String> {
        let seen = seen.lock().unwrap();
        seen.iter()
            .skip(1) // answered 503
            .map(|(_, body)| {
                let event: serde_json::Value = serde_json::from_str(body).unwrap();
                event["data"]["source"]["key"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    while received_keys(&seen).len() < expected.len() {
        assert!(
            Instant::now() < deadline,
            "events for {:?} of {:?} after 2 min",
            received_keys(&seen),
            expected.keys()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    app.wait_until_empty(&deliveries, 30).await;

    let seen = seen.lock().unwrap().clone();
    let mut ids_of_key: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut keys_of_id: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (headers, body) in &seen {
        verify(&secret, headers, body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(headers["content-type"], "application/json");
        let event: serde_json::Value = serde_json::from_str(body).unwrap();
        let key = event["data"]["source"]["key"].as_str().unwrap().to_owned();
        assert_eq!(event["type"], expected[&key], "{body}");
        let status = if expected[&key] == "image.processed" {
            "done"
        } else {
            "failed"
        };
        assert_eq!(event["data"]["status"], status, "{body}");
        assert_eq!(
            event["data"]["manifest"]["key"],
            format!("{key}/manifest.json")
        );
        if status == "done" {
            assert_eq!(
                event["data"]["outputs"][0]["key"],
                format!("{key}/small.png")
            );
            assert_eq!(event["data"]["outputs"][0]["width"], 64);
        } else {
            assert_eq!(event["data"]["error"]["code"], "unsupported_image");
        }
        let id = headers["webhook-id"].to_str().unwrap().to_owned();
        ids_of_key
            .entry(key.clone())
            .or_default()
            .insert(id.clone());
        keys_of_id.entry(id).or_default().insert(key);
    }
    for (key, ids) in &ids_of_key {
        assert_eq!(ids.len(), 1, "{key} arrived under several ids: {ids:?}");
    }
    for (id, keys) in &keys_of_id {
        assert_eq!(keys.len(), 1, "{id} names several jobs: {keys:?}");
    }
    assert_eq!(ids_of_key.len(), expected.len());
    // The 503 answer was retried: its event arrived a second time, same id.
    let first_id = seen[0].0["webhook-id"].to_str().unwrap();
    assert!(
        seen[1..]
            .iter()
            .any(|(h, _)| h["webhook-id"].to_str().unwrap() == first_id),
        "the event answered 503 was not retried"
    );

    worker.kill().unwrap();
    worker.wait().unwrap();
    server.abort();
}

#[test]
fn webhook_urls_without_a_secret_are_refused_at_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imgflow"))
        .arg("worker")
        .env("IMGFLOW_WEBHOOK_URLS", "http://127.0.0.1:9/x")
        .env_remove("IMGFLOW_WEBHOOK_SECRET")
        .env("IMGFLOW_WORKER_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("IMGFLOW_WEBHOOK_SECRET is not"), "{stderr}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imgflow"))
        .arg("worker")
        .env("IMGFLOW_WEBHOOK_URLS", "file:///etc/passwd")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("http:// or https://"));
}
