//! Ack-after-commit, tested by killing the server: writers keep batches in flight against the
//! real binary on a PostgreSQL with production durability (fsync on); the server is
//! SIGKILLed mid-stream. Every change it acknowledged must be stored; after a restart, the
//! writers re-send what was not acknowledged, and every change is stored exactly once.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::collections::HashSet;
use std::time::Duration;

use automerge::{AutoCommit, transaction::Transactable};
use cairn_core::protocol::{DocRequest, Entry, SyncRequest};
use cairn_core::sync::from_automerge;
use cairn_core::{ChangeHash, DocumentId, OpId};
use cairn_harness::postgres;
use support::{http_sync, op, start_server};

const WRITERS: u8 = 4;
const BATCH: usize = 50;

/// What one writer did: acknowledged changes, the entry in flight when the server died, and
/// every change it made.
struct Writer {
    document: DocumentId,
    doc: AutoCommit,
    acked: Vec<ChangeHash>,
    unacked: Option<(OpId, Vec<Vec<u8>>)>,
    made: usize,
}

async fn write_until_the_server_dies(base: String, w: u8) -> Writer {
    let document = DocumentId::from_random_bytes([w; 16]);
    let mut writer = Writer {
        document,
        doc: AutoCommit::new(),
        acked: vec![],
        unacked: None,
        made: 0,
    };
    for round in 0u64.. {
        let before = writer.doc.get_heads();
        for j in 0..BATCH {
            writer
                .doc
                .put(
                    automerge::ROOT,
                    format!("k{}", j % 7),
                    (round as i64) * 1000 + j as i64,
                )
                .unwrap();
            writer.doc.commit();
        }
        writer.made += BATCH;
        let changes: Vec<Vec<u8>> = writer
            .doc
            .get_changes(&before)
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        let hashes: Vec<ChangeHash> = writer
            .doc
            .get_changes(&before)
            .iter()
            .map(|c| c.hash().into())
            .collect();
        let id = op(u64::from(w) << 32 | round);
        let request = SyncRequest {
            request: round,
            documents: vec![DocRequest {
                document,
                heads: from_automerge(&writer.doc.get_heads()),
                entries: vec![Entry {
                    op: id,
                    changes: changes.clone(),
                }],
            }],
        };
        match http_sync(&base, "writer", request).await {
            Ok(r) => {
                assert_eq!(r.documents[0].acked, vec![id]);
                writer.acked.extend(hashes);
            }
            Err(_) => {
                writer.unacked = Some((id, changes));
                break;
            }
        }
    }
    writer
}

async fn stored_hashes(database: &str, document: &DocumentId) -> Vec<ChangeHash> {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(database)
        .await
        .unwrap();
    let rows: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT hash FROM changes WHERE document_id = $1")
        .bind(document.to_string())
        .fetch_all(&mut conn)
        .await
        .unwrap();
    rows.into_iter()
        .map(|(h,)| ChangeHash::from(<[u8; 32]>::try_from(h.as_slice()).unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_survive_sigkill_and_resent_ones_land_once() {
    let database = postgres::durable().fresh_database().await;
    let mut server = start_server("crash-before", &database, &[]);
    let writers: Vec<_> = (1..=WRITERS)
        .map(|w| tokio::spawn(write_until_the_server_dies(server.url.clone(), w)))
        .collect();
    // Let batches flow, then kill the server without warning.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    let mut writers: Vec<Writer> = futures::future::join_all(writers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    let mut in_flight = 0;
    for w in &writers {
        assert!(!w.acked.is_empty(), "writer made progress before the crash");
        let stored: HashSet<ChangeHash> = stored_hashes(&database, &w.document)
            .await
            .into_iter()
            .collect();
        for hash in &w.acked {
            assert!(
                stored.contains(hash),
                "acknowledged change {hash} is stored"
            );
        }
        in_flight += usize::from(w.unacked.is_some());
    }
    assert!(in_flight > 0, "the kill caught requests in flight");

    // Restart; the writers re-send what was not acknowledged (replaying is harmless even if
    // the server had committed it before dying).
    let restarted = start_server("crash-after", &database, &[]);
    for w in &mut writers {
        if let Some((id, changes)) = w.unacked.take() {
            let request = SyncRequest {
                request: 0,
                documents: vec![DocRequest {
                    document: w.document,
                    heads: from_automerge(&w.doc.get_heads()),
                    entries: vec![Entry { op: id, changes }],
                }],
            };
            let r = http_sync(&restarted.url, "writer", request).await.unwrap();
            assert_eq!(r.documents[0].acked, vec![id]);
            assert_eq!(
                r.documents[0].heads,
                from_automerge(&w.doc.get_heads()),
                "the server caught up"
            );
        }
        let stored = stored_hashes(&database, &w.document).await;
        let distinct: HashSet<_> = stored.iter().collect();
        assert_eq!(stored.len(), distinct.len(), "no change stored twice");
        assert_eq!(stored.len(), w.made, "every change made is stored");
    }
}
