//! The API's answers to requests it must refuse, and to jobs not done yet.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::TestApp;

#[tokio::test]
async fn bad_upload_requests_get_a_400_with_a_stable_code() {
    let app = TestApp::spawn().await;
    let ok = json!({"filename": "a.jpg", "content_type": "image/jpeg", "size": 10});
    let with = |field: &str, value: Value| {
        let mut body = ok.clone();
        body[field] = value;
        body
    };
    let cases = [
        (
            with("content_type", json!("text/plain")),
            "unsupported_image",
        ),
        (with("size", json!(0)), "image_too_large"),
        (with("size", json!(1u64 << 40)), "image_too_large"),
        (with("recipe", json!("resize,w=abc")), "invalid_recipe"),
        (with("preset", json!("no-such-preset")), "unknown_preset"),
        (with("filename", json!("")), "invalid_request"),
        (with("colour", json!("blue")), "invalid_request"),
        (json!({"filename": "a.jpg"}), "invalid_request"),
    ];
    for (body, code) in cases {
        let (status, answer) = app.post_upload(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["error"]["code"], code, "{body} → {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }

    let (status, answer) = app.post_upload(ok).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .post(format!("{}/v1/uploads", app.api))
        .header("content-type", "application/json")
        .body(vec![b' '; 64 * 1024])
        .send()
        .await
        .unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["error"]["code"], "body_too_large");
}

#[tokio::test]
async fn a_job_not_finished_is_pending_and_a_malformed_id_is_not_found() {
    let app = TestApp::spawn().await;
    let id = uuid::Uuid::new_v4();
    let response = app
        .http
        .get(format!("{}/v1/jobs/{id}", app.api))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let job: Value = response.json().await.unwrap();
    assert_eq!(job["status"], "pending");
    assert_eq!(job["outputs"], json!([]));

    let response = app
        .http
        .get(format!("{}/v1/jobs/not-a-job", app.api))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::spawn().await;
    let health = app
        .http
        .get(format!("{}/healthz", app.api))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app
        .http
        .get(format!("{}/readyz", app.api))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}
