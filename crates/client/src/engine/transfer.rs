//! Files between this device and the server. The outbox's file operations are carried out
//! one at a time: an upload goes through the resumable upload API in pieces read from the
//! stored blocks, and continues from the server's offset after a reload or a dropped
//! connection; a deletion removes the user's reference. Downloads fetch a file's CAR from the
//! trustless gateway, and every block is checked (it must be the one the DAG names next, and
//! hash to its CID) before it is stored.

use cairn_core::content::car::VerifiedCar;
use cairn_core::content::{Cid, FileWalk};
use cairn_core::outbox::{FileUpload, OpKind, Outbox, OutboxEntry};
use cairn_core::retry::Failure;
use js_sys::Reflect;
use wasm_bindgen::{JsValue, intern};

use super::files::{BlockBatch, BlockReader, parse_cid};
use super::{Engine, now};
use crate::net::{self, Call, Reply};
use crate::storage::files::{self, FileEntry};
use crate::storage::{self};
use crate::{ClientError, Remote};

/// File bytes per `PATCH` of an upload: whole chunks, so the server keeps all of a piece.
const PIECE_BYTES: usize = 1 << 20;
/// Received blocks are stored in transactions of about this many bytes.
const STORE_BYTES: usize = 4 << 20;

/// Progress of a transfer: `(cid, bytes done, bytes in all)`.
pub type Progress<'a> = &'a dyn Fn(&str, f64, f64);

/// What [`Engine::file_op`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOp {
    /// No file operation is queued.
    Idle,
    /// Some are queued, but none may go now (a retry's time has not come, or an upload waits
    /// for its document's earlier changes to reach the server).
    Waiting,
    /// This engine is already carrying one out.
    Busy,
    /// One is done: `kind` is `upload` or `delete`.
    Done { cid: String, kind: &'static str },
    /// One failed with `error`; `retryable`: it will be tried again later.
    Failed {
        cid: String,
        kind: &'static str,
        error: ClientError,
        retryable: bool,
    },
}

fn field(json: &JsValue, key: &str) -> JsValue {
    Reflect::get(json, &JsValue::from_str(intern(key))).unwrap_or(JsValue::UNDEFINED)
}

fn expect(reply: Reply, statuses: &[u16]) -> Result<Reply, ClientError> {
    if statuses.contains(&reply.status) {
        Ok(reply)
    } else {
        Err(reply.into_error())
    }
}

impl Engine {
    /// Carries out the next file operation that may go now, if any.
    pub async fn file_op(
        &self,
        remote: &Remote,
        progress: Progress<'_>,
    ) -> Result<FileOp, ClientError> {
        if std::mem::replace(&mut self.state().transferring, true) {
            return Ok(FileOp::Busy);
        }
        let result = self.next_file_op(remote, progress).await;
        self.state().transferring = false;
        result
    }

    /// When the next file operation may go (ms since the epoch), if one waits only for time.
    pub async fn next_file_due(&self) -> Result<Option<f64>, ClientError> {
        let outbox = Outbox::restore(storage::read_outbox(self.db()).await?);
        Ok(outbox.next_file_due().map(|t| t as f64))
    }

    async fn next_file_op(
        &self,
        remote: &Remote,
        progress: Progress<'_>,
    ) -> Result<FileOp, ClientError> {
        let mut outbox = Outbox::restore(storage::read_outbox(self.db()).await?);
        let Some(id) = outbox.take_file_op(now() as u64) else {
            return Ok(if outbox.undelivered_files() > 0 {
                FileOp::Waiting
            } else {
                FileOp::Idle
            });
        };
        let Some(entry) = outbox.get(&id).cloned() else {
            return Ok(FileOp::Idle);
        };
        storage::update_outbox(self.db(), std::slice::from_ref(&entry)).await?;
        let (cid, kind, result) = match &entry.kind {
            OpKind::FileUpload(upload) => (
                upload.cid,
                "upload",
                self.upload(remote, &entry, upload, progress).await,
            ),
            OpKind::FileDelete { cid } => (
                *cid,
                "delete",
                self.delete_remote(remote, cid).await.map(|()| None),
            ),
            OpKind::DocumentChanges { .. } => return Ok(FileOp::Idle),
        };
        let cid_text = cid.to_string();
        match result {
            Ok(record) => {
                files::finish_op(self.db(), entry.seq, record.as_ref()).await?;
                Ok(FileOp::Done {
                    cid: cid_text,
                    kind,
                })
            }
            Err(error) => {
                let retryable = error.retryable() || error.code() == "E_UPLOAD_BUSY";
                let failure = if retryable {
                    Failure::Retryable
                } else {
                    Failure::Permanent
                };
                self.fail(&[id], failure, error.code()).await?;
                if !retryable
                    && kind == "upload"
                    && let Some(record) = files::get_file(self.db(), &cid_text).await?
                {
                    let failed = FileEntry {
                        state: "failed".into(),
                        code: Some(error.code().to_owned()),
                        ..record
                    };
                    files::put_file(self.db(), &failed).await?;
                }
                Ok(FileOp::Failed {
                    cid: cid_text,
                    kind,
                    error,
                    retryable,
                })
            }
        }
    }

    /// Uploads a file (unless the server has it already) and attaches it to its document;
    /// the file's record as it stands afterwards (`None`: cancelled, or no longer here).
    async fn upload(
        &self,
        remote: &Remote,
        entry: &OutboxEntry,
        upload: &FileUpload,
        progress: Progress<'_>,
    ) -> Result<Option<FileEntry>, ClientError> {
        if upload.cancelled {
            return Ok(None);
        }
        let key = upload.cid.to_string();
        let record = files::get_file(self.db(), &key).await?;
        if !self
            .send_file(remote, entry, upload, record.as_ref(), progress)
            .await?
        {
            return Ok(None);
        }
        if let Some(document) = upload.document {
            let url = remote.url(&format!("/v1/docs/{document}/files/{key}"));
            expect(
                net::send("PUT", &url, Some(&remote.token), None).await?,
                &[204],
            )?;
        }
        progress(&key, upload.size as f64, upload.size as f64);
        Ok(record.map(|r| FileEntry {
            state: "uploaded".into(),
            upload_id: None,
            code: None,
            ..r
        }))
    }

    /// Sends the file's bytes through an upload session: the one recorded if the server
    /// still has it, else a new one. `false` if the upload was cancelled meanwhile.
    async fn send_file(
        &self,
        remote: &Remote,
        entry: &OutboxEntry,
        upload: &FileUpload,
        record: Option<&FileEntry>,
        progress: Progress<'_>,
    ) -> Result<bool, ClientError> {
        let key = upload.cid.to_string();
        let (size, total) = (upload.size, upload.size as f64);
        let mut session = record.and_then(|r| r.upload_id.clone());
        // A session may vanish (expired, or finished by a request whose answer was lost):
        // then a new one is asked for, which says if the file is already stored.
        for _ in 0..3 {
            let (id, mut offset) = match session.take() {
                Some(id) => {
                    let url = remote.url(&format!("/v1/uploads/{id}"));
                    let reply = net::send("GET", &url, Some(&remote.token), None).await?;
                    if reply.status == 404 {
                        self.set_session(&key, None).await?;
                        continue;
                    }
                    let json = expect(reply, &[200])?.json()?;
                    (id, field(&json, "offset").as_f64().unwrap_or(0.0) as u64)
                }
                None => match self.new_session(remote, upload).await? {
                    Some(id) => (id, 0),
                    None => return Ok(true), // the server has it
                },
            };
            if record.is_some() {
                self.set_session(&key, Some(&id)).await?;
            }
            progress(&key, offset as f64, total);
            let url = remote.url(&format!("/v1/uploads/{id}"));
            let mut walk = FileWalk::new(upload.cid, size, offset, size);
            let mut reader = BlockReader::default();
            loop {
                if self.cancelled(entry.seq).await? {
                    return Ok(false);
                }
                let piece = self.piece(&mut walk, &mut reader).await?;
                if piece.is_empty() && offset < size {
                    return Err(ClientError::Corrupt(format!(
                        "the stored blocks of {key} end at byte {offset} of {size}"
                    )));
                }
                let at = offset.to_string();
                let reply = net::call(Call {
                    method: "PATCH",
                    url: &url,
                    token: Some(&remote.token),
                    headers: &[("upload-offset", &at)],
                    body: Some(("application/offset+octet-stream", &piece)),
                })
                .await?;
                match reply.status {
                    201 => return Ok(true),
                    200 | 409 => {
                        let json = reply.json()?;
                        let error = field(&json, "error");
                        let next = if error.is_undefined() {
                            field(&json, "offset")
                        } else if field(&error, "code").as_string().as_deref()
                            == Some("E_OFFSET_MISMATCH")
                        {
                            field(&error, "offset")
                        } else {
                            return Err(reply.into_error());
                        };
                        let next = next.as_f64().ok_or_else(|| {
                            ClientError::Protocol("an upload answer without an offset".into())
                        })? as u64;
                        if next != walk.offset() {
                            walk = FileWalk::new(upload.cid, size, next, size);
                            reader = BlockReader::default();
                        }
                        offset = next;
                        progress(&key, offset as f64, total);
                    }
                    404 => {
                        self.set_session(&key, None).await?;
                        break;
                    }
                    _ => return Err(reply.into_error()),
                }
            }
        }
        Err(ClientError::Protocol(
            "the server kept dropping the upload session".into(),
        ))
    }

    /// `POST /v1/uploads`: a new session's id, or `None` if the server already has the file.
    async fn new_session(
        &self,
        remote: &Remote,
        upload: &FileUpload,
    ) -> Result<Option<String>, ClientError> {
        let body = js_sys::Object::new();
        let set = |k: &str, v: JsValue| Reflect::set(&body, &k.into(), &v);
        let _ = set("cid", upload.cid.to_string().into());
        let _ = set("size", (upload.size as f64).into());
        let _ = set("name", upload.name.clone().into());
        let _ = set("type", upload.content_type.clone().into());
        let metadata = js_sys::JSON::parse(&upload.metadata).unwrap_or(JsValue::NULL);
        if metadata.is_object() {
            let _ = set("metadata", metadata);
        }
        let text: String = js_sys::JSON::stringify(&body)
            .map(String::from)
            .unwrap_or_default();
        let url = remote.url("/v1/uploads");
        let reply = net::send(
            "POST",
            &url,
            Some(&remote.token),
            Some(("application/json", text.as_bytes())),
        )
        .await?;
        let json = expect(reply, &[200, 201])?.json()?;
        if field(&json, "complete").as_bool() == Some(true) {
            return Ok(None);
        }
        field(&json, "id")
            .as_string()
            .map(Some)
            .ok_or_else(|| ClientError::Protocol("an upload session without an id".into()))
    }

    /// The next piece of the file from the stored blocks (each checked against its CID).
    async fn piece(
        &self,
        walk: &mut FileWalk,
        reader: &mut BlockReader,
    ) -> Result<Vec<u8>, ClientError> {
        let mut piece = Vec::with_capacity(PIECE_BYTES);
        while piece.len() < PIECE_BYTES {
            let Some((cid, array)) = reader.next(self, walk).await? else {
                break;
            };
            let array = array.ok_or_else(|| {
                ClientError::NotFound(format!("block {cid} of a queued upload (storage lost?)"))
            })?;
            let data = walk
                .block(array.to_vec())
                .map_err(|e| ClientError::Corrupt(e.to_string()))?;
            piece.extend_from_slice(&data);
        }
        Ok(piece)
    }

    /// Whether the upload queued as `seq` was cancelled (or has left the outbox).
    async fn cancelled(&self, seq: u64) -> Result<bool, ClientError> {
        Ok(match storage::read_outbox_entry(self.db(), seq).await? {
            Some(entry) => matches!(&entry.kind, OpKind::FileUpload(u) if u.cancelled),
            None => true,
        })
    }

    /// Records the upload session of file `cid` (so a reload continues it).
    async fn set_session(&self, cid: &str, id: Option<&str>) -> Result<(), ClientError> {
        let Some(record) = files::get_file(self.db(), cid).await? else {
            return Ok(());
        };
        if record.upload_id.as_deref() == id {
            return Ok(());
        }
        let state = if id.is_some() { "uploading" } else { "local" };
        files::put_file(
            self.db(),
            &FileEntry {
                upload_id: id.map(str::to_owned),
                state: state.into(),
                ..record
            },
        )
        .await
    }

    /// `DELETE /v1/files/{cid}`; a file the server does not have is as good as deleted.
    async fn delete_remote(&self, remote: &Remote, cid: &Cid) -> Result<(), ClientError> {
        let url = remote.url(&format!("/v1/files/{cid}"));
        expect(
            net::send("DELETE", &url, Some(&remote.token), None).await?,
            &[204, 404],
        )?;
        Ok(())
    }

    /// Downloads file `cid` from the server into this device's storage, checking every block
    /// before it is stored; a file that does not verify is refused (`E_CORRUPT`) and none of
    /// its new blocks is kept. Returns its record (`state: remote` unless it was here).
    pub async fn download(
        &self,
        remote: &Remote,
        cid: &str,
        progress: Progress<'_>,
    ) -> Result<FileEntry, ClientError> {
        let root = parse_cid(cid)?;
        let key = root.to_string();
        let info_url = remote.url(&format!("/v1/files/{key}/info"));
        let info = expect(
            net::send("GET", &info_url, Some(&remote.token), None).await?,
            &[200],
        )?
        .json()?;
        let total = field(&info, "dagSize").as_f64().unwrap_or(0.0);
        let mut added = Vec::new();
        let result = self
            .fetch_car(remote, root, total, progress, &mut added)
            .await;
        if let Err(e) = result {
            let _ = files::delete_blocks(self.db(), &added).await;
            return Err(e);
        }
        let text = |k: &str| field(&info, k).as_string().unwrap_or_default();
        let metadata = js_sys::JSON::stringify(&field(&info, "metadata"))
            .map(String::from)
            .unwrap_or_else(|_| "{}".into());
        let entry = match files::get_file(self.db(), &key).await? {
            Some(existing) => existing,
            None => FileEntry {
                cid: key,
                name: text("name"),
                content_type: text("type"),
                size: field(&info, "size").as_f64().unwrap_or(0.0),
                metadata,
                state: "remote".into(),
                created_at: field(&info, "createdAt").as_f64().unwrap_or_else(now),
                upload_id: None,
                code: None,
            },
        };
        files::put_file(self.db(), &entry).await?;
        Ok(entry)
    }

    async fn fetch_car(
        &self,
        remote: &Remote,
        root: Cid,
        total: f64,
        progress: Progress<'_>,
        added: &mut Vec<String>,
    ) -> Result<(), ClientError> {
        let key = root.to_string();
        let url = remote.url(&format!("/ipfs/{key}?format=car"));
        let mut body = net::open(Call {
            method: "GET",
            url: &url,
            token: Some(&remote.token),
            headers: &[("accept", "application/vnd.ipld.car")],
            body: None,
        })
        .await?;
        if body.status != 200 {
            let mut bytes = Vec::new();
            while let Some(piece) = body.next().await? {
                bytes.extend(piece.to_vec());
            }
            return Err(Reply {
                status: body.status,
                body: bytes,
            }
            .into_error());
        }
        let corrupt = |e: cairn_core::content::car::CarError| {
            ClientError::Corrupt(format!("the server's copy of {key} does not verify: {e}"))
        };
        let (mut car, mut batch, mut received) =
            (VerifiedCar::new(root), BlockBatch::default(), 0.0);
        loop {
            let Some(piece) = body.next().await? else {
                break;
            };
            car.push(&piece.to_vec());
            loop {
                let checked = match car.next_pending() {
                    Ok(Some((cid, data))) => {
                        let digest = crate::hash::digests(&[&data]).await[0];
                        car.accept(&data, digest).map(|()| Some((cid, data)))
                    }
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                };
                match checked {
                    Ok(Some((cid, data))) => {
                        received += data.len() as f64;
                        batch.push(cid, data);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        body.cancel();
                        return Err(corrupt(e));
                    }
                }
            }
            if batch.bytes >= STORE_BYTES {
                added.extend(batch.store(self).await?);
            }
            progress(&key, received, total.max(received));
        }
        car.finish().map_err(corrupt)?;
        added.extend(batch.store(self).await?);
        Ok(())
    }
}
