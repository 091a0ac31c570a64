//! Request bodies: the size limit's rejection as our JSON error, and protocol frames.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use cairn_core::{DecodeError, Message};

use super::Error;

/// The body, or the right error when it could not be read (413 over the limit).
pub fn bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, Error> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::PayloadTooLarge { limit }
        } else {
            Error::BadBody(e.body_text())
        }
    })
}

/// Decodes a protocol frame.
pub fn message(bytes: &[u8]) -> Result<Message, Error> {
    Message::decode(bytes).map_err(|e| match e {
        DecodeError::UnsupportedVersion { .. } => Error::UnsupportedVersion(e.to_string()),
        e => Error::MalformedMessage(e.to_string()),
    })
}
