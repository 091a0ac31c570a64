//! The engine's side of sync rounds: a request from the outbox, an answer or a push applied
//! and stored, failures accounted to the retry policy. Also the Service Worker's whole loop
//! ([`Engine::drain`]) and fetching documents the device does not have yet.

use std::collections::HashMap;

use cairn_core::outbox::{BatchLimits, Outbox, OutboxEntry};
use cairn_core::protocol::{DocChanges, DocHeads, ErrorMessage, SyncRequest, SyncResponse};
use cairn_core::retry::Failure;
use cairn_core::sync::client::{build_request, failure_for_status};
use cairn_core::{DocumentId, Message, OpId};

use super::{Engine, now};
use crate::ClientError;
use crate::net;
use crate::remote::{Remote, send_sync};
use crate::storage::{self, Received};

/// The request on the wire.
#[derive(Debug)]
pub(super) struct InFlight {
    pub request: u64,
    pub ops: Vec<OpId>,
    /// Outbox keys of `ops`.
    pub seqs: HashMap<OpId, u64>,
}

/// What handling a server frame did.
#[derive(Debug, Default)]
pub struct Handled {
    /// Documents whose content changed.
    pub changed: Vec<DocumentId>,
    /// A `Welcome`: the socket is authenticated.
    pub welcome: bool,
    /// The answer (or error) to this engine's request in flight: the next may go.
    pub answered: bool,
    /// An error the server reported.
    pub error: Option<ErrorMessage>,
}

/// Per-request limits of the outbox drain.
const LIMITS: BatchLimits = BatchLimits {
    max_entries: 256,
    max_changes: 2_000,
};

impl Engine {
    /// The next sync request, if there is anything to send or `pull` asks for news; marks the
    /// taken outbox entries in flight. `None` while a request is already in flight.
    pub async fn sync_request(
        &self,
        pull: &[DocumentId],
    ) -> Result<Option<SyncRequest>, ClientError> {
        if self.state().in_flight.is_some() {
            return Ok(None);
        }
        let mut outbox = Outbox::restore(storage::read_outbox(self.db()).await?);
        let taken = outbox.take_due(now() as u64, LIMITS);
        if taken.is_empty() && pull.is_empty() {
            return Ok(None);
        }
        let entries: Vec<OutboxEntry> = taken
            .iter()
            .filter_map(|id| outbox.get(id).cloned())
            .collect();
        let documents: Vec<DocumentId> = entries
            .iter()
            .filter_map(|e| e.kind.document())
            .chain(pull.iter().copied())
            .collect();
        for id in &documents {
            self.refresh(id).await?;
        }
        storage::update_outbox(self.db(), &entries).await?;
        let mut state = self.state();
        if state.in_flight.is_some() {
            return Ok(None); // another call won the race
        }
        let request = state.next_request;
        state.next_request += 1;
        let docs = &mut state.docs;
        let sync = build_request(request, &outbox, &taken, pull, |d| {
            docs.get_mut(d).map(|doc| doc.heads()).unwrap_or_default()
        });
        let seqs = entries.iter().map(|e| (e.id, e.seq)).collect();
        state.in_flight = Some(InFlight {
            request,
            ops: taken,
            seqs,
        });
        Ok(Some(sync))
    }

    /// Applies and stores a sync answer; acknowledged entries leave the outbox, entries of
    /// the request that were not acknowledged wait for a retry.
    pub async fn sync_response(
        &self,
        response: SyncResponse,
    ) -> Result<Vec<DocumentId>, ClientError> {
        let mut changed = Vec::new();
        let mut received = Vec::new();
        let mut acked_ids: Vec<OpId> = Vec::new();
        for d in &response.documents {
            self.load_or_empty(&d.document).await?;
            if self.with_doc(&d.document, |doc| doc.absorb(&d.data))?? {
                changed.push(d.document);
            }
            self.with_doc(&d.document, |doc| doc.server_heads.clone_from(&d.heads))?;
            received.push(Received {
                doc: d.document,
                data: d.data.clone(),
                server_heads: Some(d.heads.clone()),
            });
            acked_ids.extend(&d.acked);
        }
        let seqs = self.seqs_of(&acked_ids).await?;
        storage::write_received(self.db(), &received, &seqs, now()).await?;
        for r in received.iter().filter(|r| !r.data.is_empty()) {
            let _ = self.with_doc(&r.doc, |d| d.stored(1, r.data.len()));
            let _ = self.maybe_compact(&r.doc).await;
        }
        let in_flight = {
            let mut state = self.state();
            state.in_flight.take_if(|f| f.request == response.request)
        };
        if let Some(f) = in_flight {
            let unanswered: Vec<OpId> = f
                .ops
                .into_iter()
                .filter(|op| !acked_ids.contains(op))
                .collect();
            self.fail(&unanswered, Failure::Retryable, "E_NOT_ACKED")
                .await?;
        }
        Ok(changed)
    }

    /// The request in flight failed (`retryable` or for good) with `code`.
    pub async fn sync_failed(&self, code: &str, retryable: bool) -> Result<(), ClientError> {
        let Some(f) = self.state().in_flight.take() else {
            return Ok(());
        };
        let failure = if retryable {
            Failure::Retryable
        } else {
            Failure::Permanent
        };
        self.fail(&f.ops, failure, code).await
    }

    pub(super) async fn fail(
        &self,
        ops: &[OpId],
        failure: Failure,
        code: &str,
    ) -> Result<(), ClientError> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut entries = storage::read_outbox(self.db()).await?;
        entries
            .iter_mut()
            .filter(|e| ops.contains(&e.id))
            .for_each(|e| e.status = cairn_core::outbox::OpStatus::InFlight);
        let mut outbox = Outbox::exactly(entries);
        let random = u64::from(js_sys::Math::random().to_bits() as u32);
        let updated = outbox.failed(ops, failure, code, now() as u64, &self.inner.policy, random);
        storage::update_outbox(self.db(), &updated).await
    }

    /// When the earliest outbox entry may be sent again (ms since the epoch).
    pub async fn next_due(&self) -> Result<Option<f64>, ClientError> {
        let outbox = Outbox::restore(storage::read_outbox(self.db()).await?);
        Ok(outbox.next_due().map(|t| t as f64))
    }

    /// Entries still to deliver (pending or in flight).
    pub async fn pending(&self) -> Result<usize, ClientError> {
        storage::count_undelivered(self.db()).await
    }

    /// A `Subscribe` frame for those of `ids` the server has acknowledged before (documents
    /// made here and never synced are followed once their first sync creates them there).
    pub async fn subscribe_frame(&self, ids: &[DocumentId]) -> Result<Message, ClientError> {
        let mut docs = Vec::new();
        for id in ids {
            self.load_or_empty(id).await?;
            let (known, heads) = self.with_doc(id, |d| (!d.server_heads.is_empty(), d.heads()))?;
            if known {
                docs.push(DocHeads {
                    document: *id,
                    heads,
                });
            }
        }
        Ok(Message::Subscribe(docs))
    }

    /// Handles a frame from the server's WebSocket.
    pub async fn handle_frame(&self, bytes: &[u8]) -> Result<Handled, ClientError> {
        match Message::decode(bytes).map_err(|e| ClientError::Protocol(e.to_string()))? {
            Message::Welcome { .. } => Ok(Handled {
                welcome: true,
                ..Handled::default()
            }),
            Message::SyncResponse(r) => {
                let answered = self
                    .state()
                    .in_flight
                    .as_ref()
                    .is_some_and(|f| f.request == r.request);
                Ok(Handled {
                    changed: self.sync_response(r).await?,
                    answered,
                    ..Handled::default()
                })
            }
            Message::Changes(c) => Ok(Handled {
                changed: self.pushed(c).await?,
                ..Handled::default()
            }),
            Message::Error(e) => {
                let ours = self
                    .state()
                    .in_flight
                    .as_ref()
                    .is_some_and(|f| f.request == e.request);
                if ours {
                    self.sync_failed(&e.code, e.retryable).await?;
                }
                Ok(Handled {
                    error: Some(e),
                    answered: ours,
                    ..Handled::default()
                })
            }
            other => Err(ClientError::Protocol(format!("unexpected frame {other:?}"))),
        }
    }

    async fn pushed(&self, c: DocChanges) -> Result<Vec<DocumentId>, ClientError> {
        self.load_or_empty(&c.document).await?;
        let changed = self.with_doc(&c.document, |doc| doc.absorb(&c.data))??;
        let received = Received {
            doc: c.document,
            data: c.data,
            server_heads: None,
        };
        let bytes = received.data.len();
        storage::write_received(self.db(), &[received], &[], now()).await?;
        let _ = self.with_doc(&c.document, |d| d.stored(1, bytes));
        let _ = self.maybe_compact(&c.document).await;
        Ok(if changed {
            vec![c.document]
        } else {
            Vec::new()
        })
    }

    /// One sync round over HTTP: what is due in the outbox, plus news of `pull`. Returns the
    /// documents that changed and how many operations were sent, or `None` when there was
    /// nothing to do (or a request is already in flight).
    pub async fn sync_http(
        &self,
        remote: &Remote,
        pull: &[DocumentId],
    ) -> Result<Option<(Vec<DocumentId>, usize)>, ClientError> {
        let Some(request) = self.sync_request(pull).await? else {
            return Ok(None);
        };
        let sent = request
            .documents
            .iter()
            .map(|d| d.entries.len())
            .sum::<usize>();
        match send_sync(remote, request).await {
            Ok(response) => Ok(Some((self.sync_response(response).await?, sent))),
            Err(e) => {
                let retryable = match &e {
                    ClientError::Server { status, .. } => {
                        failure_for_status(*status) == Failure::Retryable
                    }
                    _ => true,
                };
                self.sync_failed(e.code(), retryable).await?;
                Err(e)
            }
        }
    }

    /// Drains the outbox over HTTP until it is empty or a round fails (what a Service
    /// Worker's `sync` event does): document changes first (an upload may wait for its
    /// document), then file operations, until none may go now. Returns how many operations
    /// were delivered (or refused for good).
    pub async fn drain(&self, remote: &Remote) -> Result<usize, ClientError> {
        let before = self.pending().await?;
        while let Some((_, sent)) = self.sync_http(remote, &[]).await? {
            if sent == 0 {
                break;
            }
        }
        loop {
            match self.file_op(remote, &|_, _, _| {}).await? {
                super::FileOp::Done { .. }
                | super::FileOp::Failed {
                    retryable: false, ..
                } => {}
                super::FileOp::Failed { error, .. } => return Err(error),
                _ => break,
            }
        }
        Ok(before.saturating_sub(self.pending().await?))
    }

    /// Fetches `ids` from the server over HTTP (documents this device may not have yet).
    pub async fn pull(
        &self,
        ids: &[DocumentId],
        remote: &Remote,
    ) -> Result<Vec<DocumentId>, ClientError> {
        for id in ids {
            self.load_or_empty(id).await?;
        }
        let request = {
            let mut state = self.state();
            let documents = ids
                .iter()
                .map(|id| cairn_core::protocol::DocRequest {
                    document: *id,
                    heads: state
                        .docs
                        .get_mut(id)
                        .map(|d| d.heads())
                        .unwrap_or_default(),
                    entries: Vec::new(),
                })
                .collect();
            SyncRequest {
                request: 0,
                documents,
            }
        };
        let response = send_sync(remote, request).await?;
        let present: Vec<DocumentId> = response
            .documents
            .iter()
            .filter(|d| !d.heads.is_empty())
            .map(|d| d.document)
            .collect();
        self.sync_response(response).await?;
        Ok(present)
    }

    /// The documents the server holds for this user (`GET /v1/docs`).
    pub async fn list_remote(&self, remote: &Remote) -> Result<Vec<DocumentId>, ClientError> {
        let reply = net::send("GET", &remote.url("/v1/docs"), Some(&remote.token), None).await?;
        if reply.status != 200 {
            return Err(reply.into_error());
        }
        let json = reply.json()?;
        let list = js_sys::Reflect::get(&json, &"documents".into())
            .unwrap_or(wasm_bindgen::JsValue::UNDEFINED);
        let ids = js_sys::Array::from(&list)
            .iter()
            .filter_map(|d| {
                js_sys::Reflect::get(&d, &"id".into())
                    .ok()?
                    .as_string()?
                    .parse()
                    .ok()
            })
            .collect();
        Ok(ids)
    }

    /// Loads `id`, or starts an empty local document for it (one fetched from the server).
    async fn load_or_empty(&self, id: &DocumentId) -> Result<(), ClientError> {
        if !self.load(id).await? {
            storage::ensure_document(self.db(), id, now()).await?;
            self.state()
                .docs
                .entry(*id)
                .or_insert_with(|| crate::doc::Document::new(*id));
        }
        Ok(())
    }

    /// Outbox keys of `ids` (from the request in flight, or from storage).
    async fn seqs_of(&self, ids: &[OpId]) -> Result<Vec<u64>, ClientError> {
        let known: Option<Vec<u64>> = {
            let state = self.state();
            state
                .in_flight
                .as_ref()
                .and_then(|f| ids.iter().map(|id| f.seqs.get(id).copied()).collect())
        };
        if let Some(seqs) = known {
            return Ok(seqs);
        }
        let entries = storage::read_outbox(self.db()).await?;
        Ok(entries
            .iter()
            .filter(|e| ids.contains(&e.id))
            .map(|e| e.seq)
            .collect())
    }
}
