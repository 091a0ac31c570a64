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
