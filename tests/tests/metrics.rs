//! Metrics and rate limits against the real binary: a scrape after known traffic shows its
//! counts (requests by route and status, latency histograms, sync rounds, changes applied,
//! WebSocket connections, frames and pushes, cache use, the database pool); requests over a
//! user's or an address's rate get 429 `E_RATE_LIMITED` with `Retry-After` and a JSON body,
//! WebSocket frames count too, probes never do; every response carries a request id.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::time::{Duration, Instant};

use automerge::{AutoCommit, transaction::Transactable};
use cairn_core::sync::from_automerge;
use cairn_core::{DocumentId, Message};
use cairn_harness::postgres;
use serde_json::Value;
use support::{WsClient, http_sync, op, push_since, sample, scrape, start_server, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_after_known_traffic_shows_the_counts() {
    let server = start_server("metrics", &postgres::fresh_database().await, &[]);
    let base = server.url.as_str();
    let document = DocumentId::from_random_bytes([7; 16]);
    let mut doc = AutoCommit::new();
    let mut follower = WsClient::connect(base, "alice").await;
    for i in 0..5u64 {
        let before = doc.get_heads();
        doc.put(automerge::ROOT, "n", i as i64).unwrap();
        doc.commit();
        let request = push_since(document, &mut doc, &before, op(i + 1));
        http_sync(base, "alice", request).await.unwrap();
        if i == 0 {
            // Followed from its first change on: the next ones are pushed.
            let heads = from_automerge(&doc.get_heads());
            follower.subscribe(&[(document, heads)]).await;
            follower.barrier().await;
        }
    }
    let pushed = follower.recv().await;
    assert!(matches!(pushed, Some(Message::Changes(_))), "{pushed:?}");
    let unauthorized = reqwest::get(format!("{base}v1/docs")).await.unwrap();
    assert_eq!(unauthorized.status(), 401);
    assert!(unauthorized.headers().contains_key("x-request-id"));

    let text = scrape(base).await;
    let sync = r#"route="/v1/sync",method="POST",status="200""#;
    for (series, want) in [
        (format!("cairn_http_requests_total{{{sync}}}"), 5.0),
        (
            format!("cairn_http_request_duration_seconds_count{{{sync}}}"),
            5.0,
        ),
        (
            r#"cairn_http_requests_total{route="/v1/docs",method="GET",status="401"}"#.into(),
            1.0,
        ),
        (r#"cairn_sync_rounds_total{transport="http"}"#.into(), 5.0),
        (r#"cairn_sync_rounds_total{transport="ws"}"#.into(), 1.0),
        ("cairn_changes_applied_total".into(), 5.0),
        ("cairn_ws_connections".into(), 1.0),
        (r#"cairn_db_pool_connections{state="max"}"#.into(), 16.0),
    ] {
        assert_eq!(sample(&text, &series), want, "{series} in:\n{text}");
    }
    for series in [
        "cairn_ws_frames_total",
        "cairn_ws_pushes_total",
        "cairn_cache_hits_total",
        "cairn_cache_misses_total",
        "cairn_notify_lag_seconds_count",
    ] {
        assert!(sample(&text, series) >= 1.0, "{series} in:\n{text}");
    }
    assert!(text.contains("# TYPE cairn_http_request_duration_seconds histogram"));
    assert!(text.contains(&format!(
        "cairn_http_request_duration_seconds_bucket{{{sync},le=\"+Inf\"}} 5"
    )));
    assert_eq!(sample(&text, "cairn_file_contents"), 0.0);

    drop(follower);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sample(&scrape(base).await, "cairn_ws_connections") != 0.0 {
        assert!(Instant::now() < deadline, "the connection is still counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn list_docs(base: &str, user: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{base}v1/docs"))
        .bearer_auth(token(user))
        .send()
        .await
        .unwrap()
}

/// A 429's `Retry-After` (seconds), after checking its body.
async fn refused(response: reqwest::Response, scope: &str) -> u64 {
    assert_eq!(response.status(), 429);
    let retry = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "E_RATE_LIMITED", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(scope),
        "{body}"
    );
    assert!(
        body["error"]["retryAfterMs"].as_u64().unwrap() <= retry * 1000,
        "{body}"
    );
    retry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_a_users_rate_are_refused_with_retry_after() {
    let url = postgres::fresh_database().await;
    let flags = ["--rate-limit-user", "1", "--rate-limit-user-burst", "3"];
    let server = start_server("rate-user", &url, &flags);
    let base = server.url.as_str();
    for _ in 0..3 {
        assert_eq!(list_docs(base, "alice").await.status(), 200);
    }
    let retry = refused(list_docs(base, "alice").await, "user").await;
    assert_eq!(retry, 1);
    assert_eq!(
        list_docs(base, "bob").await.status(),
        200,
        "limits are per user"
    );

    // WebSocket frames count against the same user.
    let mut ws = WsClient::connect(base, "alice").await;
    ws.subscribe(&[(DocumentId::from_random_bytes([1; 16]), vec![])])
        .await;
    match ws.recv().await {
        Some(Message::Error(e)) => {
            assert_eq!(e.code, "E_RATE_LIMITED");
            assert!(e.retryable);
        }
        other => panic!("expected a rate-limit error frame, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(
        list_docs(base, "alice").await.status(),
        200,
        "allowed again"
    );
    let text = scrape(base).await;
    assert!(
        sample(&text, r#"cairn_rate_limited_total{scope="user"}"#) >= 2.0,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_an_addresss_rate_are_refused_but_probes_are_not() {
    let url = postgres::fresh_database().await;
    let flags = [
        "--rate-limit-user",
        "0",
        "--rate-limit-ip",
        "1",
        "--rate-limit-ip-burst",
        "2",
    ];
    let server = start_server("rate-address", &url, &flags);
    let base = server.url.as_str();
    assert_eq!(list_docs(base, "alice").await.status(), 200);
    assert_eq!(list_docs(base, "bob").await.status(), 200);
    refused(list_docs(base, "carol").await, "address").await;
    for probe in ["v1/health", "v1/ready"] {
        let response = reqwest::get(format!("{base}{probe}")).await.unwrap();
        assert_eq!(response.status(), 200, "{probe}");
    }
}
