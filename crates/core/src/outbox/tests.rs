use super::*;

fn op(n: u8) -> OpId {
    OpId::from_bytes([n; 16])
}

fn doc(n: u8) -> DocumentId {
    DocumentId::from_bytes([n; 16])
}

fn changes(document: DocumentId, n: usize) -> OpKind {
    OpKind::DocumentChanges {
        document,
        changes: vec![vec![0]; n],
    }
}

const ALL: BatchLimits = BatchLimits {
    max_entries: 100,
    max_changes: 100,
};

#[test]
fn sends_in_order_and_removes_only_on_ack() {
    let mut outbox = Outbox::new();
    for i in 1..=3 {
        outbox.enqueue(op(i), changes(doc(1), 1), 0);
    }
    assert_eq!(outbox.take_due(0, ALL), vec![op(1), op(2), op(3)]);
    assert!(
        outbox.take_due(0, ALL).is_empty(),
        "in flight: not sent twice"
    );
    let acked = outbox.acked(&[op(1), op(2)]);
    assert_eq!(acked.len(), 2);
    assert!(acked.iter().all(|e| e.status == OpStatus::Acked));
    assert_eq!(outbox.iter().map(|e| e.id).collect::<Vec<_>>(), vec![op(3)]);
    assert_eq!(outbox.undelivered(), 1);
}

#[test]
fn a_waiting_entry_blocks_later_entries_of_its_document_only() {
    let policy = RetryPolicy::default();
    let mut outbox = Outbox::new();
    outbox.enqueue(op(1), changes(doc(1), 1), 0);
    outbox.take_due(0, ALL);
    outbox.failed(&[op(1)], Failure::Retryable, "E_OFFLINE", 0, &policy, 0);
    outbox.enqueue(op(2), changes(doc(1), 1), 0);
    outbox.enqueue(op(3), changes(doc(2), 1), 0);
    // op 1 waits for its retry time, so op 2 (same document) must wait too; op 3 may go.
    assert_eq!(outbox.take_due(1, ALL), vec![op(3)]);
    let due = outbox.next_due().unwrap();
    assert!(due >= 500, "backoff applies: {due}");
    assert_eq!(outbox.take_due(due, ALL), vec![op(1), op(2)]);
}

#[test]
fn limits_cut_batches_without_reordering() {
    let mut outbox = Outbox::new();
    outbox.enqueue(op(1), changes(doc(1), 3), 0);
    outbox.enqueue(op(2), changes(doc(1), 3), 0);
    outbox.enqueue(op(3), changes(doc(2), 1), 0);
    let limits = BatchLimits {
        max_entries: 10,
        max_changes: 4,
    };
    // op 2 does not fit and blocks doc 1; op 3 (another document) still fits.
    assert_eq!(outbox.take_due(0, limits), vec![op(1), op(3)]);
    // A single entry larger than the limit is still sent (alone), or it could never go.
    let mut big = Outbox::new();
    big.enqueue(op(9), changes(doc(1), 50), 0);
    assert_eq!(big.take_due(0, limits), vec![op(9)]);
}

#[test]
fn permanent_failures_stop_retrying_and_do_not_block() {
    let policy = RetryPolicy::default();
    let mut outbox = Outbox::new();
    outbox.enqueue(op(1), changes(doc(1), 1), 0);
    outbox.enqueue(op(2), changes(doc(1), 1), 0);
    outbox.take_due(
        0,
        BatchLimits {
            max_entries: 1,
            max_changes: 10,
        },
    );
    let updated = outbox.failed(&[op(1)], Failure::Permanent, "E_FORBIDDEN", 0, &policy, 0);
    assert_eq!(
        updated[0].status,
        OpStatus::Failed {
            code: "E_FORBIDDEN".into()
        }
    );
    assert_eq!(outbox.take_due(0, ALL), vec![op(2)]);
    assert_eq!(outbox.undelivered(), 1);
    assert_eq!(
        outbox.len(),
        2,
        "failed entries stay visible until the app clears them"
    );
}

#[test]
fn restore_puts_in_flight_entries_back_to_pending() {
    let mut outbox = Outbox::new();
    outbox.enqueue(op(1), changes(doc(1), 1), 0);
    outbox.enqueue(op(2), changes(doc(1), 1), 0);
    outbox.take_due(0, ALL);
    let persisted: Vec<_> = outbox.iter().cloned().collect();
    let mut restored = Outbox::restore(persisted);
    assert!(restored.iter().all(|e| e.status == OpStatus::Pending));
    assert_eq!(restored.take_due(0, ALL), vec![op(1), op(2)]);
    let e = restored.enqueue(op(3), changes(doc(1), 1), 0);
    assert_eq!(e.seq, 2, "sequence continues after restore");
}

fn cid(n: u8) -> crate::content::Cid {
    use crate::content::{Cid, CidVersion, Codec};
    Cid::of_block(CidVersion::V1, Codec::Raw, &[n])
}

fn upload(n: u8, document: Option<DocumentId>) -> OpKind {
    OpKind::FileUpload(FileUpload {
        cid: cid(n),
        size: 1,
        name: format!("file {n}"),
        content_type: "text/plain".into(),
        metadata: "{}".into(),
        document,
        cancelled: false,
    })
}

#[test]
fn file_operations_are_not_sync_entries_and_do_not_block_changes() {
    let mut outbox = Outbox::new();
    outbox.enqueue(op(1), upload(1, Some(doc(1))), 0);
    outbox.enqueue(op(2), changes(doc(1), 1), 0);
    assert_eq!(
        outbox.take_due(0, ALL),
        vec![op(2)],
        "the change overtakes the upload"
    );
    let request =
        crate::sync::client::build_request(1, &outbox, &[op(1), op(2)], &[], |_| Vec::new());
    assert_eq!(request.documents.len(), 1);
    assert_eq!(
        request.documents[0].entries.len(),
        1,
        "no file op in a sync request"
    );
    assert_eq!(outbox.take_file_op(0), Some(op(1)));
    assert_eq!(outbox.undelivered_files(), 1);
}

#[test]
fn an_upload_waits_for_the_earlier_changes_of_its_document() {
    let policy = RetryPolicy::default();
    let mut outbox = Outbox::new();
    outbox.enqueue(op(1), changes(doc(1), 1), 0);
    outbox.enqueue(op(2), upload(2, Some(doc(1))), 0);
    outbox.enqueue(op(3), upload(3, Some(doc(2))), 0);
    assert_eq!(
        outbox.take_file_op(0),
        Some(op(3)),
        "doc 2 has nothing earlier"
    );
    assert_eq!(outbox.take_file_op(0), None, "op 2 waits for op 1");
    assert_eq!(outbox.next_file_due(), None);
    assert_eq!(outbox.take_due(0, ALL), vec![op(1)]);
    outbox.failed(&[op(1)], Failure::Retryable, "E_OFFLINE", 0, &policy, 0);
    assert_eq!(outbox.take_file_op(10_000), None, "still undelivered");
    outbox.acked(&[op(1)]);
    assert_eq!(outbox.next_file_due(), Some(0));
    assert_eq!(outbox.take_file_op(0), Some(op(2)));
}

#[test]
fn operations_on_one_file_go_in_order_and_backoff_applies() {
    let policy = RetryPolicy::default();
    let mut outbox = Outbox::new();
    outbox.enqueue(op(1), upload(1, None), 0);
    outbox.enqueue(op(2), OpKind::FileDelete { cid: cid(1) }, 0);
    outbox.enqueue(op(3), upload(3, None), 0);
    assert_eq!(outbox.take_file_op(0), Some(op(1)));
    assert_eq!(outbox.take_file_op(0), Some(op(3)), "another file may go");
    assert_eq!(
        outbox.take_file_op(0),
        None,
        "the delete waits for the upload"
    );
    outbox.failed(&[op(1)], Failure::Retryable, "E_OFFLINE", 0, &policy, 0);
    let due = outbox.next_file_due().unwrap();
    assert!(due >= 500, "backoff: {due}");
    assert_eq!(outbox.take_file_op(due - 1), None);
    assert_eq!(outbox.take_file_op(due), Some(op(1)));
    outbox.acked(&[op(1)]);
    assert_eq!(outbox.take_file_op(due), Some(op(2)));
    // A permanently failed operation blocks nothing.
    let mut outbox = Outbox::new();
    outbox.enqueue(op(1), upload(1, None), 0);
    outbox.enqueue(op(2), OpKind::FileDelete { cid: cid(1) }, 0);
    outbox.take_file_op(0);
    outbox.failed(
        &[op(1)],
        Failure::Permanent,
        "E_FILE_TOO_LARGE",
        0,
        &policy,
        0,
    );
    assert_eq!(outbox.take_file_op(0), Some(op(2)));
}

#[test]
fn an_upload_can_be_cancelled_in_place() {
    let mut outbox = Outbox::new();
    outbox.enqueue(op(1), upload(1, None), 0);
    let OpKind::FileUpload(mut u) = upload(1, None) else {
        unreachable!()
    };
    u.cancelled = true;
    let entry = outbox.set_kind(&op(1), OpKind::FileUpload(u)).unwrap();
    assert_eq!(entry.seq, 0);
    assert!(matches!(&outbox.get(&op(1)).unwrap().kind, OpKind::FileUpload(f) if f.cancelled));
    assert!(outbox.set_kind(&op(9), changes(doc(1), 1)).is_none());
}
