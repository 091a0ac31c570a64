//! `GET /metrics`: Prometheus text exposition of what the database holds, so every replica
//! reports the same totals: file contents and their bytes, pins by status (the durable pin
//! queue), and garbage collection's queues. With `--metrics-token`, a scraper must send it
//! as a bearer token; without one the endpoint is open (it shows counts, never names).

use std::fmt::Write;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{AppState, Error};

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Error> {
    if let Some(token) = &state.metrics_token {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if sent != Some(token.as_ref()) {
            return Err(Error::Unauthorized(
                "the metrics token is missing or wrong".into(),
            ));
        }
    }
    let store = &state.files.store;
    let pins = store.pin_counts().await?;
    let counts = store.gc_counts().await?;
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(&str, i64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    gauge(
        "cairn_file_contents",
        "File contents stored (each once, whoever uploaded it).",
        &[("", counts.contents)],
    );
    gauge(
        "cairn_file_dag_bytes",
        "Bytes of the stored contents' IPFS DAGs.",
        &[("", counts.dag_bytes)],
    );
    let by_status: Vec<(String, i64)> = ["queued", "pinning", "pinned", "failed"]
        .iter()
        .map(|status| {
            let n = pins
                .iter()
                .find(|(s, _)| s == status)
                .map_or(0, |(_, n)| *n);
            (format!("{{status=\"{status}\"}}"), n)
        })
        .collect();
    let by_status: Vec<(&str, i64)> = by_status.iter().map(|(l, n)| (l.as_str(), *n)).collect();
    gauge(
        "cairn_pins",
        "File contents in the pin queue, by status.",
        &by_status,
    );
    gauge(
        "cairn_gc_candidates",
        "Unreferenced contents waiting for their grace period.",
        &[("", counts.candidates)],
    );
    gauge(
        "cairn_gc_block_candidates",
        "Blocks that may be unused, waiting to be deleted.",
        &[("", counts.blocks)],
    );
    gauge(
        "cairn_gc_unpins",
        "Pins waiting to be removed from the pinning backend.",
        &[("", counts.unpins)],
    );
    let mut response = (StatusCode::OK, out).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT));
    Ok(response)
}
