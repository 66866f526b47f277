//! The old service's API, as its clients call it.

use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{CHELSEA, NOT_AN_IMAGE, ROCKET, TestApp, decoded};

/// `curl -F ...` exactly as the old README had it, against this app.
async fn curl_form(app: &TestApp, path: &str, fields: &[&str]) -> (u16, Value) {
    let dir = std::env::temp_dir().join(format!("imgflow-seed-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("photo.jpg"), ROCKET).unwrap();
    // Async: the API under test runs on this same runtime.
    let mut command = tokio::process::Command::new("curl");
    command
        .current_dir(&dir)
        .args(["-s", "-w", "\n%{http_code}", "-X", "POST"]);
    for field in fields {
        command.args(["-F", field]);
    }
    let out = command
        .arg(format!("{}{path}", app.api))
        .output()
        .await
        .expect("curl");
    std::fs::remove_dir_all(&dir).unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (
        code.parse().unwrap(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

async fn fetch(app: &TestApp, url: &str) -> (StatusCode, Vec<u8>) {
    let response = app
        .http
        .get(format!("{}{url}", app.api))
        .send()
        .await
        .unwrap();
    (response.status(), response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn the_old_curl_examples_work_unchanged() {
    let app = TestApp::spawn().await;

    let (status, answer) = curl_form(
        &app,
        "/api/images/upload/resize",
        &["file=@photo.jpg", "width=300", "height=200"],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["success"], true);
    assert_eq!(answer["originalName"], "photo.jpg");
    for field in ["message", "imageUrl", "imageKey", "timestamp"] {
        assert!(
            answer[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field}: {answer}"
        );
    }
    let (status, bytes) = fetch(&app, answer["imageUrl"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(decoded(&bytes), (300, 200, image::ImageFormat::Jpeg));

    let (status, answer) = curl_form(
        &app,
        "/api/images/upload/watermark",
        &[
            "file=@photo.jpg",
            "text=© 2024 My Company",
            "position=bottom-right",
        ],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (_, bytes) = fetch(&app, answer["imageUrl"].as_str().unwrap()).await;
    assert_eq!(decoded(&bytes).0, 640);

    let (status, answer) = curl_form(
        &app,
        "/api/images/upload/filter",
        &["file=@photo.jpg", "filter=sepia"],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (_, bytes) = fetch(&app, answer["imageUrl"].as_str().unwrap()).await;
    let pixel = image::load_from_memory(&bytes)
        .unwrap()
        .to_rgb8()
        .get_pixel(320, 200)
        .0;
    assert!(pixel[0] >= pixel[2], "sepia is warm: {pixel:?}");

    let list: Value = app.get_json("/api/images?page=0&size=2").await;
    assert_eq!(list["total"], 3);
    assert_eq!(list["images"].as_array().unwrap().len(), 2);

    let health: Value = app.get_json("/api/images/health").await;
    assert_eq!(health["status"], "UP");
}

#[tokio::test]
async fn old_api_errors_are_problem_documents() {
    let app = TestApp::spawn().await;
    let form = |bytes: &[u8], name: &str| {
        reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_owned()),
        )
    };
    let post = |path: &str, form: reqwest::multipart::Form| {
        app.http
            .post(format!("{}{path}", app.api))
            .multipart(form)
            .send()
    };

    let response = post("/api/images/upload/resize", form(NOT_AN_IMAGE, "notes.txt"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "unsupported_image");
    assert_eq!(problem["status"], 400);

    let bad_filter = form(CHELSEA, "cat.png").text("filter", "vintage");
    let response = post("/api/images/upload/filter", bad_filter).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let bad_position = form(CHELSEA, "cat.png").text("position", "middle");
    let response = post("/api/images/upload/watermark", bad_position)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let no_file = reqwest::multipart::Form::new().text("width", "10");
    let response = post("/api/images/upload/resize", no_file).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let (status, _) = fetch(&app, &format!("/api/images/{}", uuid::Uuid::new_v4())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
