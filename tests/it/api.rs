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
        assert_eq!(answer["code"], code, "{body} → {answer}");
        assert!(answer["detail"].as_str().is_some_and(|m| !m.is_empty()));
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
    assert_eq!(answer["code"], "body_too_large");
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

#[tokio::test]
async fn unknown_routes_and_methods_answer_with_problem_documents() {
    let app = TestApp::spawn().await;
    for (method, path, status, code) in [
        (reqwest::Method::GET, "/nope", 404, "not_found"),
        (
            reqwest::Method::DELETE,
            "/v1/uploads",
            405,
            "method_not_allowed",
        ),
        (
            reqwest::Method::GET,
            "/v1/jobs/00000000-0000-0000-0000-000000000000?wait=abc",
            400,
            "invalid_request",
        ),
    ] {
        let response = app
            .http
            .request(method, format!("{}{path}", app.api))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], code, "{path}");
        assert_eq!(problem["status"], status);
        assert!(problem["type"].as_str().unwrap().ends_with(code));
    }
}

#[tokio::test]
async fn with_api_keys_configured_requests_need_one_and_probes_do_not() {
    let app = TestApp::spawn_with(crate::harness::Options {
        api_keys: vec!["s3cret-key".into(), "other-key".into()],
        ..Default::default()
    })
    .await;
    let upload = json!({"filename": "a.jpg", "content_type": "image/jpeg", "size": 10});
    let post = |key: Option<&str>| {
        let mut request = app
            .http
            .post(format!("{}/v1/uploads", app.api))
            .json(&upload);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };
    let response = post(None).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "unauthorized");
    assert_eq!(
        post(Some("wrong")).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(Some("s3cret-key")).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        post(Some("other-key")).await.unwrap().status(),
        StatusCode::OK
    );
    for probe in ["/healthz", "/readyz", "/api/images/health"] {
        let response = app
            .http
            .get(format!("{}{probe}", app.api))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{probe}");
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = TestApp::spawn().await;
    let doc: Value = app.get_json("/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/v1/uploads",
        "/v1/jobs/{job_id}",
        "/api/images/upload/resize",
        "/api/images/upload/watermark",
        "/api/images/upload/filter",
        "/api/images/{image_key}",
        "/api/images",
        "/api/images/health",
        "/healthz",
        "/readyz",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} is missing from /openapi.json"
        );
    }
    let problem = &doc["components"]["schemas"]["Problem"]["properties"];
    for field in ["type", "title", "status", "detail", "code"] {
        assert!(problem.get(field).is_some(), "Problem.{field}");
    }
    let upload = &doc["components"]["schemas"]["UploadRequest"]["required"];
    assert_eq!(upload, &json!(["filename", "content_type", "size"]));
}
