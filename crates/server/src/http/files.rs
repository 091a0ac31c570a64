//! File resources: streaming upload (raw body or multipart) verified against the declared
//! CID, streaming download with `Range` and `ETag`, info, listing and removal.
//!
//! Uploaded files are served with `Content-Security-Policy: sandbox` and `nosniff`, so a
//! user's HTML or SVG can never run script on the app's origin.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_core::content::{Cid, CidVersion, ImportOptions, Imported};
use serde::Deserialize;

use super::schema::{FileInfo, FileList, FilePage, SearchRequest, StoredFile};
use super::{AppState, Error};
use crate::auth::User;
use crate::blocks::Staging;
use crate::files::{ReadError, Reader, Upload};
use crate::store::{FileQuery, FileRecord, NewFile, search_words};
use futures::future::BoxFuture;

const OCTET_STREAM: &str = "application/octet-stream";
/// Bytes hashed at a time; their blocks are then staged together (4 leaves, one claim on S3).
/// 4 MiB measured barely faster on the S3 test peer and raised the server's RSS by ~20 MB.
const BATCH: usize = 1 << 20;

pub(super) fn parse_cid(s: &str) -> Result<Cid, Error> {
    s.parse()
        .map_err(|e: cairn_core::content::CidError| Error::InvalidCid(e.to_string()))
}

pub(super) fn internal(e: impl Into<anyhow::Error>) -> Error {
    Error::Internal(e.into())
}

pub(super) use crate::clock::now_ms;

#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    /// The file's name (raw uploads; multipart takes the part's filename).
    name: Option<String>,
    /// The CID the client computed (also accepted as the `x-cairn-cid` header).
    cid: Option<String>,
    /// CID version when no CID is declared: 1 (default) or 0.
    #[serde(rename = "cid-version")]
    cid_version: Option<u8>,
}

/// Feeds body bytes to an [`Upload`] a batch at a time.
struct Feeder {
    upload: Upload,
    buf: Vec<u8>,
    received: u64,
    limit: u64,
}

impl Feeder {
    async fn push(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.received += bytes.len() as u64;
        if self.received > self.limit {
            return Err(Error::FileTooLarge { limit: self.limit });
        }
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Error> {
        let buf = std::mem::replace(&mut self.buf, Vec::with_capacity(BATCH));
        Ok(self.upload.write(buf).await?)
    }

    async fn finish(mut self) -> Result<(Imported, Box<dyn Staging>), Error> {
        self.flush().await?;
        Ok(self.upload.finish().await?)
    }
}

/// `POST /v1/files`: stores a file. The body is the file (`?name=`, `Content-Type` is its
/// type) or `multipart/form-data` with one file part. With a declared CID (`?cid=` or
/// `x-cairn-cid`), a file whose computed CID differs is refused (422) and nothing is stored.
/// Answers `201` with the file's info, `deduplicated: true` if its content was already here.
pub async fn upload(
    State(state): State<AppState>,
    User(user): User,
    query: Result<Query<UploadQuery>, QueryRejection>,
    request: Request,
) -> Result<Response, Error> {
    let Query(query) = query.map_err(|e| Error::BadRequest(e.body_text()))?;
    let headers = request.headers().clone();
    let declared = query
        .cid
        .as_deref()
        .or_else(|| headers.get("x-cairn-cid").and_then(|v| v.to_str().ok()))
        .map(parse_cid)
        .transpose()?;
    let version = match (declared, query.cid_version) {
        (Some(cid), _) => cid.version(),
        (None, None | Some(1)) => CidVersion::V1,
        (None, Some(0)) => CidVersion::V0,
        (None, Some(v)) => return Err(Error::BadRequest(format!("cid-version {v}: use 0 or 1"))),
    };
    let files = state.files.clone();
    let limit = files.limits.max_file_bytes;
    let declared_len = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let content_type = |v: Option<&str>| v.unwrap_or(OCTET_STREAM).trim().to_owned();
    let options = ImportOptions {
        version,
        ..ImportOptions::default()
    };
    let new_feeder = async || -> Result<Feeder, Error> {
        Ok(Feeder {
            upload: Upload::new(&files, options).await?,
            buf: Vec::with_capacity(BATCH),
            received: 0,
            limit,
        })
    };

    let mut metadata = headers
        .get("x-cairn-metadata")
        .map(|v| {
            std::str::from_utf8(v.as_bytes())
                .map_err(|_| Error::BadRequest("x-cairn-metadata is not UTF-8".into()))
                .and_then(parse_metadata)
        })
        .transpose()?;
    let multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let (name, file_type, feeder) = if multipart {
        let mut form = Multipart::from_request(request, &state)
            .await
            .map_err(|e| Error::BadBody(e.body_text()))?;
        let mut field = loop {
            match form.next_field().await {
                Ok(Some(field)) if field.file_name().is_some() || field.name() == Some("file") => {
                    break field;
                }
                Ok(Some(field)) if field.name() == Some("metadata") => {
                    let text = field
                        .text()
                        .await
                        .map_err(|e| Error::BadBody(e.body_text()))?;
                    metadata = Some(parse_metadata(&text)?);
                }
                Ok(Some(_)) => continue,
                Ok(None) => return Err(Error::BadRequest("no file part in the form".into())),
                Err(e) => return Err(Error::BadBody(e.body_text())),
            }
        };
        let name = field.file_name().map(str::to_owned).or(query.name);
        let file_type = content_type(field.content_type());
        if !files.limits.allows(&file_type) {
            return Err(Error::UnsupportedFileType(file_type));
        }
        let mut feeder = new_feeder().await?;
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| Error::BadBody(e.body_text()))?
        {
            feeder.push(&chunk).await?;
        }
        (name, file_type, feeder)
    } else {
        let file_type = content_type(
            headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
        );
        if !files.limits.allows(&file_type) {
            return Err(Error::UnsupportedFileType(file_type));
        }
        if declared_len.is_some_and(|len| len > limit) {
            return Err(Error::FileTooLarge { limit });
        }
        let mut feeder = new_feeder().await?;
        let mut body = request.into_body().into_data_stream();
        while let Some(chunk) = futures::StreamExt::next(&mut body).await {
            let chunk = chunk.map_err(|e| Error::BadBody(e.to_string()))?;
            feeder.push(&chunk).await?;
        }
        (query.name, file_type, feeder)
    };

    let (imported, staging) = feeder.finish().await?;
    let stored = Stored {
        name,
        content_type: file_type,
        metadata,
    };
    store_imported(&state, &user, declared, imported, staging, stored).await
}

/// What the uploader said about a file.
pub(super) struct Stored {
    pub name: Option<String>,
    pub content_type: String,
    pub metadata: Option<String>,
}

/// Keeps an imported file if its CID is the declared one: commits its staged blocks, records
/// it for `user`, queues its pin; answers 201 with its info.
pub(super) async fn store_imported(
    state: &AppState,
    user: &str,
    declared: Option<Cid>,
    imported: Imported,
    staging: Box<dyn Staging>,
    stored: Stored,
) -> Result<Response, Error> {
    let files = &state.files;
    if let Some(declared) = declared
        && declared != imported.root
    {
        return Err(Error::CidMismatch {
            declared: declared.to_string(),
            computed: imported.root.to_string(),
        });
    }
    let cid = imported.root.to_string();
    // Claimed before they move in: garbage collection never deletes a claimed block.
    files
        .store
        .claim_blocks(&cid, &staging.digests(), now_ms())
        .await?;
    staging.commit().await?;
    let name = stored
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| cid.clone());
    let (mut record, new) = files
        .store
        .add_file(&NewFile {
            owner: user,
            cid: &cid,
            name: &name,
            content_type: &stored.content_type,
            size: i64::try_from(imported.size).map_err(internal)?,
            dag_size: i64::try_from(imported.dag_size).map_err(internal)?,
            now_ms: now_ms(),
            metadata: stored.metadata.as_deref().unwrap_or("{}"),
        })
        .await?;
    if let Some(wake) = &files.pin_wake {
        // Queued even for known content: a crash between the two writes must not leave it
        // unqueued (queueing twice is a no-op).
        if files.store.enqueue_pins(Some(&cid), now_ms()).await? > 0 {
            record.pin_status = "queued".into();
            wake.notify_one();
        }
    }
    let body = StoredFile {
        file: info_json(&record),
        deduplicated: !new,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Largest accepted metadata object, serialized.
const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Metadata must be a JSON object of at most [`MAX_METADATA_BYTES`]; returns it compacted.
pub(super) fn parse_metadata(text: &str) -> Result<String, Error> {
    let bad = || {
        Error::BadRequest(format!(
            "metadata must be a JSON object of at most {MAX_METADATA_BYTES} bytes"
        ))
    };
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value @ serde_json::Value::Object(_)) if text.len() <= MAX_METADATA_BYTES => {
            Ok(value.to_string())
        }
        _ => Err(bad()),
    }
}

pub(super) fn info_json(record: &FileRecord) -> FileInfo {
    FileInfo::from(record)
}

/// The caller's file `cid` (parsed), or 404.
pub(super) async fn record(
    state: &AppState,
    user: &str,
    cid: &str,
) -> Result<(Cid, FileRecord), Error> {
    let cid = parse_cid(cid)?;
    let record = state
        .files
        .store
        .readable_file(user, &cid.to_string())
        .await?
        .ok_or(Error::NotFound)?;
    Ok((cid, record))
}

/// `user`'s role on document `id`, which must allow writing when `write`; 403 otherwise
/// (also for a document that does not exist, as everywhere).
async fn document_access(
    state: &AppState,
    user: &str,
    id: &str,
    write: bool,
) -> Result<cairn_core::DocumentId, Error> {
    let document: cairn_core::DocumentId = id
        .parse()
        .map_err(|e: cairn_core::DocumentIdError| Error::InvalidDocumentId(e.to_string()))?;
    match state.documents.store.role(&document, user).await? {
        Some(role) if !write || role.can_write() => Ok(document),
        _ => Err(Error::Forbidden(vec![document])),
    }
}

/// `GET /v1/docs/{id}/files`: the files attached to a document the caller may read.
pub async fn document_files(
    State(state): State<AppState>,
    User(user): User,
    Path(id): Path<String>,
) -> Result<Json<FileList>, Error> {
    let document = document_access(&state, &user, &id, false).await?;
    let files = state
        .files
        .store
        .document_files(&document.to_string())
        .await?;
    Ok(Json(FileList {
        files: files.iter().map(info_json).collect(),
    }))
}

/// `PUT /v1/docs/{id}/files/{cid}`: attaches one of the caller's files to a document they
/// may write; its readers may then read the file.
pub async fn attach(
    State(state): State<AppState>,
    User(user): User,
    Path((id, cid)): Path<(String, String)>,
) -> Result<StatusCode, Error> {
    let document = document_access(&state, &user, &id, true).await?;
    let cid = parse_cid(&cid)?.to_string();
    if state.files.store.file(&user, &cid).await?.is_none() {
        return Err(Error::NotFound);
    }
    state
        .files
        .store
        .attach_file(&document.to_string(), &cid, &user, now_ms())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/docs/{id}/files/{cid}`: detaches a file from a document the caller may write.
pub async fn detach(
    State(state): State<AppState>,
    User(user): User,
    Path((id, cid)): Path<(String, String)>,
) -> Result<StatusCode, Error> {
    let document = document_access(&state, &user, &id, true).await?;
    let cid = parse_cid(&cid)?.to_string();
    if !state
        .files
        .store
        .detach_file(&document.to_string(), &cid)
        .await?
    {
        return Err(Error::NotFound);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/files/{cid}/info`.
pub async fn info(
    State(state): State<AppState>,
    User(user): User,
    Path(cid): Path<String>,
) -> Result<Json<FileInfo>, Error> {
    let (_, record) = record(&state, &user, &cid).await?;
    Ok(Json(info_json(&record)))
}

/// `DELETE /v1/files/{cid}`: removes the caller's reference (the content stays while anyone
/// else references it).
pub async fn delete(
    State(state): State<AppState>,
    User(user): User,
    Path(cid): Path<String>,
) -> Result<StatusCode, Error> {
    let cid = parse_cid(&cid)?;
    let (removed, left) = state
        .files
        .store
        .delete_file(&user, &cid.to_string(), now_ms())
        .await?;
    if !removed {
        return Err(Error::NotFound);
    }
    if left == 0 {
        tracing::info!(%cid, "file content unreferenced; it awaits garbage collection");
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<i64>,
    /// Only types starting with this, e.g. `image/`.
    #[serde(rename = "type")]
    type_prefix: Option<String>,
    /// The `next` of the previous page.
    cursor: Option<String>,
}

/// `GET /v1/files`: the caller's files, newest first: `{"files": [...], "next": cursor|null}`.
pub async fn list(
    State(state): State<AppState>,
    User(user): User,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<FilePage>, Error> {
    let Query(query) = query.map_err(|e| Error::BadRequest(e.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::BadRequest("limit must be between 1 and 1000".into()));
    }
    let before = query
        .cursor
        .as_deref()
        .map(|c| {
            c.split_once('.')
                .and_then(|(ms, cid)| Some((ms.parse::<i64>().ok()?, cid.to_owned())))
                .ok_or_else(|| Error::BadRequest("invalid cursor".into()))
        })
        .transpose()?;
    let page = state
        .files
        .store
        .files(
            &user,
            &FileQuery {
                type_prefix: query.type_prefix,
                before,
                limit: limit + 1,
            },
        )
        .await?;
    let more = page.len() as i64 > limit;
    let page = &page[..page.len().min(limit as usize)];
    let next = more
        .then(|| page.last().map(|f| format!("{}.{}", f.created_ms, f.cid)))
        .flatten();
    Ok(Json(FilePage {
        files: page.iter().map(info_json).collect(),
        next,
    }))
}

/// `POST /v1/files/search` `{"query", "type"?, "limit"?}`: the caller's files whose name,
/// type or metadata have words starting with every word of the query, best first.
pub async fn search(
    State(state): State<AppState>,
    User(user): User,
    body: Result<Json<SearchRequest>, JsonRejection>,
) -> Result<Json<FileList>, Error> {
    let Json(request) = body.map_err(|e| Error::BadRequest(e.body_text()))?;
    let mut words = search_words(&request.query);
    words.truncate(16);
    if words.is_empty() {
        return Err(Error::BadRequest(
            "the query has no words to search for".into(),
        ));
    }
    let limit = request.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(Error::BadRequest("limit must be between 1 and 1000".into()));
    }
    let found = state
        .files
        .store
        .search(&user, &words, request.type_prefix.as_deref(), limit)
        .await?;
    Ok(Json(FileList {
        files: found.iter().map(info_json).collect(),
    }))
}

/// A single `bytes=` range of a `size`-byte file: `Ok(None)` for no (or an ignored
/// multi-range) header, the half-open range otherwise.
fn parse_range(value: &str, size: u64) -> Result<Option<(u64, u64)>, Error> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // multiple ranges: answer with the whole file, as RFC 9110 allows
    }
    let unsatisfiable = Error::RangeNotSatisfiable { size };
    let (first, last) = spec
        .split_once('-')
        .ok_or(Error::BadRequest("bad Range".into()))?;
    let num = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| Error::BadRequest("bad Range".into()))
    };
    let (start, end) = match (first.trim(), last.trim()) {
        ("", "") => return Err(Error::BadRequest("bad Range".into())),
        ("", n) => {
            let n = num(n)?;
            if n == 0 {
                return Err(unsatisfiable);
            }
            (size.saturating_sub(n), size)
        }
        (a, "") => (num(a)?, size),
        (a, b) => {
            let (a, b) = (num(a)?, num(b)?);
            if b < a {
                return Err(Error::BadRequest("bad Range".into()));
            }
            (a, b.saturating_add(1).min(size))
        }
    };
    if start >= size {
        return Err(unsatisfiable);
    }
    Ok(Some((start, end)))
}

/// `GET /v1/files/{cid}`: the file's bytes, streamed and verified block by block.
pub async fn download(
    State(state): State<AppState>,
    User(user): User,
    Path(cid): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let (cid, record) = record(&state, &user, &cid).await?;
    let size = u64::try_from(record.size).map_err(internal)?;
    let etag = format!("\"{cid}\"");
    let header_str = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if header_str(header::IF_NONE_MATCH)
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let if_range_ok = header_str(header::IF_RANGE).is_none_or(|v| v.trim() == etag);
    let range = match header_str(header::RANGE) {
        Some(value) if if_range_ok => parse_range(value, size)?,
        _ => None,
    };
    let (start, end) = range.unwrap_or((0, size));
    let reader = Reader::new(state.files.blocks.clone(), cid, size, start, end);
    let stream = piece_stream(reader, cid, "file download", |r| Box::pin(r.next_piece()));
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let h = response.headers_mut();
    let value = |s: String| HeaderValue::from_str(&s).map_err(internal);
    h.insert(header::CONTENT_TYPE, value(record.content_type.clone())?);
    h.insert(header::CONTENT_LENGTH, value((end - start).to_string())?);
    h.insert(header::ETAG, value(etag)?);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        value(format!(
            "inline; filename*=UTF-8''{}",
            percent_encode(&record.name)
        ))?,
    );
    if range.is_some() {
        h.insert(
            header::CONTENT_RANGE,
            value(format!("bytes {start}-{}/{size}", end.saturating_sub(1)))?,
        );
    }
    Ok(response)
}

/// Reads the next piece from a source (a [`Reader`], a DAG walk).
pub(super) type NextPiece<S, P> =
    for<'a> fn(&'a mut S) -> BoxFuture<'a, Result<Option<P>, ReadError>>;

/// A body stream of the pieces `next` produces from `source`, one at a time (so memory
/// holds one piece); an error ends the response early and is logged.
pub(super) fn piece_stream<S, P>(
    source: S,
    cid: Cid,
    what: &'static str,
    next: NextPiece<S, P>,
) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static
where
    S: Send + 'static,
    P: Into<bytes::Bytes> + Send + 'static,
{
    futures::stream::try_unfold(source, move |mut source| async move {
        match next(&mut source).await {
            Ok(Some(piece)) => Ok(Some((piece.into(), source))),
            Ok(None) => Ok(None),
            Err(e) => {
                tracing::error!(%cid, error = %e, "{what} failed mid-stream");
                Err(std::io::Error::other(e))
            }
        }
    })
}

/// RFC 8187 value characters kept as is; everything else percent-encoded.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |v| parse_range(v, 100);
        assert_eq!(r("bytes=0-9").ok().flatten(), Some((0, 10)));
        assert_eq!(r("bytes=90-").ok().flatten(), Some((90, 100)));
        assert_eq!(r("bytes=-5").ok().flatten(), Some((95, 100)));
        assert_eq!(r("bytes=50-500").ok().flatten(), Some((50, 100)));
        assert_eq!(r("bytes=0-1,5-6").ok().flatten(), None);
        assert!(matches!(
            r("bytes=100-"),
            Err(Error::RangeNotSatisfiable { size: 100 })
        ));
        assert!(matches!(r("bytes=5-1"), Err(Error::BadRequest(_))));
        assert!(matches!(r("bytes=x-1"), Err(Error::BadRequest(_))));
    }

    #[test]
    fn filenames_are_percent_encoded() {
        assert_eq!(percent_encode("a b\"é.txt"), "a%20b%22%C3%A9.txt");
    }
}
