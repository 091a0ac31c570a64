//! Resumable uploads, for large files and flaky networks (the SDK uses them):
//!
//! - `POST /v1/uploads` `{"cid", "size", "name"?, "type"?, "metadata"?}` → 201
//!   `{"id", "offset": 0, "size", "chunkSize"}`: a session for a file the client has hashed;
//!   or 200 `{"complete": true, "file": info}` when the caller already has that file (an
//!   upload whose answer was lost, or one made from another device): nothing to send.
//! - `PATCH /v1/uploads/{id}` with `upload-offset: <n>` and the next bytes → `{"offset"}`, or,
//!   with the last byte, 201 and the stored file's info (422 `E_CID_MISMATCH` stores nothing).
//! - `GET /v1/uploads/{id}` → `{"id", "offset", "size", "cid"}`: where to continue.
//!
//! The server keeps whole chunks (256 KiB, the importer's leaves) durably in the blockstore
//! (the fs backend's upload files, or S3 objects), recording each write's end in the database
//! after it is stored, so a dropped connection, a page reload, a server restart or another
//! replica resumes from the last whole chunk received; a torn tail is dropped and sent again.
//! Nothing is stored as a file until every byte is there and the whole file hashes to the
//! declared CID.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_core::content::importer::DEFAULT_CHUNK_SIZE;
use cairn_core::content::{Cid, ImportOptions};

use super::files::{
    Stored, info_json, internal, now_ms, parse_cid, parse_metadata, store_imported,
};
use super::schema::{NewUpload, UploadDone, UploadProgress, UploadSession};
use super::{AppState, Error};
use crate::auth::User;
use crate::files::Upload;
use crate::store::UploadRecord;

/// Bytes written to the blockstore at a time (whole chunks).
const WRITE: usize = 4 * DEFAULT_CHUNK_SIZE;

/// Sessions with a `PATCH` in progress in this process: a second one at the same time is
/// refused (409). Across replicas the database decides: each write's end is recorded only if
/// the session is still where that request found it, so of two requests appending at once on
/// different replicas one gets 409.
static BUSY: std::sync::LazyLock<std::sync::Mutex<std::collections::HashSet<String>>> =
    std::sync::LazyLock::new(Default::default);

struct Busy(String);

impl Busy {
    fn claim(id: &str) -> Result<Self, Error> {
        let mut busy = BUSY.lock().unwrap_or_else(|p| p.into_inner());
        if !busy.insert(id.to_owned()) {
            return Err(Error::UploadBusy);
        }
        Ok(Self(id.to_owned()))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.0);
    }
}

fn session_json(upload: &UploadRecord) -> UploadSession {
    UploadSession {
        id: upload.id.clone(),
        cid: upload.cid.clone(),
        offset: upload.received,
        size: upload.size,
        chunk_size: DEFAULT_CHUNK_SIZE as u64,
    }
}

/// `POST /v1/uploads`.
pub async fn create(
    State(state): State<AppState>,
    User(user): User,
    body: Result<Json<NewUpload>, JsonRejection>,
) -> Result<Response, Error> {
    let Json(new) = body.map_err(|e| Error::BadRequest(e.body_text()))?;
    let cid = parse_cid(&new.cid)?;
    let limits = &state.files.limits;
    if new.size > limits.max_file_bytes {
        return Err(Error::FileTooLarge {
            limit: limits.max_file_bytes,
        });
    }
    let content_type = new
        .content_type
        .unwrap_or_else(|| "application/octet-stream".into());
    if !limits.allows(&content_type) {
        return Err(Error::UnsupportedFileType(content_type));
    }
    let metadata = match new.metadata {
        Some(value) => parse_metadata(&value.to_string())?,
        None => "{}".into(),
    };
    if let Some(file) = state.files.store.file(&user, &cid.to_string()).await? {
        let done = UploadDone {
            complete: true,
            file: info_json(&file),
        };
        return Ok(Json(done).into_response());
    }
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| internal(anyhow::anyhow!("no randomness: {e}")))?;
    let upload = UploadRecord {
        id: hex::encode(id),
        owner: user,
        cid: cid.to_string(),
        size: i64::try_from(new.size).map_err(internal)?,
        received: 0,
        name: new.name.unwrap_or_default(),
        content_type,
        metadata,
    };
    state.files.store.create_upload(&upload, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(session_json(&upload))).into_response())
}

async fn session(state: &AppState, user: &str, id: &str) -> Result<UploadRecord, Error> {
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::NotFound);
    }
    state
        .files
        .store
        .upload(user, id)
        .await?
        .ok_or(Error::NotFound)
}

/// `GET /v1/uploads/{id}`.
pub async fn status(
    State(state): State<AppState>,
    User(user): User,
    Path(id): Path<String>,
) -> Result<Json<UploadSession>, Error> {
    Ok(Json(session_json(&session(&state, &user, &id).await?)))
}

/// `PATCH /v1/uploads/{id}`.
///
/// Each write is recorded as soon as it is stored, so a request cancelled with its
/// connection keeps every write before the one in flight (and releases the session at once:
/// a task outliving its connection would hold it busy).
pub async fn append(
    State(state): State<AppState>,
    User(user): User,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, Error> {
    let upload = session(&state, &user, &id).await?;
    let _busy = Busy::claim(&id)?;
    let offset = request
        .headers()
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .ok_or_else(|| Error::BadRequest("upload-offset (a byte count) is required".into()))?;
    if offset != upload.received {
        return Err(Error::OffsetMismatch {
            offset: upload.received,
        });
    }
    let size = upload.size;
    let mut received = upload.received;
    let mut buf = bytes::BytesMut::with_capacity(WRITE);
    let mut body = request.into_body().into_data_stream();
    let mut failure = None;
    let chunk = DEFAULT_CHUNK_SIZE;
    loop {
        let next = futures::StreamExt::next(&mut body).await;
        let end = match next {
            Some(Ok(bytes)) => {
                let buffered = received + (buf.len() + bytes.len()) as i64;
                if buffered > size {
                    failure = Some(Error::BadRequest(format!(
                        "the upload is {size} bytes; this goes past its end"
                    )));
                    true
                } else {
                    buf.extend_from_slice(&bytes);
                    false
                }
            }
            Some(Err(e)) => {
                failure = Some(Error::BadBody(e.to_string()));
                true
            }
            None => true,
        };
        // Store whole chunks (or everything, at the end of the file); drop a torn tail.
        let last = received + buf.len() as i64 == size;
        let take = if last {
            buf.len()
        } else if end {
            buf.len() / chunk * chunk
        } else if buf.len() >= WRITE {
            WRITE
        } else {
            0
        };
        if take > 0 {
            let bytes = buf.split_to(take).freeze();
            let offset = u64::try_from(received).map_err(internal)?;
            state.files.blocks.write_part(&id, offset, bytes).await?;
            let next = received + take as i64;
            if !state
                .files
                .store
                .set_upload_received(&id, received, next, now_ms())
                .await?
            {
                return Err(Error::UploadBusy);
            }
            received = next;
        }
        if end {
            break;
        }
    }
    if let Some(failure) = failure {
        return Err(failure);
    }
    if received < size {
        let progress = UploadProgress {
            offset: received,
            complete: false,
        };
        return Ok(Json(progress).into_response());
    }
    finish(&state, &user, upload).await
}

/// Every byte is there: import the file, keep it if its CID is the declared one.
async fn finish(state: &AppState, user: &str, upload: UploadRecord) -> Result<Response, Error> {
    let declared: Cid = parse_cid(&upload.cid)?;
    let options = ImportOptions {
        version: declared.version(),
        ..ImportOptions::default()
    };
    let size = u64::try_from(upload.size).map_err(internal)?;
    let mut import = Upload::new(&state.files, options).await?;
    let mut parts = state.files.blocks.read_parts(&upload.id, size);
    while let Some(part) = futures::StreamExt::next(&mut parts).await {
        import.write(Vec::from(part?)).await?;
    }
    let (imported, staging) = import.finish().await?;
    let stored = Stored {
        name: Some(upload.name),
        content_type: upload.content_type,
        metadata: Some(upload.metadata),
    };
    let result = store_imported(state, user, Some(declared), imported, staging, stored).await;
    // Stored or refused, the session is over (a storage failure keeps it for a retry).
    if !matches!(result, Err(Error::Internal(_) | Error::Unavailable(_))) {
        state.files.store.delete_upload(&upload.id).await?;
        if let Err(e) = state.files.blocks.delete_parts(&upload.id).await {
            tracing::warn!(id = %upload.id, error = %e, "cannot remove a finished upload's bytes");
        }
    }
    result
}
