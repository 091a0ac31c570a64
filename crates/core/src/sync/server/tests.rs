use super::*;
use crate::protocol::{DocRequest, Entry};
use automerge::{AutoCommit, ReadDoc, transaction::Transactable};

fn doc_id() -> DocumentId {
    DocumentId::from_bytes([1; 16])
}

fn op(n: u8) -> OpId {
    OpId::from_bytes([n; 16])
}

fn request(entries: Vec<(OpId, Vec<Vec<u8>>)>, heads: Vec<ChangeHash>) -> SyncRequest {
    SyncRequest {
        request: 1,
        documents: vec![DocRequest {
            document: doc_id(),
            heads,
            entries: entries
                .into_iter()
                .map(|(op, changes)| Entry { op, changes })
                .collect(),
        }],
    }
}

fn edits(n: usize) -> AutoCommit {
    let mut doc = AutoCommit::new();
    for i in 0..n {
        doc.put(automerge::ROOT, format!("k{i}"), i as i64).unwrap();
        doc.commit();
    }
    doc
}

fn change_bytes(doc: &mut AutoCommit) -> Vec<Vec<u8>> {
    doc.get_changes(&[])
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect()
}

#[test]
fn applies_new_changes_once_and_answers_what_the_client_lacks() {
    let mut client = edits(3);
    let heads = from_automerge(&client.get_heads());
    let changes = change_bytes(&mut client);
    let mut server = Automerge::new();
    let work = validate(
        request(vec![(op(1), changes.clone())], heads.clone()),
        &Limits::default(),
    )
    .unwrap();
    let applied = apply(&mut server, &work[0]).unwrap();
    assert_eq!(applied.new_changes.len(), 3);
    assert_eq!(applied.acked, vec![op(1)]);
    let response = respond(&server, &work[0], applied.acked);
    assert_eq!(response.heads, heads);
    assert!(response.data.is_empty(), "the client lacks nothing");

    // Replaying is harmless: nothing new, still acked.
    let again = apply(&mut server, &work[0]).unwrap();
    assert!(again.new_changes.is_empty());
    assert_eq!(again.acked, vec![op(1)]);
}

#[test]
fn a_fresh_client_gets_the_whole_document_and_a_stale_one_the_difference() {
    let mut source = edits(5);
    let mut server = Automerge::load(&source.save()).unwrap();
    let fresh = missing_for(&server, &[]);
    let loaded = Automerge::load(&fresh).unwrap();
    assert_eq!(loaded.get_heads(), server.get_heads());

    let mut stale = source.fork();
    source.put(automerge::ROOT, "late", 1).unwrap();
    source.commit();
    let late: Vec<_> = source.get_changes(&stale.get_heads()).into_iter().collect();
    server.apply_changes(late).unwrap();
    let diff = missing_for(&server, &from_automerge(&stale.get_heads()));
    stale.load_incremental(&diff).unwrap();
    assert_eq!(stale.get_heads(), server.get_heads());
    assert!(stale.get(automerge::ROOT, "late").unwrap().is_some());
}

#[test]
fn changes_with_missing_dependencies_are_kept_and_land_later() {
    let mut client = edits(2);
    let all = change_bytes(&mut client);
    let mut server = Automerge::new();
    // The second change arrives first (its predecessor was lost in transit).
    let second = validate(
        request(vec![(op(2), vec![all[1].clone()])], vec![]),
        &Limits::default(),
    )
    .unwrap();
    let applied = apply(&mut server, &second[0]).unwrap();
    assert_eq!(applied.new_changes.len(), 1, "kept for persistence");
    assert!(
        server.get_heads().is_empty(),
        "queued until its dependency arrives"
    );
    let first = validate(
        request(vec![(op(1), vec![all[0].clone()])], vec![]),
        &Limits::default(),
    )
    .unwrap();
    apply(&mut server, &first[0]).unwrap();
    assert_eq!(server.get_heads(), client.get_heads());
}

#[test]
fn bad_requests_are_refused_whole() {
    let limits = Limits {
        max_documents: 1,
        max_changes: 2,
    };
    let too_many_changes = request(vec![(op(1), vec![vec![1]; 3])], vec![]);
    assert_eq!(
        validate(too_many_changes, &limits).unwrap_err().code(),
        "E_TOO_MANY_CHANGES"
    );
    let mut two_docs = request(vec![], vec![]);
    two_docs.documents.push(two_docs.documents[0].clone());
    assert_eq!(
        validate(two_docs.clone(), &limits).unwrap_err().code(),
        "E_TOO_MANY_DOCUMENTS"
    );
    assert_eq!(
        validate(two_docs, &Limits::default()).unwrap_err().code(),
        "E_DUPLICATE_DOCUMENT"
    );
    let garbage = request(vec![(op(1), vec![b"not a change".to_vec()])], vec![]);
    assert_eq!(
        validate(garbage, &limits).unwrap_err().code(),
        "E_INVALID_CHANGE"
    );
}

#[test]
fn a_client_ahead_of_its_batch_is_not_sent_the_whole_document() {
    let mut client = edits(10);
    let all = change_bytes(&mut client);
    let mut server = Automerge::new();
    // The client sends its first 5 changes but reports heads that include all 10.
    let heads = from_automerge(&client.get_heads());
    let work = validate(
        request(vec![(op(1), all[..5].to_vec())], heads),
        &Limits::default(),
    )
    .unwrap();
    let applied = apply(&mut server, &work[0]).unwrap();
    let response = respond(&server, &work[0], applied.acked);
    assert!(
        response.data.is_empty(),
        "it lacks nothing: got {} bytes",
        response.data.len()
    );
}

#[test]
fn a_large_backlog_goes_out_in_consistent_pieces() {
    let mut source = edits(20);
    let server = Automerge::load(&source.save()).unwrap();
    let mut receiver = AutoCommit::new();
    let mut heads: Vec<ChangeHash> = Vec::new();
    let mut pieces = 0;
    loop {
        // A budget smaller than two changes: one change per piece.
        let missing = missing_within(&server, &heads, 1);
        receiver.load_incremental(&missing.data).unwrap();
        assert_eq!(
            from_automerge(&receiver.get_heads()),
            missing.heads,
            "heads after piece {pieces}"
        );
        heads = missing.heads;
        pieces += 1;
        if missing.complete {
            break;
        }
    }
    assert_eq!(pieces, 20);
    assert_eq!(receiver.get_heads(), source.get_heads());
}
