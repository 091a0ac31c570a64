use super::*;
use proptest::prelude::*;

fn doc(n: u8) -> DocumentId {
    DocumentId::from_bytes([n; 16])
}

/// A checked-in frame: if the encoding ever changes, this fails and the version must change.
#[test]
fn push_v1_fixture_is_stable() {
    let frame = Message::Push {
        document: doc(0xab),
        data: b"hi".to_vec(),
    }
    .encode();
    let mut expected = vec![1, 1];
    expected.extend([0xab; 16]);
    expected.extend([2, b'h', b'i']);
    assert_eq!(frame, expected);
}

#[test]
fn ack_v1_fixture_is_stable() {
    let frame = Message::Ack {
        document: doc(1),
        heads: vec![ChangeHash::from([9; 32])],
        applied: 300,
    }
    .encode();
    let mut expected = vec![1, 2];
    expected.extend([1; 16]);
    expected.push(1);
    expected.extend([9; 32]);
    expected.extend([0xac, 0x02]);
    assert_eq!(frame, expected);
}

#[test]
fn rejects_other_versions_clearly() {
    let mut frame = Message::Push {
        document: doc(1),
        data: vec![],
    }
    .encode();
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
    assert_eq!(Message::decode(&[1, 9]), Err(DecodeError::UnknownKind(9)));
    assert_eq!(
        Message::decode(&[1, 1, 0]),
        Err(DecodeError::Truncated("document"))
    );
    // A data length far beyond the frame must not allocate, only fail.
    let mut huge = vec![1, 1];
    huge.extend([0; 16]);
    huge.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    assert_eq!(Message::decode(&huge), Err(DecodeError::Truncated("data")));
    let mut many_heads = vec![1, 2];
    many_heads.extend([0; 16]);
    many_heads.extend([0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert_eq!(
        Message::decode(&many_heads),
        Err(DecodeError::Truncated("heads"))
    );
    let mut trailing = Message::Push {
        document: doc(1),
        data: vec![1],
    }
    .encode();
    trailing.push(0);
    assert_eq!(
        Message::decode(&trailing),
        Err(DecodeError::TrailingBytes(1))
    );
}

fn any_message() -> impl Strategy<Value = Message> {
    let push = (
        any::<[u8; 16]>(),
        prop::collection::vec(any::<u8>(), 0..512),
    )
        .prop_map(|(d, data)| Message::Push {
            document: DocumentId::from_bytes(d),
            data,
        });
    let ack = (
        any::<[u8; 16]>(),
        prop::collection::vec(any::<[u8; 32]>(), 0..8),
        any::<u64>(),
    )
        .prop_map(|(d, heads, applied)| Message::Ack {
            document: DocumentId::from_bytes(d),
            heads: heads.into_iter().map(ChangeHash::from).collect(),
            applied,
        });
    prop_oneof![push, ack]
}

proptest! {
    #[test]
    fn round_trip(message in any_message()) {
        let frame = message.encode();
        prop_assert_eq!(Message::decode(&frame), Ok(message));
    }

    /// Canonical: a frame that decodes re-encodes to the very same bytes.
    #[test]
    fn arbitrary_bytes_never_panic_and_decode_canonically(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
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
        let _ = Message::decode(&frame);
    }
}
