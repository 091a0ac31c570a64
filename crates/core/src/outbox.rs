//! The outbox: the ordered log of local operations waiting for the server's acknowledgement.
//!
//! Each entry has a stable [`OpId`], a kind (Automerge changes to one document, or a file
//! upload or deletion: see [`kind`]), an attempt count, the time of its next attempt and a
//! status. An entry leaves the outbox only when the server acknowledges it. Entries of one
//! document are sent strictly in order: a later entry never overtakes an earlier one that is
//! waiting; file operations keep their own order rules ([`kind`]).
//! This type only decides; the driver persists every entry it returns (the browser writes the
//! entry in the same IndexedDB transaction as the change it carries).

mod kind;

use std::collections::{BTreeMap, HashMap, HashSet};

pub use self::kind::{FileUpload, OpKind};
use crate::content::Cid;
use crate::retry::{Decision, Failure, Millis, RetryPolicy};
use crate::{DocumentId, OpId};

/// Where an entry stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpStatus {
    /// Waiting for its next attempt.
    Pending,
    /// Sent; no answer yet.
    InFlight,
    /// The server committed it (the entry is removed from the outbox at that moment).
    Acked,
    /// The server rejected it for good, with this error code.
    Failed { code: String },
}

/// One queued operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: OpId,
    /// Position in the outbox (increasing; the order operations were made in).
    pub seq: u64,
    pub kind: OpKind,
    /// How many times it has been sent.
    pub attempts: u32,
    /// Not sent again before this time.
    pub next_attempt_at: Millis,
    pub status: OpStatus,
    pub created_at: Millis,
    /// The code of the last failure, if any.
    pub last_error: Option<String>,
}

impl OutboxEntry {
    /// Pending or in flight: not yet acknowledged, and not failed for good.
    pub fn is_undelivered(&self) -> bool {
        matches!(self.status, OpStatus::Pending | OpStatus::InFlight)
    }
}

/// How much one request may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_entries: usize,
    pub max_changes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_entries: 256,
            max_changes: 1_000,
        }
    }
}

/// The outbox.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    entries: BTreeMap<u64, OutboxEntry>,
    seq_of: HashMap<OpId, u64>,
    next_seq: u64,
}

impl Outbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the outbox from persisted entries, as after a reload or a crash. Entries that
    /// were in flight go back to pending: whether or not the request landed, sending it again
    /// is harmless (the server applies changes idempotently).
    pub fn restore(entries: impl IntoIterator<Item = OutboxEntry>) -> Self {
        Self::exactly(entries.into_iter().map(|mut entry| {
            if entry.status == OpStatus::InFlight {
                entry.status = OpStatus::Pending;
            }
            entry
        }))
    }

    /// Rebuilds the outbox with the entries' statuses as they are, in-flight ones included
    /// (for a process that knows which of them it has in flight).
    pub fn exactly(entries: impl IntoIterator<Item = OutboxEntry>) -> Self {
        let mut outbox = Self::new();
        for entry in entries {
            outbox.next_seq = outbox.next_seq.max(entry.seq + 1);
            outbox.seq_of.insert(entry.id, entry.seq);
            outbox.entries.insert(entry.seq, entry);
        }
        outbox
    }

    /// Queues a new operation, due at once. Returns the entry for the driver to persist.
    pub fn enqueue(&mut self, id: OpId, kind: OpKind, now: Millis) -> OutboxEntry {
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = OutboxEntry {
            id,
            seq,
            kind,
            attempts: 0,
            next_attempt_at: now,
            status: OpStatus::Pending,
            created_at: now,
            last_error: None,
        };
        self.seq_of.insert(id, seq);
        self.entries.insert(seq, entry.clone());
        entry
    }

    pub fn get(&self, id: &OpId) -> Option<&OutboxEntry> {
        self.seq_of.get(id).and_then(|seq| self.entries.get(seq))
    }

    /// Every entry, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &OutboxEntry> {
        self.entries.values()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries still to be delivered (pending or in flight; not failed).
    pub fn undelivered(&self) -> usize {
        self.entries.values().filter(|e| e.is_undelivered()).count()
    }

    /// Picks the document changes to send now, oldest first within `limits`, and marks them
    /// in flight. A document's entries are taken only up to its first entry that cannot go
    /// now (not due, already in flight, or over the limits), so no entry overtakes an earlier
    /// one. File operations are not taken here (see [`take_file_op`](Self::take_file_op)).
    pub fn take_due(&mut self, now: Millis, limits: BatchLimits) -> Vec<OpId> {
        let mut blocked: HashSet<DocumentId> = HashSet::new();
        let (mut taken, mut changes) = (Vec::new(), 0usize);
        for entry in self.entries.values_mut() {
            let Some(document) = entry.kind.document() else {
                continue;
            };
            if blocked.contains(&document) {
                continue;
            }
            let fits = taken.len() < limits.max_entries
                && (taken.is_empty() || changes + entry.kind.change_count() <= limits.max_changes);
            match entry.status {
                OpStatus::Pending if entry.next_attempt_at <= now && fits => {
                    entry.status = OpStatus::InFlight;
                    entry.attempts += 1;
                    changes += entry.kind.change_count();
                    taken.push(entry.id);
                }
                OpStatus::Failed { .. } | OpStatus::Acked => {}
                _ => {
                    blocked.insert(document);
                }
            }
        }
        taken
    }

    /// The server committed these operations: they leave the outbox. Returns them, marked
    /// acked, so the driver can delete them from storage.
    pub fn acked(&mut self, ids: &[OpId]) -> Vec<OutboxEntry> {
        ids.iter()
            .filter_map(|id| self.seq_of.remove(id))
            .filter_map(|seq| self.entries.remove(&seq))
            .map(|mut e| {
                e.status = OpStatus::Acked;
                e
            })
            .collect()
    }

    /// These in-flight operations failed with `code`. Each is scheduled again by `policy`, or
    /// fails for good. Returns the updated entries for the driver to persist.
    pub fn failed(
        &mut self,
        ids: &[OpId],
        failure: Failure,
        code: &str,
        now: Millis,
        policy: &RetryPolicy,
        random: u64,
    ) -> Vec<OutboxEntry> {
        let mut updated = Vec::new();
        for id in ids {
            let Some(entry) = self.seq_of.get(id).and_then(|s| self.entries.get_mut(s)) else {
                continue;
            };
            if entry.status != OpStatus::InFlight {
                continue;
            }
            entry.last_error = Some(code.to_owned());
            match policy.decide(entry.attempts, failure, now, random) {
                Decision::RetryAt(at) => {
                    entry.status = OpStatus::Pending;
                    entry.next_attempt_at = at;
                }
                Decision::GiveUp => {
                    entry.status = OpStatus::Failed {
                        code: code.to_owned(),
                    };
                }
            }
            updated.push(entry.clone());
        }
        updated
    }

    /// Every in-flight operation, e.g. to fail them all when a connection drops.
    pub fn in_flight(&self) -> Vec<OpId> {
        self.entries
            .values()
            .filter(|e| e.status == OpStatus::InFlight)
            .map(|e| e.id)
            .collect()
    }

    /// The earliest time a document change can be sent (the first waiting entry of each
    /// document decides for that document), if any.
    pub fn next_due(&self) -> Option<Millis> {
        let mut seen: HashSet<DocumentId> = HashSet::new();
        self.entries
            .values()
            .filter(|e| e.is_undelivered())
            .filter_map(|e| Some((e, e.kind.document()?)))
            .filter(|(_, document)| seen.insert(*document))
            .filter(|(e, _)| e.status == OpStatus::Pending)
            .map(|(e, _)| e.next_attempt_at)
            .min()
    }

    /// The file operations that may go now, oldest first: pending, and waiting for no
    /// earlier undelivered operation (see [`kind`]), due or not.
    fn file_ops_free(&self) -> impl Iterator<Item = &OutboxEntry> {
        let mut documents: HashSet<DocumentId> = HashSet::new();
        let mut files: HashSet<Cid> = HashSet::new();
        self.entries.values().filter(move |e| {
            if !e.is_undelivered() {
                return false;
            }
            if let Some(document) = e.kind.document() {
                documents.insert(document);
                return false;
            }
            let Some(cid) = e.kind.file() else {
                return false;
            };
            let waits = files.contains(&cid)
                || e.kind
                    .waits_for_document()
                    .is_some_and(|d| documents.contains(&d));
            files.insert(cid);
            !waits && e.status == OpStatus::Pending
        })
    }

    /// Takes the oldest file operation that may go now (see [`kind`]), marking it in flight.
    pub fn take_file_op(&mut self, now: Millis) -> Option<OpId> {
        let seq = self
            .file_ops_free()
            .find(|e| e.next_attempt_at <= now)
            .map(|e| e.seq)?;
        let entry = self.entries.get_mut(&seq)?;
        entry.status = OpStatus::InFlight;
        entry.attempts += 1;
        Some(entry.id)
    }

    /// When the next file operation may go, if one is waiting only for its time. (One that
    /// waits for an earlier operation goes once that one is delivered.)
    pub fn next_file_due(&self) -> Option<Millis> {
        self.file_ops_free().map(|e| e.next_attempt_at).min()
    }

    /// File operations still to deliver (pending or in flight), whatever they wait for.
    pub fn undelivered_files(&self) -> usize {
        self.entries
            .values()
            .filter(|e| e.is_undelivered() && !e.kind.is_sync())
            .count()
    }

    /// Replaces an entry's kind (e.g. to cancel an upload); the updated entry, to persist,
    /// or `None` if it is gone.
    pub fn set_kind(&mut self, id: &OpId, kind: OpKind) -> Option<OutboxEntry> {
        let entry = self.seq_of.get(id).and_then(|s| self.entries.get_mut(s))?;
        entry.kind = kind;
        Some(entry.clone())
    }
}

#[cfg(test)]
mod tests;
