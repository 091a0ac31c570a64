//! The JSON bodies of the API as types: handlers build their answers from these, and the
//! OpenAPI document (`openapi`) is generated from the same types, so the two cannot drift.
//! Errors are built in `error` and described here ([`ErrorBody`]); a test checks real
//! answers of every route against the document.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::{FileRecord, Member, Role};

/// A file as its user sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    /// The root CID (CIDv0 or CIDv1, as uploaded).
    pub cid: String,
    pub name: String,
    /// Its media type.
    #[serde(rename = "type")]
    pub content_type: String,
    /// File bytes.
    pub size: i64,
    /// Bytes of every block of its IPFS DAG.
    pub dag_size: i64,
    /// When this user stored it (Unix milliseconds).
    pub created_at: i64,
    /// `none` (no pinning backend), `queued`, `pinning` (in progress, or on fewer backends
    /// than `--pin-replicas` so far), `pinned` or `failed`.
    pub pin: String,
    pub pin_attempts: i64,
    /// Why the last pin attempt failed.
    pub pin_error: Option<String>,
    /// What each pinning backend held at the last attempt (empty before any).
    pub pins: Vec<crate::pinning::PinCopy>,
    /// The JSON object the uploader attached.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
}

impl From<&FileRecord> for FileInfo {
    fn from(record: &FileRecord) -> Self {
        Self {
            cid: record.cid.clone(),
            name: record.name.clone(),
            content_type: record.content_type.clone(),
            size: record.size,
            dag_size: record.dag_size,
            created_at: record.created_ms,
            pin: record.pin_status.clone(),
            pin_attempts: record.pin_attempts,
            pin_error: record.pin_error.clone(),
            pins: record
                .pin_copies
                .as_deref()
                .and_then(|copies| serde_json::from_str(copies).ok())
                .unwrap_or_default(),
            metadata: serde_json::from_str(&record.metadata)
                .unwrap_or_else(|_| serde_json::json!({})),
        }
    }
}

/// A file just stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StoredFile {
    #[serde(flatten)]
    pub file: FileInfo,
    /// Whether the content was already on the server (it was not stored again).
    pub deduplicated: bool,
}

/// Files.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FileList {
    pub files: Vec<FileInfo>,
}

/// A page of the caller's files, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FilePage {
    pub files: Vec<FileInfo>,
    /// The `cursor` of the next page; `null` on the last.
    pub next: Option<String>,
}

/// `POST /v1/files/search`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SearchRequest {
    /// Words; each must start a word of the name, type or metadata.
    pub query: String,
    /// Only types starting with this, e.g. `image/`.
    #[serde(rename = "type")]
    pub type_prefix: Option<String>,
    /// At most this many (1 to 1000, default 50).
    pub limit: Option<i64>,
}

/// A document the caller may read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DocumentEntry {
    /// automerge-repo document id.
    pub id: String,
    pub role: Role,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DocumentList {
    pub documents: Vec<DocumentEntry>,
}

/// A document's access list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemberList {
    pub document: String,
    pub owner: String,
    pub members: Vec<Member>,
}

/// `PUT /v1/docs/{id}/members/{user}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RoleBody {
    /// `writer` or `reader`.
    pub role: Role,
}

/// `POST /v1/uploads`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUpload {
    /// The CID the client computed.
    pub cid: String,
    pub size: u64,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub content_type: Option<String>,
    /// A JSON object (at most 16 KiB).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

/// A resumable upload session.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadSession {
    pub id: String,
    pub cid: String,
    /// Where to continue: the bytes received and kept.
    pub offset: i64,
    pub size: i64,
    /// Whole chunks of this size are kept; a torn tail is sent again.
    pub chunk_size: u64,
}

/// `POST /v1/uploads` for a file the caller already has: nothing to send.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UploadDone {
    /// Always `true`.
    pub complete: bool,
    pub file: FileInfo,
}

/// `PATCH /v1/uploads/{id}` before the last byte.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UploadProgress {
    pub offset: i64,
    /// Always `false` (the last byte answers 201 with the stored file).
    pub complete: bool,
}

/// `POST /v1/dev/token`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenRequest {
    pub user: String,
}

/// A development token.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DevToken {
    pub user: String,
    pub token: String,
    /// Seconds.
    pub expires_in: u64,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// `GET /v1/ready` when ready.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Ready {
    /// `ready`.
    pub status: String,
    /// `database`, `migrations`, `blockstore`, `shutdown`: `ok` or what is wrong.
    #[schema(value_type = Object)]
    pub checks: serde_json::Value,
}

/// Every error: `{"error": {...}}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// Stable and documented (`E_UNAUTHORIZED`, `E_RATE_LIMITED`, ...).
    pub code: String,
    /// For people; may change.
    pub message: String,
    /// The documents concerned (`E_FORBIDDEN`).
    pub documents: Option<Vec<String>>,
    /// Where an upload continues (`E_OFFSET_MISMATCH`).
    pub offset: Option<i64>,
    /// The CIDs that differ (`E_CID_MISMATCH`).
    pub declared: Option<String>,
    pub computed: Option<String>,
    /// When to try again (`E_RATE_LIMITED`).
    pub retry_after_ms: Option<u64>,
    /// What failed (`GET /v1/ready`).
    #[schema(value_type = Option<Object>)]
    pub checks: Option<serde_json::Value>,
}
