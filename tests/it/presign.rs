//! The presigned flow, end to end, and what S3 does with uploads that differ
//! from what was signed (LocalStack runs with signature checks on).

use imgflow::outbox::Status;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{CHELSEA, ROCKET, TestApp, decoded};

async fn presign(app: &TestApp, body: Value) -> Value {
    let (status, upload) = app.post_upload(body).await;
    assert_eq!(status, StatusCode::OK, "{upload}");
    upload
}

/// PUT `bytes` to the presigned URL with `headers`, as a client would.
async fn put(
    app: &TestApp,
    upload: &Value,
    headers: &[(String, String)],
    bytes: &[u8],
) -> StatusCode {
    let mut request = app.http.put(upload["upload_url"].as_str().unwrap());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.body(bytes.to_vec()).send().await.unwrap().status()
}

fn signed_headers(upload: &Value) -> Vec<(String, String)> {
    upload["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn a_presigned_upload_comes_out_resized_with_a_complete_manifest() {
    let app = TestApp::spawn().await;
    let upload = presign(
        &app,
        json!({"filename": "rocket launch.jpg", "content_type": "image/jpeg",
               "size": ROCKET.len(), "recipe": "resize,w=320/jpeg,q=80"}),
    )
    .await;
    assert_eq!(upload["method"], "PUT");
    assert_eq!(upload["headers"]["content-type"], "image/jpeg");
    assert_eq!(
        upload["headers"]["content-length"],
        ROCKET.len().to_string()
    );
    assert_eq!(
        upload["headers"]["x-amz-meta-recipe"],
        "main:resize,w=320/jpeg,q=80"
    );
    let key = upload["key"].as_str().unwrap().to_owned();
    let job_id = upload["job_id"].as_str().unwrap().to_owned();
    assert_eq!(key, format!("uploads/{job_id}/rocket-launch.jpg"));

    assert_eq!(
        put(&app, &upload, &signed_headers(&upload), ROCKET).await,
        StatusCode::OK
    );

    let job = app.job(&upload, "?wait=20").await;
    assert_eq!(job["status"], "done", "{job}");
    let output = &job["outputs"][0];
    assert_eq!(output["name"], "main");
    assert_eq!(output["format"], "jpeg");
    // 640x427 at width 320 keeps the aspect ratio: 213.5, rounded.
    assert_eq!(
        (output["width"].as_u64(), output["height"].as_u64()),
        (Some(320), Some(214))
    );

    let bytes = app
        .http
        .get(output["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(decoded(&bytes), (320, 214, image::ImageFormat::Jpeg));

    let manifest = app.wait_for_manifest(&key).await;
    assert_eq!(manifest.status, Status::Done);
    assert_eq!(manifest.job_id.as_deref(), Some(job_id.as_str()));
    assert_eq!(manifest.source.bucket, app.resources.inbox);
    assert_eq!(manifest.source.key, key);
    assert_eq!(manifest.source.size, ROCKET.len() as u64);
    assert!(
        manifest
            .source
            .etag
            .as_deref()
            .is_some_and(|e| e.len() == 32)
    );
    assert_eq!(
        manifest.recipe.as_deref(),
        Some("main:resize,w=320/jpeg,q=80")
    );
    assert_eq!(manifest.outputs.len(), 1);
    assert_eq!(manifest.outputs[0].key, format!("{key}/main.jpg"));
    assert_eq!(manifest.outputs[0].bytes, bytes.len() as u64);
    assert!(manifest.error.is_none());
    assert!(!manifest.finished_at.is_empty());
}

#[tokio::test]
async fn a_presigned_url_accepts_exactly_what_was_signed_and_nothing_else() {
    let app = TestApp::spawn().await;
    let upload = presign(
        &app,
        json!({"filename": "cat.png", "content_type": "image/png",
               "size": CHELSEA.len(), "recipe": "resize,w=100"}),
    )
    .await;
    let signed = signed_headers(&upload);
    let with = |name: &str, value: &str| -> Vec<(String, String)> {
        let mut headers: Vec<_> = signed.iter().filter(|(k, _)| k != name).cloned().collect();
        headers.push((name.to_owned(), value.to_owned()));
        headers
    };
    let without_length: Vec<_> = signed
        .iter()
        .filter(|(k, _)| k != "content-length")
        .cloned()
        .collect();

    let longer = [CHELSEA, b"x"].concat();
    assert_eq!(
        put(&app, &upload, &without_length, &longer).await,
        StatusCode::FORBIDDEN,
        "a longer body"
    );
    assert_eq!(
        put(
            &app,
            &upload,
            &without_length,
            &CHELSEA[..CHELSEA.len() - 1]
        )
        .await,
        StatusCode::FORBIDDEN,
        "a shorter body"
    );
    assert_eq!(
        put(&app, &upload, &with("content-type", "image/jpeg"), CHELSEA).await,
        StatusCode::FORBIDDEN,
        "another content type"
    );
    assert_eq!(
        put(
            &app,
            &upload,
            &with("x-amz-meta-recipe", "resize,w=9000,up=true"),
            CHELSEA
        )
        .await,
        StatusCode::FORBIDDEN,
        "another recipe"
    );
    assert_eq!(
        put(
            &app,
            &upload,
            &with("x-amz-meta-preset", "default"),
            CHELSEA
        )
        .await,
        StatusCode::FORBIDDEN,
        "extra metadata"
    );
    let nothing_landed = app
        .clients
        .s3
        .head_object()
        .bucket(&app.resources.inbox)
        .key(upload["key"].as_str().unwrap())
        .send()
        .await;
    assert!(nothing_landed.is_err(), "a refused upload must not land");

    assert_eq!(
        put(&app, &upload, &signed, CHELSEA).await,
        StatusCode::OK,
        "the signed upload"
    );
}

#[tokio::test]
async fn a_presigned_url_works_once_and_not_after_it_expires() {
    let app = TestApp::spawn_with(crate::harness::Options {
        upload_expiry_secs: 2,
        ..Default::default()
    })
    .await;
    let body = json!({"filename": "cat.png", "content_type": "image/png", "size": CHELSEA.len()});
    let upload = presign(&app, body.clone()).await;
    let headers = signed_headers(&upload);
    assert_eq!(upload["headers"]["if-none-match"], "*");
    assert_eq!(put(&app, &upload, &headers, CHELSEA).await, StatusCode::OK);
    // The same URL again: the key exists, so S3 refuses to overwrite it.
    assert_eq!(
        put(&app, &upload, &headers, CHELSEA).await,
        StatusCode::PRECONDITION_FAILED
    );

    let late = presign(&app, body).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        put(&app, &late, &signed_headers(&late), CHELSEA).await,
        StatusCode::FORBIDDEN,
        "expired"
    );
}
