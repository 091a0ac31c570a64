//! The client's side of a sync round, without I/O: build a request from the outbox, and
//! classify failures for the retry policy.

use crate::outbox::{OpKind, Outbox};
use crate::protocol::{DocRequest, Entry, SyncRequest};
use crate::retry::Failure;
use crate::{ChangeHash, DocumentId, OpId};

/// Builds a request carrying the outbox entries `taken` (from [`Outbox::take_due`]), grouped
/// by document in outbox order, plus `pull` documents the client only wants news of. Each
/// document carries the client's current heads from `heads_of`.
pub fn build_request(
    request: u64,
    outbox: &Outbox,
    taken: &[OpId],
    pull: &[DocumentId],
    mut heads_of: impl FnMut(&DocumentId) -> Vec<ChangeHash>,
) -> SyncRequest {
    let mut documents: Vec<DocRequest> = Vec::new();
    let mut doc_request = |document: DocumentId, documents: &mut Vec<DocRequest>| -> usize {
        match documents.iter().position(|d| d.document == document) {
            Some(i) => i,
            None => {
                documents.push(DocRequest {
                    document,
                    heads: heads_of(&document),
                    entries: Vec::new(),
                });
                documents.len() - 1
            }
        }
    };
    for entry in taken.iter().filter_map(|id| outbox.get(id)) {
        let OpKind::DocumentChanges { document, changes } = &entry.kind else {
            continue; // file operations go through the file API
        };
        let i = doc_request(*document, &mut documents);
        documents[i].entries.push(Entry {
            op: entry.id,
            changes: changes.clone(),
        });
    }
    for document in pull {
        doc_request(*document, &mut documents);
    }
    SyncRequest { request, documents }
}

/// How an HTTP status of a failed sync request affects its entries.
pub fn failure_for_status(status: u16) -> Failure {
    match status {
        408 | 425 | 429 | 500..=599 => Failure::Retryable,
        _ => Failure::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::BatchLimits;

    #[test]
    fn groups_entries_by_document_in_order() {
        let (a, b) = (
            DocumentId::from_bytes([1; 16]),
            DocumentId::from_bytes([2; 16]),
        );
        let mut outbox = Outbox::new();
        for (n, doc) in [(1u8, a), (2, b), (3, a)] {
            let kind = OpKind::DocumentChanges {
                document: doc,
                changes: vec![vec![n]],
            };
            outbox.enqueue(OpId::from_bytes([n; 16]), kind, 0);
        }
        let taken = outbox.take_due(0, BatchLimits::default());
        let c = DocumentId::from_bytes([3; 16]);
        let request = build_request(7, &outbox, &taken, &[c, a], |d| {
            vec![ChangeHash::from([d.as_bytes()[0]; 32])]
        });
        assert_eq!(request.request, 7);
        let docs: Vec<_> = request.documents.iter().map(|d| d.document).collect();
        assert_eq!(docs, vec![a, b, c]);
        let ops: Vec<_> = request.documents[0]
            .entries
            .iter()
            .map(|e| e.op.as_bytes()[0])
            .collect();
        assert_eq!(ops, vec![1, 3]);
        assert!(request.documents[2].entries.is_empty());
        assert_eq!(request.documents[1].heads, vec![ChangeHash::from([2; 32])]);
    }

    #[test]
    fn classifies_statuses() {
        assert_eq!(failure_for_status(503), Failure::Retryable);
        assert_eq!(failure_for_status(429), Failure::Retryable);
        assert_eq!(failure_for_status(403), Failure::Permanent);
        assert_eq!(failure_for_status(400), Failure::Permanent);
    }
}
