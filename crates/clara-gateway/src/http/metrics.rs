//! Prometheus metrics: the process-wide recorder every crate's `metrics::*!`
//! calls report to, and the HTTP layer's own request counts and latencies.
//!
//! What is measured where: thoughts, queued thoughts and replies in flight in
//! the conversation actor; reply latency (first token, whole), LLM tokens, tool
//! calls and reply failures in the brain; requests, logins and API answers here.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Latency buckets, in seconds: from a fast HTTP answer to a long model reply.
const SECONDS_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(10);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs Clara's metrics recorder for the process (once; later calls return
/// the same handle). `None` when another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
                .ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics stays empty");
                return None;
            }
            describe();
            let upkeep = handle.clone();
            // A plain thread: it must outlive whichever async runtime installed it.
            let spawned = std::thread::Builder::new()
                .name("clara-metrics".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "metrics upkeep thread could not start; scrapes still fold samples");
            }
            Some(handle)
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "clara_thoughts_total",
        "Thoughts (merged bursts of messages) dispatched to be answered."
    );
    describe_gauge!(
        "clara_thoughts_queued",
        "Thoughts waiting for the reply in flight in their conversation."
    );
    describe_gauge!("clara_replies_in_flight", "Replies being written now.");
    describe_counter!(
        "clara_replies_total",
        "Replies, by how they ended (finished, cancelled, failed)."
    );
    describe_histogram!(
        "clara_reply_seconds",
        Unit::Seconds,
        "Time from asking the model to the end of the reply."
    );
    describe_histogram!(
        "clara_reply_first_token_seconds",
        Unit::Seconds,
        "Time from asking the model to its first text."
    );
    describe_counter!(
        "clara_llm_tokens_total",
        "Language model tokens, by direction (input, output)."
    );
    describe_counter!("clara_tool_calls_total", "Tool calls made by replies.");
    describe_counter!(
        "clara_errors_total",
        "Errors, by kind (reply: the model failed; http: the server failed a request)."
    );
    describe_counter!(
        "clara_http_requests_total",
        "HTTP requests, by route, method and status."
    );
    describe_histogram!(
        "clara_http_request_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request (to the first byte for streams)."
    );
    describe_counter!(
        "clara_api_completions_total",
        "POST /v1/chat/completions answers, by status."
    );
    describe_counter!(
        "clara_web_messages_total",
        "Messages sent from the web page."
    );
    describe_counter!("clara_logins_total", "Web page logins, by outcome.");
    describe_gauge!(
        "clara_web_tabs",
        "Web page tabs connected to their conversation's event stream."
    );
    describe_gauge!(
        "clara_jobs",
        "Background jobs (summaries, memory extraction), by kind and status."
    );
}

/// Counts and times every request, labelled by its route's pattern (never by
/// its raw path, so ids do not make new series).
pub(crate) async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status();
    metrics::histogram!("clara_http_request_seconds", "route" => route.clone(), "method" => method.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        "clara_http_requests_total",
        "route" => route,
        "method" => method,
        "status" => status.as_u16().to_string()
    )
    .increment(1);
    response
}
