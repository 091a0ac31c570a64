//! The one error type of the HTTP API. Every failure becomes a status code and a JSON body
//! `{"error": {"code": "E_...", "message": "...", ...}}` whose `code` is stable and documented;
//! internal errors are logged and answered with a generic message, never leaked.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_core::DocumentId;
use cairn_core::sync::server::RequestError;
use serde_json::json;

use crate::auth::AuthError;
use crate::documents::DocumentError;
use crate::store::StoreError;

/// An HTTP API error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the request body is not a valid Cairn protocol message: {0}")]
    MalformedMessage(String),
    #[error("{0}")]
    UnsupportedVersion(String),
    #[error("this message type is not accepted here")]
    UnexpectedMessage,
    #[error("invalid document id: {0}")]
    InvalidDocumentId(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Request(RequestError),
    #[error("{0}")]
    InvalidChange(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("no access to {} document(s)", .0.len())]
    Forbidden(Vec<DocumentId>),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("invalid CID: {0}")]
    InvalidCid(String),
    #[error("the file's CID is {computed}, not the declared {declared}; nothing was stored")]
    CidMismatch { declared: String, computed: String },
    #[error("files may be at most {limit} bytes")]
    FileTooLarge { limit: u64 },
    #[error("files of type {0:?} are not accepted here")]
    UnsupportedFileType(String),
    #[error("another request is appending to this upload")]
    UploadBusy,
    #[error("the upload continues at byte {offset}")]
    OffsetMismatch { offset: i64 },
    #[error("the requested range is outside the file ({size} bytes)")]
    RangeNotSatisfiable { size: u64 },
    #[error("too many open connections for this user (at most {0})")]
    TooManyConnections(usize),
    #[error("too many requests from this {scope}; retry in {} ms", retry_after.as_millis())]
    RateLimited {
        scope: &'static str,
        retry_after: std::time::Duration,
    },
    #[error("could not read the request body: {0}")]
    BadBody(String),
    /// The database or the blockstore cannot serve the request now.
    #[error("the storage backend is unavailable; retry later")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl Error {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::MalformedMessage(_) => "E_MALFORMED_MESSAGE",
            Error::UnsupportedVersion(_) => "E_UNSUPPORTED_VERSION",
            Error::UnexpectedMessage => "E_UNEXPECTED_MESSAGE",
            Error::InvalidDocumentId(_) => "E_INVALID_DOCUMENT_ID",
            Error::BadRequest(_) => "E_BAD_REQUEST",
            Error::Request(e) => e.code(),
            Error::InvalidChange(_) => "E_INVALID_CHANGE",
            Error::Unauthorized(_) => "E_UNAUTHORIZED",
            Error::Forbidden(_) => "E_FORBIDDEN",
            Error::NotFound => "E_NOT_FOUND",
            Error::MethodNotAllowed => "E_METHOD_NOT_ALLOWED",
            Error::PayloadTooLarge { .. } => "E_PAYLOAD_TOO_LARGE",
            Error::TooManyConnections(_) => "E_TOO_MANY_CONNECTIONS",
            Error::RateLimited { .. } => "E_RATE_LIMITED",
            Error::InvalidCid(_) => "E_INVALID_CID",
            Error::CidMismatch { .. } => "E_CID_MISMATCH",
            Error::FileTooLarge { .. } => "E_FILE_TOO_LARGE",
            Error::UnsupportedFileType(_) => "E_UNSUPPORTED_FILE_TYPE",
            Error::RangeNotSatisfiable { .. } => "E_RANGE_NOT_SATISFIABLE",
            Error::OffsetMismatch { .. } => "E_OFFSET_MISMATCH",
            Error::UploadBusy => "E_UPLOAD_BUSY",
            Error::BadBody(_) => "E_BAD_BODY",
            Error::Unavailable(_) => "E_UNAVAILABLE",
            Error::Internal(_) => "E_INTERNAL",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::Request(
                RequestError::TooManyDocuments { .. } | RequestError::TooManyChanges { .. },
            )
            | Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::MalformedMessage(_)
            | Error::UnsupportedVersion(_)
            | Error::UnexpectedMessage
            | Error::InvalidDocumentId(_)
            | Error::BadRequest(_)
            | Error::Request(_)
            | Error::InvalidChange(_)
            | Error::BadBody(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::TooManyConnections(_) | Error::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Error::InvalidCid(_) => StatusCode::BAD_REQUEST,
            Error::CidMismatch { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::FileTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedFileType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Error::OffsetMismatch { .. } | Error::UploadBusy => StatusCode::CONFLICT,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether trying the same request again later may succeed.
    pub fn retryable(&self) -> bool {
        matches!(self.status().as_u16(), 429 | 500..=599)
    }

    /// The documents concerned, if the error is about some.
    pub fn documents(&self) -> &[DocumentId] {
        match self {
            Error::Forbidden(d) => d,
            _ => &[],
        }
    }

    /// Logs what must be logged (internal failures), once.
    pub fn log(&self) {
        match self {
            Error::Internal(e) => tracing::error!(error = ?e, "internal error"),
            Error::Unavailable(e) => tracing::warn!(error = %e, "storage unavailable"),
            _ => {}
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) | StoreError::Raced(_) => Error::Unavailable(e.into()),
            e => Error::Internal(e.into()),
        }
    }
}

impl From<crate::blocks::BlockError> for Error {
    fn from(e: crate::blocks::BlockError) -> Self {
        use crate::blocks::BlockError;
        match e {
            BlockError::Unavailable(_) | BlockError::Collected(_) => Error::Unavailable(e.into()),
            e => Error::Internal(e.into()),
        }
    }
}

impl From<DocumentError> for Error {
    fn from(e: DocumentError) -> Self {
        match e {
            DocumentError::Request(e) => Error::Request(e),
            DocumentError::Apply(e) => Error::InvalidChange(e.to_string()),
            DocumentError::Forbidden(d) => Error::Forbidden(d),
            DocumentError::Store(e) => e.into(),
        }
    }
}

impl From<AuthError> for Error {
    fn from(e: AuthError) -> Self {
        Error::Unauthorized(e.to_string())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.log();
        let mut error = json!({ "code": self.code(), "message": self.to_string() });
        if !self.documents().is_empty() {
            let ids: Vec<String> = self.documents().iter().map(ToString::to_string).collect();
            error["documents"] = json!(ids);
        }
        if let Error::OffsetMismatch { offset } = &self {
            error["offset"] = json!(offset);
        }
        if let Error::RateLimited { retry_after, .. } = &self {
            error["retryAfterMs"] = json!(retry_after.as_millis().max(1) as u64);
        }
        if let Error::CidMismatch { declared, computed } = &self {
            error["declared"] = json!(declared);
            error["computed"] = json!(computed);
        }
        let mut response = (self.status(), Json(json!({ "error": error }))).into_response();
        if matches!(self, Error::Unauthorized(_)) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Error::RateLimited { retry_after, .. } = &self {
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        if let Error::RangeNotSatisfiable { size } = self
            && let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}"))
        {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
        response
    }
}
