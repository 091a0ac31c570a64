//! The document API against both storage backends: every test body runs once against a
//! throwaway PostgreSQL and once against the embedded SQLite default.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use automerge::{AutoCommit, ReadDoc, ScalarValue, Value, transaction::Transactable};
use axum::http::StatusCode;
use cairn_core::{DocumentId, Message};
use support::{Backend, TestServer};

fn doc_id(n: u8) -> DocumentId {
    DocumentId::from_random_bytes([n; 16])
}

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
    assert_eq!(server.push(id, base.save()).await.0, StatusCode::OK);

    // Eight replicas fork from the base, each edits its own key and the shared title, and all
    // push at the same moment.
    let mut forks: Vec<AutoCommit> = (0..8u8)
        .map(|i| {
            let mut fork = base.fork();
            fork.put(automerge::ROOT, format!("k{i}"), format!("v{i}"))
                .unwrap();
            fork.commit(); // two changes per fork: each must be stored
            fork.put(automerge::ROOT, "title", format!("title by {i}"))
                .unwrap();
            fork
        })
        .collect();
    let pushes = forks.iter_mut().map(|f| server.push(id, f.save()));
    for (status, body) in futures::future::join_all(pushes).await {
        assert_eq!(status, StatusCode::OK, "{body:?}");
    }

    let mut expected = base.clone();
    for fork in &mut forks {
        expected.merge(fork).unwrap();
    }
    let stored = server.get(id).await.expect("document stored");
    for i in 0..8 {
        assert_eq!(
            get_str(&stored, &format!("k{i}")),
            Some(format!("v{i}")),
            "k{i} lost"
        );
    }
    let mut stored_heads = stored.get_heads();
    let mut expected_heads = expected.get_heads();
    stored_heads.sort();
    expected_heads.sort();
    assert_eq!(
        stored_heads, expected_heads,
        "every fork's change is stored"
    );
    // Conflict resolution is Automerge's, deterministic: the same winner as a local merge.
    assert_eq!(
        get_str(&stored, "title"),
        get_str(expected.document(), "title")
    );

    // Durable: a new server on the same storage sees the same document.
    let reopened = server.reopen().await;
    assert_eq!(
        reopened.get(id).await.unwrap().get_heads().len(),
        stored_heads.len()
    );
}

async fn replaying_a_push_is_idempotent(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = doc_id(2);
    let mut doc = AutoCommit::new();
    doc.put(automerge::ROOT, "a", 1).unwrap();
    doc.commit();
    doc.put(automerge::ROOT, "b", 2).unwrap();
    let bytes = doc.save();
    let first = server.push_ack(id, bytes.clone()).await;
    let again = server.push_ack(id, bytes).await;
    assert_eq!(first.1, 2, "both changes are new the first time");
    assert_eq!(again.1, 0, "nothing is new on replay");
    assert_eq!(first.0, again.0, "same heads");
}

async fn malformed_input_is_rejected_and_nothing_changes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = doc_id(3);
    let mut doc = AutoCommit::new();
    doc.put(automerge::ROOT, "keep", "me").unwrap();
    server.push_ack(id, doc.save()).await;
    let before = server.get(id).await.unwrap().save();

    let mut wrong_version = Message::Push {
        document: id,
        data: doc.save(),
    }
    .encode();
    wrong_version[0] = 99;
    let mut trailing = Message::Push {
        document: id,
        data: doc.save(),
    }
    .encode();
    trailing.push(0);
    let not_automerge = Message::Push {
        document: id,
        data: b"not automerge".to_vec(),
    }
    .encode();
    let ack = Message::Ack {
        document: id,
        heads: vec![],
        applied: 0,
    }
    .encode();
    let oversized = Message::Push {
        document: id,
        data: vec![0; support::MAX_BODY + 1],
    }
    .encode();
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
            vec![1, 1, 0, 0],
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
            "not automerge",
            not_automerge,
            StatusCode::BAD_REQUEST,
            "E_INVALID_DOCUMENT",
        ),
        (
            "an ack",
            ack,
            StatusCode::BAD_REQUEST,
            "E_UNEXPECTED_MESSAGE",
        ),
        (
            "oversized",
            oversized,
            StatusCode::PAYLOAD_TOO_LARGE,
            "E_PAYLOAD_TOO_LARGE",
        ),
    ];
    for (what, body, status, code) in cases {
        let (got, json) = server.post_raw("/v1/push", body).await;
        assert_eq!(got, status, "{what}: {json}");
        assert_eq!(json["error"]["code"], code, "{what}: {json}");
        assert!(
            json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}"
        );
    }
    assert_eq!(
        server.get(id).await.unwrap().save(),
        before,
        "stored data unchanged"
    );
}

async fn errors_are_json_with_stable_codes(backend: Backend) {
    let server = TestServer::start(backend).await;
    for (method, path, status, code) in [
        (
            "GET",
            "/v1/docs/not-an-id",
            StatusCode::BAD_REQUEST,
            "E_INVALID_DOCUMENT_ID",
        ),
        (
            "GET",
            &format!("/v1/docs/{}", doc_id(9)),
            StatusCode::NOT_FOUND,
            "E_NOT_FOUND",
        ),
        (
            "GET",
            "/v1/no-such-route",
            StatusCode::NOT_FOUND,
            "E_NOT_FOUND",
        ),
        (
            "GET",
            "/v1/push",
            StatusCode::METHOD_NOT_ALLOWED,
            "E_METHOD_NOT_ALLOWED",
        ),
    ] {
        let (got, json) = server.request(method, path, vec![]).await;
        assert_eq!(got, status, "{method} {path}: {json}");
        assert_eq!(json["error"]["code"], code, "{method} {path}");
    }
}

macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$test(super::Backend::Postgres).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$test(super::Backend::Sqlite).await;
            }
        }
    )*};
}

on_both_backends!(
    concurrent_diverging_writes_merge,
    replaying_a_push_is_idempotent,
    malformed_input_is_rejected_and_nothing_changes,
    errors_are_json_with_stable_codes,
);
