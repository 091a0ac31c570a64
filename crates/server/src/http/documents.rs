//! Document endpoints: `POST /v1/push` merges a pushed document, `GET /v1/docs/{id}` returns
//! the merged document.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use cairn_core::{DecodeError, DocumentId, Message};

use super::{AppState, Error};
use crate::documents;

/// The media type of protocol frames.
pub const PROTOCOL_MEDIA_TYPE: &str = "application/vnd.cairn.v1";

/// `POST /v1/push`: body is a [`Message::Push`] frame; answers a [`Message::Ack`] frame once
/// the new changes are committed.
pub async fn push(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, Error> {
    let body = body.map_err(|e| body_error(e, state.limits.max_body_bytes))?;
    let (document, data) = match Message::decode(&body).map_err(decode_error)? {
        Message::Push { document, data } => (document, data),
        Message::Ack { .. } => return Err(Error::UnexpectedMessage),
    };
    let merged = documents::merge(state.store.as_ref(), &document, &data).await?;
    tracing::debug!(%document, applied = merged.applied, "push committed");
    let ack = Message::Ack {
        document,
        heads: merged.heads,
        applied: merged.applied,
    };
    Ok(([(header::CONTENT_TYPE, PROTOCOL_MEDIA_TYPE)], ack.encode()))
}

/// `GET /v1/docs/{id}`: the document as saved Automerge bytes.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Error> {
    let document: DocumentId = id
        .parse()
        .map_err(|e: cairn_core::DocumentIdError| Error::InvalidDocumentId(e.to_string()))?;
    let doc = documents::load(state.store.as_ref(), &document)
        .await?
        .ok_or(Error::NotFound)?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/octet-stream")],
        doc.save(),
    ))
}

fn decode_error(e: DecodeError) -> Error {
    match e {
        DecodeError::UnsupportedVersion { .. } => Error::UnsupportedVersion(e.to_string()),
        e => Error::MalformedMessage(e.to_string()),
    }
}

fn body_error(e: BytesRejection, limit: usize) -> Error {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::PayloadTooLarge { limit }
    } else {
        Error::BadBody(e.body_text())
    }
}
