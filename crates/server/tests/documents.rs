//! The sync endpoint and the storage contract, with the same test bodies against a throwaway
//! PostgreSQL and the embedded SQLite default.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use automerge::{AutoCommit, ReadDoc, ScalarValue, Value, transaction::Transactable};
use axum::http::StatusCode;
use cairn_core::protocol::{DocRequest, Entry, SyncRequest};
use cairn_core::sync::from_automerge;
use cairn_core::{Message, OpId};
use cairn_server::documents::Settings;
use support::{Backend, TestServer, doc_id, op, pull, push_all};

fn get_str(doc: &automerge::Automerge, key: &str) -> Option<String> {
    match doc.get(automerge::ROOT, key).unwrap() {
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        _ => None,
    }
}

async fn concurrent_diverging_writes_merge(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = doc_id(1);
    let mut base = AutoCommit::new();
    base.put(automerge::ROOT, "title", "shared").unwrap();
    server
        .sync("alice", push_all(id, &mut base, op(100)))
        .await
        .unwrap();

    // Eight replicas fork from the base, each edits its own key and the shared title (two
    // changes each), and all sync at the same moment.
    let mut forks: Vec<AutoCommit> = (0..8u8)
        .map(|i| {
            let mut fork = base.fork();
            fork.put(automerge::ROOT, format!("k{i}"), format!("v{i}"))
                .unwrap();
            fork.commit();
            fork.put(automerge::ROOT, "title", format!("title by {i}"))
                .unwrap();
            fork
        })
        .collect();
    let requests: Vec<SyncRequest> = forks
        .iter_mut()
        .enumerate()
        .map(|(i, f)| push_all(id, f, op(i as u8)))
        .collect();
    let results =
        futures::future::join_all(requests.into_iter().map(|r| server.sync("alice", r))).await;
    for (i, result) in results.into_iter().enumerate() {
        let response = result.unwrap();
        assert_eq!(
            response.documents[0].acked,
            vec![op(i as u8)],
            "fork {i} acked"
        );
    }

    let mut expected = base.clone();
    for fork in &mut forks {
        expected.merge(fork).unwrap();
    }
    let stored = server.get("alice", id).await.expect("document stored");
    for i in 0..8 {
        assert_eq!(
            get_str(&stored, &format!("k{i}")),
            Some(format!("v{i}")),
            "k{i} lost"
        );
    }
    assert_eq!(
        stored.get_heads(),
        expected.get_heads(),
        "every fork's change is stored"
    );
    assert_eq!(
        get_str(&stored, "title"),
        get_str(expected.document(), "title"),
        "same winner"
    );
    assert_eq!(server.change_count(id).await, 1 + 8 * 2);

    // Durable: a restarted server on the same storage sees the same document.
    let restarted = server.replica().await;
    assert_eq!(
        restarted.get("alice", id).await.unwrap().get_heads(),
        expected.get_heads()
    );
}

async fn replaying_a_sync_is_idempotent(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = doc_id(2);
    let mut doc = AutoCommit::new();
    doc.put(automerge::ROOT, "a", 1).unwrap();
    doc.commit();
    doc.put(automerge::ROOT, "b", 2).unwrap();
    let request = push_all(id, &mut doc, op(1));
    let first = server.sync("alice", request.clone()).await.unwrap();
    let again = server.sync("alice", request).await.unwrap();
    assert_eq!(first.documents[0].acked, vec![op(1)]);
    assert_eq!(
        again.documents[0].acked,
        vec![op(1)],
        "a replay is acknowledged again"
    );
    assert_eq!(first.documents[0].heads, again.documents[0].heads);
    assert_eq!(server.change_count(id).await, 2, "and stored once");
}

async fn answers_carry_what_the_client_lacks(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = doc_id(3);
    let mut writer = AutoCommit::new();
    writer.put(automerge::ROOT, "x", "1").unwrap();
    server
        .sync("alice", push_all(id, &mut writer, op(1)))
        .await
        .unwrap();

    // A fresh client (no heads) gets the whole document.
    let fresh = server.sync("alice", pull(id, vec![])).await.unwrap();
    let mut reader = AutoCommit::new();
    reader.load_incremental(&fresh.documents[0].data).unwrap();
    assert_eq!(reader.get_heads(), writer.get_heads());

    // After more writes, a stale client gets exactly the difference; an up-to-date one nothing.
    writer.put(automerge::ROOT, "y", "2").unwrap();
    server
        .sync("alice", push_all(id, &mut writer, op(2)))
        .await
        .unwrap();
    let diff = server
        .sync("alice", pull(id, from_automerge(&reader.get_heads())))
        .await
        .unwrap();
    reader.load_incremental(&diff.documents[0].data).unwrap();
    assert_eq!(reader.get_heads(), writer.get_heads());
    let none = server
        .sync("alice", pull(id, from_automerge(&reader.get_heads())))
        .await
        .unwrap();
    assert!(none.documents[0].data.is_empty());
}

async fn malformed_input_is_rejected_and_nothing_changes(backend: Backend) {
    let settings = Settings {
        limits: cairn_core::sync::server::Limits {
            max_documents: 2,
            max_changes: 3,
        },
        ..Settings::default()
    };
    let server = TestServer::start_with(backend, settings).await;
    let id = doc_id(4);
    let mut doc = AutoCommit::new();
    doc.put(automerge::ROOT, "keep", "me").unwrap();
    server
        .sync("alice", push_all(id, &mut doc, op(1)))
        .await
        .unwrap();
    let before = server.get("alice", id).await.unwrap().save();
    let token = server.token("alice");

    let valid = Message::SyncRequest(push_all(id, &mut doc, op(2))).encode();
    let mut wrong_version = valid.clone();
    wrong_version[0] = 99;
    let mut trailing = valid.clone();
    trailing.push(0);
    let entry = |changes: Vec<Vec<u8>>| DocRequest {
        document: id,
        heads: vec![],
        entries: vec![Entry {
            op: OpId::from_bytes([9; 16]),
            changes,
        }],
    };
    let frame = |documents: Vec<DocRequest>| {
        Message::SyncRequest(SyncRequest {
            request: 1,
            documents,
        })
        .encode()
    };
    let mut other = AutoCommit::new();
    other.put(automerge::ROOT, "new", "change").unwrap();
    let good_change = other
        .get_changes(&[])
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .next()
        .unwrap();
    let mut corrupted = good_change.clone();
    let last = corrupted.len() - 1;
    corrupted[last] ^= 0xff;
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "empty",
            vec![],
            StatusCode::BAD_REQUEST,
            "E_MALFORMED_MESSAGE",
        ),
        (
            "garbage",
            vec![0xde, 0xad, 0xbe, 0xef],
            StatusCode::BAD_REQUEST,
            "E_UNSUPPORTED_VERSION",
        ),
        (
            "truncated",
            valid[..valid.len() - 3].to_vec(),
            StatusCode::BAD_REQUEST,
            "E_MALFORMED_MESSAGE",
        ),
        (
            "wrong version",
            wrong_version,
            StatusCode::BAD_REQUEST,
            "E_UNSUPPORTED_VERSION",
        ),
        (
            "trailing bytes",
            trailing,
            StatusCode::BAD_REQUEST,
            "E_MALFORMED_MESSAGE",
        ),
        (
            "not a change",
            frame(vec![entry(vec![b"nope".to_vec()])]),
            StatusCode::BAD_REQUEST,
            "E_INVALID_CHANGE",
        ),
        (
            "corrupted change",
            frame(vec![entry(vec![good_change.clone(), corrupted])]),
            StatusCode::BAD_REQUEST,
            "E_INVALID_CHANGE",
        ),
        (
            "a subscribe frame",
            Message::Subscribe(vec![]).encode(),
            StatusCode::BAD_REQUEST,
            "E_UNEXPECTED_MESSAGE",
        ),
        (
            "too many changes",
            frame(vec![entry(vec![good_change.clone(); 4])]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "E_TOO_MANY_CHANGES",
        ),
        (
            "too many documents",
            frame(vec![entry(vec![]), entry(vec![]), entry(vec![])]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "E_TOO_MANY_DOCUMENTS",
        ),
        (
            "duplicate document",
            frame(vec![entry(vec![good_change.clone()]), entry(vec![])]),
            StatusCode::BAD_REQUEST,
            "E_DUPLICATE_DOCUMENT",
        ),
        (
            "oversized",
            vec![1; support::MAX_BODY + 1],
            StatusCode::PAYLOAD_TOO_LARGE,
            "E_PAYLOAD_TOO_LARGE",
        ),
    ];
    for (what, body, status, code) in cases {
        let (got, json) = server.json("POST", "/v1/sync", Some(&token), body).await;
        assert_eq!(got, status, "{what}: {json}");
        assert_eq!(json["error"]["code"], code, "{what}: {json}");
        assert!(
            json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}"
        );
        assert_eq!(server.change_count(id).await, 1, "{what}: nothing stored");
    }
    assert_eq!(
        server.get("alice", id).await.unwrap().save(),
        before,
        "stored data unchanged"
    );
}

async fn the_cache_is_never_stale_across_replicas(backend: Backend) {
    let a = TestServer::start(backend).await;
    let b = a.replica().await;
    let id = doc_id(5);
    let mut doc = AutoCommit::new();
    doc.put(automerge::ROOT, "n", 1).unwrap();
    a.sync("alice", push_all(id, &mut doc, op(1)))
        .await
        .unwrap();
    assert_eq!(
        b.get("alice", id).await.unwrap().get_heads(),
        doc.get_heads(),
        "B sees A's write"
    );
    // B writes; A, whose cache holds the document, must see it on the next read.
    doc.put(automerge::ROOT, "n", 2).unwrap();
    b.sync("alice", push_all(id, &mut doc, op(2)))
        .await
        .unwrap();
    assert_eq!(
        a.get("alice", id).await.unwrap().get_heads(),
        doc.get_heads(),
        "A sees B's write"
    );
    // And A's next write builds on B's.
    doc.put(automerge::ROOT, "n", 3).unwrap();
    let r = a
        .sync("alice", push_all(id, &mut doc, op(3)))
        .await
        .unwrap();
    assert_eq!(r.documents[0].heads, from_automerge(&doc.get_heads()));
    assert_eq!(a.change_count(id).await, 3);
}

async fn snapshots_compact_and_load_identically(backend: Backend) {
    let settings = Settings {
        snapshot_every: 5,
        ..Settings::default()
    };
    let server = TestServer::start_with(backend, settings).await;
    let id = doc_id(6);
    let mut doc = AutoCommit::new();
    for i in 0..12 {
        doc.put(automerge::ROOT, format!("k{}", i % 3), i).unwrap();
        server
            .sync("alice", push_all(id, &mut doc, op(i as u8)))
            .await
            .unwrap();
    }
    // The snapshot is written in the background: wait for it (bounded).
    let store = server.state.documents.store.clone();
    let mut loaded = store.load(&id).await.unwrap();
    for _ in 0..100 {
        if loaded.snapshot.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        loaded = store.load(&id).await.unwrap();
    }
    let snapshot = loaded.snapshot.expect("a snapshot was written");
    assert!(snapshot.upto_seq > 0);
    assert!(
        loaded.changes.len() < 12,
        "loading reads fewer change rows: {}",
        loaded.changes.len()
    );
    assert_eq!(server.change_count(id).await, 12, "change rows are kept");
    let restarted = server.replica().await;
    let reloaded = restarted.get("alice", id).await.unwrap();
    assert_eq!(reloaded.get_heads(), doc.get_heads());
    assert_eq!(
        reloaded.save(),
        server.get("alice", id).await.unwrap().save()
    );
}

async fn errors_are_json_with_stable_codes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.token("alice");
    for (method, path, status, code) in [
        (
            "GET",
            "/v1/docs/not-an-id",
            StatusCode::BAD_REQUEST,
            "E_INVALID_DOCUMENT_ID",
        ),
        (
            "GET",
            "/v1/no-such-route",
            StatusCode::NOT_FOUND,
            "E_NOT_FOUND",
        ),
        (
            "GET",
            "/v1/sync",
            StatusCode::METHOD_NOT_ALLOWED,
            "E_METHOD_NOT_ALLOWED",
        ),
        (
            "POST",
            "/v1/dev/token",
            StatusCode::NOT_FOUND,
            "E_NOT_FOUND",
        ),
    ] {
        let (got, json) = server.json(method, path, Some(&token), vec![]).await;
        assert_eq!(got, status, "{method} {path}: {json}");
        assert_eq!(json["error"]["code"], code, "{method} {path}");
    }
}

on_both_backends!(
    concurrent_diverging_writes_merge,
    replaying_a_sync_is_idempotent,
    answers_carry_what_the_client_lacks,
    malformed_input_is_rejected_and_nothing_changes,
    the_cache_is_never_stale_across_replicas,
    snapshots_compact_and_load_identically,
    errors_are_json_with_stable_codes,
);
