//! A simulated client: Automerge documents and the real outbox, with what it has persisted
//! kept apart from what it holds in memory. A local edit becomes durable together with its
//! outbox entry (as the browser SDK writes both in one IndexedDB transaction), possibly a
//! little after it was made, so a crash can lose an edit that was never persisted — and such
//! an edit is not promised to anyone.

use std::collections::BTreeMap;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ObjType, ReadDoc, ScalarValue};
use cairn_core::outbox::{BatchLimits, OpKind, Outbox, OutboxEntry};
use cairn_core::protocol::{DocHeads, Message};
use cairn_core::retry::{Failure, Millis, RetryPolicy};
use cairn_core::sync::{client::build_request, from_automerge};
use cairn_core::{ChangeHash, DocumentId, OpId};

use crate::rng::Rng;

/// How often a client asks for news of every document, besides live pushes.
const PULL_EVERY: Millis = 200;
/// How long a client waits for an answer before it counts the request as lost.
const TIMEOUT: Millis = 150;

#[derive(Debug)]
struct InFlight {
    request: u64,
    ops: Vec<OpId>,
    deadline: Millis,
}

#[derive(Debug)]
pub struct SimClient {
    // What survives a crash.
    saved_docs: BTreeMap<DocumentId, Vec<u8>>,
    saved_outbox: Vec<OutboxEntry>,
    // What does not.
    pub docs: BTreeMap<DocumentId, AutoCommit>,
    pub outbox: Outbox,
    in_flight: Option<InFlight>,
    /// Local changes made but not yet durable: (document, change bytes, hash).
    unpersisted: Vec<(DocumentId, Vec<u8>, ChangeHash)>,
    /// Documents changed in memory since they were last saved.
    dirty: std::collections::BTreeSet<DocumentId>,
    pub needs_subscribe: bool,
    next_request: u64,
    next_pull: Millis,
    pub policy: RetryPolicy,
}

impl SimClient {
    pub fn new(documents: &[DocumentId], rng: &mut Rng) -> Self {
        let actor = ActorId::from(rng.bytes16().to_vec());
        let docs = documents
            .iter()
            .map(|d| (*d, AutoCommit::new().with_actor(actor.clone())))
            .collect();
        Self {
            saved_docs: BTreeMap::new(),
            saved_outbox: Vec::new(),
            docs,
            outbox: Outbox::new(),
            in_flight: None,
            unpersisted: Vec::new(),
            dirty: Default::default(),
            needs_subscribe: true,
            next_request: 1,
            next_pull: 0,
            policy: RetryPolicy {
                base_ms: 50,
                max_ms: 1_000,
                max_attempts: None,
            },
        }
    }

    /// Makes one random local edit, in memory only until [`SimClient::persist`].
    pub fn edit(&mut self, now: Millis, rng: &mut Rng) {
        let index = rng.below(self.docs.len() as u64) as usize;
        let (&document, doc) = self.docs.iter_mut().nth(index).expect("index in range");
        let key = format!("k{}", rng.below(4));
        let result = match rng.below(3) {
            0 => doc.put(
                automerge::ROOT,
                key,
                ScalarValue::Int(rng.below(100) as i64),
            ),
            1 => doc.delete(automerge::ROOT, key),
            _ => match doc.get(automerge::ROOT, "text") {
                Ok(Some((automerge::Value::Object(ObjType::Text), text))) => {
                    let len = doc.length(&text);
                    let at = rng.below(len as u64 + 1) as usize;
                    doc.splice_text(&text, at, 0, "x")
                }
                _ => doc
                    .put_object(automerge::ROOT, "text", ObjType::Text)
                    .map(|_| ()),
            },
        };
        if result.is_err() {
            return; // e.g. deleting a key that is not there: no change to make
        }
        let Some(hash) = doc.commit_with(CommitOptions::default().with_time(now as i64)) else {
            return; // nothing changed
        };
        let change = doc
            .get_change_by_hash(&hash)
            .expect("a change was just committed");
        self.unpersisted
            .push((document, change.raw_bytes().to_vec(), change.hash().into()));
        self.dirty.insert(document);
    }

    /// Makes memory durable: documents and, in the same step, an outbox entry for every
    /// unpersisted local change. Returns the changes that became durable.
    pub fn persist(&mut self, now: Millis, rng: &mut Rng) -> Vec<(DocumentId, ChangeHash)> {
        let mut durable = Vec::new();
        for (document, bytes, hash) in std::mem::take(&mut self.unpersisted) {
            let kind = OpKind::DocumentChanges {
                document,
                changes: vec![bytes],
            };
            self.outbox
                .enqueue(OpId::from_bytes(rng.bytes16()), kind, now);
            durable.push((document, hash));
        }
        for document in std::mem::take(&mut self.dirty) {
            if let Some(doc) = self.docs.get_mut(&document) {
                self.saved_docs.insert(document, doc.save());
            }
        }
        self.saved_outbox = self.outbox.iter().cloned().collect();
        durable
    }

    /// The process dies and restarts from what it persisted, with a new actor id.
    pub fn crash(&mut self, rng: &mut Rng) {
        let actor = ActorId::from(rng.bytes16().to_vec());
        for (document, doc) in &mut self.docs {
            *doc = match self.saved_docs.get(document) {
                Some(bytes) => AutoCommit::load(bytes).expect("saved documents load"),
                None => AutoCommit::new(),
            }
            .with_actor(actor.clone());
        }
        self.outbox = Outbox::restore(self.saved_outbox.clone());
        self.in_flight = None;
        self.unpersisted.clear();
        self.dirty.clear();
        self.needs_subscribe = true;
    }

    pub fn heads(&mut self, document: &DocumentId) -> Vec<ChangeHash> {
        self.docs
            .get_mut(document)
            .map(|d| from_automerge(&d.get_heads()))
            .unwrap_or_default()
    }

    pub fn idle(&self) -> bool {
        self.in_flight.is_none() && self.outbox.is_empty() && self.unpersisted.is_empty()
    }

    /// Timeouts, subscriptions and sync requests; returns frames to send if the link is up.
    pub fn tick(&mut self, now: Millis, link_up: bool, rng: &mut Rng) -> Vec<Message> {
        if self.in_flight.as_ref().is_some_and(|f| f.deadline <= now) {
            let lost = self.in_flight.take().expect("checked");
            self.outbox.failed(
                &lost.ops,
                Failure::Retryable,
                "E_TIMEOUT",
                now,
                &self.policy,
                rng.next_u64(),
            );
        }
        if !link_up {
            return Vec::new();
        }
        let mut out = Vec::new();
        if self.needs_subscribe {
            self.needs_subscribe = false;
            let ids: Vec<DocumentId> = self.docs.keys().copied().collect();
            let docs = ids
                .iter()
                .map(|d| DocHeads {
                    document: *d,
                    heads: self.heads(d),
                })
                .collect();
            out.push(Message::Subscribe(docs));
        }
        if self.in_flight.is_none() {
            let taken = self.outbox.take_due(
                now,
                BatchLimits {
                    max_entries: 8,
                    max_changes: 8,
                },
            );
            let pull: Vec<DocumentId> = if now >= self.next_pull {
                self.next_pull = now + PULL_EVERY;
                self.docs.keys().copied().collect()
            } else {
                Vec::new()
            };
            if !taken.is_empty() || !pull.is_empty() {
                let request = self.next_request;
                self.next_request += 1;
                let docs = &mut self.docs;
                let sync = build_request(request, &self.outbox, &taken, &pull, |d| {
                    docs.get_mut(d)
                        .map(|doc| from_automerge(&doc.get_heads()))
                        .unwrap_or_default()
                });
                self.in_flight = Some(InFlight {
                    request,
                    ops: taken,
                    deadline: now + TIMEOUT,
                });
                out.push(Message::SyncRequest(sync));
            }
        }
        out
    }

    /// Handles a frame from the server and persists the result; returns the local changes
    /// that became durable with it. An error text means the frame broke the protocol (the
    /// simulation reports it as a violation).
    pub fn receive(
        &mut self,
        bytes: &[u8],
        now: Millis,
        rng: &mut Rng,
    ) -> Result<Vec<(DocumentId, ChangeHash)>, String> {
        match Message::decode(bytes).map_err(|e| e.to_string())? {
            Message::SyncResponse(response) => {
                for d in &response.documents {
                    self.apply(&d.document, &d.data)?;
                    self.outbox.acked(&d.acked);
                }
                if let Some(f) = self.in_flight.take_if(|f| f.request == response.request) {
                    // Entries the server did not acknowledge are retried.
                    self.outbox.failed(
                        &f.ops,
                        Failure::Retryable,
                        "E_NOT_ACKED",
                        now,
                        &self.policy,
                        rng.next_u64(),
                    );
                }
            }
            Message::Changes(changes) => self.apply(&changes.document, &changes.data)?,
            Message::Error(e) => {
                if let Some(f) = self.in_flight.take_if(|f| f.request == e.request) {
                    let failure = if e.retryable {
                        Failure::Retryable
                    } else {
                        Failure::Permanent
                    };
                    self.outbox
                        .failed(&f.ops, failure, &e.code, now, &self.policy, rng.next_u64());
                }
                return Err(format!("server error {}: {}", e.code, e.message));
            }
            other => return Err(format!("unexpected message {other:?}")),
        }
        Ok(self.persist(now, rng))
    }

    fn apply(&mut self, document: &DocumentId, data: &[u8]) -> Result<(), String> {
        if data.is_empty() {
            return Ok(());
        }
        let doc = self
            .docs
            .get_mut(document)
            .ok_or("a document the client does not know")?;
        self.dirty.insert(*document);
        doc.load_incremental(data)
            .map(|_| ())
            .map_err(|e| format!("load_incremental: {e}"))
    }
}
