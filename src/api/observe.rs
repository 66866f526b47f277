//! One span and two metrics per request: the outermost layer, so it sees
//! the final status of every answer, problems and time-outs included.

use std::time::Instant;

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::Request;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use tracing::field::Empty;

use crate::telemetry::{self, metric};

pub async fn observe(request: Request<Body>, next: Next) -> Response {
    // The route template, never the raw path: label values stay bounded
    // and keys or job ids do not end up in metric names.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    // Bounded too: the span name and the label carry `other` for a method
    // the client made up, never its bytes.
    let method = metric::method_label(request.method());
    let name = format!("{method} {route}");
    let span = tracing::info_span!(
        parent: None,
        "request",
        otel.name = name.as_str(),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = Empty,
        trace_id = Empty,
    );
    // Continue the caller's trace (W3C traceparent), if it sent one.
    telemetry::continue_trace(&span, request.headers());
    telemetry::record_trace_id(&span);

    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    if response.status().is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    metric::http_request(route, method, status, started.elapsed());
    response
}
