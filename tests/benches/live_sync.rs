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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use automerge::{AutoCommit, transaction::Transactable};
use cairn_core::protocol::{DocHeads, MEDIA_TYPE, SyncRequest};
use cairn_core::sync::from_automerge;
use cairn_core::{DocumentId, Message};
use cairn_harness::postgres;
use futures::{SinkExt, StreamExt};
use support::{http_sync, op, push_since, start_server, token};
use tokio_tungstenite::tungstenite::Message as WsMessage;

const DOCUMENTS: usize = 20;

const CHANGES_PER_SECOND: u64 = 6;
const TYPING: Duration = Duration::from_secs(10);

fn doc_id(n: usize) -> DocumentId {
    let mut bytes = [0x5a; 16];
    bytes[0] = n as u8;
    DocumentId::from_random_bytes(bytes)
}

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

/// CPU seconds (user + system) the process has used; `None` once it is gone.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit(") ").next()?.split(' ').collect();
    // After the command: state is field 3; utime and stime are fields 14 and 15.
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// CPU seconds used by every `postgres` process (the cluster's backends come and go, so
/// this counts the live ones: the pool keeps its connections for the whole run).
fn postgres_cpu_seconds() -> f64 {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .filter_map(cpu_seconds)
        .sum()
}

type Sent = Arc<Mutex<HashMap<automerge::ChangeHash, (usize, Instant)>>>;

/// One typing client: its socket, its copy of the document, latencies it observed.
async fn typist(
    base: String,
    round: usize,
    index: usize,
    start: Arc<tokio::sync::Barrier>,
    sent: Sent,
) -> (Vec<Duration>, [u64; 2]) {
    let d = index % DOCUMENTS;
    let document = doc_id(round * DOCUMENTS + d);
    let user = format!("team{d}");
    let url = format!("{}v1/ws", base.replacen("http", "ws", 1));
    let (stream, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .unwrap();
    let (mut tx, mut rx) = stream.split();
    let frame = |m: Message| WsMessage::Binary(m.encode().into());
    tx.send(frame(Message::Auth {
        token: token(&user),
    }))
    .await
    .unwrap();
    // Each typist builds on its own changes only and never applies the others' (a real
    // client would, on its own device): the load generator shares the server's two cores,
    // and applying 200 clients' worth of changes here would mostly measure itself. The
    // server's work is the same: every change is concurrent with some others, and the
    // server still merges, commits and pushes each one.
    let mut doc = AutoCommit::new();
    tx.send(frame(Message::Subscribe(vec![DocHeads {
        document,
        heads: vec![],
    }])))
    .await
    .unwrap();

    let reader = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut seen = std::collections::HashSet::new();
            let mut duplicates = [0u64; 2]; // in pushes, in sync responses
            while let Some(Ok(frame)) = rx.next().await {
                let WsMessage::Binary(bytes) = frame else {
                    continue;
                };
                let (data, source) = match Message::decode(&bytes).unwrap() {
                    Message::Changes(c) => (c.data, 0),
                    Message::SyncResponse(r) => {
                        (r.documents.into_iter().flat_map(|d| d.data).collect(), 1)
                    }
                    Message::Welcome { .. } => continue,
                    Message::Error(e) => panic!("client {index}: {e:?}"),
                    _ => continue,
                };
                if data.is_empty() {
                    continue;
                }
                let now = Instant::now();
                let new = change_hashes(&data);
                let sent = sent.lock().unwrap();
                for hash in new {
                    if !seen.insert(hash) {
                        duplicates[source] += 1;
                    } else if let Some((from, at)) = sent.get(&hash)
                        && *from != index
                    {
                        latencies.push(now - *at);
                    }
                }
            }
            (latencies, duplicates)
        })
    };

    start.wait().await;
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / CHANGES_PER_SECOND));
    let began = Instant::now();
    let mut n = 0u64;
    while began.elapsed() < TYPING {
        tick.tick().await;
        n += 1;
        let request = {
            let before = doc.get_heads();
            doc.put(automerge::ROOT, format!("c{index}"), n as i64)
                .unwrap();
            let mut request = push_since(
                document,
                &mut doc,
                &before,
                op(index as u64 * 1_000_000 + n),
            );
            request.request = n;
            let hash = doc.get_heads()[0];
            sent.lock().unwrap().insert(hash, (index, Instant::now()));
            request
        };
        tx.send(frame(Message::SyncRequest(request))).await.unwrap();
    }
    // Let the last pushes arrive, then hang up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    tx.send(WsMessage::Close(None)).await.ok();
    tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .map(|r| r.unwrap())
        .unwrap_or_default()
}

/// The hashes of the change chunks in `data` (concatenated Automerge chunks; a saved
/// document, as sent on subscribe, has none).
fn change_hashes(mut data: &[u8]) -> Vec<automerge::ChangeHash> {
    let mut hashes = Vec::new();
    while data.len() > 9 {
        // magic (4), checksum (4), chunk type (1), payload length (LEB128), payload
        let (mut len, mut shift, mut i) = (0usize, 0, 9);
        while let Some(&b) = data.get(i) {
            len |= usize::from(b & 0x7f) << shift;
            shift += 7;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        let end = (i + len).min(data.len());
        if data[8] == 1 {
            hashes.push(
                automerge::Change::from_bytes(data[..end].to_vec())
                    .unwrap()
                    .hash(),
            );
        }
        data = &data[end..];
    }
    hashes
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
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
        fan_out(&server, round, clients).await;
    }
}

/// One fan-out run with `clients` typists; prints its row.
async fn fan_out(server: &cairn_harness::server::ServerProcess, round: usize, clients: usize) {
    let base = server.url.clone();
    for d in 0..DOCUMENTS {
        let mut doc = AutoCommit::new();
        doc.put(automerge::ROOT, "title", format!("doc {d}"))
            .unwrap();
        let id = doc_id(round * DOCUMENTS + d);
        http_sync(
            &base,
            &format!("team{d}"),
            push_since(id, &mut doc, &[], op(d as u64)),
        )
        .await
        .unwrap();
    }
    let sent: Sent = Arc::default();
    let start = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let typists: Vec<_> = (0..clients)
        .map(|i| tokio::spawn(typist(base.clone(), round, i, start.clone(), sent.clone())))
        .collect();
    start.wait().await;
    let (cpu0, t0) = (cpu_seconds(server.pid()).unwrap(), Instant::now());
    let load0 = cpu_seconds(std::process::id()).unwrap();
    let pg0 = postgres_cpu_seconds();
    let mut peak_rss = server.rss_bytes();
    while t0.elapsed() < TYPING {
        tokio::time::sleep(Duration::from_millis(200)).await;
        peak_rss = peak_rss.max(server.rss_bytes());
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = (cpu_seconds(server.pid()).unwrap() - cpu0) / elapsed;
    let load_cpu = (cpu_seconds(std::process::id()).unwrap() - load0) / elapsed;
    let pg_cpu = (postgres_cpu_seconds() - pg0) / elapsed;
    let (mut latencies, mut repeated) = (Vec::new(), 0);
    for typist in typists {
        let (observed, dups) = typist.await.unwrap();
        latencies.extend(observed);
        repeated += dups[0] + dups[1];
    }
    latencies.sort();
    let sent = sent.lock().unwrap();
    let written = sent.len();
    // Each change goes to every other client of its document (client i types into i % 20).
    let per_document = |d: usize| clients / DOCUMENTS + usize::from(d < clients % DOCUMENTS);
    let expected: usize = sent
        .values()
        .map(|(from, _)| per_document(from % DOCUMENTS) - 1)
        .sum();
    let ms = |p: f64| {
        if latencies.is_empty() {
            f64::NAN
        } else {
            percentile(&latencies, p).as_secs_f64() * 1e3
        }
    };
    println!(
        "{:>7} {:>9.0} {:>10} {:>10} {:>8.1} {:>8.1} {:>8.1} {:>6.0}% {:>6.0}% {:>6.0}% {:>8.1}",
        clients,
        written as f64 / TYPING.as_secs_f64(),
        format!("{}/{}", latencies.len(), expected),
        repeated,
        ms(0.5),
        ms(0.99),
        ms(1.0),
        cpu * 100.0,
        pg_cpu * 100.0,
        load_cpu * 100.0,
        peak_rss as f64 / 1e6
    );
}
