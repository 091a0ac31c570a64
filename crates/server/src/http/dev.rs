//! `POST /v1/dev/token` with `{"user": "alice"}`: development mode only (never served on a
//! non-loopback address; see `cli`). Mints a 24-hour token for a named local user.

use std::time::Duration;

use super::schema::{DevToken, TokenRequest};
use super::{AppState, Error};
use axum::Json;
use axum::extract::State;

const TTL: Duration = Duration::from_secs(24 * 3600);

pub async fn token(
    State(state): State<AppState>,
    body: Result<Json<TokenRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<DevToken>, Error> {
    let Json(TokenRequest { user }) = body.map_err(|e| Error::BadRequest(e.body_text()))?;
    let token = state
        .auth
        .mint(&user, TTL)
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    Ok(Json(DevToken {
        user,
        token,
        expires_in: TTL.as_secs(),
    }))
}
