//! Traces and metrics: one presigned upload on LocalStack, followed from the
//! API's request to the worker's outputs, and the counters it moves.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use imgflow::outbox::Status;
use opentelemetry::trace::{SpanId, SpanKind, TraceId};
use opentelemetry_sdk::trace::SpanData;
use prost::Message as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{NOT_AN_IMAGE, ROCKET, TestApp, spans};

/// A caller's own trace context, unique per test (they share the exporter):
/// 32 and 16 hex digits.
fn caller() -> (String, String) {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let span = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    (trace, span)
}

fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

/// Finished spans of `trace` (all tests share the exporter).
fn trace(trace: TraceId) -> Vec<SpanData> {
    spans()
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|s| s.span_context.trace_id() == trace)
        .collect()
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn one<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found = named(spans, name);
    assert_eq!(
        found.len(),
        1,
        "expected one {name:?} span in {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    found[0]
}

/// POST /v1/uploads inside the caller's trace, then PUT as told.
async fn upload_in_trace(app: &TestApp, (trace, span): &(String, String), recipe: &str) -> Value {
    let upload: Value = app
        .http
        .post(format!("{}/v1/uploads", app.api))
        .header("traceparent", format!("00-{trace}-{span}-01"))
        .json(
            &json!({"filename": "rocket.jpg", "content_type": "image/jpeg",
                      "size": ROCKET.len(), "recipe": recipe}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(app.put_upload(&upload, ROCKET).await, StatusCode::OK);
    upload
}

#[tokio::test]
async fn one_upload_is_traced_from_the_presign_call_to_its_outputs() {
    let app = TestApp::spawn().await;
    let (caller_trace, caller_span) = caller();
    let upload = upload_in_trace(
        &app,
        &(caller_trace.clone(), caller_span.clone()),
        "thumb:resize,w=100/grayscale/webp+big:resize,w=300",
    )
    .await;
    let key = upload["key"].as_str().unwrap().to_owned();
    // The trace context travels in the signed metadata.
    let traceparent = upload["headers"]["x-amz-meta-traceparent"]
        .as_str()
        .expect("the upload's trace context is signed into its metadata")
        .to_owned();
    assert!(
        traceparent.starts_with(&format!("00-{caller_trace}-")),
        "{traceparent}"
    );
    let manifest = app.wait_for_manifest(&key).await;
    assert_eq!(manifest.status, Status::Done);

    // The API's side: the caller's trace continued, the presign span beneath it.
    let caller = TraceId::from_hex(&caller_trace).unwrap();
    let api = trace(caller);
    let request = one(&api, "POST /v1/uploads");
    assert_eq!(request.span_kind, SpanKind::Server);
    assert_eq!(
        request.parent_span_id,
        SpanId::from_hex(&caller_span).unwrap()
    );
    assert_eq!(attr(request, "http.route").as_deref(), Some("/v1/uploads"));
    assert_eq!(
        attr(request, "http.response.status_code").as_deref(),
        Some("200")
    );
    let presign = one(&api, "presign");
    assert_eq!(presign.parent_span_id, request.span_context.span_id());
    assert_eq!(attr(presign, "key").as_deref(), Some(key.as_str()));
    assert_eq!(
        traceparent,
        format!("00-{caller_trace}-{}-01", presign.span_context.span_id())
    );

    // The worker's side: its own trace, linked to the presign span. Spans
    // end (and are exported) after the manifest is written: wait for it.
    let queue_span = format!("process {}", app.resources.queue);
    let mut job = None;
    for _ in 0..100 {
        job = spans().get_finished_spans().unwrap().into_iter().find(|s| {
            s.name == queue_span.as_str() && attr(s, "key").as_deref() == Some(key.as_str())
        });
        if job.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let job = job.expect("the job's span");
    assert_eq!(job.span_kind, SpanKind::Consumer);
    assert_eq!(
        job.parent_span_id,
        SpanId::INVALID,
        "the job starts its own trace"
    );
    assert_ne!(job.span_context.trace_id(), caller);
    let links = &job.links.links;
    assert_eq!(links.len(), 1, "one link, to the upload");
    assert_eq!(links[0].span_context.trace_id(), caller);
    assert_eq!(
        links[0].span_context.span_id(),
        presign.span_context.span_id()
    );
    assert_eq!(
        attr(&job, "bucket").as_deref(),
        Some(app.resources.inbox.as_str())
    );
    assert_eq!(attr(&job, "outcome").as_deref(), Some("done"));
    assert_eq!(
        attr(&job, "recipe").as_deref(),
        Some("thumb:resize,w=100/grayscale/webp,q=80+big:resize,w=300")
    );
    assert_eq!(
        attr(&job, "messaging.destination.name").as_deref(),
        Some(app.resources.queue.as_str())
    );

    let worker = trace(job.span_context.trace_id());
    let root = job.span_context.span_id();
    for name in ["receive", "download", "decode", "manifest", "delete"] {
        assert_eq!(one(&worker, name).parent_span_id, root, "{name}");
    }
    assert_eq!(
        attr(one(&worker, "download"), "bytes"),
        Some(ROCKET.len().to_string())
    );
    assert_eq!(
        attr(one(&worker, "decode"), "width").as_deref(),
        Some("640")
    );
    let uploads = named(&worker, "upload");
    assert_eq!(uploads.len(), 2, "one upload per output");
    assert!(uploads.iter().all(|s| s.parent_span_id == root));
    // Each output: a render span holding its operations and its encode.
    let renders = named(&worker, "render");
    assert_eq!(renders.len(), 2);
    let thumb = renders
        .iter()
        .find(|s| attr(s, "output").as_deref() == Some("thumb"))
        .unwrap();
    assert_eq!(thumb.parent_span_id, root);
    let under_thumb: Vec<_> = worker
        .iter()
        .filter(|s| s.parent_span_id == thumb.span_context.span_id())
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(under_thumb.len(), 3, "{under_thumb:?}");
    for name in ["resize", "grayscale", "encode"] {
        assert!(under_thumb.iter().any(|n| n == name), "{under_thumb:?}");
    }
    let encode = named(&worker, "encode")
        .into_iter()
        .find(|s| s.parent_span_id == thumb.span_context.span_id())
        .unwrap();
    assert_eq!(attr(encode, "format").as_deref(), Some("webp"));

    // Never a secret or a presigned URL in any attribute.
    for span in api.iter().chain(&worker) {
        for kv in &span.attributes {
            let value = kv.value.to_string();
            assert!(
                !value.contains("X-Amz-") && !value.contains("Signature"),
                "{}: {} = {value}",
                span.name,
                kv.key
            );
        }
    }
}

/// The value of one sample line of a Prometheus text exposition.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

async fn scrape(url: &str) -> String {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    response.text().await.unwrap()
}

#[tokio::test]
async fn metrics_move_when_jobs_run_and_requests_are_answered() {
    let app = TestApp::spawn().await;
    let metrics_url = format!("{}/metrics", app.api);
    // Other tests share the process's recorder: compare before and after.
    let before = scrape(&metrics_url).await;
    let done = r#"imgflow_jobs_total{outcome="done",code=""}"#;
    let failed = r#"imgflow_jobs_total{outcome="failed",code="unsupported_image"}"#;
    let uploads = r#"imgflow_http_requests_total{route="/v1/uploads",method="POST",status="200"}"#;
    let not_found =
        r#"imgflow_http_requests_total{route="/v1/jobs/{job_id}",method="GET",status="404"}"#;
    let decode_count = r#"imgflow_stage_duration_seconds_count{stage="decode"}"#;

    let upload = upload_in_trace(&app, &caller(), "resize,w=64").await;
    app.wait_for_manifest(upload["key"].as_str().unwrap()).await;
    app.put_inbox("bad/not-an-image.jpg", NOT_AN_IMAGE, &[])
        .await;
    app.wait_for_manifest("bad/not-an-image.jpg").await;
    let missing = app
        .http
        .get(format!("{}/v1/jobs/not-a-uuid", app.api))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let after = scrape(&metrics_url).await;
    for series in [done, failed, uploads, not_found, decode_count] {
        assert!(
            sample(&after, series) >= sample(&before, series) + 1.0,
            "{series}: {} → {}",
            sample(&before, series),
            sample(&after, series)
        );
    }
    for series in ["imgflow_bytes_in_total", "imgflow_bytes_out_total"] {
        assert!(sample(&after, series) > sample(&before, series), "{series}");
    }
    assert!(
        sample(&after, "imgflow_queue_lag_seconds_count")
            >= sample(&before, "imgflow_queue_lag_seconds_count") + 2.0
    );
    // Raw paths never become label values.
    assert!(!after.contains("not-a-uuid"), "raw paths in labels");
    assert!(after.contains("# HELP imgflow_jobs_total"));

    // The worker's own listener serves the same registry, and its probes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(imgflow::worker::listen::serve(
        listener,
        app.clients.clone(),
        app.resources.clone(),
        shutdown.clone(),
    ));
    let worker_metrics = scrape(&format!("http://{addr}/metrics")).await;
    assert!(sample(&worker_metrics, done) >= sample(&after, done));
    for probe in ["healthz", "readyz"] {
        let status = reqwest::get(format!("http://{addr}/{probe}"))
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::OK, "{probe}");
    }
    shutdown.cancel();
}

#[tokio::test]
async fn a_worker_process_exports_its_spans_to_the_otlp_endpoint_in_its_environment() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

    // A tiny OTLP/HTTP receiver: decode each export, keep (service, span, links).
    type Received = Arc<Mutex<Vec<(String, String, Vec<String>)>>>;
    let received: Received = Arc::default();
    let sink = Arc::clone(&received);
    let receiver = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| async move {
            let export = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
            for resource_spans in export.resource_spans {
                let service = resource_spans
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| kv.value.as_ref())
                    .map(|v| format!("{:?}", v.value))
                    .unwrap_or_default();
                for scope in resource_spans.scope_spans {
                    for span in scope.spans {
                        let links = span.links.iter().map(|l| hex(&l.trace_id)).collect();
                        sink.lock()
                            .unwrap()
                            .push((service.clone(), span.name, links));
                    }
                }
            }
            StatusCode::OK
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let app = TestApp::spawn_with(crate::harness::Options {
        worker: None,
        ..Default::default()
    })
    .await;
    let mut worker = app.worker_process(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ]);
    let (caller_trace, caller_span) = caller();
    let traceparent = format!("00-{caller_trace}-{caller_span}-01");
    app.put_inbox(
        "otlp/rocket.jpg",
        ROCKET,
        &[("recipe", "resize,w=50"), ("traceparent", &traceparent)],
    )
    .await;
    let manifest = app.wait_for_manifest("otlp/rocket.jpg").await;
    assert_eq!(manifest.status, Status::Done);

    let job = format!("process {}", app.resources.queue);
    let mut seen = false;
    for _ in 0..150 {
        seen = received
            .lock()
            .unwrap()
            .iter()
            .any(|(service, name, links)| {
                service.contains("imgflow-worker")
                    && *name == job
                    && links == std::slice::from_ref(&caller_trace)
            });
        if seen {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = worker.kill();
    let _ = worker.wait();
    let got = received.lock().unwrap().clone();
    assert!(
        seen,
        "no job span from imgflow-worker linked to the upload: {got:?}"
    );
    for stage in [
        "download", "decode", "resize", "encode", "upload", "manifest",
    ] {
        assert!(
            got.iter().any(|(_, name, _)| name == stage),
            "{stage}: {got:?}"
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
