//! `POST /v1/sync`: the background-sync endpoint. Plain `fetch` with a bearer token, so a
//! Service Worker can call it. Replaying a request is harmless.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::header;
use axum::response::IntoResponse;
use cairn_core::Message;
use cairn_core::protocol::MEDIA_TYPE;

use super::{AppState, Error, body};
use crate::auth::User;

pub async fn sync(
    State(state): State<AppState>,
    User(user): User,
    raw: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, Error> {
    let raw = body::bytes(raw, state.limits.max_body_bytes)?;
    let Message::SyncRequest(request) = body::message(&raw)? else {
        return Err(Error::UnexpectedMessage);
    };
    crate::metrics::sync_round("http");
    let response = state.documents.sync(&user, request).await?;
    Ok((
        [(header::CONTENT_TYPE, MEDIA_TYPE)],
        Message::SyncResponse(response).encode(),
    ))
}
