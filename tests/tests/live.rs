//! Live sync over WebSocket against the real server binary and PostgreSQL: pushes to
//! subscribers of the same document only, unsubscribe, reconnect with catch-up, access and
//! limits on every frame, fan-out across two server replicas, and a slow reader.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::time::{Duration, Instant};

use automerge::{AutoCommit, transaction::Transactable};
use cairn_core::protocol::SyncRequest;
use cairn_core::sync::from_automerge;
use cairn_core::{DocumentId, Message};
use cairn_harness::postgres;
use support::{
    WsClient, create_doc as create, expect_changes, http_sync, op, push_since, start_server, token,
    write_doc as write,
};
use tokio_tungstenite::tungstenite::Message as WsMessage;

const QUIET: Duration = Duration::from_millis(300);

fn doc_id(n: u8) -> DocumentId {
    DocumentId::from_random_bytes([n; 16])
}

fn expect_error(message: Option<Message>, code: &str) -> cairn_core::protocol::ErrorMessage {
    match message {
        Some(Message::Error(e)) if e.code == code => e,
        other => panic!("expected error {code}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_reach_subscribers_unsubscribe_and_catch_up() {
    let server = start_server("live-push", &postgres::fresh_database().await, &[]);
    let base = server.url.as_str();
    let (d1, d2) = (doc_id(1), doc_id(2));
    let mut doc1 = create(base, "alice", d1, 1).await;
    let mut doc2 = create(base, "alice", d2, 2).await;

    let mut c1 = WsClient::connect(base, "alice").await;
    let mut c2 = WsClient::connect(base, "alice").await;
    c1.subscribe(&[(d1, from_automerge(&doc1.get_heads()))])
        .await;
    c2.subscribe(&[
        (d1, from_automerge(&doc1.get_heads())),
        (d2, from_automerge(&doc2.get_heads())),
    ])
    .await;
    c1.barrier().await;
    c2.barrier().await;

    // C1 writes D1 over its socket: acked to C1, pushed to C2, not echoed to C1.
    let mut copy1 = doc1.fork();
    let before = doc1.get_heads();
    doc1.put(automerge::ROOT, "by", "c1").unwrap();
    let mut request = push_since(d1, &mut doc1, &before, op(10));
    request.request = 7;
    let sent = Instant::now();
    c1.send(Message::SyncRequest(request)).await;
    match c1.recv().await {
        Some(Message::SyncResponse(r)) => {
            assert_eq!((r.request, r.documents[0].acked.clone()), (7, vec![op(10)]))
        }
        other => panic!("expected the ack, got {other:?}"),
    }
    let pushed = expect_changes(c2.recv().await, d1);
    let latency = sent.elapsed();
    copy1.load_incremental(&pushed.data).unwrap();
    assert_eq!(copy1.get_heads(), doc1.get_heads());
    assert_eq!(pushed.heads, from_automerge(&doc1.get_heads()));
    assert!(
        c1.recv_within(QUIET).await.is_err(),
        "no echo to the writer"
    );
    println!("write-to-push latency on loopback (one sync round trip, commit, push): {latency:?}");

    // An HTTP write to D2 reaches C2 only.
    write(base, "alice", d2, &mut doc2, 20).await;
    expect_changes(c2.recv().await, d2);
    assert!(
        c1.recv_within(QUIET).await.is_err(),
        "C1 does not follow D2"
    );

    // After unsubscribing D1, C2 hears nothing of it.
    c2.send(Message::Unsubscribe(vec![d1])).await;
    c2.barrier().await;
    write(base, "alice", d1, &mut doc1, 30).await;
    expect_changes(c1.recv().await, d1);
    assert!(c2.recv_within(QUIET).await.is_err(), "unsubscribed");

    // C2 goes away; both documents move on; a new connection with the old heads catches up.
    let (mut old1, mut old2) = (copy1.fork(), doc2.fork());
    drop(c2);
    write(base, "alice", d1, &mut doc1, 40).await;
    write(base, "alice", d2, &mut doc2, 41).await;
    let mut c3 = WsClient::connect(base, "alice").await;
    c3.subscribe(&[
        (d1, from_automerge(&old1.get_heads())),
        (d2, from_automerge(&old2.get_heads())),
    ])
    .await;
    for _ in 0..2 {
        let c = match c3.recv().await {
            Some(Message::Changes(c)) => c,
            other => panic!("expected catch-up changes, got {other:?}"),
        };
        let target = if c.document == d1 {
            &mut old1
        } else {
            &mut old2
        };
        target.load_incremental(&c.data).unwrap();
    }
    assert_eq!(old1.get_heads(), doc1.get_heads(), "D1 caught up");
    assert_eq!(old2.get_heads(), doc2.get_heads(), "D2 caught up");
}

#[tokio::test]
async fn the_socket_checks_tokens_access_and_limits_on_every_frame() {
    let flags = [
        "--max-subscriptions",
        "2",
        "--max-connections-per-user",
        "2",
    ];
    let server = start_server("live-limits", &postgres::fresh_database().await, &flags);
    let base = server.url.as_str();
    let d1 = doc_id(3);
    let mut doc = create(base, "alice", d1, 1).await;

    // No Auth first, or a bad token: refused and closed.
    let mut anonymous = WsClient::connect_raw(base).await;
    anonymous.subscribe(&[(d1, vec![])]).await;
    expect_error(anonymous.recv().await, "E_UNAUTHORIZED");
    assert!(anonymous.recv().await.is_none(), "closed");
    let mut forged = WsClient::connect_raw(base).await;
    forged
        .send(Message::Auth {
            token: "forged".into(),
        })
        .await;
    expect_error(forged.recv().await, "E_UNAUTHORIZED");

    // Bob may not follow or read Alice's document, and learns nothing of it.
    let mut bob = WsClient::connect(base, "bob").await;
    bob.subscribe(&[(d1, vec![])]).await;
    let e = expect_error(bob.recv().await, "E_FORBIDDEN");
    assert_eq!(e.documents, vec![d1]);
    bob.send(Message::SyncRequest(SyncRequest {
        request: 9,
        documents: push_since(d1, &mut AutoCommit::new(), &[], op(2)).documents,
    }))
    .await;
    let e = expect_error(bob.recv().await, "E_FORBIDDEN");
    assert_eq!(e.request, 9);

    // Limits: followed documents per connection, connections per user.
    bob.subscribe(&[
        (doc_id(10), vec![]),
        (doc_id(11), vec![]),
        (doc_id(12), vec![]),
    ])
    .await;
    expect_error(bob.recv().await, "E_TOO_MANY_SUBSCRIPTIONS");
    let _second = WsClient::connect(base, "bob").await;
    let mut third = WsClient::connect_raw(base).await;
    third
        .send(Message::Auth {
            token: token("bob"),
        })
        .await;
    expect_error(third.recv().await, "E_TOO_MANY_CONNECTIONS");

    // Garbage frames get errors, and the connection stays usable.
    bob.send_raw(WsMessage::Binary(vec![1, 99].into())).await;
    expect_error(bob.recv().await, "E_MALFORMED_MESSAGE");
    bob.send_raw(WsMessage::Text("hello".into())).await;
    expect_error(bob.recv().await, "E_MALFORMED_MESSAGE");
    bob.barrier().await;

    // Granted read access, Bob follows; revoked, the next push is refused and nothing leaks.
    let client = reqwest::Client::new();
    let member = format!("{base}v1/docs/{d1}/members/bob");
    let put = client
        .put(&member)
        .bearer_auth(token("alice"))
        .json(&serde_json::json!({ "role": "reader" }));
    assert_eq!(put.send().await.unwrap().status(), 204);
    bob.subscribe(&[(d1, vec![])]).await;
    expect_changes(bob.recv().await, d1);
    assert_eq!(
        client
            .delete(&member)
            .bearer_auth(token("alice"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    write(base, "alice", d1, &mut doc, 5).await;
    let e = expect_error(bob.recv().await, "E_FORBIDDEN");
    assert_eq!(e.documents, vec![d1]);
    write(base, "alice", d1, &mut doc, 6).await;
    assert!(
        bob.recv_within(QUIET).await.is_err(),
        "no more pushes after losing access"
    );
}

#[tokio::test]
async fn replicas_fan_out_through_postgres_notifications() {
    let database = postgres::fresh_database().await;
    let a = start_server("replica-a", &database, &[]);
    let b = start_server("replica-b", &database, &[]);
    let d = doc_id(4);
    let mut doc = create(&b.url, "alice", d, 1).await;
    let mut follower = WsClient::connect(&a.url, "alice").await;
    follower
        .subscribe(&[(d, from_automerge(&doc.get_heads()))])
        .await;
    follower.barrier().await;
    let mut copy = doc.fork();
    write(&b.url, "alice", d, &mut doc, 2).await;
    let pushed = expect_changes(follower.recv().await, d);
    copy.load_incremental(&pushed.data).unwrap();
    assert_eq!(
        copy.get_heads(),
        doc.get_heads(),
        "a write on replica B reaches a follower on replica A"
    );
}

/// Writes `count` changes of `size` bytes each to a followed document; returns how much the
/// server's resident memory grew, once `fast` has received everything.
async fn push_load(with_slow_reader: bool, count: u64, size: usize) -> i64 {
    let name = if with_slow_reader {
        "slow-reader"
    } else {
        "slow-reader-control"
    };
    let server = start_server(name, &postgres::fresh_database().await, &[]);
    let base = server.url.as_str();
    let d = doc_id(5);
    let mut doc = create(base, "alice", d, 1).await;
    let heads = from_automerge(&doc.get_heads());
    // The slow reader follows the document and then never reads from its socket.
    let _slow = if with_slow_reader {
        let mut slow = WsClient::connect(base, "alice").await;
        slow.subscribe(&[(d, heads.clone())]).await;
        slow.barrier().await;
        Some(slow)
    } else {
        None
    };
    let mut fast = WsClient::connect(base, "alice").await;
    fast.subscribe(&[(d, heads)]).await;
    fast.barrier().await;
    let mut copy = doc.fork();
    let before = server.rss_bytes();
    // Write from another task while the fast follower reads.
    let writer = {
        let (base, mut doc) = (base.to_owned(), doc.fork());
        tokio::spawn(async move {
            let filler = "x".repeat(size);
            for n in 0..count {
                let prev = doc.get_heads();
                doc.put(automerge::ROOT, "blob", format!("{n}{filler}"))
                    .unwrap();
                http_sync(&base, "alice", push_since(d, &mut doc, &prev, op(100 + n)))
                    .await
                    .unwrap();
            }
            doc
        })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut writer = Some(writer);
    let mut target = None;
    while target.as_ref() != Some(&copy.get_heads()) {
        assert!(Instant::now() < deadline, "the fast follower kept up");
        if writer
            .as_ref()
            .is_some_and(tokio::task::JoinHandle::is_finished)
        {
            let mut written = writer.take().unwrap().await.unwrap();
            target = Some(written.get_heads());
            continue;
        }
        if let Ok(message) = fast.recv_within(Duration::from_millis(200)).await {
            let pushed = expect_changes(message, d);
            copy.load_incremental(&pushed.data).unwrap();
        }
    }
    server.rss_bytes() as i64 - before as i64
}

#[tokio::test]
async fn a_slow_reader_costs_no_memory_and_does_not_stall_others() {
    const COUNT: u64 = 100;
    const SIZE: usize = 400_000; // 40 MB pushed to each follower
    let control = push_load(false, COUNT, SIZE).await;
    let slow = push_load(true, COUNT, SIZE).await;
    println!(
        "server memory growth: {} MB without, {} MB with a stalled reader",
        control >> 20,
        slow >> 20
    );
    assert!(
        slow < control + 24 * 1024 * 1024,
        "a stalled reader must not make the server buffer what it is sent ({slow} vs {control} bytes)"
    );
}
