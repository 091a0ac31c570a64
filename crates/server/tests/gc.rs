//! Garbage collection on both backends: a content is collected only once nothing references
//! it and its grace period is over; its blocks go, but not those another content shares; the
//! same bytes uploaded again afterwards are stored whole; contents stored before block lists
//! were kept are listed from their DAGs first; abandoned upload sessions expire; uploads and
//! deletions racing with collections never leave a listed file unreadable.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use cairn_core::content::{ImportOptions, import};
use cairn_harness::pseudo_random_bytes as bytes;
use cairn_server::gc::{self, GcSettings};
use serde_json::Value;
use support::{Backend, TestServer};

const CHUNK: usize = 256 * 1024;

fn cid_of(data: &[u8]) -> String {
    import(data, ImportOptions::default()).1.root.to_string()
}

/// Uploads `data`; like a client, sends it again after a 503 (a collection took its
/// unreferenced content while it was being stored).
async fn put(server: &TestServer, token: &str, data: &[u8]) -> String {
    for _ in 0..10 {
        let request = Request::post("/v1/files?name=f.bin")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::from(data.to_vec()))
            .unwrap();
        let (status, _, body) = server.send(request).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            continue;
        }
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
        let info: Value = serde_json::from_slice(&body).unwrap();
        return info["cid"].as_str().unwrap().to_owned();
    }
    panic!("the upload kept failing with 503");
}

async fn fetch(server: &TestServer, token: &str, cid: &str) -> (StatusCode, Vec<u8>) {
    let request = Request::get(format!("/v1/files/{cid}"))
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = server.send(request).await;
    (status, body)
}

async fn delete(server: &TestServer, token: &str, cid: &str) {
    let (status, _) = server
        .call(
            "DELETE",
            &format!("/v1/files/{cid}"),
            Some(token),
            Vec::new(),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

/// Block files in the blockstore (not counting the staging area).
fn stored_blocks(server: &TestServer) -> usize {
    std::fs::read_dir(server.data_dir.join("blocks"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name() != "tmp")
        .map(|shard| std::fs::read_dir(shard.path()).unwrap().count())
        .sum()
}

fn settings(grace: Duration) -> GcSettings {
    GcSettings {
        grace,
        ..GcSettings::default()
    }
}

async fn collect(server: &TestServer, grace: Duration) -> gc::Collected {
    gc::collect(&server.state.files, None, &settings(grace))
        .await
        .unwrap()
}

/// Three chunks; the second file shares the first one.
fn two_files() -> (Vec<u8>, Vec<u8>) {
    let a = bytes(3 * CHUNK, 41);
    let mut b = a[..CHUNK].to_vec();
    b.extend(bytes(CHUNK + 7, 42));
    (a, b)
}

async fn unreferenced_contents_go_and_shared_blocks_stay(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, bob) = (server.token("alice"), server.token("bob"));
    let (a, b) = two_files();
    let ca = put(&server, &alice, &a).await;
    let cb = put(&server, &bob, &b).await;
    // a: 3 leaves and a root; b: 3 leaves (the first shared with a) and a root.
    assert_eq!(stored_blocks(&server), 4 + 3);

    // Referenced by two users: one deleting it changes nothing.
    let shared = bytes(1000, 43);
    let cs = put(&server, &alice, &shared).await;
    put(&server, &bob, &shared).await;
    delete(&server, &alice, &cs).await;
    delete(&server, &alice, &ca).await;
    assert_eq!(stored_blocks(&server), 8);

    // Within the grace period nothing goes.
    let waiting = collect(&server, Duration::from_secs(3600)).await;
    assert_eq!(waiting, gc::Collected::default());
    assert_eq!(stored_blocks(&server), 8);

    let done = collect(&server, Duration::ZERO).await;
    assert_eq!(
        (done.contents, done.blocks),
        (1, 3),
        "a's root and its two own leaves"
    );
    assert_eq!(stored_blocks(&server), 5);
    let (status, body) = fetch(&server, &bob, &cb).await;
    assert!(
        status == StatusCode::OK && body == b,
        "b keeps the shared leaf"
    );
    assert_eq!(fetch(&server, &bob, &cs).await.1, shared);
    assert_eq!(fetch(&server, &alice, &ca).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        collect(&server, Duration::ZERO).await,
        gc::Collected::default()
    );

    // The same bytes again: stored whole, though one of its blocks was there all along.
    assert_eq!(put(&server, &alice, &a).await, ca);
    assert_eq!(fetch(&server, &alice, &ca).await.1, a);
    assert_eq!(stored_blocks(&server), 8);

    // The last reference of the shared file goes: it goes too.
    delete(&server, &bob, &cs).await;
    let done = collect(&server, Duration::ZERO).await;
    assert_eq!((done.contents, done.blocks), (1, 1), "{done:?}");
    assert_eq!(stored_blocks(&server), 7);
}

async fn attachments_of_a_deleted_file_go_with_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, bob) = (server.token("alice"), server.token("bob"));
    let id = support::doc_id(7);
    let mut doc = automerge::AutoCommit::new();
    automerge::transaction::Transactable::put(&mut doc, automerge::ROOT, "t", 1).unwrap();
    let request = support::push_all(id, &mut doc, support::op(1));
    server.sync("alice", request).await.unwrap();
    server
        .call(
            "PUT",
            &format!("/v1/docs/{id}/members/bob"),
            Some(&alice),
            br#"{"role":"reader"}"#.to_vec(),
        )
        .await;
    let data = bytes(5000, 44);
    let cid = put(&server, &alice, &data).await;
    let (status, _) = server
        .call(
            "PUT",
            &format!("/v1/docs/{id}/files/{cid}"),
            Some(&alice),
            Vec::new(),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        fetch(&server, &bob, &cid).await.1,
        data,
        "bob reads it through the note"
    );
    delete(&server, &alice, &cid).await;
    assert_eq!(fetch(&server, &bob, &cid).await.0, StatusCode::NOT_FOUND);
    assert_eq!(collect(&server, Duration::ZERO).await.contents, 1);
    let (_, files) = server
        .json(
            "GET",
            &format!("/v1/docs/{id}/files"),
            Some(&bob),
            Vec::new(),
        )
        .await;
    assert_eq!(files["files"], serde_json::json!([]));
}

async fn contents_stored_before_block_lists_are_listed_first(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, bob) = (server.token("alice"), server.token("bob"));
    let (a, b) = two_files();
    let ca = put(&server, &alice, &a).await;
    let cb = put(&server, &bob, &b).await;
    // As a database from before migration 0008 would be: no block lists at all.
    server.execute_sql("DELETE FROM content_blocks").await;
    delete(&server, &alice, &ca).await;
    gc::prepare(&server.state.files).await.unwrap();
    let done = collect(&server, Duration::ZERO).await;
    assert_eq!((done.contents, done.blocks), (1, 3));
    assert_eq!(
        fetch(&server, &bob, &cb).await.1,
        b,
        "the shared leaf was listed for b"
    );
}

async fn abandoned_upload_sessions_expire(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice");
    let data = bytes(CHUNK + 10, 45);
    let new = serde_json::json!({ "cid": cid_of(&data), "size": data.len() });
    let (_, session) = server
        .json(
            "POST",
            "/v1/uploads",
            Some(&alice),
            new.to_string().into_bytes(),
        )
        .await;
    let id = session["id"].as_str().unwrap().to_owned();
    let request = Request::patch(format!("/v1/uploads/{id}"))
        .header("authorization", format!("Bearer {alice}"))
        .header("upload-offset", "0")
        .body(Body::from(data[..CHUNK].to_vec()))
        .unwrap();
    assert_eq!(server.send(request).await.0, StatusCode::OK);
    assert!(server.data_dir.join("uploads").join(&id).exists());

    assert_eq!(
        collect(&server, Duration::ZERO).await.uploads,
        0,
        "still fresh"
    );
    let expired = GcSettings {
        upload_expiry: Duration::ZERO,
        ..settings(Duration::ZERO)
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    let done = gc::collect(&server.state.files, None, &expired)
        .await
        .unwrap();
    assert_eq!(done.uploads, 1);
    assert!(!server.data_dir.join("uploads").join(&id).exists());
    let (status, _) = server
        .call(
            "GET",
            &format!("/v1/uploads/{id}"),
            Some(&alice),
            Vec::new(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// `GET /metrics` shows stored contents and the collector's queues from the database (so
/// every replica agrees), behind the metrics token.
async fn metrics_count_contents_pins_and_collection(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice");
    let (a, b) = two_files();
    let ca = put(&server, &alice, &a).await;
    put(&server, &alice, &b).await;
    delete(&server, &alice, &ca).await;
    let scrape = |token: Option<&'static str>| {
        let server = &server;
        async move {
            let mut request = Request::get("/metrics");
            if let Some(token) = token {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            let (status, headers, body) = server.send(request.body(Body::empty()).unwrap()).await;
            (status, headers, String::from_utf8(body).unwrap())
        }
    };
    assert_eq!(scrape(None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(scrape(Some("wrong")).await.0, StatusCode::UNAUTHORIZED);
    let (status, headers, text) = scrape(Some("metrics-secret")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    for line in [
        "cairn_file_contents 2",
        "cairn_gc_candidates 1",
        "cairn_gc_block_candidates 0",
        "cairn_pins{status=\"pinned\"} 0",
        "# TYPE cairn_pins gauge",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in:\n{text}");
    }
    collect(&server, Duration::ZERO).await;
    let (_, _, text) = scrape(Some("metrics-secret")).await;
    assert!(
        text.contains("cairn_file_contents 1\n") && text.contains("cairn_gc_candidates 0\n"),
        "{text}"
    );
}

/// The race the claims check closes, step by step: an upload claims a content that is
/// referenced, its last reference goes, a collection takes it; recording the upload must then
/// fail (retryably) rather than leave a file without blocks, and sending it again works.
async fn a_content_collected_mid_upload_is_not_recorded_without_its_blocks(backend: Backend) {
    use cairn_server::store::{NewFile, StoreError};
    let server = TestServer::start(backend).await;
    let (alice, bob, carol) = (
        server.token("alice"),
        server.token("bob"),
        server.token("carol"),
    );
    let data = bytes(2 * CHUNK + 5, 47);
    let cid = put(&server, &alice, &data).await;
    put(&server, &bob, &data).await;
    delete(&server, &alice, &cid).await;
    let (blocks, imported) = import(&data, ImportOptions::default());
    let digests: Vec<String> = blocks.iter().map(|b| hex::encode(b.cid.digest())).collect();
    let store = &server.state.files.store;
    // Carol's upload of the same bytes claims them...
    store.claim_blocks(&cid, &digests, 1).await.unwrap();
    // ...bob's deletion makes the content a candidate, and a collection takes it.
    delete(&server, &bob, &cid).await;
    assert_eq!(collect(&server, Duration::ZERO).await.contents, 1);
    let recorded = store
        .add_file(&NewFile {
            owner: "carol",
            cid: &cid,
            name: "f.bin",
            content_type: "application/octet-stream",
            size: imported.size as i64,
            dag_size: imported.dag_size as i64,
            now_ms: 2,
            metadata: "{}",
        })
        .await;
    assert!(
        matches!(recorded, Err(StoreError::Raced(_))),
        "{recorded:?}"
    );
    assert_eq!(fetch(&server, &carol, &cid).await.0, StatusCode::NOT_FOUND);
    assert_eq!(put(&server, &carol, &data).await, cid);
    assert_eq!(fetch(&server, &carol, &cid).await.1, data);
}

/// Uploads of shared blocks, deletions and collections at once, many rounds: whatever is
/// still listed must read back whole.
async fn racing_uploads_deletes_and_collections_lose_nothing(backend: Backend) {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let server = TestServer::start(backend).await;
    let users = ["u1", "u2", "u3"].map(|u| server.token(u));
    let common = bytes(CHUNK, 46);
    let file = |round: u64, who: u64| {
        let mut data = common.clone();
        data.extend(bytes(1000 + who as usize, 1000 * round + who + 1));
        data
    };
    for round in 0..12u64 {
        let uploads = (0..3u64).map(|who| {
            let data = if who == 0 {
                common.clone()
            } else {
                file(round, who)
            };
            let server = &server;
            let token = users[who as usize].clone();
            async move { put(server, &token, &data).await }
        });
        let deletes = async {
            if round > 0 {
                for who in 0..3u64 {
                    let data = if who == 0 {
                        common.clone()
                    } else {
                        file(round - 1, who)
                    };
                    let cid = cid_of(&data);
                    let _ = server
                        .call(
                            "DELETE",
                            &format!("/v1/files/{cid}"),
                            Some(&users[who as usize]),
                            Vec::new(),
                        )
                        .await;
                }
            }
        };
        let collecting = async {
            for _ in 0..3 {
                collect(&server, Duration::ZERO).await;
            }
        };
        let (cids, (), ()) = tokio::join!(futures::future::join_all(uploads), deletes, collecting);
        assert_eq!(cids.len(), 3);
        for (who, token) in users.iter().enumerate() {
            let (_, listed) = server
                .json("GET", "/v1/files", Some(token), Vec::new())
                .await;
            for f in listed["files"].as_array().unwrap() {
                let cid = f["cid"].as_str().unwrap();
                let (status, body) = fetch(&server, token, cid).await;
                assert_eq!(status, StatusCode::OK, "round {round}: user {who}'s {cid}");
                assert_eq!(cid_of(&body), cid, "round {round}: {cid} reads back whole");
            }
        }
    }
}

/// While a backup holds its maintenance lease, collections remove contents but delete no
/// block (the backup's snapshot may name them); once it is released, the blocks go. An
/// expired lease holds nothing off, and cannot be renewed.
async fn a_backup_lease_holds_off_block_deletion(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice");
    let (a, _) = two_files();
    let cid = put(&server, &alice, &a).await;
    delete(&server, &alice, &cid).await;
    let store = &server.state.files.store;
    let now = cairn_server::clock::now_ms();
    store
        .take_lease("backup-1", "test", now, now + 60_000)
        .await
        .unwrap();

    let held = collect(&server, Duration::ZERO).await;
    assert_eq!((held.contents, held.blocks, held.deferred), (1, 0, true));
    assert_eq!(
        stored_blocks(&server),
        4,
        "no block went while the lease was held"
    );
    assert!(
        store
            .renew_lease("backup-1", now, now + 120_000)
            .await
            .unwrap()
    );

    store.release_lease("backup-1").await.unwrap();
    let done = collect(&server, Duration::ZERO).await;
    assert_eq!((done.blocks, done.deferred), (4, false));
    assert_eq!(stored_blocks(&server), 0);

    // An expired lease neither holds collections off nor renews.
    store
        .take_lease("backup-2", "test", now - 10, now - 1)
        .await
        .unwrap();
    assert!(!collect(&server, Duration::ZERO).await.deferred);
    assert!(
        !store
            .renew_lease("backup-2", now, now + 1000)
            .await
            .unwrap()
    );
}

on_both_backends!(
    a_backup_lease_holds_off_block_deletion,
    unreferenced_contents_go_and_shared_blocks_stay,
    attachments_of_a_deleted_file_go_with_it,
    contents_stored_before_block_lists_are_listed_first,
    abandoned_upload_sessions_expire,
    metrics_count_contents_pins_and_collection,
    a_content_collected_mid_upload_is_not_recorded_without_its_blocks,
    racing_uploads_deletes_and_collections_lose_nothing,
);
