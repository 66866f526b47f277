//! Logs, traces and metrics: everything an operator sees of a running imgflow.
//!
//! - **Logs** go to stderr as text, pretty (multi-line) or JSON lines
//!   (`--log-format`, `IMGFLOW_LOG_FORMAT`); `RUST_LOG` picks what is logged
//!   (default `info`). Lines logged inside a request or a job carry its
//!   `trace_id`.
//! - **Traces** are OpenTelemetry spans made from `tracing` spans. They are
//!   exported over OTLP/HTTP (protobuf) when the standard
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is
//!   set, and only kept in memory long enough to give log lines and uploads
//!   a trace id otherwise. W3C `traceparent` is the propagation format: the
//!   API continues an incoming one and signs its own into each upload's
//!   metadata; the worker links the job to it (see [`traceparent`] and
//!   [`linked_context`]).
//! - **Metrics** are Prometheus text at `/metrics`; see [`metric`].

pub mod metric;

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line per event, spans and their fields as a prefix.
    #[default]
    Text,
    /// Several lines per event, for reading in a terminal.
    Pretty,
    /// One JSON object per line, with the current span and all its parents.
    Json,
}

/// Keeps the trace pipeline alive; [`Telemetry::shutdown`] flushes it.
#[must_use = "dropping the guard does not flush spans: call shutdown() before exiting"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Export whatever spans are still buffered (bounded: a collector that
    /// does not answer does not hold the exit).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown_with_timeout(Duration::from_secs(5))
        {
            eprintln!("imgflow: flushing traces: {error}");
        }
    }
}

/// The tracer behind the `tracing` layer, for spans that happened elsewhere.
static TRACER: std::sync::OnceLock<opentelemetry_sdk::trace::SdkTracer> =
    std::sync::OnceLock::new();

/// Record spans a sandbox child closed as children of `parent`, with their
/// own start and end times: the job's trace shows its decode, operations
/// and encode as if they had run here.
pub fn replay(parent: &Span, spans: &[crate::sandbox::RemoteSpan]) {
    use opentelemetry::trace::{Span as _, TraceContextExt, Tracer as _};
    use opentelemetry::{KeyValue, Value};
    let Some(tracer) = TRACER.get() else {
        return;
    };
    let at = |ns: u64| std::time::UNIX_EPOCH + Duration::from_nanos(ns);
    let root = parent.context();
    let mut contexts: HashMap<u64, opentelemetry::Context> = HashMap::new();
    // Parents first: a span starts before its children, and is closed after them.
    let mut pending: Vec<&crate::sandbox::RemoteSpan> = spans.iter().collect();
    pending.sort_by_key(|s| s.start_ns);
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|remote| {
            let parent_cx = match remote.parent {
                None => &root,
                Some(id) => match contexts.get(&id) {
                    Some(cx) => cx,
                    // Its parent is still pending (or never closed: then the root).
                    None if spans.iter().any(|s| s.id == id) => return true,
                    None => &root,
                },
            };
            let mut name = remote.name.clone();
            let mut attributes = Vec::new();
            for (key, value) in &remote.fields {
                let value = match value {
                    serde_json::Value::String(s) if key == "otel.name" => {
                        name = s.clone();
                        continue;
                    }
                    serde_json::Value::String(s) => Value::from(s.clone()),
                    serde_json::Value::Bool(b) => Value::from(*b),
                    serde_json::Value::Number(n) => match n.as_i64() {
                        Some(i) => Value::from(i),
                        None => Value::from(n.as_f64().unwrap_or_default()),
                    },
                    other => Value::from(other.to_string()),
                };
                attributes.push(KeyValue::new(key.clone(), value));
            }
            let mut span = tracer
                .span_builder(name)
                .with_start_time(at(remote.start_ns))
                .with_attributes(attributes)
                .start_with_context(tracer, parent_cx);
            span.end_with_timestamp(at(remote.end_ns));
            let cx = parent_cx.with_remote_span_context(span.span_context().clone());
            contexts.insert(remote.id, cx);
            false
        });
        if pending.len() == before {
            break; // a cycle in what the child sent: drop the rest
        }
    }
}

/// Is an OTLP endpoint configured in the environment?
pub fn otlp_configured() -> bool {
    let set = |name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// Install logging, and for long-running commands (`service` is `Some`)
/// tracing with OpenTelemetry, exporting over OTLP when configured.
/// `OTEL_SERVICE_NAME` overrides `service`.
pub fn init(format: LogFormat, service: Option<&'static str>) -> Telemetry {
    let exporter = match service {
        Some(_) if otlp_configured() => match otlp_exporter() {
            Ok(exporter) => Some(exporter),
            Err(error) => {
                eprintln!("imgflow: traces will not be exported: {error}");
                None
            }
        },
        _ => None,
    };
    let provider = service.map(|service| tracer_provider(service, exporter));
    let otel = provider.as_ref().map(|provider| {
        let _ = TRACER.set(provider.tracer("imgflow"));
        tracing_opentelemetry::layer().with_tracer(provider.tracer("imgflow"))
    });
    install(Some(format), otel);
    Telemetry { provider }
}

/// Install tracing with a given span exporter, for tests that look at the
/// spans (an in-memory exporter), and logging only if `logs` says how.
/// Spans are exported as they end.
pub fn init_with_exporter(
    exporter: impl SpanExporter + 'static,
    logs: Option<LogFormat>,
) -> Telemetry {
    let provider = SdkTracerProvider::builder()
        .with_resource(resource("imgflow"))
        .with_simple_exporter(exporter)
        .build();
    let _ = TRACER.set(provider.tracer("imgflow"));
    install(
        logs,
        Some(tracing_opentelemetry::layer().with_tracer(provider.tracer("imgflow"))),
    );
    Telemetry {
        provider: Some(provider),
    }
}

fn install<L>(format: Option<LogFormat>, otel: Option<L>)
where
    L: Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = format.map(|format| match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Pretty => fmt.pretty().boxed(),
        LogFormat::Json => fmt
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
    });
    // RUST_LOG filters the log lines only: traces take every span at INFO
    // and above whatever it says, and never the SDK's DEBUG/TRACE internals.
    let result = tracing_subscriber::registry()
        .with(otel.map(|otel| otel.with_filter(LevelFilter::INFO)))
        .with(fmt.map(|fmt| fmt.with_filter(filter)))
        .try_init();
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

fn resource(service: &'static str) -> Resource {
    let builder = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
        "service.version",
        env!("CARGO_PKG_VERSION"),
    ));
    // Resource::builder() has read OTEL_SERVICE_NAME already; ours is the default.
    if std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty()) {
        builder.build()
    } else {
        builder.with_service_name(service).build()
    }
}

fn tracer_provider(
    service: &'static str,
    exporter: Option<opentelemetry_otlp::SpanExporter>,
) -> SdkTracerProvider {
    let builder = SdkTracerProvider::builder().with_resource(resource(service));
    match exporter {
        Some(exporter) => builder.with_batch_exporter(exporter).build(),
        // No processor: spans get ids (for logs and propagation) and are dropped.
        None => builder.build(),
    }
}

fn otlp_exporter() -> anyhow::Result<opentelemetry_otlp::SpanExporter> {
    use opentelemetry_otlp::WithExportConfig;
    let protocol = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_default();
    if !protocol.is_empty() && protocol != "http/protobuf" {
        anyhow::bail!("OTLP protocol {protocol:?} is not supported; use http/protobuf (port 4318)");
    }
    Ok(opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .build()?)
}

/// The W3C `traceparent` of `span`, to carry its trace across a boundary
/// (the API signs it into the upload's metadata). `None` without tracing.
pub fn traceparent(span: &Span) -> Option<String> {
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier.remove("traceparent")
}

/// Continue the trace an incoming request names in its `traceparent` header.
pub fn continue_trace(span: &Span, headers: &axum::http::HeaderMap) {
    let parent =
        TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
    if parent.span().span_context().is_valid() {
        // Fails only when tracing is off or the span has started: then it is a root.
        let _ = span.set_parent(parent);
    }
}

/// The span context a `traceparent` (from object metadata) names, to link
/// a job to the upload that caused it. `None` when absent or malformed.
pub fn linked_context(traceparent: &str) -> Option<SpanContext> {
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then_some(span_context)
}

/// Record the span's trace id in its `trace_id` field (declared `Empty`),
/// so every log line inside it names the trace.
pub fn record_trace_id(span: &Span) {
    let span_context = span.context().span().span_context().clone();
    if span_context.is_valid() {
        span.record("trace_id", span_context.trace_id().to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_round_trips_and_garbage_is_refused() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let span_context = linked_context(tp).expect("valid");
        assert_eq!(
            span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(span_context.span_id().to_string(), "00f067aa0ba902b7");
        assert!(span_context.is_remote());
        for bad in [
            "",
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        ] {
            assert!(linked_context(bad).is_none(), "{bad:?}");
        }
    }
}
