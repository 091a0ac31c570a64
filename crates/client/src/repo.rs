//! `Repo`: a named collection of documents stored in IndexedDB, which can push documents to
//! and pull them from a Cairn server.

use cairn_core::{ChangeHash, DocumentId, Message};
use rexie::Rexie;

use crate::net;
use crate::{ClientError, Document, storage};

/// The media type of protocol frames (as the server expects).
const PROTOCOL_MEDIA_TYPE: &str = "application/vnd.cairn.v1";

/// The server's acknowledgement of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushAck {
    /// The server's heads for the document after the merge.
    pub heads: Vec<ChangeHash>,
    /// How many changes were new to the server.
    pub applied: u64,
}

/// An open repository.
#[derive(Debug)]
pub struct Repo {
    name: String,
    db: Rexie,
}

impl Repo {
    /// Opens (creating if needed) the repository `name` in IndexedDB. Needs no network.
    pub async fn open(name: &str) -> Result<Self, ClientError> {
        Ok(Self {
            name: name.to_owned(),
            db: storage::open(name).await?,
        })
    }

    /// Deletes the repository `name` and everything in it.
    pub async fn delete(name: &str) -> Result<(), ClientError> {
        storage::delete(name).await
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A new, empty document (not stored until [`Repo::save`]).
    pub fn create(&self) -> Document {
        Document::new()
    }

    /// The stored document `id`, if any.
    pub async fn find(&self, id: &DocumentId) -> Result<Option<Document>, ClientError> {
        match storage::get_snapshot(&self.db, id).await? {
            Some(bytes) => Document::load(*id, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The ids of every stored document.
    pub async fn list(&self) -> Result<Vec<DocumentId>, ClientError> {
        storage::list_ids(&self.db)
            .await?
            .iter()
            .map(|s| {
                s.parse()
                    .map_err(|e| ClientError::Storage(format!("bad stored id {s}: {e}")))
            })
            .collect()
    }

    /// Stores `doc`; resolves once IndexedDB has committed it.
    pub async fn save(&self, doc: &mut Document) -> Result<(), ClientError> {
        self.save_bytes(&doc.id(), &doc.save()).await
    }

    /// Stores saved Automerge bytes for `id`.
    pub async fn save_bytes(&self, id: &DocumentId, bytes: &[u8]) -> Result<(), ClientError> {
        storage::put_snapshot(&self.db, id, bytes).await
    }

    /// Sends `doc` to the server at `server` and waits for its acknowledgement, which the
    /// server gives only after committing.
    pub async fn push(&self, doc: &mut Document, server: &str) -> Result<PushAck, ClientError> {
        push_bytes(doc.id(), doc.save(), server).await
    }

    /// Fetches `id` from the server, merges it into the local copy (if any), stores the
    /// result and returns it.
    pub async fn pull(&self, id: &DocumentId, server: &str) -> Result<Document, ClientError> {
        let url = format!("{}/v1/docs/{id}", server.trim_end_matches('/'));
        let reply = net::send("GET", &url, None).await?;
        if reply.status == 404 {
            return Err(ClientError::NotFound(id.to_string()));
        }
        if reply.status != 200 {
            return Err(reply.into_error());
        }
        let mut doc = match self.find(id).await? {
            Some(local) => local,
            None => Document::from_parts(*id, automerge::AutoCommit::new()),
        };
        doc.merge_bytes(&reply.body)?;
        self.save(&mut doc).await?;
        Ok(doc)
    }

    /// Closes the IndexedDB connection.
    pub fn close(self) {
        self.db.close();
    }
}

/// Pushes saved Automerge bytes for `document` to `server`.
pub async fn push_bytes(
    document: DocumentId,
    data: Vec<u8>,
    server: &str,
) -> Result<PushAck, ClientError> {
    let url = format!("{}/v1/push", server.trim_end_matches('/'));
    let frame = Message::Push { document, data }.encode();
    let reply = net::send("POST", &url, Some((PROTOCOL_MEDIA_TYPE, &frame))).await?;
    if reply.status != 200 {
        return Err(reply.into_error());
    }
    match Message::decode(&reply.body).map_err(|e| ClientError::Protocol(e.to_string()))? {
        Message::Ack {
            document: acked,
            heads,
            applied,
        } if acked == document => Ok(PushAck { heads, applied }),
        other => Err(ClientError::Protocol(format!(
            "expected an ack for {document}, got {other:?}"
        ))),
    }
}
