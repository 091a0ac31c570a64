//! Readiness and shutdown against the real binary: `GET /v1/ready` is 503 (naming the failing
//! part) while PostgreSQL is stopped, while the schema has a migration this binary does not
//! know, and while the blockstore cannot be written, and 200 once each is back. SIGTERM in a
//! burst of writes: WebSockets get a going-away close, the process exits in bounded time,
//! every acknowledged change is stored, and the rest, sent again, land exactly once; a pin
//! in progress is given back to the queue.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use automerge::{AutoCommit, transaction::Transactable};
use cairn_core::protocol::{DocRequest, Entry, SyncRequest};
use cairn_core::sync::from_automerge;
use cairn_core::{DocumentId, Message, OpId};
use cairn_harness::{postgres, temp_dir};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use support::{http_sync, op, start_server_in};
use tokio_tungstenite::tungstenite::Message as WsMessage;

async fn ready(base: &str) -> (u16, Value) {
    let response = reqwest::get(format!("{base}v1/ready")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Polls readiness until its status is `want` (within 30 s); the last answer.
async fn until_ready_is(base: &str, want: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = ready(base).await;
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "readiness stayed {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_database_the_schema_and_the_blockstore() {
    let cluster = postgres::private(false);
    let url = cluster.fresh_database().await;
    let data_dir = temp_dir("cairn-ready");
    let server = start_server_in(
        "ready",
        Some(&url),
        &data_dir,
        &["--db-acquire-timeout", "2"],
    );
    let base = server.url.as_str();
    let body = until_ready_is(base, 200).await;
    assert_eq!(body["status"], "ready");

    cluster.stop("fast");
    let body = until_ready_is(base, 503).await;
    assert_eq!(body["error"]["code"], "E_UNAVAILABLE", "{body}");
    assert_ne!(body["error"]["checks"]["database"], "ok", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("database")
    );
    cluster.start();
    until_ready_is(base, 200).await;

    // A migration this binary does not know: the database is newer than the server.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let fake =
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
                VALUES (99999, 'from the future', true, '\\x00', 0)";
    sqlx::query(fake).execute(&pool).await.unwrap();
    let body = until_ready_is(base, 503).await;
    assert!(
        body["error"]["checks"]["migrations"]
            .as_str()
            .unwrap()
            .contains("newer"),
        "{body}"
    );
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 99999")
        .execute(&pool)
        .await
        .unwrap();
    until_ready_is(base, 200).await;

    // The blockstore's staging area cannot be written.
    let tmp = data_dir.join("blocks/tmp");
    std::fs::remove_dir_all(&tmp).unwrap();
    std::fs::write(&tmp, b"not a directory").unwrap();
    let body = until_ready_is(base, 503).await;
    assert_ne!(body["error"]["checks"]["blockstore"], "ok", "{body}");
    std::fs::remove_file(&tmp).unwrap();
    std::fs::create_dir(&tmp).unwrap();
    until_ready_is(base, 200).await;
}

const WRITERS: u8 = 3;
const BATCH: usize = 20;

/// A writer's document, every change it made, and what the server acknowledged.
struct Writer {
    document: DocumentId,
    doc: AutoCommit,
    acked: HashSet<automerge::ChangeHash>,
    unacked: Vec<(OpId, Vec<Vec<u8>>)>,
}

/// Sends batches as fast as the server takes them, until it stops answering.
async fn write_until_refused(base: String, w: u8) -> Writer {
    let mut writer = Writer {
        document: DocumentId::from_random_bytes([w + 40; 16]),
        doc: AutoCommit::new(),
        acked: HashSet::new(),
        unacked: Vec::new(),
    };
    for round in 0u64.. {
        let before = writer.doc.get_heads();
        for j in 0..BATCH {
            writer
                .doc
                .put(automerge::ROOT, format!("k{j}"), round as i64)
                .unwrap();
            writer.doc.commit();
        }
        let changes: Vec<Vec<u8>> = writer
            .doc
            .get_changes(&before)
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        let entry = op(u64::from(w) << 40 | round);
        let request = SyncRequest {
            request: round,
            documents: vec![DocRequest {
                document: writer.document,
                heads: from_automerge(&before),
                entries: vec![Entry {
                    op: entry,
                    changes: changes.clone(),
                }],
            }],
        };
        match http_sync(&base, "alice", request).await {
            Ok(response) if response.documents[0].acked.contains(&entry) => {
                for c in writer.doc.get_changes(&before) {
                    writer.acked.insert(c.hash());
                }
            }
            _ => {
                writer.unacked.push((entry, changes));
                return writer;
            }
        }
    }
    writer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_in_a_burst_closes_websockets_and_loses_no_acknowledged_change() {
    let url = postgres::durable().fresh_database().await;
    let data_dir = temp_dir("cairn-sigterm");
    let mut server = start_server_in("sigterm", Some(&url), &data_dir, &[]);
    let base = server.url.clone();
    let ws_url = format!("{}v1/ws", base.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let auth = Message::Auth {
        token: support::token("alice"),
    }
    .encode();
    ws.send(WsMessage::Binary(auth.into())).await.unwrap();
    assert!(
        matches!(ws.next().await, Some(Ok(WsMessage::Binary(_)))),
        "welcomed"
    );

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(write_until_refused(base.clone(), w)))
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let asked = Instant::now();
    server.terminate();
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(frame) = ws.next().await {
            if let Ok(WsMessage::Close(frame)) = frame {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .expect("the WebSocket is closed");
    assert_eq!(close, Some(1001), "a going-away close");
    let status = tokio::task::spawn_blocking(move || {
        let status = server.wait_exit(Duration::from_secs(20));
        (status, server)
    })
    .await
    .unwrap();
    let (status, server) = status;
    let status = status.expect("the server exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "{:?}",
        asked.elapsed()
    );
    drop(server);
    let mut writers: Vec<Writer> = futures::future::join_all(writers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(
        writers.iter().all(|w| !w.acked.is_empty()),
        "every writer got acks first"
    );

    let server = start_server_in("sigterm-after", Some(&url), &data_dir, &[]);
    let base = server.url.as_str();
    for w in &mut writers {
        let stored = support::fetch_doc(base, "alice", w.document).await;
        for hash in &w.acked {
            assert!(
                automerge::ReadDoc::get_change_by_hash(&stored, hash).is_some(),
                "an acknowledged change is missing"
            );
        }
        for (entry, changes) in w.unacked.drain(..) {
            let request = SyncRequest {
                request: 1,
                documents: vec![DocRequest {
                    document: w.document,
                    heads: vec![],
                    entries: vec![Entry { op: entry, changes }],
                }],
            };
            http_sync(base, "alice", request).await.unwrap();
        }
        let stored = support::fetch_doc(base, "alice", w.document).await;
        assert_eq!(
            stored.get_changes(&[]).len(),
            w.doc.get_changes(&[]).len(),
            "every change stored exactly once"
        );
    }
}

/// Accepts connections and never answers: a Kubo whose every request hangs.
fn black_hole() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_gives_a_pin_in_progress_back_to_the_queue() {
    let url = postgres::fresh_database().await;
    let kubo = black_hole();
    let data_dir = temp_dir("cairn-sigterm-pin");
    let flags = ["--pin-backend", "kubo", "--kubo-api-url", kubo.as_str()];
    let mut server = start_server_in("sigterm-pin", Some(&url), &data_dir, &flags);
    let info = support::upload_file(&server.url, "alice", "p.bin", vec![7; 5000]).await;
    let cid = info["cid"].as_str().unwrap().to_owned();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let pin = |pool: sqlx::PgPool, cid: String| async move {
        let row: (String, i64) =
            sqlx::query_as("SELECT status, lease_until_ms FROM pins WHERE cid = $1")
                .bind(cid)
                .fetch_one(&pool)
                .await
                .unwrap();
        row
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while pin(pool.clone(), cid.clone()).await.0 != "pinning" {
        assert!(Instant::now() < deadline, "the pin was never attempted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.terminate();
    let status = tokio::task::spawn_blocking(move || server.wait_exit(Duration::from_secs(20)))
        .await
        .unwrap();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert_eq!(
        pin(pool, cid).await,
        ("queued".to_owned(), 0),
        "given back, lease released"
    );
}
