//! Live sync under load, against the real server binary on PostgreSQL (fsync on):
//!
//! 1. Round trips per second of an empty sync (`POST /v1/sync` for an up-to-date document:
//!    auth, access check, cached heads, no writes) beside a bare axum handler that echoes its
//!    body, with the same HTTP client, sequential, loopback.
//! 2. WebSocket fan-out: 50, 100, 150 and 200 clients (or `CAIRN_BENCH_CLIENTS=a,b,..`) in 20
//!    shared documents, each typing 6 changes per second over its socket; the latency from
//!    sending a change to its receipt by every other client of the document (so it includes
//!    the commit), p50/p99/max, and the CPU of the server, PostgreSQL and the load generator,
//!    and the server's peak RSS.
//!
//! The load generator shares the machine (2 cores here) with the server and PostgreSQL.
//! Run: `scripts/bench sync` (or `cargo bench -p cairn-e2e --bench live_sync`).

#![allow(clippy::unwrap_used)] // a benchmark: a panic is the report

#[path = "../tests/support/mod.rs"]
mod support;

mod fanout;

use std::time::{Duration, Instant};

use automerge::{AutoCommit, transaction::Transactable};
use cairn_core::Message;
use cairn_core::protocol::{MEDIA_TYPE, SyncRequest};
use cairn_core::sync::from_automerge;
use cairn_harness::postgres;
use fanout::{CHANGES_PER_SECOND, DOCUMENTS, TYPING, doc_id, fan_out};
use support::{http_sync, op, push_since, start_server, token};

/// Sequential POSTs of `body` for `window`; returns round trips per second.
async fn rate(client: &reqwest::Client, url: &str, auth: Option<&str>, body: &[u8]) -> f64 {
    let window = Duration::from_secs(3);
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < window && n < 200_000 {
        let mut request = client
            .post(url)
            .header("content-type", MEDIA_TYPE)
            .body(body.to_vec());
        if let Some(token) = auth {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        response.bytes().await.unwrap();
        n += 1;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

async fn bare_axum() -> String {
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(|body: axum::body::Bytes| async move { body }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::main]
async fn main() {
    let server = start_server(
        "bench-live",
        &postgres::durable().fresh_database().await,
        // Latency and throughput are measured, not the rate limits.
        &[
            "--max-connections-per-user",
            "16",
            "--rate-limit-user",
            "0",
            "--rate-limit-ip",
            "0",
        ],
    );
    let base = server.url.clone();

    // 1. Empty sync round trips vs a bare handler.
    let mut doc = AutoCommit::new();
    doc.put(automerge::ROOT, "x", 1).unwrap();
    let document = doc_id(250);
    http_sync(&base, "bench", push_since(document, &mut doc, &[], op(1)))
        .await
        .unwrap();
    let empty = Message::SyncRequest(SyncRequest {
        request: 2,
        documents: vec![cairn_core::protocol::DocRequest {
            document,
            heads: from_automerge(&doc.get_heads()),
            entries: vec![],
        }],
    })
    .encode();
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let bench_token = token("bench");
    let sync_url = format!("{base}v1/sync");
    rate(&client, &sync_url, Some(&bench_token), &empty).await; // warm up
    let sync_rate = rate(&client, &sync_url, Some(&bench_token), &empty).await;
    let bare_url = bare_axum().await;
    rate(&client, &bare_url, None, &empty).await;
    let bare_rate = rate(&client, &bare_url, None, &empty).await;

    println!();
    println!(
        "Live sync (PostgreSQL 15, fsync on, loopback, {} cores shared by load generator, server and PostgreSQL)",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "{:<44} {:>14} {:>10}",
        "round trips, sequential", "per second", "ratio"
    );
    println!(
        "{:<44} {:>14.0} {:>9.2}x",
        "POST /v1/sync, empty (up-to-date document)",
        sync_rate,
        sync_rate / bare_rate
    );
    println!(
        "{:<44} {:>14.0} {:>9.2}x",
        "bare axum handler echoing the body", bare_rate, 1.0
    );
    println!();
    println!(
        "WebSocket fan-out: {DOCUMENTS} shared documents, each client typing {CHANGES_PER_SECOND} changes/s for {} s;",
        TYPING.as_secs()
    );
    println!(
        "latency = a change sent -> received by each other client of its document (includes the commit)"
    );
    println!(
        "{:>7} {:>9} {:>10} {:>10} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>8}",
        "clients",
        "changes/s",
        "deliveries",
        "repeated",
        "p50 ms",
        "p99 ms",
        "max ms",
        "server",
        "pg",
        "load",
        "RSS MB"
    );
    let counts: Vec<usize> = match std::env::var("CAIRN_BENCH_CLIENTS") {
        Ok(v) => v.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
        Err(_) => vec![50, 100, 150, 200],
    };
    for (round, clients) in counts.into_iter().enumerate() {
        let run = fan_out(&server.url, &[&server], round, clients).await;
        println!(
            "{:>7} {:>9.0} {:>10} {:>10} {:>8.1} {:>8.1} {:>8.1} {:>6.0}% {:>6.0}% {:>6.0}% {:>8.1}",
            run.clients,
            run.rate,
            format!("{}/{}", run.delivered, run.expected),
            run.repeated,
            run.p50_ms,
            run.p99_ms,
            run.max_ms,
            run.server_cpu[0] * 100.0,
            run.pg_cpu * 100.0,
            run.load_cpu * 100.0,
            run.peak_rss_mb[0]
        );
    }
}
