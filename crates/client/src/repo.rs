//! `Repo`: a named collection of documents stored in IndexedDB, synced with a Cairn server
//! through `POST /v1/sync`.

use cairn_core::protocol::{MEDIA_TYPE, SyncRequest, SyncResponse};
use cairn_core::{DocumentId, Message, OpId};
use rexie::Rexie;

use crate::net;
use crate::{ClientError, Document, storage};

/// Where and as whom to sync.
#[derive(Debug, Clone)]
pub struct Remote {
    /// Base URL, e.g. `https://example.com`.
    pub server: String,
    /// Bearer token (JWT).
    pub token: String,
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
        match storage::get_document(&self.db, id).await? {
            Some(record) => Document::load(*id, &record.snapshot, record.synced).map(Some),
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
        let bytes = doc.save();
        self.save_bytes(&doc.id(), &bytes, doc.synced()).await
    }

    /// Stores saved bytes and acknowledged heads for `id`.
    pub async fn save_bytes(
        &self,
        id: &DocumentId,
        bytes: &[u8],
        synced: &[cairn_core::ChangeHash],
    ) -> Result<(), ClientError> {
        storage::put_document(&self.db, id, bytes, synced).await
    }

    /// One sync round for `doc`: sends what the server has not acknowledged, merges what the
    /// server has that `doc` lacks, and stores the result.
    pub async fn sync(&self, doc: &mut Document, remote: &Remote) -> Result<(), ClientError> {
        let request = SyncRequest {
            request: 1,
            documents: vec![doc.sync_request(new_op_id())],
        };
        let response = send_sync(remote, request).await?;
        let id = doc.id();
        for d in response.documents.iter().filter(|d| d.document == id) {
            doc.apply_response(d)?;
        }
        self.save(doc).await
    }

    /// Closes the IndexedDB connection.
    pub fn close(self) {
        self.db.close();
    }
}

/// A fresh operation id.
pub fn new_op_id() -> OpId {
    OpId::from_bytes(*uuid::Uuid::new_v4().as_bytes())
}

/// `POST /v1/sync` with `request`.
pub async fn send_sync(remote: &Remote, request: SyncRequest) -> Result<SyncResponse, ClientError> {
    let url = format!("{}/v1/sync", remote.server.trim_end_matches('/'));
    let frame = Message::SyncRequest(request).encode();
    let reply = net::send(
        "POST",
        &url,
        Some(&remote.token),
        Some((MEDIA_TYPE, &frame)),
    )
    .await?;
    if reply.status != 200 {
        return Err(reply.into_error());
    }
    match Message::decode(&reply.body).map_err(|e| ClientError::Protocol(e.to_string()))? {
        Message::SyncResponse(response) => Ok(response),
        other => Err(ClientError::Protocol(format!(
            "expected a sync response, got {other:?}"
        ))),
    }
}
