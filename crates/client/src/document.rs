//! `Document`: one Automerge document with its Cairn id and the heads the server has
//! acknowledged (`synced`). For now a flat map of string keys to string values; richer editing
//! comes with the SDK.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ReadDoc, ScalarValue, Value};
use cairn_core::protocol::{DocRequest, DocResponse, Entry};
use cairn_core::sync::{from_automerge, to_automerge};
use cairn_core::{ChangeHash, DocumentId, OpId};

use crate::ClientError;

/// An Automerge document in memory.
#[derive(Debug)]
pub struct Document {
    id: DocumentId,
    doc: AutoCommit,
    /// The server's heads after the last successful sync (empty: never synced).
    synced: Vec<ChangeHash>,
}

impl Document {
    /// A new, empty document with a fresh random id.
    pub fn new() -> Self {
        let id = DocumentId::from_random_bytes(*uuid::Uuid::new_v4().as_bytes());
        Self::empty(id)
    }

    /// An empty document with a known id (e.g. one to fetch from the server).
    pub fn empty(id: DocumentId) -> Self {
        Self {
            id,
            doc: AutoCommit::new(),
            synced: Vec::new(),
        }
    }

    /// Loads saved Automerge bytes.
    pub(crate) fn load(
        id: DocumentId,
        bytes: &[u8],
        synced: Vec<ChangeHash>,
    ) -> Result<Self, ClientError> {
        let doc = AutoCommit::load(bytes)
            .map_err(|e| ClientError::Storage(format!("document {id} is unreadable: {e}")))?;
        Ok(Self { id, doc, synced })
    }

    pub fn id(&self) -> DocumentId {
        self.id
    }

    /// Sets `key` to the string `value`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ClientError> {
        self.doc
            .put(automerge::ROOT, key, value)
            .map_err(|e| ClientError::InvalidArgument(e.to_string()))
    }

    /// The string at `key`, if there is one.
    pub fn get(&self, key: &str) -> Option<String> {
        match self.doc.get(automerge::ROOT, key).ok()?? {
            (Value::Scalar(s), _) => match s.as_ref() {
                ScalarValue::Str(s) => Some(s.to_string()),
                other => Some(other.to_string()),
            },
            _ => None,
        }
    }

    /// Every top-level key, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.doc.keys(automerge::ROOT).collect()
    }

    /// The document's current heads.
    pub fn heads(&mut self) -> Vec<ChangeHash> {
        from_automerge(&self.doc.get_heads())
    }

    /// The heads the server acknowledged last.
    pub fn synced(&self) -> &[ChangeHash] {
        &self.synced
    }

    /// The whole document as compact Automerge bytes (commits pending edits first).
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// A sync request entry for this document: every change the server has not acknowledged
    /// (as operation `op`), and the current heads.
    pub fn sync_request(&mut self, op: OpId) -> DocRequest {
        let changes: Vec<Vec<u8>> = self
            .doc
            .get_changes(&to_automerge(&self.synced))
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        let entries = if changes.is_empty() {
            Vec::new()
        } else {
            vec![Entry { op, changes }]
        };
        DocRequest {
            document: self.id,
            heads: self.heads(),
            entries,
        }
    }

    /// Applies the server's answer: merges what we lacked, remembers the server's heads.
    pub fn apply_response(&mut self, response: &DocResponse) -> Result<(), ClientError> {
        if !response.data.is_empty() {
            self.doc
                .load_incremental(&response.data)
                .map_err(|e| ClientError::Protocol(format!("bad data from the server: {e}")))?;
        }
        self.synced.clone_from(&response.heads);
        Ok(())
    }
}

impl Default for Document {
    fn default() -> Self {
        Self::new()
    }
}
