//! The per-address rate limit of API requests (see `crate::ratelimit`). Probes
//! (`/v1/health`, `/v1/ready`) are never limited.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{AppState, Error};

pub async fn by_address(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path.ends_with("/health") || path.ends_with("/ready") {
        return next.run(request).await;
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    if let Some(address) = state.rate_limits.client_address(request.headers(), peer)
        && let Err(retry_after) = state.rate_limits.check_address(address)
    {
        return Error::RateLimited {
            scope: "address",
            retry_after,
        }
        .into_response();
    }
    next.run(request).await
}
