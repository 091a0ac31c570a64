//! `GET /metrics`: Prometheus text exposition of this process's counters and histograms
//! (see `crate::metrics`) and of what the database holds, read at each scrape so every
//! replica reports the same totals: file contents and their bytes, pins by status, garbage
//! collection's queues; and the database pool. With `--metrics-token`, a scraper must send
//! it as a bearer token; without one the endpoint is open (it shows counts, never names).

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
    let (open, idle, max) = state.documents.store.pool_usage();
    let snapshot = crate::metrics::Snapshot {
        contents: counts.contents,
        dag_bytes: counts.dag_bytes,
        pins,
        queues: (counts.candidates, counts.blocks, counts.unpins),
        pool: (open.saturating_sub(idle), idle, max),
    };
    let mut response = (StatusCode::OK, crate::metrics::render(&snapshot)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT));
    Ok(response)
}
