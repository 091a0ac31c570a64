//! The protocol against Automerge peers written here the way automerge-repo drives them.

use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, Automerge};
use proptest::prelude::*;

use super::wire::{self, Incoming, PeerMetadata};
use super::*;
use crate::DocumentId;

const SERVER: &str = "cairn-server";

fn doc_id(n: u8) -> DocumentId {
    DocumentId::from_random_bytes([n; 16])
}

fn join(sender: &str) -> Vec<u8> {
    Incoming::Join {
        sender: sender.into(),
        metadata: PeerMetadata {
            storage_id: Some("client-storage".into()),
            is_ephemeral: Some(false),
            token: Some("t0k3n".into()),
        },
        versions: Some(vec!["1".into()]),
    }
    .encode(SERVER)
}

fn sync_frame(
    sender: &str,
    document: DocumentId,
    message: sync::Message,
    request: bool,
) -> Vec<u8> {
    Incoming::Sync {
        sender: sender.into(),
        document,
        data: message.encode(),
        request,
    }
    .encode(SERVER)
}

/// The server side of one frame, as the driver does it: commit the new changes into `server`
/// (counting them in `committed`), then answer.
fn serve(
    session: &mut Session,
    server: &mut Automerge,
    frame: &[u8],
    committed: &mut usize,
) -> Vec<Vec<u8>> {
    match session.handle(frame) {
        Ok(Event::Joined { reply, .. }) => vec![reply],
        Ok(Event::Sync {
            document,
            message,
            request,
        }) => {
            if request && server.get_heads().is_empty() {
                return vec![session.unavailable(&document)];
            }
            session.open(document, false).unwrap();
            let new = incoming_changes(server, &message).unwrap();
            *committed += new.len();
            server.apply_changes(new).unwrap();
            session.received(&document, server, message).unwrap();
            session.outgoing(&document, server).into_iter().collect()
        }
        Ok(_) => Vec::new(),
        Err(refusal) => vec![refusal.reply],
    }
}

/// Runs a client and the server until neither has anything to say; returns the frames.
fn converse(
    peer: &str,
    session: &mut Session,
    server: &mut Automerge,
    client: &mut AutoCommit,
    state: &mut sync::State,
    document: DocumentId,
    committed: &mut usize,
) -> usize {
    let mut frames = 0;
    for _ in 0..50 {
        let Some(message) = client.sync().generate_sync_message(state) else {
            return frames;
        };
        let request = client.get_heads().is_empty();
        for reply in serve(
            session,
            server,
            &sync_frame(peer, document, message, request),
            committed,
        ) {
            frames += 1;
            match wire::decode(&reply).unwrap() {
                Incoming::Sync { data, .. } => {
                    let m = sync::Message::decode(&data).unwrap();
                    client.sync().receive_sync_message(state, m).unwrap();
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    panic!("no convergence in 50 rounds");
}

/// A new connection of `peer`, synced until quiet.
fn connect_and_sync(
    peer: &str,
    server: &mut Automerge,
    client: &mut AutoCommit,
    document: DocumentId,
    committed: &mut usize,
) {
    let mut session = Session::new(SERVER, "s", 10);
    session.handle(&join(peer)).unwrap();
    let mut state = sync::State::new();
    converse(
        peer,
        &mut session,
        server,
        client,
        &mut state,
        document,
        committed,
    );
}

#[test]
fn the_handshake_answers_peer_with_our_storage_id() {
    let mut session = Session::new(SERVER, "cairn-storage", 10);
    let Ok(Event::Joined { reply, token }) = session.handle(&join("client")) else {
        panic!("joined")
    };
    assert_eq!(token.as_deref(), Some("t0k3n"));
    let value: ciborium::Value = ciborium::from_reader(reply.as_slice()).unwrap();
    let text = format!("{value:?}");
    for part in [
        "\"peer\"",
        "\"cairn-server\"",
        "\"client\"",
        "\"cairn-storage\"",
        "\"selectedProtocolVersion\"",
    ] {
        assert!(text.contains(part), "{part} in {text}");
    }
    assert_eq!(session.remote(), Some("client"));
}

#[test]
fn messages_before_join_or_from_another_sender_are_refused() {
    let mut session = Session::new(SERVER, "s", 10);
    let leave = Incoming::Leave {
        sender: "client".into(),
    }
    .encode(SERVER);
    let refused = session.handle(&leave).unwrap_err();
    assert!(refused.fatal && refused.reason.contains("join"));
    session.handle(&join("client")).unwrap();
    assert!(
        session.handle(&join("client")).unwrap_err().fatal,
        "a second join"
    );
    let other = Incoming::Leave {
        sender: "mallory".into(),
    }
    .encode(SERVER);
    assert!(session.handle(&other).unwrap_err().fatal);
    let unsupported = Incoming::Join {
        sender: "c2".into(),
        metadata: PeerMetadata::default(),
        versions: Some(vec!["2".into()]),
    };
    let refused = Session::new(SERVER, "s", 10)
        .handle(&unsupported.encode(SERVER))
        .unwrap_err();
    assert!(refused.fatal && refused.reason.contains("protocol version"));
}

#[test]
fn unknown_types_and_bad_sync_data_are_errors_but_not_fatal() {
    let mut session = Session::new(SERVER, "s", 10);
    session.handle(&join("client")).unwrap();
    let unknown = Incoming::Unknown {
        sender: "client".into(),
        kind: "teleport".into(),
    };
    let refused = session.handle(&unknown.encode(SERVER)).unwrap_err();
    assert!(!refused.fatal && refused.reason.contains("teleport"));
    let bad = Incoming::Sync {
        sender: "client".into(),
        document: doc_id(1),
        data: vec![1, 2, 3],
        request: false,
    };
    assert!(!session.handle(&bad.encode(SERVER)).unwrap_err().fatal);
    for garbage in [&b""[..], b"\xff\xff", b"\x01", b"\xa1\x64type\x01"] {
        assert!(session.handle(garbage).unwrap_err().fatal, "{garbage:?}");
    }
}

#[test]
fn a_new_document_reaches_the_server_and_a_second_peer_gets_it() {
    let document = doc_id(7);
    let mut server = Automerge::new();
    let mut committed = 0;
    let mut alice = AutoCommit::new();
    alice
        .put(automerge::ROOT, "title", "from automerge-repo")
        .unwrap();
    alice.commit();
    connect_and_sync("alice", &mut server, &mut alice, document, &mut committed);
    assert_eq!(server.get_heads(), alice.get_heads());
    assert_eq!(committed, 1, "the change was committed once");

    let mut bob = AutoCommit::new();
    connect_and_sync("bob", &mut server, &mut bob, document, &mut committed);
    assert_eq!(bob.get_heads(), alice.get_heads());
    assert_eq!(committed, 1, "nothing new from bob");
}

#[test]
fn a_request_for_a_document_the_server_lacks_is_unavailable() {
    let mut session = Session::new(SERVER, "s", 10);
    session.handle(&join("client")).unwrap();
    let mut client = AutoCommit::new();
    let message = client
        .sync()
        .generate_sync_message(&mut sync::State::new())
        .unwrap();
    let replies = serve(
        &mut session,
        &mut Automerge::new(),
        &sync_frame("client", doc_id(3), message, true),
        &mut 0,
    );
    assert_eq!(replies.len(), 1);
    assert_eq!(
        wire::decode(&replies[0]).unwrap(),
        Incoming::DocUnavailable {
            sender: SERVER.into(),
            document: doc_id(3)
        }
    );
    assert!(!session.is_open(&doc_id(3)));
}

#[test]
fn a_read_only_peer_syncs_down_and_its_changes_are_ignored() {
    let document = doc_id(9);
    let mut server = Automerge::new();
    let mut tx = server.transaction();
    tx.put(automerge::ROOT, "k", "server").unwrap();
    tx.commit();
    let mut session = Session::new(SERVER, "s", 10);
    session.handle(&join("reader")).unwrap();
    session.open(document, true).unwrap();
    let mut reader = AutoCommit::new();
    reader.put(automerge::ROOT, "mine", 1).unwrap();
    reader.commit();
    let message = reader
        .sync()
        .generate_sync_message(&mut sync::State::new())
        .unwrap();
    let Ok(Event::Sync { message, .. }) =
        session.handle(&sync_frame("reader", document, message, false))
    else {
        panic!("sync")
    };
    let before = server.get_heads();
    session.received(&document, &mut server, message).unwrap();
    assert_eq!(
        server.get_heads(),
        before,
        "nothing of the reader's applied"
    );
    assert!(session.outgoing(&document, &server).is_some());
}

#[test]
fn the_documents_a_peer_opens_are_bounded() {
    let mut session = Session::new(SERVER, "s", 2);
    session.handle(&join("client")).unwrap();
    session.open(doc_id(1), false).unwrap();
    session.open(doc_id(2), false).unwrap();
    session.open(doc_id(1), false).unwrap();
    assert!(!session.open(doc_id(3), false).unwrap_err().fatal);
}

#[test]
fn ephemeral_messages_are_relayed_once_to_the_others() {
    let document = doc_id(5);
    let message = Ephemeral {
        sender: "alice".into(),
        document,
        session: "s1".into(),
        count: 1,
        data: vec![1],
    };
    let mut seen = Seen::default();
    assert!(seen.fresh(&message));
    assert!(!seen.fresh(&message), "gossiped back: dropped");
    assert!(seen.fresh(&Ephemeral {
        count: 2,
        ..message.clone()
    }));
    let mut bob = Session::new(SERVER, "s", 10);
    bob.handle(&join("bob")).unwrap();
    assert_eq!(bob.relay(&message), None, "bob has not opened the document");
    bob.open(document, false).unwrap();
    let frame = bob.relay(&message).unwrap();
    assert_eq!(
        wire::decode(&frame).unwrap(),
        Incoming::Ephemeral(message.clone())
    );
    let mut alice = Session::new(SERVER, "s", 10);
    alice.handle(&join("alice")).unwrap();
    alice.open(document, false).unwrap();
    assert_eq!(alice.relay(&message), None, "not back to its sender");
}

#[test]
fn subscribers_to_our_storage_hear_of_new_heads_once() {
    let document = doc_id(4);
    let mut session = Session::new(SERVER, "ours", 10);
    session.handle(&join("client")).unwrap();
    session.open(document, false).unwrap();
    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    tx.put(automerge::ROOT, "k", 1).unwrap();
    tx.commit();
    assert_eq!(session.heads(&document, &doc, 1), None, "not subscribed");
    let subscribe = Incoming::RemoteSubscriptionChange {
        sender: "client".into(),
        add: vec!["ours".into()],
        remove: vec![],
    };
    assert_eq!(
        session.handle(&subscribe.encode(SERVER)),
        Ok(Event::Subscribed(true))
    );
    let frame = session.heads(&document, &doc, 1).unwrap();
    let text = format!(
        "{:?}",
        ciborium::from_reader::<ciborium::Value, _>(frame.as_slice()).unwrap()
    );
    assert!(
        text.contains("remote-heads-changed") && text.contains(&doc.get_heads()[0].to_string()),
        "{text}"
    );
    assert_eq!(session.heads(&document, &doc, 2), None, "unchanged heads");
}

#[test]
fn a_whole_document_chunk_gives_its_changes() {
    let mut peer = AutoCommit::new();
    for i in 0..5 {
        peer.put(automerge::ROOT, "n", i).unwrap();
        peer.commit();
    }
    let mut message = peer
        .sync()
        .generate_sync_message(&mut sync::State::new())
        .unwrap();
    message.changes = vec![peer.save()].into();
    let changes = incoming_changes(&Automerge::new(), &message).unwrap();
    assert_eq!(changes.len(), 5);
    let mut server = Automerge::new();
    server.apply_changes(changes).unwrap();
    assert_eq!(server.get_heads(), peer.get_heads());
}

proptest! {
    #[test]
    fn arbitrary_frames_never_panic(frame in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut session = Session::new(SERVER, "s", 10);
        let _ = session.handle(&frame);
        session.handle(&join("client")).unwrap();
        let _ = session.handle(&frame);
    }

    #[test]
    fn sync_frames_round_trip(data in proptest::collection::vec(any::<u8>(), 0..100), n in any::<u8>(), request in any::<bool>()) {
        let message = Incoming::Sync { sender: "p".into(), document: doc_id(n), data, request };
        prop_assert_eq!(wire::decode(&message.encode(SERVER)).unwrap(), message);
    }
}
