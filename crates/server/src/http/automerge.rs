//! `GET /v1/automerge`: automerge-repo's network protocol over WebSocket, so that a stock
//! automerge-repo `Repo` with `WebSocketClientAdapter` syncs through Cairn as through
//! `@automerge/automerge-repo-sync-server`. The protocol is `cairn_core::amrepo`'s; this is
//! its driver: authentication, access, commits and pushes.
//!
//! - The bearer token comes in the URL (`?token=…`: browsers cannot set WebSocket headers),
//!   checked before the upgrade (401 with a JSON body when bad), or else in the `join`
//!   message's `peerMetadata.token`.
//! - Every `request`/`sync` re-reads the user's role. A document that does not exist, or that
//!   the user may not read, gets the same `doc-unavailable`; a `sync` announcing a new
//!   document (with heads) creates it on its first changes, owned by the user. A reader's
//!   changes are ignored (its sync state is read-only: Automerge tells its peer so).
//! - A peer's changes are committed like any other write (the `changes` rows; followers on
//!   `/v1/ws`, other replicas) before its sync state takes them as known, so the next sync
//!   message acknowledges only committed changes. Commits by anyone reach the peer through the
//!   hub, as a sync message for each document it has open (at most one push every
//!   `PUSH_INTERVAL` per connection: the commits in between go in one message).
//! - Refused frames get an `error` message; malformed ones also close the connection.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use automerge::sync;
use axum::Extension;
use axum::extract::ws::{
    CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade, close_code,
};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use cairn_core::DocumentId;
use cairn_core::amrepo::{Ephemeral, Event, Session, incoming_changes};
use tokio::sync::mpsc;

use super::{AppState, Error};
use crate::connections::Slot;
use crate::documents::Access;
use crate::hub::{Mailbox, Mark};

/// How long a new connection may take to send `join`.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Pushes to one connection go out at most this often: the marks of the commits in between
/// coalesce, so a peer gets one sync message for several (automerge-repo's own servers and
/// clients throttle their sync messages to one per 100 ms per document).
const PUSH_INTERVAL: Duration = Duration::from_millis(25);

/// The most a rate-limited frame is held back before it is read.
const MAX_HOLD: Duration = Duration::from_secs(5);

#[derive(Debug, serde::Deserialize)]
pub struct Params {
    token: Option<String>,
}

pub async fn upgrade(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Query(params): Query<Params>,
    ws: WebSocketUpgrade,
) -> Response {
    let user = match params.token.as_deref().map(|t| state.auth.verify(t)) {
        Some(Ok(user)) => Some(user.0),
        Some(Err(e)) => return Error::from(e).into_response(),
        None => None,
    };
    let address = state
        .rate_limits
        .client_address(&headers, peer.map(|Extension(ConnectInfo(a))| a));
    let max = state.limits.max_body_bytes;
    super::ws::accept(ws, max, move |socket| run(state, socket, user, address))
}

/// One connected automerge-repo peer.
struct Peer {
    state: AppState,
    session: Session,
    /// The authenticated user (from the URL, or once `join` brought a token).
    user: Option<String>,
    id: u64,
    queue: mpsc::Sender<Ephemeral>,
    mailbox: Arc<Mailbox>,
    address: Option<IpAddr>,
    slot: Option<Slot>,
}

/// What handling a frame gives: frames to send, and whether to close after them.
type Step = (Vec<Vec<u8>>, bool);

async fn run(
    state: AppState,
    mut socket: WebSocket,
    user: Option<String>,
    address: Option<IpAddr>,
) {
    let hub = state.automerge.clone();
    let lifecycle = state.lifecycle.clone();
    let (id, mut relayed, queue) = hub.connection();
    let session = Session::new(
        &hub.peer_id,
        &hub.storage_id,
        state.limits.max_subscriptions,
    );
    let mut peer = Peer {
        state,
        session,
        user,
        id,
        queue,
        mailbox: Arc::default(),
        address,
        slot: None,
    };
    let joining = tokio::time::sleep(JOIN_TIMEOUT);
    tokio::pin!(joining);
    // Marks wait in the mailbox until `pushing` fires (see PUSH_INTERVAL).
    let pushing = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(pushing);
    let (mut marked, mut pushed_at) = (false, tokio::time::Instant::now() - PUSH_INTERVAL);
    'connection: loop {
        let (frames, close) = tokio::select! {
            () = lifecycle.stopping() => {
                let frame = CloseFrame { code: close_code::AWAY, reason: "the server is shutting down".into() };
                let _ = socket.send(WsMessage::Close(Some(frame))).await;
                break 'connection;
            }
            () = &mut joining, if peer.session.remote().is_none() => {
                (vec![peer.session.error("no join message in time")], true)
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(WsMessage::Binary(bytes))) => {
                    crate::metrics::automerge_frame();
                    peer.handle(&bytes).await
                }
                Some(Ok(WsMessage::Text(_))) => (vec![peer.session.error("messages are binary CBOR")], true),
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => (Vec::new(), false),
                Some(Ok(WsMessage::Close(_)) | Err(_)) | None => break 'connection,
            },
            () = peer.mailbox.wait(), if !marked => {
                marked = true;
                pushing.as_mut().reset(pushed_at + PUSH_INTERVAL);
                (Vec::new(), false)
            }
            () = &mut pushing, if marked => {
                marked = false;
                pushed_at = tokio::time::Instant::now();
                let mut frames = Vec::new();
                for (document, mark) in peer.mailbox.take() {
                    frames.extend(peer.push(document, mark).await);
                }
                (frames, false)
            }
            Some(message) = relayed.recv() => (peer.session.relay(&message).into_iter().collect(), false),
        };
        for frame in frames {
            if socket.send(WsMessage::Binary(frame.into())).await.is_err() {
                break 'connection;
            }
        }
        if close {
            let _ = socket.send(WsMessage::Close(None)).await;
            break 'connection;
        }
    }
    peer.close();
}

impl Peer {
    async fn handle(&mut self, frame: &[u8]) -> Step {
        self.hold_if_limited().await;
        match self.session.handle(frame) {
            Err(refusal) => {
                crate::metrics::automerge_refused();
                tracing::debug!(reason = %refusal.reason, "automerge-repo frame refused");
                (vec![refusal.reply], refusal.fatal)
            }
            Ok(Event::Joined { reply, token }) => self.joined(reply, token),
            Ok(Event::Sync {
                document,
                message,
                request,
            }) => (self.sync(document, message, request).await, false),
            Ok(Event::Ephemeral(message)) => {
                // Only a peer syncing the document (so allowed to read it) may talk about it.
                if self.session.is_open(&message.document) {
                    self.state.automerge.ephemeral(self.id, message);
                }
                (Vec::new(), false)
            }
            Ok(Event::Subscribed(true)) => {
                let documents: Vec<DocumentId> = self.session.documents().copied().collect();
                let mut frames = Vec::new();
                for document in documents {
                    frames.extend(self.push(document, Mark::Committed(0)).await);
                }
                (frames, false)
            }
            Ok(Event::Leave) => (Vec::new(), true),
            Ok(Event::Subscribed(false) | Event::Nothing) => (Vec::new(), false),
        }
    }

    /// The handshake: the user (from the URL, or the token `join` carries), a connection slot.
    fn joined(&mut self, reply: Vec<u8>, token: Option<String>) -> Step {
        if self.user.is_none() {
            match token.map(|t| self.state.auth.verify(&t)) {
                Some(Ok(user)) => self.user = Some(user.0),
                Some(Err(e)) => return (vec![self.error(e.into())], true),
                None => {
                    let e = Error::Unauthorized(
                        "a token is needed: ?token= in the URL, or peerMetadata.token".into(),
                    );
                    return (vec![self.error(e)], true);
                }
            }
        }
        let user = self.user.clone().unwrap_or_default();
        let max = self.state.limits.max_connections_per_user;
        let Some(slot) = self.state.connections.acquire(&user, max) else {
            return (vec![self.error(Error::TooManyConnections(max))], true);
        };
        self.slot = Some(slot);
        crate::metrics::automerge_connections(1.0);
        (vec![reply], false)
    }

    /// A `request` or `sync` for `document` (see the module docs).
    async fn sync(
        &mut self,
        document: DocumentId,
        message: sync::Message,
        request: bool,
    ) -> Vec<Vec<u8>> {
        let user = self.user.clone().unwrap_or_default();
        let documents = self.state.documents.clone();
        let access = match documents.access(&user, &document).await {
            Ok(access) => access,
            Err(e) => return vec![self.error(e.into())],
        };
        match access {
            Access::Denied => return vec![self.unavailable(&document)],
            Access::Missing if request || message.heads.is_empty() => {
                return vec![self.unavailable(&document)];
            }
            _ => {}
        }
        let opened = self.session.is_open(&document);
        if let Err(refusal) = self.session.open(document, access == Access::Read) {
            return vec![refusal.reply];
        }
        if !opened {
            self.follow(document);
        }
        let mut mark = Mark::Committed(0); // whatever the cache has loaded will do
        if access != Access::Read {
            let new = documents
                .with_doc(&document, mark, |doc| incoming_changes(doc, &message))
                .await;
            match new {
                Ok(Ok(new)) if new.is_empty() => {}
                Ok(Ok(new)) => match documents.commit(&user, document, new).await {
                    Ok(Some(seq)) => mark = Mark::Committed(seq),
                    Ok(None) => {}
                    Err(crate::documents::DocumentError::Forbidden(_)) => {
                        return vec![self.unavailable(&document)];
                    }
                    Err(e) => return vec![self.error(e.into())],
                },
                Ok(Err(bad)) => return vec![self.session.error(&bad.to_string())],
                Err(e) => return vec![self.error(e.into())],
            }
        }
        let session = &mut self.session;
        let answered = documents
            .with_doc(&document, mark, |doc| {
                session.received(&document, doc, message)?;
                let heads = session.heads(&document, doc, now());
                Ok::<_, cairn_core::amrepo::Refusal>((session.outgoing(&document, doc), heads))
            })
            .await;
        match answered {
            Ok(Ok((sync, heads))) => sync.into_iter().chain(heads).collect(),
            Ok(Err(refusal)) => vec![refusal.reply],
            Err(e) => vec![self.error(e.into())],
        }
    }

    /// What a mark on `document` leads to: a sync message, if the peer lacks something.
    async fn push(&mut self, document: DocumentId, mark: Mark) -> Vec<Vec<u8>> {
        if !self.session.is_open(&document) {
            return Vec::new();
        }
        let documents = self.state.documents.clone();
        if mark == Mark::Unknown {
            // Access may have changed: read it again.
            let user = self.user.clone().unwrap_or_default();
            match documents.access(&user, &document).await {
                Ok(Access::Write) => self.reopen(document, false),
                Ok(Access::Read) => self.reopen(document, true),
                Ok(Access::Missing | Access::Denied) => return vec![self.unavailable(&document)],
                Err(e) => return vec![self.error(e.into())],
            }
        }
        let session = &mut self.session;
        let now = now();
        match documents
            .with_doc(&document, mark, |doc| {
                let sync = session.outgoing(&document, doc);
                sync.into_iter()
                    .chain(session.heads(&document, doc, now))
                    .collect()
            })
            .await
        {
            Ok(frames) => frames,
            Err(e) => vec![self.error(e.into())],
        }
    }

    fn reopen(&mut self, document: DocumentId, read_only: bool) {
        let _ = self.session.open(document, read_only);
    }

    fn error(&self, e: Error) -> Vec<u8> {
        e.log();
        self.session.error(&format!("{}: {e}", e.code()))
    }

    fn unavailable(&mut self, document: &DocumentId) -> Vec<u8> {
        self.unfollow(document);
        self.session.unavailable(document)
    }

    fn follow(&self, document: DocumentId) {
        self.state.documents.hub.subscribe(document, &self.mailbox);
        self.state.automerge.open(document, self.id, &self.queue);
    }

    fn unfollow(&self, document: &DocumentId) {
        self.state
            .documents
            .hub
            .unsubscribe(document, &self.mailbox);
        self.state.automerge.close(self.id, [*document]);
    }

    /// Counts the frame against the user's and the address's rate limits; over them, waits
    /// (a sync message cannot be dropped without breaking the peer's sync state, so the peer
    /// is slowed down instead).
    async fn hold_if_limited(&self) {
        let limits = &self.state.rate_limits;
        let mut wait = Duration::ZERO;
        if let Some(user) = &self.user
            && let Err(retry) = limits.check_user(user)
        {
            wait = wait.max(retry);
        }
        if let Some(address) = self.address
            && let Err(retry) = limits.check_address(address)
        {
            wait = wait.max(retry);
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait.min(MAX_HOLD)).await;
        }
    }

    fn close(&mut self) {
        let documents: Vec<DocumentId> = self.session.documents().copied().collect();
        for document in &documents {
            self.state
                .documents
                .hub
                .unsubscribe(document, &self.mailbox);
        }
        self.state.automerge.close(self.id, documents);
        if self.slot.take().is_some() {
            crate::metrics::automerge_connections(-1.0);
        }
    }
}

/// Milliseconds since the epoch, for `remote-heads-changed`.
fn now() -> u64 {
    u64::try_from(crate::clock::now_ms()).unwrap_or(0)
}
