//! The server's side of a sync round, without I/O: [`validate`] a request (all of it, before
//! anything is applied), [`apply`] one document's entries to the in-memory document, and
//! answer with [`respond`]. The driver loads documents, persists [`Applied::new_changes`] and
//! commits between `apply` and `respond`, so an ack always follows the commit.

use std::collections::HashSet;

use automerge::{Automerge, Change, ReadDoc};

use super::{from_automerge, to_automerge};
use crate::protocol::{DocResponse, SyncRequest};
use crate::{ChangeHash, DocumentId, OpId};

/// How much one request may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_documents: usize,
    pub max_changes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_documents: 100,
            max_changes: 10_000,
        }
    }
}

/// Why a request is refused as a whole (nothing of it is applied).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the request has {found} documents; at most {max} are allowed")]
    TooManyDocuments { max: usize, found: usize },
    #[error("the request has {found} changes; at most {max} are allowed")]
    TooManyChanges { max: usize, found: usize },
    #[error("document {0} appears twice in the request")]
    DuplicateDocument(DocumentId),
    #[error("operation {op} for document {document} holds an invalid change: {reason}")]
    InvalidChange {
        document: DocumentId,
        op: OpId,
        reason: String,
    },
}

impl RequestError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            RequestError::TooManyDocuments { .. } => "E_TOO_MANY_DOCUMENTS",
            RequestError::TooManyChanges { .. } => "E_TOO_MANY_CHANGES",
            RequestError::DuplicateDocument(_) => "E_DUPLICATE_DOCUMENT",
            RequestError::InvalidChange { .. } => "E_INVALID_CHANGE",
        }
    }
}

/// One document of a validated request: its changes decoded.
#[derive(Debug, Clone)]
pub struct DocWork {
    pub document: DocumentId,
    pub heads: Vec<ChangeHash>,
    pub entries: Vec<(OpId, Vec<Change>)>,
}

impl DocWork {
    /// Whether the client sends changes (so it needs write access).
    pub fn writes(&self) -> bool {
        self.entries.iter().any(|(_, changes)| !changes.is_empty())
    }
}

/// Checks limits and decodes every change, so a bad request is refused before anything is
/// applied.
pub fn validate(request: SyncRequest, limits: &Limits) -> Result<Vec<DocWork>, RequestError> {
    let documents = request.documents.len();
    if documents > limits.max_documents {
        return Err(RequestError::TooManyDocuments {
            max: limits.max_documents,
            found: documents,
        });
    }
    let changes: usize = request
        .documents
        .iter()
        .flat_map(|d| &d.entries)
        .map(|e| e.changes.len())
        .sum();
    if changes > limits.max_changes {
        return Err(RequestError::TooManyChanges {
            max: limits.max_changes,
            found: changes,
        });
    }
    let mut seen = HashSet::new();
    request
        .documents
        .into_iter()
        .map(|d| {
            if !seen.insert(d.document) {
                return Err(RequestError::DuplicateDocument(d.document));
            }
            let entries = d
                .entries
                .into_iter()
                .map(|e| {
                    let changes = e
                        .changes
                        .into_iter()
                        .map(|bytes| {
                            Change::from_bytes(bytes).map_err(|err| RequestError::InvalidChange {
                                document: d.document,
                                op: e.op,
                                reason: err.to_string(),
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok((e.op, changes))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(DocWork {
                document: d.document,
                heads: d.heads,
                entries,
            })
        })
        .collect()
}

/// The outcome of applying one document's entries.
#[derive(Debug, Clone)]
pub struct Applied {
    /// Changes the document did not have, in a valid application order: persist these.
    pub new_changes: Vec<Change>,
    /// Every entry of the request: all of its changes are now in the document (or queued
    /// until their dependencies arrive) and will be committed with `new_changes`.
    pub acked: Vec<OpId>,
}

/// Why changes could not be applied (e.g. an actor reusing a sequence number).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot apply changes to {document}: {reason}")]
pub struct ApplyError {
    pub document: DocumentId,
    pub reason: String,
}

/// Applies `work` to `doc`. Changes already present are skipped; changes whose dependencies
/// are missing are kept (Automerge queues them) and persisted, so an outbox never blocks on an
/// entry that was lost. On error `doc` may be partly changed: the caller must discard it.
pub fn apply(doc: &mut Automerge, work: &DocWork) -> Result<Applied, ApplyError> {
    let all: Vec<&Change> = work.entries.iter().flat_map(|(_, c)| c).collect();
    let hashes: Vec<automerge::ChangeHash> = all.iter().map(|c| c.hash()).collect();
    let unknown: HashSet<automerge::ChangeHash> =
        doc.get_missing_deps(&hashes).into_iter().collect();
    let mut taken = HashSet::new();
    let new_changes: Vec<Change> = all
        .into_iter()
        .filter(|c| unknown.contains(&c.hash()) && taken.insert(c.hash()))
        .cloned()
        .collect();
    doc.apply_changes(new_changes.clone())
        .map_err(|e| ApplyError {
            document: work.document,
            reason: e.to_string(),
        })?;
    Ok(Applied {
        new_changes,
        acked: work.entries.iter().map(|(op, _)| *op).collect(),
    })
}

/// What someone with `their_heads` lacks of `doc`, for `load_incremental`: nothing, the
/// changes they lack, or the whole saved document when they know none of its changes.
pub fn missing_for(doc: &Automerge, their_heads: &[ChangeHash]) -> Vec<u8> {
    missing_within(doc, their_heads, usize::MAX).data
}

/// Part of what someone lacks, at most about `budget` bytes (at least one change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// Bytes for `load_incremental`.
    pub data: Vec<u8>,
    /// Their heads once `data` is applied.
    pub heads: Vec<ChangeHash>,
    /// Whether `data` is everything they lacked.
    pub complete: bool,
}

/// Like [`missing_for`], but cut to about `budget` bytes so a large backlog can go out in
/// several messages. Changes come in causal order, so every cut leaves the receiver with a
/// consistent document; call again with the returned heads for the rest.
pub fn missing_within(doc: &Automerge, their_heads: &[ChangeHash], budget: usize) -> Missing {
    let all_heads = from_automerge(&doc.get_heads());
    // The common case, answered without walking the history: they have all our heads.
    if all_heads.iter().all(|h| their_heads.contains(h)) {
        return Missing {
            data: Vec::new(),
            heads: all_heads,
            complete: true,
        };
    }
    let theirs = to_automerge(their_heads);
    let unknown: HashSet<_> = doc.get_missing_deps(&theirs).into_iter().collect();
    let known: Vec<_> = theirs
        .into_iter()
        .filter(|h| !unknown.contains(h))
        .collect();
    if known.is_empty() {
        if all_heads.is_empty() {
            return Missing {
                data: Vec::new(),
                heads: Vec::new(),
                complete: true,
            };
        }
        let saved = doc.save_with_options(automerge::SaveOptions {
            retain_orphans: true,
            ..Default::default()
        });
        if saved.len() <= budget {
            return Missing {
                data: saved,
                heads: all_heads,
                complete: true,
            };
        }
    }
    let changes = doc.get_changes(&known);
    let mut data = Vec::new();
    let mut heads: HashSet<automerge::ChangeHash> = known.into_iter().collect();
    let mut taken = 0;
    for change in &changes {
        if taken > 0 && data.len() + change.raw_bytes().len() > budget {
            break;
        }
        data.extend_from_slice(change.raw_bytes());
        change.deps().iter().for_each(|d| {
            heads.remove(d);
        });
        heads.insert(change.hash());
        taken += 1;
    }
    let complete = taken == changes.len();
    let heads = if complete {
        all_heads
    } else {
        let mut heads: Vec<_> = heads.into_iter().collect();
        heads.sort_unstable();
        from_automerge(&heads)
    };
    Missing {
        data,
        heads,
        complete,
    }
}

/// The answer for one document, once its changes are committed.
///
/// What the client has is its heads plus the changes it just sent: a client may report heads
/// the server does not know yet (local changes beyond this request's batch), and without the
/// sent changes the server could only answer with the whole document.
pub fn respond(doc: &Automerge, work: &DocWork, acked: Vec<OpId>) -> DocResponse {
    let mut theirs = work.heads.clone();
    theirs.extend(
        work.entries
            .iter()
            .flat_map(|(_, changes)| changes.iter().map(|c| ChangeHash::from(c.hash()))),
    );
    DocResponse {
        document: work.document,
        acked,
        heads: from_automerge(&doc.get_heads()),
        data: missing_for(doc, &theirs),
    }
}

#[cfg(test)]
mod tests;
