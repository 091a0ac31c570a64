//! One automerge-repo peer connected to this server: the `join`/`peer` handshake, one
//! Automerge sync state per document, and the frames to answer with. Sans-IO: the driver
//! hands in frames and, when a frame concerns a document, the document itself (after checking
//! access and committing what the frame adds); the session hands back frames to send.
//!
//! A `sync` frame's changes are not applied here: [`incoming_changes`] says which are new, the
//! driver commits them like any other write, and only then does [`Session::received`] take
//! the rest of the message (heads, needs, bloom filter) into the sync state. So a change an
//! automerge-repo peer sends is acknowledged (by the next sync message) only once committed.

use std::collections::HashMap;

use automerge::sync::{self, SyncDoc};
use automerge::{Automerge, Change, ReadDoc};

use super::wire::{self, Ephemeral, Incoming, Outgoing, PeerMetadata};
use crate::DocumentId;

/// The only protocol version there is.
pub const PROTOCOL_VERSION: &str = "1";

/// What a frame from the peer asks the driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The handshake: send `reply` (a `peer` frame). `token` is the one in the peer's
    /// metadata, if it sent one.
    Joined {
        reply: Vec<u8>,
        token: Option<String>,
    },
    /// A sync message for `document`: check access, then call [`Session::open`], commit
    /// [`incoming_changes`], call [`Session::received`], and send [`Session::outgoing`].
    /// `request` is the peer asking for a document it does not have.
    Sync {
        document: DocumentId,
        message: sync::Message,
        request: bool,
    },
    /// Relay to the other peers that have `document` open (if not seen before).
    Ephemeral(Ephemeral),
    /// The peer follows (or no longer follows) this server's storage: send
    /// [`Session::heads`] frames for its documents from now on.
    Subscribed(bool),
    /// The peer left: close the connection.
    Leave,
    /// Nothing to do (a message the server has no use for, such as `doc-unavailable`).
    Nothing,
}

/// A frame the session refuses: send `reply` (an `error` frame), and close the connection
/// if `fatal`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    pub reason: String,
    pub reply: Vec<u8>,
    pub fatal: bool,
}

#[derive(Debug)]
struct DocSync {
    state: sync::State,
    /// The heads last announced with `remote-heads-changed`.
    announced: Vec<automerge::ChangeHash>,
}

/// One connected peer.
#[derive(Debug)]
pub struct Session {
    local: String,
    storage_id: String,
    remote: Option<String>,
    docs: HashMap<DocumentId, DocSync>,
    subscribed: bool,
    max_documents: usize,
}

impl Session {
    /// A session of the server peer `local`, whose storage is `storage_id`, allowing the
    /// peer at most `max_documents` documents open at once.
    pub fn new(local: &str, storage_id: &str, max_documents: usize) -> Self {
        Self {
            local: local.to_owned(),
            storage_id: storage_id.to_owned(),
            remote: None,
            docs: HashMap::new(),
            subscribed: false,
            max_documents,
        }
    }

    /// The remote peer's id, once it joined.
    pub fn remote(&self) -> Option<&str> {
        self.remote.as_deref()
    }

    fn frame(&self, message: &Outgoing<'_>) -> Vec<u8> {
        let target = self.remote.as_deref().unwrap_or("");
        wire::encode(message, &self.local, target)
    }

    /// An `error` frame saying `reason`.
    pub fn error(&self, reason: &str) -> Vec<u8> {
        self.frame(&Outgoing::Error { message: reason })
    }

    fn refuse(&self, reason: String, fatal: bool) -> Refusal {
        Refusal {
            reply: self.error(&reason),
            reason,
            fatal,
        }
    }

    /// Reads one frame from the peer.
    pub fn handle(&mut self, frame: &[u8]) -> Result<Event, Refusal> {
        let message = wire::decode(frame).map_err(|e| self.refuse(e.to_string(), true))?;
        if let Incoming::Join {
            sender,
            metadata,
            versions,
        } = message
        {
            return self.join(sender, metadata, versions);
        }
        let Some(remote) = &self.remote else {
            return Err(self.refuse("the first message must be join".into(), true));
        };
        let sender = message.sender();
        // Ephemeral messages are relayed for others, so their sender may be another peer.
        if sender != remote && !matches!(message, Incoming::Ephemeral(_)) {
            return Err(self.refuse(format!("senderId {sender:?} is not this peer"), true));
        }
        match message {
            Incoming::Join { .. } => Err(self.refuse("this peer has already joined".into(), true)),
            Incoming::Leave { .. } => Ok(Event::Leave),
            Incoming::Sync {
                document,
                data,
                request,
                ..
            } => match sync::Message::decode(&data) {
                Ok(message) => Ok(Event::Sync {
                    document,
                    message,
                    request,
                }),
                Err(e) => Err(self.refuse(
                    format!("an invalid sync message for {document}: {e}"),
                    false,
                )),
            },
            Incoming::DocUnavailable { .. } | Incoming::RemoteHeadsChanged { .. } => {
                Ok(Event::Nothing)
            }
            Incoming::Ephemeral(e) => Ok(Event::Ephemeral(e)),
            Incoming::RemoteSubscriptionChange { add, remove, .. } => {
                let was = self.subscribed;
                if remove.contains(&self.storage_id) {
                    self.subscribed = false;
                }
                if add.contains(&self.storage_id) {
                    self.subscribed = true;
                }
                Ok(if was == self.subscribed {
                    Event::Nothing
                } else {
                    Event::Subscribed(self.subscribed)
                })
            }
            Incoming::Unknown { kind, .. } => {
                Err(self.refuse(format!("unknown message type {kind:?}"), false))
            }
        }
    }

    fn join(
        &mut self,
        sender: String,
        metadata: PeerMetadata,
        versions: Option<Vec<String>>,
    ) -> Result<Event, Refusal> {
        if self.remote.is_some() {
            return Err(self.refuse("this peer has already joined".into(), true));
        }
        self.remote = Some(sender);
        if let Some(versions) = versions
            && !versions.iter().any(|v| v == PROTOCOL_VERSION)
        {
            return Err(self.refuse("unsupported protocol version".into(), true));
        }
        let token = metadata.token;
        let reply = self.frame(&Outgoing::Peer {
            storage_id: &self.storage_id,
        });
        Ok(Event::Joined { reply, token })
    }

    /// Starts (or continues) syncing `document`; `read_only` for a peer that may read it but
    /// not write (its changes are then ignored, and Automerge tells it so). Fails when the peer
    /// has too many documents open.
    pub fn open(&mut self, document: DocumentId, read_only: bool) -> Result<(), Refusal> {
        if !self.docs.contains_key(&document) && self.docs.len() >= self.max_documents {
            let max = self.max_documents;
            return Err(self.refuse(
                format!("a connection may have at most {max} documents open"),
                false,
            ));
        }
        let doc = self.docs.entry(document).or_insert_with(|| DocSync {
            state: sync::State::new(),
            announced: Vec::new(),
        });
        doc.state.set_read_only(read_only);
        Ok(())
    }

    /// Whether `document` is open on this session.
    pub fn is_open(&self, document: &DocumentId) -> bool {
        self.docs.contains_key(document)
    }

    /// The documents open on this session.
    pub fn documents(&self) -> impl Iterator<Item = &DocumentId> {
        self.docs.keys()
    }

    /// Takes `message` into the sync state of `document` (open it first), its changes left
    /// out: they must be in `doc` already (committed by the driver), or be ignored (a
    /// read-only peer's).
    pub fn received(
        &mut self,
        document: &DocumentId,
        doc: &mut Automerge,
        mut message: sync::Message,
    ) -> Result<(), Refusal> {
        message.changes = sync::ChunkList::empty();
        let Some(sync) = self.docs.get_mut(document) else {
            return Err(self.refuse(format!("document {document} is not open"), false));
        };
        if let Err(e) = doc.receive_sync_message(&mut sync.state, message) {
            return Err(self.refuse(format!("a sync message for {document}: {e}"), false));
        }
        Ok(())
    }

    /// The sync frame to send for `document`, if Automerge has anything to say.
    pub fn outgoing(&mut self, document: &DocumentId, doc: &Automerge) -> Option<Vec<u8>> {
        let message = doc.generate_sync_message(&mut self.docs.get_mut(document)?.state)?;
        Some(self.frame(&Outgoing::Sync {
            document,
            data: message.encode(),
        }))
    }

    /// Says `document` is not available (it does not exist, or this peer may not read it:
    /// the same answer), and forgets its sync state. The only way a document closes: a
    /// refused frame leaves it open, so the driver stops following exactly the documents it
    /// answered unavailable, and the rest when the connection ends.
    pub fn unavailable(&mut self, document: &DocumentId) -> Vec<u8> {
        self.docs.remove(document);
        self.frame(&Outgoing::DocUnavailable { document })
    }

    /// A `remote-heads-changed` frame for `document` if the peer follows this server's storage
    /// and its heads moved since the last one (`now`: ms since the epoch).
    pub fn heads(&mut self, document: &DocumentId, doc: &Automerge, now: u64) -> Option<Vec<u8>> {
        if !self.subscribed {
            return None;
        }
        let heads = doc.get_heads();
        let sync = self.docs.get_mut(document)?;
        if sync.announced == heads {
            return None;
        }
        sync.announced.clone_from(&heads);
        Some(self.frame(&Outgoing::RemoteHeadsChanged {
            document,
            storage_id: &self.storage_id,
            heads: heads.iter().map(ToString::to_string).collect(),
            timestamp: now,
        }))
    }

    /// `message` relayed to this peer, if it has `message.document` open and did not send it.
    pub fn relay(&self, message: &Ephemeral) -> Option<Vec<u8>> {
        let ours = self.docs.contains_key(&message.document);
        (ours && self.remote.as_deref() != Some(&message.sender))
            .then(|| self.frame(&Outgoing::Ephemeral(message)))
    }
}

/// The changes in `message` that `doc` does not have, in an order `apply_changes` takes.
/// Each item of the message's chunk list holds one or more storage chunks: changes, bundles
/// of changes, or a whole document (when the peer sends everything at once).
pub fn incoming_changes(doc: &Automerge, message: &sync::Message) -> Result<Vec<Change>, BadChunk> {
    let bad = |why: &dyn std::fmt::Display| BadChunk(why.to_string());
    let mut out = Vec::new();
    for item in message.changes.iter() {
        let mut rest = item;
        while !rest.is_empty() {
            let (kind, chunk) = split_chunk(rest).ok_or_else(|| bad(&"cut short"))?;
            rest = &rest[chunk.len()..];
            match kind {
                DOCUMENT => out.extend(
                    Automerge::load(chunk)
                        .map_err(|e| bad(&e))?
                        .get_changes(&[]),
                ),
                CHANGE | COMPRESSED_CHANGE => {
                    out.push(Change::from_bytes(chunk.to_vec()).map_err(|e| bad(&e))?);
                }
                BUNDLE => out.extend(
                    automerge::Bundle::try_from(chunk)
                        .map_err(|e| bad(&e))?
                        .to_changes()
                        .map_err(|e| bad(&e))?,
                ),
                other => return Err(bad(&format!("unknown chunk type {other}"))),
            }
        }
    }
    let hashes: Vec<_> = out.iter().map(Change::hash).collect();
    let unknown: std::collections::HashSet<_> = doc.get_missing_deps(&hashes).into_iter().collect();
    let mut taken = std::collections::HashSet::new();
    out.retain(|c| unknown.contains(&c.hash()) && taken.insert(c.hash()));
    Ok(out)
}

/// A chunk of a sync message that is not an Automerge change, bundle or document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a sync message chunk: {0}")]
pub struct BadChunk(pub String);

// Automerge's storage chunk types (the byte after the magic number and checksum).
const DOCUMENT: u8 = 0;
const CHANGE: u8 = 1;
const COMPRESSED_CHANGE: u8 = 2;
const BUNDLE: u8 = 3;

/// The first storage chunk of `bytes` (magic, checksum, type, LEB128 length, contents) and
/// its type; `None` if it is cut short.
fn split_chunk(bytes: &[u8]) -> Option<(u8, &[u8])> {
    let kind = *bytes.get(8)?;
    let (length, used) = crate::varint::read(bytes.get(9..)?).ok()?;
    let end = 9usize
        .checked_add(used)?
        .checked_add(usize::try_from(length).ok()?)?;
    Some((kind, bytes.get(..end)?))
}
