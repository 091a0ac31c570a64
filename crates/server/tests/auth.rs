//! Authentication and per-document access control, on both storage backends.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use automerge::{AutoCommit, transaction::Transactable};
use axum::http::StatusCode;
use cairn_core::Message;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use support::{Backend, SECRET, TestServer, doc_id, op, pull, push_all};

fn token_with(secret: &[u8], sub: &str, exp_offset: i64) -> String {
    let exp = jsonwebtoken::get_current_timestamp() as i64 + exp_offset;
    let claims = json!({ "sub": sub, "exp": exp });
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// Alice (the owner) gives `who` `role` on `id`.
async fn grant(
    server: &TestServer,
    id: cairn_core::DocumentId,
    who: &str,
    role: &str,
) -> StatusCode {
    let body = serde_json::to_vec(&json!({ "role": role })).unwrap();
    let path = format!("/v1/docs/{id}/members/{who}");
    server
        .json("PUT", &path, Some(&server.token("alice")), body)
        .await
        .0
}

async fn bad_tokens_get_401(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = doc_id(1);
    let mut doc = AutoCommit::new();
    doc.put(automerge::ROOT, "k", "v").unwrap();
    let body = Message::SyncRequest(push_all(id, &mut doc, op(1))).encode();
    let forged = token_with(b"some other secret, long enough to be valid", "alice", 600);
    let expired = token_with(SECRET.as_bytes(), "alice", -3600);
    let no_subject = jsonwebtoken::encode(
        &Header::default(),
        &json!({ "exp": jsonwebtoken::get_current_timestamp() + 600 }),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    for (what, token) in [
        ("missing", None),
        ("garbage", Some("garbage")),
        ("forged", Some(forged.as_str())),
        ("expired", Some(expired.as_str())),
        ("without sub", Some(no_subject.as_str())),
    ] {
        let (status, json) = server.json("POST", "/v1/sync", token, body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {json}");
        assert_eq!(json["error"]["code"], "E_UNAUTHORIZED", "{what}");
        let (status, _) = server
            .json("GET", &format!("/v1/docs/{id}"), token, vec![])
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: GET");
    }
    assert_eq!(server.change_count(id).await, 0, "nothing was stored");
}

async fn readers_cannot_write_and_strangers_see_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = doc_id(2);
    let mut doc = AutoCommit::new();
    doc.put(automerge::ROOT, "secret", "plans").unwrap();
    server
        .sync("alice", push_all(id, &mut doc, op(1)))
        .await
        .unwrap();

    // A stranger can neither read nor write, and learns nothing: the answer is the same as for
    // a document that does not exist.
    let (s1, stranger) = server
        .json(
            "GET",
            &format!("/v1/docs/{id}"),
            Some(&server.token("mallory")),
            vec![],
        )
        .await;
    let missing = doc_id(99);
    let (s2, nothing) = server
        .json(
            "GET",
            &format!("/v1/docs/{missing}"),
            Some(&server.token("mallory")),
            vec![],
        )
        .await;
    assert_eq!((s1, s2), (StatusCode::FORBIDDEN, StatusCode::FORBIDDEN));
    assert_eq!(stranger["error"]["code"], "E_FORBIDDEN");
    assert_eq!(stranger["error"]["message"], nothing["error"]["message"]);
    assert_eq!(
        stranger["error"].as_object().unwrap().len(),
        3,
        "code, message, documents: {stranger}"
    );
    assert_eq!(stranger["error"]["documents"], json!([id.to_string()]));
    let read = server.sync("mallory", pull(id, vec![])).await.unwrap_err();
    assert_eq!(read.0, StatusCode::FORBIDDEN);
    let mut theirs = AutoCommit::new();
    theirs.put(automerge::ROOT, "secret", "stolen").unwrap();
    let write = server
        .sync("mallory", push_all(id, &mut theirs, op(2)))
        .await
        .unwrap_err();
    assert_eq!(
        (write.0, write.1["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("E_FORBIDDEN"))
    );

    // Alice lets Bob read: Bob reads, but cannot write.
    assert_eq!(
        grant(&server, id, "bob", "reader").await,
        StatusCode::NO_CONTENT
    );
    assert!(server.get("bob", id).await.is_some());
    let mut bobs = server
        .get("bob", id)
        .await
        .map(|d| AutoCommit::load(&d.save()).unwrap())
        .unwrap();
    bobs.put(automerge::ROOT, "secret", "changed by a reader")
        .unwrap();
    let denied = server
        .sync("bob", push_all(id, &mut bobs, op(3)))
        .await
        .unwrap_err();
    assert_eq!(denied.0, StatusCode::FORBIDDEN);
    assert_eq!(
        server.change_count(id).await,
        1,
        "the reader's change was not stored"
    );

    // Made a writer, Bob can write; only the owner manages members.
    assert_eq!(
        grant(&server, id, "bob", "writer").await,
        StatusCode::NO_CONTENT
    );
    server
        .sync("bob", push_all(id, &mut bobs, op(3)))
        .await
        .unwrap();
    assert_eq!(server.change_count(id).await, 2);
    let (status, _) = server
        .json(
            "GET",
            &format!("/v1/docs/{id}/members"),
            Some(&server.token("bob")),
            vec![],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a writer cannot list members"
    );
    let (status, members) = server
        .json(
            "GET",
            &format!("/v1/docs/{id}/members"),
            Some(&server.token("alice")),
            vec![],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(members["owner"], "alice");
    assert_eq!(
        members["members"],
        json!([{ "user": "bob", "role": "writer" }])
    );

    // Bob's document list shows it, with his role; Mallory's does not.
    let (_, list) = server
        .json("GET", "/v1/docs", Some(&server.token("bob")), vec![])
        .await;
    assert_eq!(
        list["documents"],
        json!([{ "id": id.to_string(), "role": "writer" }])
    );
    let (_, list) = server
        .json("GET", "/v1/docs", Some(&server.token("mallory")), vec![])
        .await;
    assert_eq!(list["documents"], json!([]));

    // Revoked, Bob loses access.
    let path = format!("/v1/docs/{id}/members/bob");
    assert_eq!(
        server
            .json("DELETE", &path, Some(&server.token("alice")), vec![])
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert!(server.get("bob", id).await.is_none());
}

async fn a_batch_with_one_forbidden_document_applies_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (mine, theirs) = (doc_id(3), doc_id(4));
    let mut a = AutoCommit::new();
    a.put(automerge::ROOT, "k", "alice").unwrap();
    server
        .sync("alice", push_all(theirs, &mut a, op(1)))
        .await
        .unwrap();
    let mut m = AutoCommit::new();
    m.put(automerge::ROOT, "k", "mallory").unwrap();
    let mut request = push_all(mine, &mut m, op(2));
    request
        .documents
        .extend(push_all(theirs, &mut m, op(3)).documents);
    let (status, json) = server.sync("mallory", request).await.unwrap_err();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(json["error"]["documents"], json!([theirs.to_string()]));
    assert_eq!(
        server.change_count(mine).await,
        0,
        "the allowed document was not written either"
    );
    assert_eq!(server.change_count(theirs).await, 1);
    assert!(
        server.get("mallory", mine).await.is_none(),
        "nor was it created"
    );
}

on_both_backends!(
    bad_tokens_get_401,
    readers_cannot_write_and_strangers_see_nothing,
    a_batch_with_one_forbidden_document_applies_nothing,
);
