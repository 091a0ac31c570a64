use super::*;
use crate::{ChangeHash, DocumentId, OpId};
use proptest::prelude::*;

fn doc(n: u8) -> DocumentId {
    DocumentId::from_bytes([n; 16])
}

/// A checked-in frame: if the encoding ever changes, this fails and the version must change.
#[test]
fn sync_request_v1_fixture_is_stable() {
    let frame = Message::SyncRequest(SyncRequest {
        request: 300,
        documents: vec![DocRequest {
            document: doc(0xab),
            heads: vec![ChangeHash::from([9; 32])],
            entries: vec![Entry {
                op: OpId::from_bytes([7; 16]),
                changes: vec![b"hi".to_vec()],
            }],
        }],
    })
    .encode();
    let mut expected = vec![1, 1, 0xac, 0x02, 1];
    expected.extend([0xab; 16]);
    expected.push(1);
    expected.extend([9; 32]);
    expected.push(1);
    expected.extend([7; 16]);
    expected.extend([1, 2, b'h', b'i']);
    assert_eq!(frame, expected);
    assert_eq!(Message::decode(&frame).unwrap().encode(), frame);
}

#[test]
fn error_v1_fixture_is_stable() {
    let frame = Message::Error(ErrorMessage {
        request: 5,
        code: "E_X".into(),
        message: "m".into(),
        retryable: true,
        documents: vec![doc(1)],
    })
    .encode();
    let mut expected = vec![1, 6, 5, 3, b'E', b'_', b'X', 1, b'm', 1, 1];
    expected.extend([1; 16]);
    assert_eq!(frame, expected);
}

#[test]
fn rejects_other_versions_clearly() {
    let mut frame = Message::Welcome { user: "u".into() }.encode();
    frame[0] = 2;
    assert_eq!(
        Message::decode(&frame),
        Err(DecodeError::UnsupportedVersion {
            found: 2,
            supported: 1
        })
    );
}

#[test]
fn rejects_malformed_frames() {
    assert_eq!(Message::decode(&[]), Err(DecodeError::Empty));
    assert_eq!(Message::decode(&[1]), Err(DecodeError::Truncated("kind")));
    assert_eq!(Message::decode(&[1, 99]), Err(DecodeError::UnknownKind(99)));
    assert_eq!(
        Message::decode(&[1, 5, 0]),
        Err(DecodeError::Truncated("document"))
    );
    // Counts far beyond the frame must not allocate, only fail.
    let huge = [
        1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ];
    assert_eq!(
        Message::decode(&huge),
        Err(DecodeError::Truncated("documents"))
    );
    let mut many_heads = vec![1, 5];
    many_heads.extend([0; 16]);
    many_heads.extend([0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert_eq!(
        Message::decode(&many_heads),
        Err(DecodeError::Truncated("heads"))
    );
    assert_eq!(
        Message::decode(&[1, 7, 2, 0xff, 0xfe]),
        Err(DecodeError::InvalidUtf8("token"))
    );
    let mut bad_bool = vec![1, 6, 0, 0, 0, 2, 0];
    bad_bool.truncate(6);
    assert_eq!(
        Message::decode(&bad_bool),
        Err(DecodeError::InvalidBool("retryable"))
    );
    let mut trailing = Message::Unsubscribe(vec![doc(1)]).encode();
    trailing.push(0);
    assert_eq!(
        Message::decode(&trailing),
        Err(DecodeError::TrailingBytes(1))
    );
}

fn document() -> impl Strategy<Value = DocumentId> {
    any::<[u8; 16]>().prop_map(DocumentId::from_bytes)
}

fn hashes() -> impl Strategy<Value = Vec<ChangeHash>> {
    prop::collection::vec(any::<[u8; 32]>().prop_map(ChangeHash::from), 0..4)
}

fn blob() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..64)
}

fn any_message() -> impl Strategy<Value = Message> {
    let entry =
        (any::<[u8; 16]>(), prop::collection::vec(blob(), 0..3)).prop_map(|(op, changes)| Entry {
            op: OpId::from_bytes(op),
            changes,
        });
    let doc_request = (document(), hashes(), prop::collection::vec(entry, 0..3)).prop_map(
        |(document, heads, entries)| DocRequest {
            document,
            heads,
            entries,
        },
    );
    let doc_response = (
        document(),
        prop::collection::vec(any::<[u8; 16]>(), 0..3),
        hashes(),
        blob(),
    )
        .prop_map(|(document, acked, heads, data)| DocResponse {
            document,
            acked: acked.into_iter().map(OpId::from_bytes).collect(),
            heads,
            data,
        });
    prop_oneof![
        (any::<u64>(), prop::collection::vec(doc_request, 0..3)).prop_map(
            |(request, documents)| Message::SyncRequest(SyncRequest { request, documents })
        ),
        (any::<u64>(), prop::collection::vec(doc_response, 0..3)).prop_map(
            |(request, documents)| Message::SyncResponse(SyncResponse { request, documents })
        ),
        prop::collection::vec((document(), hashes()), 0..3).prop_map(|docs| Message::Subscribe(
            docs.into_iter()
                .map(|(document, heads)| DocHeads { document, heads })
                .collect()
        )),
        prop::collection::vec(document(), 0..3).prop_map(Message::Unsubscribe),
        (document(), hashes(), blob()).prop_map(|(document, heads, data)| Message::Changes(
            DocChanges {
                document,
                heads,
                data
            }
        )),
        (
            any::<u64>(),
            ".{0,12}",
            ".{0,24}",
            any::<bool>(),
            prop::collection::vec(document(), 0..3)
        )
            .prop_map(
                |(request, code, message, retryable, documents)| Message::Error(ErrorMessage {
                    request,
                    code,
                    message,
                    retryable,
                    documents,
                })
            ),
        ".{0,40}".prop_map(|token| Message::Auth { token }),
        ".{0,20}".prop_map(|user| Message::Welcome { user }),
    ]
}

proptest! {
    #[test]
    fn round_trip(message in any_message()) {
        let frame = message.encode();
        prop_assert_eq!(Message::decode(&frame), Ok(message));
    }

    /// Canonical: a frame that decodes re-encodes to the very same bytes.
    #[test]
    fn arbitrary_bytes_never_panic_and_decode_canonically(
        kind in 1u8..=8,
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut bytes = vec![VERSION, kind];
        bytes.extend(body);
        if let Ok(message) = Message::decode(&bytes) {
            prop_assert_eq!(message.encode(), bytes);
        }
    }

    #[test]
    fn every_truncation_is_an_error(message in any_message()) {
        let frame = message.encode();
        for cut in 0..frame.len() {
            prop_assert!(Message::decode(&frame[..cut]).is_err());
        }
    }

    #[test]
    fn mutated_frames_never_panic(message in any_message(), at in any::<usize>(), byte in any::<u8>()) {
        let mut frame = message.encode();
        let i = at % frame.len();
        frame[i] = byte;
        if let Ok(decoded) = Message::decode(&frame) {
            prop_assert_eq!(decoded.encode(), frame);
        }
    }
}
