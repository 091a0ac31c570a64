//! `GET /v1/ws`: live sync over WebSocket, in protocol frames (binary messages).
//!
//! The client's first frame is `Auth { token }` (browsers cannot set headers on a WebSocket);
//! the server answers `Welcome { user }`, or `Error` and closes. Then the client may send
//! `Subscribe`, `Unsubscribe` and `SyncRequest` frames; the server answers sync requests with
//! `SyncResponse` and pushes `Changes` for followed documents whenever anyone commits to them.
//! A document synced over the socket is followed from then on, like a subscribed one.
//! Access is checked for every frame and again before every push.
//!
//! Backpressure: pushes are driven by marks in the connection's mailbox (see `hub`), which
//! coalesce per document, and each push is built only when the socket has taken the previous
//! frame. A client that reads slowly therefore costs one mark per followed document, not a
//! queue of changes.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::ws::{
    CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade, close_code,
};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use cairn_core::protocol::{DocChanges, DocHeads, ErrorMessage, SyncRequest};
use cairn_core::{ChangeHash, DocumentId, Message};
use tracing::Instrument;

use super::{AppState, Error, body};
use crate::connections::Slot;
use crate::hub::{Mailbox, Mark};

/// How long a new connection may take to authenticate.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// About how many bytes of changes one push carries; a larger backlog goes out in several
/// pushes, interleaved with the connection's other work.
const PUSH_BUDGET: usize = 1024 * 1024;

pub async fn upgrade(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let address = state
        .rate_limits
        .client_address(&headers, peer.map(|Extension(ConnectInfo(a))| a));
    let max = state.limits.max_body_bytes;
    accept(ws, max, move |socket| run(state, socket, address))
}

/// Accepts a WebSocket upgrade with messages of at most `max` bytes; the connection (`run`)
/// logs under the upgrade request's span, so its lines carry that request's id.
pub(super) fn accept<F, R>(ws: WebSocketUpgrade, max: usize, run: F) -> Response
where
    F: FnOnce(WebSocket) -> R + Send + 'static,
    R: std::future::Future<Output = ()> + Send + 'static,
{
    let span = tracing::Span::current();
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| run(socket).instrument(span))
}

/// An authenticated connection.
struct Connection {
    state: AppState,
    user: String,
    mailbox: Arc<Mailbox>,
    /// Followed documents and the heads we believe the client has.
    following: HashMap<DocumentId, Vec<ChangeHash>>,
    /// The client's address, for its rate limit.
    address: Option<IpAddr>,
    _slot: Slot,
}

async fn run(state: AppState, mut socket: WebSocket, address: Option<IpAddr>) {
    let lifecycle = state.lifecycle.clone();
    let Some(mut connection) = authenticate(state, &mut socket, address).await else {
        let _ = socket.send(WsMessage::Close(None)).await;
        return;
    };
    'connection: loop {
        tokio::select! {
            () = lifecycle.stopping() => {
                let frame = CloseFrame {
                    code: close_code::AWAY,
                    reason: "the server is shutting down".into(),
                };
                let _ = socket.send(WsMessage::Close(Some(frame))).await;
                break 'connection;
            }
            incoming = socket.recv() => {
                let replies = match incoming {
                    Some(Ok(WsMessage::Binary(bytes))) => {
                        crate::metrics::ws_frame();
                        connection.handle(&bytes).await
                    }
                    Some(Ok(WsMessage::Text(_))) => vec![error(0, &Error::MalformedMessage("frames must be binary".into()))],
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => Vec::new(),
                    Some(Ok(WsMessage::Close(_)) | Err(_)) | None => break 'connection,
                };
                if send_all(&mut socket, replies).await.is_err() {
                    break 'connection;
                }
            }
            () = connection.mailbox.wait() => {
                for (document, mark) in connection.mailbox.take() {
                    let replies = connection.push(document, mark).await;
                    if send_all(&mut socket, replies).await.is_err() {
                        break 'connection;
                    }
                }
            }
        }
    }
    connection.unfollow_all();
    crate::metrics::ws_connections(-1.0);
}

async fn send_all(socket: &mut WebSocket, messages: Vec<Message>) -> Result<(), axum::Error> {
    for message in messages {
        socket
            .send(WsMessage::Binary(message.encode().into()))
            .await?;
    }
    Ok(())
}

/// Waits for `Auth`, checks the token and the connection limit, and says `Welcome`.
async fn authenticate(
    state: AppState,
    socket: &mut WebSocket,
    address: Option<IpAddr>,
) -> Option<Connection> {
    let first = tokio::time::timeout(AUTH_TIMEOUT, socket.recv()).await;
    let token = match first {
        Ok(Some(Ok(WsMessage::Binary(bytes)))) => match Message::decode(&bytes) {
            Ok(Message::Auth { token }) => Some(token),
            _ => None,
        },
        _ => None,
    };
    let refuse = |e: Error| vec![error(0, &e)];
    let user = match token.map(|t| state.auth.verify(&t)) {
        Some(Ok(user)) => user.0,
        Some(Err(e)) => {
            let _ = send_all(socket, refuse(e.into())).await;
            return None;
        }
        None => {
            let e = Error::Unauthorized("the first frame must be Auth { token }".into());
            let _ = send_all(socket, refuse(e)).await;
            return None;
        }
    };
    let max = state.limits.max_connections_per_user;
    let Some(slot) = state.connections.acquire(&user, max) else {
        let _ = send_all(socket, refuse(Error::TooManyConnections(max))).await;
        return None;
    };
    send_all(socket, vec![Message::Welcome { user: user.clone() }])
        .await
        .ok()?;
    crate::metrics::ws_connections(1.0);
    Some(Connection {
        state,
        user,
        mailbox: Arc::default(),
        following: HashMap::new(),
        address,
        _slot: slot,
    })
}

impl Connection {
    async fn handle(&mut self, bytes: &[u8]) -> Vec<Message> {
        let message = body::message(bytes);
        if let Err(e) = self.within_limits() {
            let request = match &message {
                Ok(Message::SyncRequest(r)) => r.request,
                _ => 0,
            };
            return vec![error(request, &e)];
        }
        match message {
            Ok(Message::Subscribe(docs)) => self.subscribe(docs).await,
            Ok(Message::Unsubscribe(docs)) => {
                docs.iter().for_each(|d| self.unfollow(d));
                Vec::new()
            }
            Ok(Message::SyncRequest(request)) => self.sync(request).await,
            Ok(_) => vec![error(0, &Error::UnexpectedMessage)],
            Err(e) => vec![error(0, &e)],
        }
    }

    async fn subscribe(&mut self, docs: Vec<DocHeads>) -> Vec<Message> {
        let new = docs
            .iter()
            .filter(|d| !self.following.contains_key(&d.document))
            .count();
        let max = self.state.limits.max_subscriptions;
        if self.following.len() + new > max {
            return vec![Message::Error(ErrorMessage {
                request: 0,
                code: "E_TOO_MANY_SUBSCRIPTIONS".into(),
                message: format!("a connection may follow at most {max} documents"),
                retryable: false,
                documents: docs.iter().map(|d| d.document).collect(),
            })];
        }
        let mut forbidden = Vec::new();
        for d in docs {
            match self
                .state
                .documents
                .store
                .role(&d.document, &self.user)
                .await
            {
                Ok(Some(_)) => {
                    self.state
                        .documents
                        .hub
                        .subscribe(d.document, &self.mailbox);
                    self.following.insert(d.document, d.heads);
                    // Catch-up: push what the client lacks.
                    self.mailbox.mark(d.document, Mark::Unknown);
                }
                Ok(None) => forbidden.push(d.document),
                Err(e) => return vec![error(0, &e.into())],
            }
        }
        if forbidden.is_empty() {
            Vec::new()
        } else {
            vec![error(0, &Error::Forbidden(forbidden))]
        }
    }

    async fn sync(&mut self, mut request: SyncRequest) -> Vec<Message> {
        crate::metrics::sync_round("ws");
        let id = request.request;
        // Frames on a socket arrive in order, so whatever was pushed on it before this answer
        // reaches the client first: count it as theirs, or every answer would repeat the
        // pushes still in flight (measured: ~60 repeated changes per answer with 200 typists).
        for d in &mut request.documents {
            if let Some(sent) = self.following.get(&d.document) {
                for head in sent {
                    if !d.heads.contains(head) {
                        d.heads.push(*head);
                    }
                }
            }
        }
        match self.state.documents.sync(&self.user, request).await {
            Ok(response) => {
                // Syncing a document over the socket also follows it (within the limit): a
                // client need not subscribe to a document it has just created.
                let max = self.state.limits.max_subscriptions;
                for d in &response.documents {
                    if let Some(heads) = self.following.get_mut(&d.document) {
                        heads.clone_from(&d.heads);
                    } else if self.following.len() < max {
                        self.state
                            .documents
                            .hub
                            .subscribe(d.document, &self.mailbox);
                        self.following.insert(d.document, d.heads.clone());
                    }
                }
                vec![Message::SyncResponse(response)]
            }
            Err(e) => vec![error(id, &e.into())],
        }
    }

    /// What a mark on `document` leads to: (part of) the changes the client lacks, if any.
    async fn push(&mut self, document: DocumentId, mark: Mark) -> Vec<Message> {
        let Some(heads) = self.following.get(&document) else {
            return Vec::new();
        };
        let budget = PUSH_BUDGET.min(self.state.limits.max_body_bytes / 2);
        let documents = &self.state.documents;
        match documents
            .missing(&self.user, &document, heads, budget, mark)
            .await
        {
            Ok(missing) => {
                self.following.insert(document, missing.heads.clone());
                if !missing.complete {
                    self.mailbox.mark(document, mark); // the rest goes in the next push
                }
                if missing.data.is_empty() {
                    return Vec::new();
                }
                let (heads, data) = (missing.heads, missing.data);
                crate::metrics::ws_push();
                vec![Message::Changes(DocChanges {
                    document,
                    heads,
                    data,
                })]
            }
            Err(e) => {
                let e: Error = e.into();
                if matches!(e, Error::Forbidden(_)) {
                    self.unfollow(&document);
                }
                vec![error(0, &e)]
            }
        }
    }

    /// Counts the frame against the user's and the address's rate limits.
    fn within_limits(&self) -> Result<(), Error> {
        let limits = &self.state.rate_limits;
        let limited = |scope| move |retry_after| Error::RateLimited { scope, retry_after };
        limits.check_user(&self.user).map_err(limited("user"))?;
        if let Some(address) = self.address {
            limits.check_address(address).map_err(limited("address"))?;
        }
        Ok(())
    }

    fn unfollow(&mut self, document: &DocumentId) {
        if self.following.remove(document).is_some() {
            self.state
                .documents
                .hub
                .unsubscribe(document, &self.mailbox);
        }
    }

    fn unfollow_all(&mut self) {
        let documents: Vec<DocumentId> = self.following.keys().copied().collect();
        documents.iter().for_each(|d| self.unfollow(d));
    }
}

/// An API error as a protocol `Error` frame.
fn error(request: u64, e: &Error) -> Message {
    e.log();
    Message::Error(ErrorMessage {
        request,
        code: e.code().to_owned(),
        message: e.to_string(),
        retryable: e.retryable(),
        documents: e.documents().to_vec(),
    })
}
