//! The outbox: the ordered log of local operations waiting for the server's acknowledgement.
//!
//! Each entry has a stable [`OpId`], a kind (Automerge changes to one document for now; file
//! uploads and deletions later), an attempt count, the time of its next attempt and a status.
//! An entry leaves the outbox only when the server acknowledges it. Entries of one document
//! are sent strictly in order: a later entry never overtakes an earlier one that is waiting.
//! This type only decides; the driver persists every entry it returns (the browser writes the
//! entry in the same IndexedDB transaction as the change it carries).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::retry::{Decision, Failure, Millis, RetryPolicy};
use crate::{DocumentId, OpId};

/// What an operation does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    /// Encoded Automerge changes to `document`, made locally.
    DocumentChanges {
        document: DocumentId,
        changes: Vec<Vec<u8>>,
    },
}

impl OpKind {
    pub fn document(&self) -> DocumentId {
        match self {
            OpKind::DocumentChanges { document, .. } => *document,
        }
    }

    fn change_count(&self) -> usize {
        match self {
            OpKind::DocumentChanges { changes, .. } => changes.len(),
        }
    }
}

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
        self.entries
            .values()
            .filter(|e| matches!(e.status, OpStatus::Pending | OpStatus::InFlight))
            .count()
    }

    /// Picks the entries to send now, oldest first within `limits`, and marks them in flight.
    /// A document's entries are taken only up to its first entry that cannot go now (not
    /// due, already in flight, or over the limits), so no entry overtakes an earlier one.
    pub fn take_due(&mut self, now: Millis, limits: BatchLimits) -> Vec<OpId> {
        let mut blocked: HashSet<DocumentId> = HashSet::new();
        let (mut taken, mut changes) = (Vec::new(), 0usize);
        for entry in self.entries.values_mut() {
            let document = entry.kind.document();
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

    /// The earliest time an entry can be sent (the first waiting entry of each document
    /// decides for that document), if any.
    pub fn next_due(&self) -> Option<Millis> {
        let mut seen: HashSet<DocumentId> = HashSet::new();
        self.entries
            .values()
            .filter(|e| matches!(e.status, OpStatus::Pending | OpStatus::InFlight))
            .filter(|e| seen.insert(e.kind.document()))
            .filter(|e| e.status == OpStatus::Pending)
            .map(|e| e.next_attempt_at)
            .min()
    }
}

#[cfg(test)]
mod tests;
