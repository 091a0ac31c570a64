//! The protocol's message types and their encoding (see the grammar in the module above).

use super::VERSION;
use super::codec::{DecodeError, Reader, Writer};
use crate::{ChangeHash, DocumentId, OpId};

/// One protocol message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Client → server: for each document, the client's heads and the outbox entries to apply.
    SyncRequest(SyncRequest),
    /// Server → client, after committing: acks and what the client lacks.
    SyncResponse(SyncResponse),
    /// Client → server (WebSocket): push me changes to these documents from now on; I have
    /// these heads.
    Subscribe(Vec<DocHeads>),
    /// Client → server (WebSocket): stop pushing these documents.
    Unsubscribe(Vec<DocumentId>),
    /// Server → client (WebSocket): changes to a subscribed document.
    Changes(DocChanges),
    /// Server → client (WebSocket): a request failed. HTTP uses JSON errors instead.
    Error(ErrorMessage),
    /// Client → server: the first WebSocket frame, carrying the bearer token.
    Auth { token: String },
    /// Server → client: the WebSocket is authenticated as `user`.
    Welcome { user: String },
}

/// A batch of documents to sync.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncRequest {
    /// Chosen by the client, echoed in the response (correlation over WebSocket).
    pub request: u64,
    pub documents: Vec<DocRequest>,
}

/// One document in a [`SyncRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocRequest {
    pub document: DocumentId,
    /// The client's heads once `entries` are applied.
    pub heads: Vec<ChangeHash>,
    /// Outbox entries, in the order they were made.
    pub entries: Vec<Entry>,
}

/// One outbox entry: Automerge changes, acknowledged as a unit by `op`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub op: OpId,
    /// Encoded Automerge changes.
    pub changes: Vec<Vec<u8>>,
}

/// The answer to a [`SyncRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncResponse {
    pub request: u64,
    pub documents: Vec<DocResponse>,
}

/// One document in a [`SyncResponse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocResponse {
    pub document: DocumentId,
    /// Entries whose changes are committed (whether new or already there).
    pub acked: Vec<OpId>,
    /// The server's heads after the commit.
    pub heads: Vec<ChangeHash>,
    /// What the client lacks, for `load_incremental` (empty when nothing).
    pub data: Vec<u8>,
}

/// A document and the heads someone has of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocHeads {
    pub document: DocumentId,
    pub heads: Vec<ChangeHash>,
}

/// Changes pushed to a subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocChanges {
    pub document: DocumentId,
    /// The server's heads once `data` is applied.
    pub heads: Vec<ChangeHash>,
    pub data: Vec<u8>,
}

/// A failure reported over WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMessage {
    /// The request that failed (0 when not tied to one).
    pub request: u64,
    /// Stable code, as in the HTTP API (`E_FORBIDDEN`, ...).
    pub code: String,
    pub message: String,
    /// Whether trying again later may succeed.
    pub retryable: bool,
    /// The documents concerned, if any.
    pub documents: Vec<DocumentId>,
}

const SYNC_REQUEST: u8 = 1;
const SYNC_RESPONSE: u8 = 2;
const SUBSCRIBE: u8 = 3;
const UNSUBSCRIBE: u8 = 4;
const CHANGES: u8 = 5;
const ERROR: u8 = 6;
const AUTH: u8 = 7;
const WELCOME: u8 = 8;

impl Message {
    /// Encodes the message as one frame of the current [`VERSION`].
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        match self {
            Message::SyncRequest(r) => {
                w.u8(SYNC_REQUEST);
                w.varint(r.request);
                w.list(&r.documents, |w, d| {
                    w.document(&d.document);
                    w.hashes(&d.heads);
                    w.list(&d.entries, |w, e| {
                        w.op(&e.op);
                        w.list(&e.changes, |w, c| w.bytes(c));
                    });
                });
            }
            Message::SyncResponse(r) => {
                w.u8(SYNC_RESPONSE);
                w.varint(r.request);
                w.list(&r.documents, |w, d| {
                    w.document(&d.document);
                    w.list(&d.acked, |w, op| w.op(op));
                    w.hashes(&d.heads);
                    w.bytes(&d.data);
                });
            }
            Message::Subscribe(docs) => {
                w.u8(SUBSCRIBE);
                w.list(docs, |w, d| {
                    w.document(&d.document);
                    w.hashes(&d.heads);
                });
            }
            Message::Unsubscribe(docs) => {
                w.u8(UNSUBSCRIBE);
                w.list(docs, |w, d| w.document(d));
            }
            Message::Changes(c) => {
                w.u8(CHANGES);
                w.document(&c.document);
                w.hashes(&c.heads);
                w.bytes(&c.data);
            }
            Message::Error(e) => {
                w.u8(ERROR);
                w.varint(e.request);
                w.str(&e.code);
                w.str(&e.message);
                w.bool(e.retryable);
                w.list(&e.documents, |w, d| w.document(d));
            }
            Message::Auth { token } => {
                w.u8(AUTH);
                w.str(token);
            }
            Message::Welcome { user } => {
                w.u8(WELCOME);
                w.str(user);
            }
        }
        w.out
    }

    /// Decodes exactly one frame.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { rest: bytes };
        let version = r.u8("version").map_err(|_| DecodeError::Empty)?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion {
                found: version,
                supported: VERSION,
            });
        }
        let message = match r.u8("kind")? {
            SYNC_REQUEST => Message::SyncRequest(SyncRequest {
                request: r.varint("request")?,
                documents: r.list("documents", 18, |r| {
                    Ok(DocRequest {
                        document: r.document("document")?,
                        heads: r.hashes("heads")?,
                        entries: r.list("entries", 17, |r| {
                            Ok(Entry {
                                op: r.op("op")?,
                                changes: r.list("changes", 1, |r| r.bytes("change"))?,
                            })
                        })?,
                    })
                })?,
            }),
            SYNC_RESPONSE => Message::SyncResponse(SyncResponse {
                request: r.varint("request")?,
                documents: r.list("documents", 19, |r| {
                    Ok(DocResponse {
                        document: r.document("document")?,
                        acked: r.list("acked", 16, |r| r.op("acked"))?,
                        heads: r.hashes("heads")?,
                        data: r.bytes("data")?,
                    })
                })?,
            }),
            SUBSCRIBE => Message::Subscribe(r.list("documents", 17, |r| {
                Ok(DocHeads {
                    document: r.document("document")?,
                    heads: r.hashes("heads")?,
                })
            })?),
            UNSUBSCRIBE => {
                Message::Unsubscribe(r.list("documents", 16, |r| r.document("document"))?)
            }
            CHANGES => Message::Changes(DocChanges {
                document: r.document("document")?,
                heads: r.hashes("heads")?,
                data: r.bytes("data")?,
            }),
            ERROR => Message::Error(ErrorMessage {
                request: r.varint("request")?,
                code: r.str("code")?,
                message: r.str("message")?,
                retryable: r.bool("retryable")?,
                documents: r.list("documents", 16, |r| r.document("document"))?,
            }),
            AUTH => Message::Auth {
                token: r.str("token")?,
            },
            WELCOME => Message::Welcome {
                user: r.str("user")?,
            },
            kind => return Err(DecodeError::UnknownKind(kind)),
        };
        match r.rest.len() {
            0 => Ok(message),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}
