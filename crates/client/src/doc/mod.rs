//! `Document`: one Automerge document in memory, with its Cairn id and what the engine knows
//! about it: the last stored change row it has read, and the heads the server acknowledged.

mod ops;
mod value;

use automerge::transaction::CommitOptions;
use automerge::{AutoCommit, ReadDoc};
use cairn_core::sync::from_automerge;
use cairn_core::{ChangeHash, DocumentId};
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::JsValue;

pub use self::ops::{Op, Seg, parse as parse_ops};
use crate::ClientError;

/// Rows since the snapshot that make compaction due whatever their size.
pub const COMPACT_ROWS: usize = 1_000;
/// Bytes of rows since the snapshot that make compaction due while the snapshot is smaller.
pub const COMPACT_MIN_BYTES: usize = 64 << 10;

/// A change just made locally: its hash and encoded bytes.
#[derive(Debug, Clone)]
pub struct LocalChange {
    pub hash: ChangeHash,
    pub bytes: Vec<u8>,
}

/// An Automerge document in memory.
#[derive(Debug)]
pub struct Document {
    id: DocumentId,
    doc: AutoCommit,
    /// The key of the newest stored change row applied (rows are read in key order).
    pub last_row: f64,
    /// Change rows stored since the snapshot, and their bytes (how much compaction would save).
    rows_since_snapshot: usize,
    bytes_since_snapshot: usize,
    /// The size of the stored snapshot.
    snapshot_bytes: usize,
    /// The server's heads after the last successful sync.
    pub server_heads: Vec<ChangeHash>,
}

impl Document {
    /// A new, empty document.
    pub fn new(id: DocumentId) -> Self {
        Self {
            id,
            doc: AutoCommit::new(),
            last_row: 0.0,
            rows_since_snapshot: 0,
            bytes_since_snapshot: 0,
            snapshot_bytes: 0,
            server_heads: Vec::new(),
        }
    }

    /// A stored document: its snapshot (if any) and the change rows after it.
    pub fn load(
        id: DocumentId,
        snapshot: Option<&[u8]>,
        rows: Vec<(f64, Vec<u8>)>,
    ) -> Result<Self, ClientError> {
        let mut document = Self::new(id);
        if let Some(bytes) = snapshot.filter(|b| !b.is_empty()) {
            document.doc = AutoCommit::load(bytes).map_err(|e| {
                ClientError::Storage(format!("the snapshot of {id} is unreadable: {e}"))
            })?;
            document.snapshot_bytes = bytes.len();
        }
        document.apply_rows(rows)?;
        Ok(document)
    }

    pub fn id(&self) -> DocumentId {
        self.id
    }

    /// Applies stored change rows read after `last_row` (duplicates are ignored), all in one
    /// Automerge load: rows are change chunks, and their concatenation is one batch to apply
    /// (a load per row costs a pass over the document each).
    pub fn apply_rows(&mut self, rows: Vec<(f64, Vec<u8>)>) -> Result<bool, ClientError> {
        if rows.is_empty() {
            return Ok(false);
        }
        let before = self.doc.get_heads();
        let bytes: usize = rows.iter().map(|(_, b)| b.len()).sum();
        let mut all = Vec::with_capacity(bytes);
        for (key, row) in &rows {
            all.extend_from_slice(row);
            self.last_row = self.last_row.max(*key);
        }
        self.doc.load_incremental(&all).map_err(|e| {
            ClientError::Storage(format!("a stored change of {} is unreadable: {e}", self.id))
        })?;
        self.stored(rows.len(), bytes);
        Ok(self.doc.get_heads() != before)
    }

    /// Counts rows stored (or read) since the snapshot.
    pub fn stored(&mut self, rows: usize, bytes: usize) {
        self.rows_since_snapshot += rows;
        self.bytes_since_snapshot += bytes;
    }

    /// Whether the rows since the snapshot should be folded into it: once they weigh as much
    /// as the snapshot (at least [`COMPACT_MIN_BYTES`]), so a document that grows is saved
    /// about once per doubling and the work stays proportional to what is written; or once
    /// there are [`COMPACT_ROWS`] of them, so loading reads a bounded number of rows.
    pub fn compaction_due(&self) -> bool {
        self.rows_since_snapshot >= COMPACT_ROWS
            || (self.rows_since_snapshot > 1
                && self.bytes_since_snapshot >= self.snapshot_bytes.max(COMPACT_MIN_BYTES))
    }

    /// The snapshot that replaces the stored one and its rows.
    pub fn compacted(&mut self) -> Vec<u8> {
        let snapshot = self.save();
        self.compacted_to(snapshot.len());
        snapshot
    }

    /// The stored rows were folded into a snapshot of `bytes`.
    pub fn compacted_to(&mut self, bytes: usize) {
        self.rows_since_snapshot = 0;
        self.bytes_since_snapshot = 0;
        self.snapshot_bytes = bytes;
    }

    /// Merges Automerge bytes (changes or a saved document); returns whether anything changed.
    pub fn absorb(&mut self, data: &[u8]) -> Result<bool, ClientError> {
        if data.is_empty() {
            return Ok(false);
        }
        let before = self.doc.get_heads();
        self.doc.load_incremental(data).map_err(|e| {
            ClientError::Protocol(format!("unreadable changes for {}: {e}", self.id))
        })?;
        Ok(self.doc.get_heads() != before)
    }

    /// Applies `ops` as one change made at `time_ms`. All or nothing: on error the document
    /// is as before. `None` when the operations changed nothing.
    pub fn change(&mut self, ops: &[Op], time_ms: i64) -> Result<Option<LocalChange>, ClientError> {
        for op in ops {
            if let Err(e) = ops::apply(&mut self.doc, op) {
                self.doc.rollback();
                return Err(e);
            }
        }
        let Some(hash) = self
            .doc
            .commit_with(CommitOptions::default().with_time(time_ms))
        else {
            return Ok(None);
        };
        let change = self
            .doc
            .get_change_by_hash(&hash)
            .ok_or_else(|| ClientError::Storage("a change just made is missing".into()))?;
        Ok(Some(LocalChange {
            hash: hash.into(),
            bytes: change.raw_bytes().to_vec(),
        }))
    }

    /// The whole document as plain JavaScript.
    pub fn value(&self) -> JsValue {
        match self.doc.hydrate(automerge::ROOT, None) {
            Ok(v) => value::to_js(&v),
            Err(_) => Object::new().into(),
        }
    }

    pub fn heads(&mut self) -> Vec<ChangeHash> {
        from_automerge(&self.doc.get_heads())
    }

    /// Encoded changes not among the ancestors of `heads` (all of them for `[]`).
    pub fn changes_after(&mut self, heads: &[ChangeHash]) -> Vec<Vec<u8>> {
        let heads = cairn_core::sync::to_automerge(heads);
        self.doc
            .get_changes(&heads)
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect()
    }

    /// The compact saved form (the snapshot).
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// Every change, oldest first: `{hash, actor, seq, time, message, deps}`.
    pub fn history(&mut self) -> JsValue {
        let out = Array::new();
        for change in self.doc.get_changes(&[]) {
            let entry = Object::new();
            let set = |k: &str, v: JsValue| {
                let _ = Reflect::set(&entry, &JsValue::from_str(k), &v);
            };
            set(
                "hash",
                JsValue::from_str(&ChangeHash::from(change.hash()).to_string()),
            );
            set(
                "actor",
                JsValue::from_str(&change.actor_id().to_hex_string()),
            );
            set("seq", JsValue::from_f64(change.seq() as f64));
            set("time", JsValue::from_f64(change.timestamp() as f64));
            set(
                "message",
                change.message().map_or(JsValue::NULL, JsValue::from_str),
            );
            let deps: Array = change
                .deps()
                .iter()
                .map(|d| JsValue::from_str(&ChangeHash::from(*d).to_string()))
                .collect();
            set("deps", deps.into());
            out.push(&entry);
        }
        out.into()
    }
}
