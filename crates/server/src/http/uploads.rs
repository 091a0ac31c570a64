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
//! The server keeps whole chunks (256 KiB, the importer's leaves) durably on disk, so a
//! dropped connection, a page reload or a server restart resumes from the last whole chunk
//! received; a torn tail is dropped and sent again. Nothing is stored as a file until every
//! byte is there and the whole file hashes to the declared CID.

use std::io::{Read, Seek, Write};
use std::path::PathBuf;

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

/// Sessions with a `PATCH` in progress in this process: a second one at the same time is
/// refused (409), so two requests never append to one file at once. (Sessions live on the
/// replica whose disk holds their bytes.)
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

fn part_path(state: &AppState, id: &str) -> PathBuf {
    state.files.uploads_dir.join(id)
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
    let path = part_path(&state, &upload.id);
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(path.parent().unwrap_or(&path))?;
        std::fs::File::create(&path)?.sync_all()
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
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
    let path = part_path(&state, &id);
    let size = upload.size;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(internal)?;
    let mut received = upload.received;
    let mut body = request.into_body().into_data_stream();
    let mut failure = None;
    while let Some(chunk) = futures::StreamExt::next(&mut body).await {
        match chunk {
            Ok(bytes) => {
                if received + bytes.len() as i64 > size {
                    failure = Some(Error::BadRequest(format!(
                        "the upload is {size} bytes; this goes past its end"
                    )));
                    break;
                }
                received += bytes.len() as i64;
                let (f, written) = tokio::task::spawn_blocking(move || {
                    let written = file.write_all(&bytes);
                    (file, written)
                })
                .await
                .map_err(internal)?;
                file = f;
                written.map_err(internal)?;
            }
            Err(e) => {
                failure = Some(Error::BadBody(e.to_string()));
                break;
            }
        }
    }
    // Keep whole chunks (or everything, at the end) durably; drop a torn tail.
    let chunk = DEFAULT_CHUNK_SIZE as i64;
    let durable = if received == size {
        size
    } else {
        received / chunk * chunk
    }
    .max(upload.received);
    tokio::task::spawn_blocking(move || {
        file.set_len(u64::try_from(durable).unwrap_or(0))?;
        file.sync_all()
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    if durable != upload.received {
        state
            .files
            .store
            .set_upload_received(&id, durable, now_ms())
            .await?;
    }
    if let Some(failure) = failure {
        return Err(failure);
    }
    if durable < size {
        let progress = UploadProgress {
            offset: durable,
            complete: false,
        };
        return Ok(Json(progress).into_response());
    }
    finish(&state, &user, upload, path).await
}

/// Every byte is there: import the file, keep it if its CID is the declared one.
async fn finish(
    state: &AppState,
    user: &str,
    upload: UploadRecord,
    path: PathBuf,
) -> Result<Response, Error> {
    let declared: Cid = parse_cid(&upload.cid)?;
    let blocks = state.files.blocks.clone();
    let options = ImportOptions {
        version: declared.version(),
        ..ImportOptions::default()
    };
    let part = path.clone();
    let imported = tokio::task::spawn_blocking(move || {
        let mut import = Upload::new(&blocks, options)?;
        let mut file = std::fs::File::open(&part)?;
        file.rewind()?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            import.write(&buf[..n])?;
        }
        import.finish()
    })
    .await
    .map_err(internal)?;
    let (imported, staging) = imported.map_err(internal)?;
    let stored = Stored {
        name: Some(upload.name),
        content_type: upload.content_type,
        metadata: Some(upload.metadata),
    };
    let result = store_imported(state, user, Some(declared), imported, staging, stored).await;
    // Stored or refused, the session is over (a storage failure keeps it for a retry).
    if !matches!(result, Err(Error::Internal(_) | Error::Unavailable(_))) {
        state.files.store.delete_upload(&upload.id).await?;
        let _ = tokio::fs::remove_file(&path).await;
    }
    result
}
