//! The WebSocket fan-out load shared by `live_sync` and `scale`: typing clients in 20 shared
//! documents, each sending 6 changes per second over its socket for 10 s; the latency from
//! sending a change to its receipt by every other client of the document (so it includes the
//! commit), and the CPU and peak RSS of the servers, PostgreSQL and the load generator.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use automerge::{AutoCommit, transaction::Transactable};
use cairn_core::protocol::DocHeads;
use cairn_core::{DocumentId, Message};
use cairn_harness::server::ServerProcess;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::support::{http_sync, op, push_since, token};

pub const DOCUMENTS: usize = 20;

pub const CHANGES_PER_SECOND: u64 = 6;
pub const TYPING: Duration = Duration::from_secs(10);

pub fn doc_id(n: usize) -> DocumentId {
    let mut bytes = [0x5a; 16];
    bytes[0] = n as u8;
    DocumentId::from_random_bytes(bytes)
}

/// CPU seconds (user + system) the process has used; `None` once it is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit(") ").next()?.split(' ').collect();
    // After the command: state is field 3; utime and stime are fields 14 and 15.
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// CPU seconds used by every `postgres` process (the cluster's backends come and go, so
/// this counts the live ones: the pool keeps its connections for the whole run).
pub fn postgres_cpu_seconds() -> f64 {
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

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// What one fan-out run measured (each benchmark prints its own subset).
#[derive(Debug)]
#[allow(dead_code)]
pub struct FanOut {
    pub clients: usize,
    /// Changes written per second.
    pub rate: f64,
    pub delivered: usize,
    pub expected: usize,
    /// Changes a client received twice.
    pub repeated: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// CPU of each server (1.0 = one core), PostgreSQL, and the load generator.
    pub server_cpu: Vec<f64>,
    pub pg_cpu: f64,
    pub load_cpu: f64,
    /// Peak RSS of each server, MB.
    pub peak_rss_mb: Vec<f64>,
}

/// One fan-out run with `clients` typists connecting to `base` (a server, or a load balancer
/// in front of `servers`), measuring `servers`.
pub async fn fan_out(
    base: &str,
    servers: &[&ServerProcess],
    round: usize,
    clients: usize,
) -> FanOut {
    let base = base.to_owned();
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
    let cpu0: Vec<f64> = servers
        .iter()
        .map(|s| cpu_seconds(s.pid()).unwrap())
        .collect();
    let t0 = Instant::now();
    let load0 = cpu_seconds(std::process::id()).unwrap();
    let pg0 = postgres_cpu_seconds();
    let mut peak_rss: Vec<u64> = servers.iter().map(|s| s.rss_bytes()).collect();
    while t0.elapsed() < TYPING {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for (peak, server) in peak_rss.iter_mut().zip(servers) {
            *peak = (*peak).max(server.rss_bytes());
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let server_cpu = servers
        .iter()
        .zip(cpu0)
        .map(|(s, c0)| (cpu_seconds(s.pid()).unwrap() - c0) / elapsed)
        .collect();
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
    FanOut {
        clients,
        rate: written as f64 / TYPING.as_secs_f64(),
        delivered: latencies.len(),
        expected,
        repeated,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        max_ms: ms(1.0),
        server_cpu,
        pg_cpu,
        load_cpu,
        peak_rss_mb: peak_rss.iter().map(|b| *b as f64 / 1e6).collect(),
    }
}
