//! The `User` extractor: `Authorization: Bearer <jwt>`, verified, or 401.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::{AppState, Error};
use crate::auth::{AuthError, User};

impl FromRequestParts<AppState> for User {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or(AuthError::Missing)?;
        let user = state.auth.verify(token.trim())?;
        state
            .rate_limits
            .check_user(&user.0)
            .map_err(|retry_after| Error::RateLimited {
                scope: "user",
                retry_after,
            })?;
        Ok(user)
    }
}
