//! The simulated server: the real `sync::server` logic over an in-memory "database" (each
//! document's committed changes) that survives crashes, and a document cache and WebSocket
//! subscriptions that do not. A request is applied to every document before anything is
//! committed, and committed as a whole before it is answered, as the real server does in one
//! transaction.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{Automerge, Change};
use cairn_core::DocumentId;
use cairn_core::protocol::{DocChanges, ErrorMessage, Message, SyncResponse};
use cairn_core::sync::from_automerge;
use cairn_core::sync::server::{self, Limits};

use crate::net::Node;

#[derive(Debug, Default)]
pub struct SimServer {
    /// Persisted: committed change bytes per document, in commit order.
    pub store: BTreeMap<DocumentId, Vec<Vec<u8>>>,
    cache: BTreeMap<DocumentId, Automerge>,
    subscribers: BTreeMap<DocumentId, BTreeSet<usize>>,
}

impl SimServer {
    /// A document as loaded from the store alone.
    pub fn load(&self, document: &DocumentId) -> Automerge {
        let mut doc = Automerge::new();
        let changes = self.store.get(document).into_iter().flatten();
        let changes: Vec<Change> = changes
            .map(|b| Change::from_bytes(b.clone()).expect("stored changes decode"))
            .collect();
        doc.apply_changes(changes).expect("stored changes apply");
        doc
    }

    fn cached(&mut self, document: DocumentId) -> &mut Automerge {
        if !self.cache.contains_key(&document) {
            let doc = self.load(&document);
            self.cache.insert(document, doc);
        }
        self.cache.get_mut(&document).expect("just inserted")
    }

    /// The heads of a document as the server currently serves it.
    pub fn heads(&mut self, document: &DocumentId) -> Vec<cairn_core::ChangeHash> {
        from_automerge(&self.cached(*document).get_heads())
    }

    /// The process dies: the cache and the subscriptions are gone, the store stays.
    pub fn crash(&mut self) {
        self.cache.clear();
        self.subscribers.clear();
    }

    /// Handles one frame from client `from`; returns the frames to send.
    pub fn handle(&mut self, from: usize, bytes: &[u8]) -> Vec<(Node, Message)> {
        match Message::decode(bytes) {
            Ok(Message::SyncRequest(request)) => self.sync(from, request),
            Ok(Message::Subscribe(docs)) => {
                let mut out = Vec::new();
                for d in docs {
                    self.subscribers.entry(d.document).or_default().insert(from);
                    let doc = self.cached(d.document);
                    let data = server::missing_for(doc, &d.heads);
                    if !data.is_empty() {
                        let heads = from_automerge(&doc.get_heads());
                        let changes = DocChanges {
                            document: d.document,
                            heads,
                            data,
                        };
                        out.push((Node::Client(from), Message::Changes(changes)));
                    }
                }
                out
            }
            Ok(Message::Unsubscribe(docs)) => {
                for d in docs {
                    self.subscribers.entry(d).or_default().remove(&from);
                }
                Vec::new()
            }
            Ok(other) => vec![error(
                from,
                0,
                "E_UNEXPECTED_MESSAGE",
                &format!("{other:?}"),
            )],
            Err(e) => vec![error(from, 0, "E_MALFORMED_MESSAGE", &e.to_string())],
        }
    }

    fn sync(
        &mut self,
        from: usize,
        request: cairn_core::protocol::SyncRequest,
    ) -> Vec<(Node, Message)> {
        let id = request.request;
        let work = match server::validate(request, &Limits::default()) {
            Ok(work) => work,
            Err(e) => return vec![error(from, id, e.code(), &e.to_string())],
        };
        // Apply everything first; on any failure, forget what was applied (roll back).
        let mut applied = Vec::new();
        for w in &work {
            match server::apply(self.cached(w.document), w) {
                Ok(a) => applied.push(a),
                Err(e) => {
                    for w in &work {
                        self.cache.remove(&w.document);
                    }
                    return vec![error(from, id, "E_INVALID_CHANGE", &e.to_string())];
                }
            }
        }
        // Commit.
        for (w, a) in work.iter().zip(&applied) {
            let stored = self.store.entry(w.document).or_default();
            stored.extend(a.new_changes.iter().map(|c| c.raw_bytes().to_vec()));
        }
        // Answer, and push the new changes to the other subscribers.
        let mut out = Vec::new();
        let mut documents = Vec::new();
        for (w, a) in work.iter().zip(applied) {
            let doc = self.cached(w.document);
            documents.push(server::respond(doc, w, a.acked));
            if a.new_changes.is_empty() {
                continue;
            }
            let heads = from_automerge(&doc.get_heads());
            let data: Vec<u8> = a
                .new_changes
                .iter()
                .flat_map(|c| c.raw_bytes().to_vec())
                .collect();
            for &s in self.subscribers.get(&w.document).into_iter().flatten() {
                if s != from {
                    let changes = DocChanges {
                        document: w.document,
                        heads: heads.clone(),
                        data: data.clone(),
                    };
                    out.push((Node::Client(s), Message::Changes(changes)));
                }
            }
        }
        out.push((
            Node::Client(from),
            Message::SyncResponse(SyncResponse {
                request: id,
                documents,
            }),
        ));
        out
    }
}

fn error(to: usize, request: u64, code: &str, message: &str) -> (Node, Message) {
    let e = ErrorMessage {
        request,
        code: code.to_owned(),
        message: message.to_owned(),
        retryable: false,
        documents: Vec::new(),
    };
    (Node::Client(to), Message::Error(e))
}
