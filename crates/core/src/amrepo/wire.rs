//! automerge-repo's network messages (protocol version "1") as they travel over its
//! WebSocket adapter: one CBOR map per binary frame, with a string `type`. Decoding is strict
//! about what Cairn relies on (types, identifiers, sizes) and lenient about the rest (unknown
//! keys are ignored, as the JS peers do). This is not the document sync itself: `data`
//! carries an Automerge sync message, which [`super::Session`] hands to Automerge.

use ciborium::Value;

use crate::DocumentId;

/// Most of an identifier we accept (peer, session, storage ids).
const MAX_ID: usize = 256;
/// Most list entries we accept in one message (storage ids, heads).
const MAX_LIST: usize = 256;

/// A message from the remote peer.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Join {
        sender: String,
        metadata: PeerMetadata,
        versions: Option<Vec<String>>,
    },
    Leave {
        sender: String,
    },
    /// `request` (`request: true`) or `sync`: an Automerge sync message for `document`.
    Sync {
        sender: String,
        document: DocumentId,
        data: Vec<u8>,
        request: bool,
    },
    DocUnavailable {
        sender: String,
        document: DocumentId,
    },
    Ephemeral(Ephemeral),
    RemoteSubscriptionChange {
        sender: String,
        add: Vec<String>,
        remove: Vec<String>,
    },
    RemoteHeadsChanged {
        sender: String,
        document: DocumentId,
    },
    /// A well-formed message of a type this server does not know.
    Unknown {
        sender: String,
        kind: String,
    },
}

/// What a peer says about itself in `join` and `peer`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerMetadata {
    pub storage_id: Option<String>,
    pub is_ephemeral: Option<bool>,
    /// A bearer token, for clients that cannot put it in the URL.
    pub token: Option<String>,
}

/// An ephemeral message, relayed as it came (its sender, session and count stay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ephemeral {
    pub sender: String,
    pub document: DocumentId,
    pub session: String,
    pub count: u64,
    pub data: Vec<u8>,
}

/// Why a frame is not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("not CBOR: {0}")]
    NotCbor(String),
    #[error("a message is a CBOR map")]
    NotAMap,
    #[error("field {0:?} is missing or of the wrong type")]
    Field(&'static str),
    #[error("field {0:?} is too long")]
    TooLong(&'static str),
    #[error("invalid document id {0:?}")]
    Document(String),
}

fn get<'a>(map: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null()) // CBOR's `undefined` (a JS field left unset) reads as null
}

fn text(map: &[(Value, Value)], key: &'static str) -> Result<String, WireError> {
    let value = get(map, key)
        .and_then(Value::as_text)
        .ok_or(WireError::Field(key))?;
    if value.len() > MAX_ID {
        return Err(WireError::TooLong(key));
    }
    Ok(value.to_owned())
}

fn bytes(map: &[(Value, Value)], key: &'static str) -> Result<Vec<u8>, WireError> {
    // A typed array some encoders tag (RFC 8746) is taken as its bytes.
    match get(map, key) {
        Some(Value::Bytes(b)) => Ok(b.clone()),
        Some(Value::Tag(_, inner)) => inner.as_bytes().cloned().ok_or(WireError::Field(key)),
        _ => Err(WireError::Field(key)),
    }
}

fn texts(map: &[(Value, Value)], key: &'static str) -> Result<Vec<String>, WireError> {
    let Some(value) = get(map, key) else {
        return Ok(Vec::new());
    };
    let list = value.as_array().ok_or(WireError::Field(key))?;
    if list.len() > MAX_LIST {
        return Err(WireError::TooLong(key));
    }
    list.iter()
        .map(|v| match v.as_text() {
            Some(t) if t.len() <= MAX_ID => Ok(t.to_owned()),
            Some(_) => Err(WireError::TooLong(key)),
            None => Err(WireError::Field(key)),
        })
        .collect()
}

fn document(map: &[(Value, Value)]) -> Result<DocumentId, WireError> {
    let id = text(map, "documentId")?;
    id.parse().map_err(|_| WireError::Document(id))
}

fn metadata(map: &[(Value, Value)]) -> Result<PeerMetadata, WireError> {
    let Some(value) = get(map, "peerMetadata") else {
        return Ok(PeerMetadata::default());
    };
    let inner = value.as_map().ok_or(WireError::Field("peerMetadata"))?;
    let optional = |key: &'static str| match get(inner, key) {
        None => Ok(None),
        Some(_) => text(inner, key).map(Some),
    };
    Ok(PeerMetadata {
        storage_id: optional("storageId")?,
        is_ephemeral: get(inner, "isEphemeral").and_then(Value::as_bool),
        token: match get(inner, "token") {
            None => None,
            Some(v) => Some(v.as_text().ok_or(WireError::Field("token"))?.to_owned()),
        },
    })
}

/// Decodes one frame.
pub fn decode(frame: &[u8]) -> Result<Incoming, WireError> {
    let value: Value =
        ciborium::from_reader(frame).map_err(|e| WireError::NotCbor(e.to_string()))?;
    let map = value.as_map().ok_or(WireError::NotAMap)?;
    let kind = text(map, "type")?;
    let sender = text(map, "senderId")?;
    Ok(match kind.as_str() {
        "join" => Incoming::Join {
            sender,
            metadata: metadata(map)?,
            versions: match get(map, "supportedProtocolVersions") {
                None => None,
                Some(_) => Some(texts(map, "supportedProtocolVersions")?),
            },
        },
        "leave" => Incoming::Leave { sender },
        "request" | "sync" => Incoming::Sync {
            sender,
            document: document(map)?,
            data: bytes(map, "data")?,
            request: kind == "request",
        },
        "doc-unavailable" => Incoming::DocUnavailable {
            sender,
            document: document(map)?,
        },
        "ephemeral" => Incoming::Ephemeral(Ephemeral {
            sender,
            document: document(map)?,
            session: text(map, "sessionId")?,
            count: get(map, "count")
                .and_then(Value::as_integer)
                .and_then(|c| u64::try_from(c).ok())
                .ok_or(WireError::Field("count"))?,
            data: bytes(map, "data")?,
        }),
        "remote-subscription-change" => Incoming::RemoteSubscriptionChange {
            sender,
            add: texts(map, "add")?,
            remove: texts(map, "remove")?,
        },
        "remote-heads-changed" => Incoming::RemoteHeadsChanged {
            sender,
            document: document(map)?,
        },
        _ => Incoming::Unknown { sender, kind },
    })
}

/// A message this server sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing<'a> {
    Peer {
        storage_id: &'a str,
    },
    Error {
        message: &'a str,
    },
    Sync {
        document: &'a DocumentId,
        data: Vec<u8>,
    },
    DocUnavailable {
        document: &'a DocumentId,
    },
    Ephemeral(&'a Ephemeral),
    /// The heads of `document` in this server's storage, at `timestamp` (ms since the epoch).
    RemoteHeadsChanged {
        document: &'a DocumentId,
        storage_id: &'a str,
        heads: Vec<String>,
        timestamp: u64,
    },
}

fn t(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn entry(key: &str, value: Value) -> (Value, Value) {
    (t(key), value)
}

/// Encodes `message` from `sender` to `target`.
pub fn encode(message: &Outgoing<'_>, sender: &str, target: &str) -> Vec<u8> {
    let mut map = Vec::with_capacity(7);
    let kind = match message {
        Outgoing::Peer { .. } => "peer",
        Outgoing::Error { .. } => "error",
        Outgoing::Sync { .. } => "sync",
        Outgoing::DocUnavailable { .. } => "doc-unavailable",
        Outgoing::Ephemeral(_) => "ephemeral",
        Outgoing::RemoteHeadsChanged { .. } => "remote-heads-changed",
    };
    map.push(entry("type", t(kind)));
    // A relayed ephemeral message keeps its original sender (how peers drop repeats).
    let from = match message {
        Outgoing::Ephemeral(e) => e.sender.as_str(),
        _ => sender,
    };
    map.push(entry("senderId", t(from)));
    map.push(entry("targetId", t(target)));
    match message {
        Outgoing::Peer { storage_id } => {
            let metadata = vec![
                entry("storageId", t(storage_id)),
                entry("isEphemeral", Value::Bool(false)),
            ];
            map.push(entry("peerMetadata", Value::Map(metadata)));
            map.push(entry("selectedProtocolVersion", t("1")));
        }
        Outgoing::Error { message } => map.push(entry("message", t(message))),
        Outgoing::Sync { document, data } => {
            map.push(entry("documentId", t(&document.to_string())));
            map.push(entry("data", Value::Bytes(data.clone())));
        }
        Outgoing::DocUnavailable { document } => {
            map.push(entry("documentId", t(&document.to_string())));
        }
        Outgoing::Ephemeral(e) => {
            map.push(entry("documentId", t(&e.document.to_string())));
            map.push(entry("sessionId", t(&e.session)));
            map.push(entry("count", Value::Integer(e.count.into())));
            map.push(entry("data", Value::Bytes(e.data.clone())));
        }
        Outgoing::RemoteHeadsChanged {
            document,
            storage_id,
            heads,
            timestamp,
        } => {
            map.push(entry("documentId", t(&document.to_string())));
            let heads = Value::Array(heads.iter().map(|h| t(h)).collect());
            let at = vec![
                entry("heads", heads),
                entry("timestamp", Value::Integer((*timestamp).into())),
            ];
            map.push(entry(
                "newHeads",
                Value::Map(vec![entry(storage_id, Value::Map(at))]),
            ));
        }
    }
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = ciborium::into_writer(&Value::Map(map), &mut out);
    out
}

impl Incoming {
    /// The peer that sent (or, for an ephemeral message, first sent) this message.
    pub fn sender(&self) -> &str {
        match self {
            Incoming::Join { sender, .. }
            | Incoming::Leave { sender }
            | Incoming::Sync { sender, .. }
            | Incoming::DocUnavailable { sender, .. }
            | Incoming::RemoteSubscriptionChange { sender, .. }
            | Incoming::RemoteHeadsChanged { sender, .. }
            | Incoming::Unknown { sender, .. } => sender,
            Incoming::Ephemeral(e) => &e.sender,
        }
    }

    /// The frame a peer sends for this message, as automerge-repo encodes it (the inverse of
    /// [`decode`]; for tests, the simulator and clients written in Rust). `target` is the
    /// server's peer id (ignored by `join` and `leave`).
    pub fn encode(&self, target: &str) -> Vec<u8> {
        let mut map = Vec::with_capacity(7);
        let with_target = |map: &mut Vec<(Value, Value)>, kind: &str, sender: &str| {
            map.push(entry("type", t(kind)));
            map.push(entry("senderId", t(sender)));
            map.push(entry("targetId", t(target)));
        };
        match self {
            Incoming::Join {
                sender,
                metadata,
                versions,
            } => {
                map.push(entry("type", t("join")));
                map.push(entry("senderId", t(sender)));
                let mut meta = Vec::new();
                if let Some(id) = &metadata.storage_id {
                    meta.push(entry("storageId", t(id)));
                }
                if let Some(e) = metadata.is_ephemeral {
                    meta.push(entry("isEphemeral", Value::Bool(e)));
                }
                if let Some(token) = &metadata.token {
                    meta.push(entry("token", t(token)));
                }
                map.push(entry("peerMetadata", Value::Map(meta)));
                if let Some(versions) = versions {
                    let list = versions.iter().map(|v| t(v)).collect();
                    map.push(entry("supportedProtocolVersions", Value::Array(list)));
                }
            }
            Incoming::Leave { sender } => {
                map.push(entry("type", t("leave")));
                map.push(entry("senderId", t(sender)));
            }
            Incoming::Sync {
                sender,
                document,
                data,
                request,
            } => {
                with_target(&mut map, if *request { "request" } else { "sync" }, sender);
                map.push(entry("documentId", t(&document.to_string())));
                map.push(entry("data", Value::Bytes(data.clone())));
            }
            Incoming::DocUnavailable { sender, document }
            | Incoming::RemoteHeadsChanged { sender, document } => {
                let kind = if matches!(self, Incoming::DocUnavailable { .. }) {
                    "doc-unavailable"
                } else {
                    "remote-heads-changed"
                };
                with_target(&mut map, kind, sender);
                map.push(entry("documentId", t(&document.to_string())));
                if kind == "remote-heads-changed" {
                    map.push(entry("newHeads", Value::Map(Vec::new())));
                }
            }
            Incoming::Ephemeral(e) => {
                return encode(&Outgoing::Ephemeral(e), &e.sender, target);
            }
            Incoming::RemoteSubscriptionChange {
                sender,
                add,
                remove,
            } => {
                with_target(&mut map, "remote-subscription-change", sender);
                map.push(entry(
                    "add",
                    Value::Array(add.iter().map(|a| t(a)).collect()),
                ));
                let removed = remove.iter().map(|r| t(r)).collect();
                map.push(entry("remove", Value::Array(removed)));
            }
            Incoming::Unknown { sender, kind } => with_target(&mut map, kind, sender),
        }
        let mut out = Vec::new();
        let _ = ciborium::into_writer(&Value::Map(map), &mut out);
        out
    }
}
