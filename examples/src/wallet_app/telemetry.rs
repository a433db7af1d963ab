//! What the app tells operators: `GET /metrics` in Prometheus' text format,
//! logs as text or JSON lines, and W3C `traceparent` carried from a request
//! into the metadata of the events it writes.
//!
//! The recorder is the app's choice, not the library's: `nexus-core` only
//! records through the `metrics` facade. Cluster hops do not exist yet, so a
//! `traceparent` travels from the HTTP request to the event headers, and
//! from there to projections; no call crosses processes to carry it further.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use nexus_core::CommandOptions;
use tracing::Instrument;

/// How `wallet-app` writes its logs (`--log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the current span and its parents.
    Json,
}

/// Logs to stderr in `format`, filtered by `RUST_LOG` (default `info`).
pub fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

/// The process's Prometheus recorder, installed globally on first use so
/// that every `Entities` built afterwards records into it (and the Postgres
/// lease's shard metrics too). One per process: servers started in one
/// process (tests) share it.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "a metrics recorder was installed already; /metrics shows only what this one sees"
            );
        }
        handle
    })
}

/// `GET /metrics`: every metric in Prometheus' text exposition format.
pub fn routes() -> Router {
    Router::new().route("/metrics", get(metrics_text))
}

async fn metrics_text() -> Response {
    let body = prometheus().render();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        body,
    )
        .into_response()
}

tokio::task_local! {
    /// The request's valid `traceparent`, for the commands it sends.
    static TRACEPARENT: Option<String>;
}

/// A W3C trace context header: `version-trace_id-parent_id-flags`, lowercase
/// hex, trace and parent ids not all zeros. Version `ff` is invalid.
///
/// ```
/// use nexus_examples::wallet_app::telemetry::is_traceparent;
/// assert!(is_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
/// assert!(!is_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
/// assert!(!is_traceparent("not a trace"));
/// ```
pub fn is_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    parts.len() >= 4
        && hex(parts[0], 2)
        && parts[0] != "ff"
        && (parts[0] != "00" || parts.len() == 4)
        && hex(parts[1], 32)
        && nonzero(parts[1])
        && hex(parts[2], 16)
        && nonzero(parts[2])
        && hex(parts[3], 2)
}

/// Middleware: one `http.request` span per request (the parent of the
/// `nexus.command` spans its handler opens), with the request's valid
/// `traceparent` as a field and kept for [`with_trace`].
pub async fn trace_requests(request: Request, next: Next) -> Response {
    let traceparent = request
        .headers()
        .get("traceparent")
        .and_then(|value| value.to_str().ok())
        .filter(|value| is_traceparent(value))
        .map(str::to_owned);
    let span = tracing::info_span!(
        "http.request",
        method = %request.method(),
        path = request.uri().path(),
        traceparent = traceparent.as_deref(),
    );
    TRACEPARENT
        .scope(traceparent, next.run(request).instrument(span))
        .await
}

/// `options` with the current request's `traceparent` as an event header,
/// so the events a command writes name the trace that caused them.
pub fn with_trace(options: CommandOptions) -> CommandOptions {
    match TRACEPARENT.try_with(Clone::clone).ok().flatten() {
        Some(traceparent) => options.header("traceparent", traceparent),
        None => options,
    }
}
