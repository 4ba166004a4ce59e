//! `GET /metrics` in Prometheus' text format: the queue's state, delivery totals, broker
//! reachability, and request counts and latencies. Unauthenticated, like `/healthz`: it carries no evidence, and
//! the Host guard keeps it to loopback names.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use casewire_outbox::Page;

use crate::ServerState;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Request counters, shared by the middleware and the `/metrics` handler.
#[derive(Debug, Default)]
pub struct RequestMetrics {
    /// Requests by status class: 1xx to 5xx.
    by_class: [AtomicU64; 5],
    /// Requests at or under each bucket's bound (cumulative, as Prometheus wants).
    buckets: [AtomicU64; BUCKETS.len()],
    /// All requests.
    count: AtomicU64,
    /// Their total duration, in microseconds.
    sum_micros: AtomicU64,
}

impl RequestMetrics {
    fn observe(&self, status: StatusCode, seconds: f64) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }
}

/// Times every request.
pub(crate) async fn track(
    State(state): State<Arc<ServerState>>,
    request: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let response = next.run(request).await;
    state
        .requests
        .observe(response.status(), start.elapsed().as_secs_f64());
    response
}

fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    metric(out, "gauge", name, help, value);
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    metric(out, "counter", name, help, value);
}

fn metric(out: &mut String, kind: &str, name: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// The queue, the relay and the requests, in Prometheus' text format.
#[utoipa::path(get, path = "/metrics", tag = "health", responses(
    (status = 200, content_type = "text/plain", body = String, description = "Prometheus text format 0.0.4"),
    (status = 503, content_type = "text/plain", body = String, description = "The outbox cannot be read"),
))]
pub(crate) async fn metrics(State(state): State<Arc<ServerState>>) -> Response {
    let stats = match state.outbox.stats(Page::first(0)) {
        Ok(stats) => stats,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("# the outbox cannot be read: {e}\n"),
            )
                .into_response();
        }
    };
    let mut out = String::new();
    gauge(
        &mut out,
        "casewire_queue_events",
        "Events waiting in the outbox for Kafka.",
        stats.queue_size,
    );
    gauge(
        &mut out,
        "casewire_queue_oldest_event_age_seconds",
        "Age of the oldest queued event (0 when the queue is empty).",
        stats.oldest_age_ms.unwrap_or(0) as f64 / 1e3,
    );
    gauge(
        &mut out,
        "casewire_queue_in_flight",
        "Events handed to Kafka and awaiting its report.",
        stats.in_flight,
    );
    gauge(
        &mut out,
        "casewire_dead_letters",
        "Events that will not be retried unless replayed.",
        stats.dead_letter_count,
    );
    gauge(
        &mut out,
        "casewire_queue_awaiting_deletion",
        "Delivered events whose rows the outbox has yet to delete.",
        stats.awaiting_deletion,
    );
    gauge(
        &mut out,
        "casewire_queue_bytes",
        "Bytes of queued, dead-lettered and delivered-but-not-yet-deleted event documents (what the quota counts).",
        stats.bytes,
    );
    gauge(
        &mut out,
        "casewire_queue_quota_bytes",
        "The quota on casewire_queue_bytes.",
        stats.quota_bytes,
    );
    gauge(
        &mut out,
        "casewire_kafka_available",
        "1 when a relay is running.",
        u8::from(stats.kafka_available),
    );
    gauge(
        &mut out,
        "casewire_kafka_connected",
        "1 when a broker is reachable.",
        u8::from(stats.kafka_connected),
    );
    let refused = state
        .app
        .as_ref()
        .and_then(|app| app.relay_status().refused);
    let _ = writeln!(
        out,
        "# HELP casewire_kafka_refused 1 while the cluster refuses this client, by why: authentication (the credentials), certificate (the broker's certificate did not verify), authorization (the ACLs). Events wait; no attempt is counted.\n# TYPE casewire_kafka_refused gauge"
    );
    for reason in ["authentication", "certificate", "authorization"] {
        let _ = writeln!(
            out,
            "casewire_kafka_refused{{reason=\"{reason}\"}} {}",
            u8::from(refused == Some(reason))
        );
    }
    let totals = state.outbox.delivery_totals();
    counter(
        &mut out,
        "casewire_events_published_total",
        "Events Kafka acknowledged, since start.",
        totals.published,
    );
    counter(
        &mut out,
        "casewire_events_failed_total",
        "Counted failed delivery attempts (retriable and permanent), since start.",
        totals.failed,
    );
    counter(
        &mut out,
        "casewire_events_dead_lettered_total",
        "Events moved to the dead letters, since start.",
        totals.dead_lettered,
    );
    counter(
        &mut out,
        "casewire_events_unreachable_total",
        "Delivery attempts while no broker was reachable (not counted as failures), since start.",
        totals.unreachable,
    );
    let refusals = state.auth.refusals.counts();
    let _ = writeln!(
        out,
        "# HELP casewire_refusals_total Refused requests (no valid token, a role without the permission) since start, by what was recorded of them.\n# TYPE casewire_refusals_total counter"
    );
    for (outcome, n) in [
        ("recorded", refusals.recorded),
        ("coalesced", refusals.coalesced),
        ("rate_limited", refusals.rate_limited),
        ("dropped", refusals.dropped),
    ] {
        let _ = writeln!(out, "casewire_refusals_total{{outcome=\"{outcome}\"}} {n}");
    }
    gauge(
        &mut out,
        "casewire_refusals_queued_bytes",
        "Bytes of the queue the refusal events hold (bounded by casewire_refusals_share_bytes).",
        state.auth.refusals.queued_bytes(),
    );
    gauge(
        &mut out,
        "casewire_refusals_share_bytes",
        "Most bytes of the queue refusal events may hold.",
        state.auth.refusals.limits().share_bytes,
    );
    let r = &state.requests;
    let _ = writeln!(
        out,
        "# HELP casewire_http_requests_total Requests answered, by status class.\n# TYPE casewire_http_requests_total counter"
    );
    for (i, counter) in r.by_class.iter().enumerate() {
        let _ = writeln!(
            out,
            "casewire_http_requests_total{{status=\"{}xx\"}} {}",
            i + 1,
            counter.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP casewire_http_request_duration_seconds Time to answer a request.\n# TYPE casewire_http_request_duration_seconds histogram"
    );
    for (bound, bucket) in BUCKETS.iter().zip(&r.buckets) {
        let _ = writeln!(
            out,
            "casewire_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
            bucket.load(Ordering::Relaxed)
        );
    }
    let count = r.count.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "casewire_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
    );
    let _ = writeln!(
        out,
        "casewire_http_request_duration_seconds_sum {}",
        r.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
    );
    let _ = writeln!(out, "casewire_http_request_duration_seconds_count {count}");
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
