//! The one error type of the HTTP API. Every failure becomes a status code and a JSON body
//! `{"error": {"code": "E_...", "message": "..."}}` whose `code` is stable and documented;
//! internal errors are logged and answered with a generic message, never leaked.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::documents::DocumentError;
use crate::store::StoreError;

/// An HTTP API error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the request body is not a valid Cairn protocol message: {0}")]
    MalformedMessage(String),
    #[error("{0}")]
    UnsupportedVersion(String),
    #[error("the body is not valid Automerge data: {0}")]
    InvalidDocument(String),
    #[error("invalid document id: {0}")]
    InvalidDocumentId(String),
    #[error("this message type is not accepted here")]
    UnexpectedMessage,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("could not read the request body: {0}")]
    BadBody(String),
    #[error("the storage backend is unavailable; retry later")]
    Unavailable(#[source] StoreError),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl Error {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::MalformedMessage(_) => "E_MALFORMED_MESSAGE",
            Error::UnsupportedVersion(_) => "E_UNSUPPORTED_VERSION",
            Error::InvalidDocument(_) => "E_INVALID_DOCUMENT",
            Error::InvalidDocumentId(_) => "E_INVALID_DOCUMENT_ID",
            Error::UnexpectedMessage => "E_UNEXPECTED_MESSAGE",
            Error::NotFound => "E_NOT_FOUND",
            Error::MethodNotAllowed => "E_METHOD_NOT_ALLOWED",
            Error::PayloadTooLarge { .. } => "E_PAYLOAD_TOO_LARGE",
            Error::BadBody(_) => "E_BAD_BODY",
            Error::Unavailable(_) => "E_UNAVAILABLE",
            Error::Internal(_) => "E_INTERNAL",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::MalformedMessage(_)
            | Error::UnsupportedVersion(_)
            | Error::InvalidDocument(_)
            | Error::InvalidDocumentId(_)
            | Error::UnexpectedMessage
            | Error::BadBody(_) => StatusCode::BAD_REQUEST,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Error::Unavailable(e),
            e => Error::Internal(e.into()),
        }
    }
}

impl From<DocumentError> for Error {
    fn from(e: DocumentError) -> Self {
        match e {
            DocumentError::InvalidAutomerge(m) => Error::InvalidDocument(m),
            DocumentError::Store(e) => e.into(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match &self {
            Error::Internal(e) => tracing::error!(error = ?e, "internal error"),
            Error::Unavailable(e) => tracing::warn!(error = %e, "storage unavailable"),
            _ => {}
        }
        let body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
        (self.status(), Json(body)).into_response()
    }
}
