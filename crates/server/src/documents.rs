//! Document operations on top of a [`DocumentStore`]: merging pushed Automerge bytes into a
//! document and reading a document back. This is where Automerge meets storage; it knows
//! nothing about HTTP.

use automerge::{Automerge, Change};
use cairn_core::{ChangeHash, DocumentId};

use crate::store::{DocumentStore, StoreError, StoredChange};

/// The outcome of a merge, after it was committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The document's heads after the merge.
    pub heads: Vec<ChangeHash>,
    /// How many changes were new to the server.
    pub applied: u64,
}

/// Why a document operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The pushed bytes are not a valid Automerge document or change run.
    #[error("not valid Automerge data: {0}")]
    InvalidAutomerge(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Loads `document` from its stored changes; `None` when nothing is stored.
pub async fn load(
    store: &dyn DocumentStore,
    document: &DocumentId,
) -> Result<Option<Automerge>, StoreError> {
    let stored = store.changes(document).await?;
    if stored.is_empty() {
        return Ok(None);
    }
    let changes = stored
        .into_iter()
        .map(Change::from_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError::Corrupt(format!("{document}: undecodable change: {e}")))?;
    let mut doc = Automerge::new();
    doc.apply_changes(changes)
        .map_err(|e| StoreError::Corrupt(format!("{document}: {e}")))?;
    Ok(Some(doc))
}

/// Merges the Automerge bytes `data` into `document` and commits the changes that were new.
/// Replaying the same bytes is harmless: nothing new, `applied == 0`.
pub async fn merge(
    store: &dyn DocumentStore,
    document: &DocumentId,
    data: &[u8],
) -> Result<Merged, DocumentError> {
    let incoming =
        Automerge::load(data).map_err(|e| DocumentError::InvalidAutomerge(e.to_string()))?;
    let mut doc = load(store, document).await?.unwrap_or_default();
    let mut new = doc.get_changes_added(&incoming);
    doc.apply_changes(new.clone())
        .map_err(|e| DocumentError::InvalidAutomerge(e.to_string()))?;
    let rows: Vec<StoredChange> = new.iter_mut().map(stored_change).collect();
    // Committed before we answer: an acknowledged change is never lost.
    let applied = store.insert_changes(document, &rows).await?;
    Ok(Merged {
        heads: doc
            .get_heads()
            .into_iter()
            .map(|h| ChangeHash::from(h.0))
            .collect(),
        applied,
    })
}

fn stored_change(change: &mut Change) -> StoredChange {
    StoredChange {
        hash: ChangeHash::from(change.hash().0),
        actor: change.actor_id().to_bytes().to_vec(),
        seq: change.seq(),
        deps: change
            .deps()
            .iter()
            .map(|h| ChangeHash::from(h.0))
            .collect(),
        bytes: change.bytes().into_owned(),
    }
}
