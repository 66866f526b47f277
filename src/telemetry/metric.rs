//! Prometheus metrics: what an autoscaler and a dashboard need.
//!
//! One recorder per process (the `metrics` facade), rendered as Prometheus
//! text at `/metrics` by the API and by the worker's listener. The names and
//! their meaning are a contract (README "Metrics", the Grafana dashboard in
//! `infra/observability/`); `describe` below holds the help texts.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const JOBS: &str = "imgflow_jobs_total";
pub const JOB_DURATION: &str = "imgflow_job_duration_seconds";
pub const STAGE_DURATION: &str = "imgflow_stage_duration_seconds";
pub const QUEUE_LAG: &str = "imgflow_queue_lag_seconds";
pub const IN_FLIGHT: &str = "imgflow_jobs_in_flight";
pub const MESSAGES: &str = "imgflow_messages_received_total";
pub const BYTES_IN: &str = "imgflow_bytes_in_total";
pub const BYTES_OUT: &str = "imgflow_bytes_out_total";
pub const QUEUE_ERRORS: &str = "imgflow_queue_errors_total";
pub const SANDBOX_DEATHS: &str = "imgflow_sandbox_deaths_total";
pub const HTTP_REQUESTS: &str = "imgflow_http_requests_total";
pub const HTTP_DURATION: &str = "imgflow_http_request_duration_seconds";
pub const MANIFEST_CHECKS: &str = "imgflow_api_manifest_checks_total";
pub const WEBHOOK_QUEUED: &str = "imgflow_webhook_queued_total";
pub const WEBHOOK_ATTEMPTS: &str = "imgflow_webhook_attempts_total";
pub const WEBHOOK_DELIVERIES: &str = "imgflow_webhook_deliveries_total";

/// Histogram buckets in seconds: 5 ms (a small thumbnail) to 5 min (a job
/// retried after the longest backoff).
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .expect("histogram buckets are non-empty")
            .build_recorder();
        let handle = recorder.handle();
        // Fails only if something else installed a recorder first; then
        // /metrics shows ours, empty, rather than crashing the process.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        // Histogram samples are buffered until drained: drain them even if
        // nobody scrapes, so memory stays bounded.
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            })
            .expect("spawning the metrics upkeep thread");
        handle
    })
}

/// Everything recorded so far, in the Prometheus text format.
pub fn render() -> String {
    handle().render()
}

/// The body and content type of a `/metrics` answer.
pub fn exposition() -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(),
    )
}

fn describe() {
    describe_counter!(
        JOBS,
        "Jobs finished, by outcome (done, failed, skipped, retry) and error code"
    );
    describe_histogram!(
        JOB_DURATION,
        Unit::Seconds,
        "Time from taking a message to its outcome, by outcome"
    );
    describe_histogram!(
        STAGE_DURATION,
        Unit::Seconds,
        "Time spent per job stage: download, decode, process, encode, upload, manifest"
    );
    describe_histogram!(
        QUEUE_LAG,
        Unit::Seconds,
        "Time from the S3 event (upload complete) to a worker starting the job"
    );
    describe_gauge!(IN_FLIGHT, "Messages being worked on right now");
    describe_counter!(MESSAGES, "SQS messages received");
    describe_counter!(
        MANIFEST_CHECKS,
        "Outbox listings by the API's shared job watcher (one per waited-on job per check, however many clients wait)"
    );
    describe_counter!(BYTES_IN, Unit::Bytes, "Source image bytes downloaded");
    describe_counter!(
        BYTES_OUT,
        Unit::Bytes,
        "Rendition bytes written to the outbox"
    );
    describe_counter!(
        QUEUE_ERRORS,
        "Failed SQS calls, by operation: receive, delete, change_visibility, webhook_receive, webhook_send, webhook_delete"
    );
    describe_counter!(
        SANDBOX_DEATHS,
        "Sandbox children that died (signal, abort, memory or CPU limit) instead of answering"
    );
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route, method and status"
    );
    describe_counter!(
        WEBHOOK_QUEUED,
        "Webhook deliveries queued: one per endpoint per final manifest"
    );
    describe_counter!(
        WEBHOOK_ATTEMPTS,
        "Webhook POSTs, by result: ok (2xx), status (another answer), timeout, error (no answer)"
    );
    describe_counter!(
        WEBHOOK_DELIVERIES,
        "Webhook deliveries ended, by outcome: delivered, gave_up (failing past the give-up time), dropped (endpoint no longer configured)"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request duration, by route, method and status"
    );
}

/// A job's outcome: `done`, `failed` (with its error code), `skipped`
/// (superseded, deleted, one of our outputs) or `retry` (a transient error).
pub fn job_finished(outcome: &'static str, code: &'static str, took: Duration) {
    counter!(JOBS, "outcome" => outcome, "code" => code).increment(1);
    histogram!(JOB_DURATION, "outcome" => outcome).record(took.as_secs_f64());
}

pub fn stage(stage: &'static str, took: Duration) {
    histogram!(STAGE_DURATION, "stage" => stage).record(took.as_secs_f64());
}

pub fn queue_lag(lag: Duration) {
    histogram!(QUEUE_LAG).record(lag.as_secs_f64());
}

pub fn message_received() {
    counter!(MESSAGES).increment(1);
}

pub fn bytes_in(bytes: u64) {
    counter!(BYTES_IN).increment(bytes);
}

pub fn bytes_out(bytes: u64) {
    counter!(BYTES_OUT).increment(bytes);
}

/// A failed SQS call: `receive`, `delete` or `change_visibility`.
/// A sandbox child died (signal, abort, a limit) instead of answering.
pub fn sandbox_died() {
    counter!(SANDBOX_DEATHS).increment(1);
}

/// The API's shared job watcher listed a job's outbox folder once.
pub fn manifest_check() {
    counter!(MANIFEST_CHECKS).increment(1);
}

/// Webhook deliveries queued for a final manifest.
pub fn webhook_enqueued(count: u64) {
    counter!(WEBHOOK_QUEUED).increment(count);
}

/// One webhook POST: `ok`, `status`, `timeout` or `error`.
pub fn webhook_attempt(result: &'static str) {
    counter!(WEBHOOK_ATTEMPTS, "result" => result).increment(1);
}

/// A webhook delivery ended: `delivered`, `gave_up` or `dropped`.
pub fn webhook_delivery(outcome: &'static str) {
    counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).increment(1);
}

pub fn queue_error(op: &'static str) {
    counter!(QUEUE_ERRORS, "op" => op).increment(1);
}

/// The method as a label value: one of the standard methods, else `other`.
/// Clients choose the method (HTTP allows any token, thousands of bytes
/// long), so the raw value would let anyone grow `/metrics` without bound.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// One answered HTTP request; `route` is the matched route template
/// (`/v1/jobs/{job_id}`), never the raw path, and `method` comes from
/// [`method_label`], to bound the label values.
pub fn http_request(route: String, method: &'static str, status: u16, took: Duration) {
    let labels = [
        ("route", route),
        ("method", method.to_owned()),
        ("status", status.to_string()),
    ];
    counter!(HTTP_REQUESTS, &labels).increment(1);
    histogram!(HTTP_DURATION, &labels).record(took.as_secs_f64());
}

/// Counts a message as in flight until dropped.
pub struct InFlight(());

impl InFlight {
    pub fn start() -> InFlight {
        gauge!(IN_FLIGHT).increment(1.0);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        gauge!(IN_FLIGHT).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::method_label;
    use axum::http::Method;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let odd = Method::from_bytes("X".repeat(4000).as_bytes()).unwrap();
        assert_eq!(method_label(&odd), "other");
        assert_eq!(method_label(&Method::from_bytes(b"get").unwrap()), "other");
    }
}
