//! What an outbox operation does, and which earlier operations it must wait for.
//!
//! Document changes go to the server in sync requests (`/v1/sync`), in order per document.
//! File operations go one at a time through the file API: an upload waits for earlier
//! operations on the same file, and for the earlier changes of the document it attaches to
//! (the document must exist on the server first); a deletion waits for earlier operations on
//! its file. Document changes never wait for files: a note's text does not queue behind a
//! large attachment (a reader may see the CID before the bytes arrive, and is told so).

use crate::DocumentId;
use crate::content::Cid;

/// A file to upload from this device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUpload {
    /// The file's CID, computed here.
    pub cid: Cid,
    /// File bytes.
    pub size: u64,
    pub name: String,
    pub content_type: String,
    /// A JSON object, as text.
    pub metadata: String,
    /// Attach the file to this document once uploaded (its readers may then read it).
    pub document: Option<DocumentId>,
    /// The file was deleted here before its upload finished: stop, and send nothing more.
    pub cancelled: bool,
}

/// What an operation does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    /// Encoded Automerge changes to `document`, made locally.
    DocumentChanges {
        document: DocumentId,
        changes: Vec<Vec<u8>>,
    },
    /// Upload a file stored on this device (and attach it to a document).
    FileUpload(FileUpload),
    /// Remove this user's reference to a file on the server.
    FileDelete { cid: Cid },
}

impl OpKind {
    /// The document a sync operation changes (`None` for file operations).
    pub fn document(&self) -> Option<DocumentId> {
        match self {
            OpKind::DocumentChanges { document, .. } => Some(*document),
            _ => None,
        }
    }

    /// The file a file operation concerns.
    pub fn file(&self) -> Option<Cid> {
        match self {
            OpKind::FileUpload(upload) => Some(upload.cid),
            OpKind::FileDelete { cid } => Some(*cid),
            OpKind::DocumentChanges { .. } => None,
        }
    }

    /// Whether it travels in sync requests (else through the file API).
    pub fn is_sync(&self) -> bool {
        matches!(self, OpKind::DocumentChanges { .. })
    }

    /// How many document changes it carries (0 for file operations).
    pub fn change_count(&self) -> usize {
        match self {
            OpKind::DocumentChanges { changes, .. } => changes.len(),
            _ => 0,
        }
    }

    /// The document a file operation must wait for (its earlier changes).
    pub(super) fn waits_for_document(&self) -> Option<DocumentId> {
        match self {
            OpKind::FileUpload(upload) => upload.document,
            _ => None,
        }
    }
}
