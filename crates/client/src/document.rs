//! `Document`: one Automerge document with its Cairn id. For now a flat map of string keys
//! to string values; richer editing comes with the SDK.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ReadDoc, ScalarValue, Value};
use cairn_core::{ChangeHash, DocumentId};

use crate::ClientError;

/// An Automerge document in memory.
#[derive(Debug)]
pub struct Document {
    id: DocumentId,
    doc: AutoCommit,
}

impl Document {
    /// A new, empty document with a fresh random id.
    pub fn new() -> Self {
        let id = DocumentId::from_random_bytes(*uuid::Uuid::new_v4().as_bytes());
        Self::from_parts(id, AutoCommit::new())
    }

    pub(crate) fn from_parts(id: DocumentId, doc: AutoCommit) -> Self {
        Self { id, doc }
    }

    /// Loads saved Automerge bytes.
    pub(crate) fn load(id: DocumentId, bytes: &[u8]) -> Result<Self, ClientError> {
        let doc = AutoCommit::load(bytes)
            .map_err(|e| ClientError::Storage(format!("document {id} is unreadable: {e}")))?;
        Ok(Self::from_parts(id, doc))
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
        self.doc
            .get_heads()
            .into_iter()
            .map(|h| ChangeHash::from(h.0))
            .collect()
    }

    /// The whole document as compact Automerge bytes (commits pending edits first).
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// Merges saved Automerge bytes (from the server or another replica) into this document.
    pub fn merge_bytes(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let mut other = AutoCommit::load(bytes)
            .map_err(|e| ClientError::Protocol(format!("not an Automerge document: {e}")))?;
        self.doc
            .merge(&mut other)
            .map(|_| ())
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }
}

impl Default for Document {
    fn default() -> Self {
        Self::new()
    }
}
