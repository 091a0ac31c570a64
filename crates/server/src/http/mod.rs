//! The HTTP API and static file serving, assembled by [`app`].
//!
//! Routes (all `/v1` routes but `health` and `dev/token` need `Authorization: Bearer <jwt>`):
//! - `POST /v1/sync` — a sync round: protocol `SyncRequest` in, `SyncResponse` out, after commit
//! - `GET  /v1/ws` — live sync over WebSocket (protocol frames; see `ws`)
//! - `GET  /v1/automerge` — automerge-repo's network protocol over WebSocket (see `automerge`)
//! - `GET  /v1/docs` — the documents the caller owns or is a member of
//! - `GET  /v1/docs/{id}` — a document's merged Automerge bytes
//! - `GET  /v1/docs/{id}/members`, `PUT|DELETE /v1/docs/{id}/members/{user}` — access (owner only)
//! - `POST /v1/files` — upload (raw or multipart), verified against a declared CID
//! - `GET  /v1/files` — the caller's files, newest first, paginated; `GET /v1/files/{cid}` —
//!   the bytes (`Range`, `ETag`); `GET /v1/files/{cid}/info`; `DELETE /v1/files/{cid}`;
//!   `POST /v1/files/search` — full text over names, types and metadata
//! - `POST /v1/uploads`, `PATCH|GET /v1/uploads/{id}` — resumable uploads (see `uploads`)
//! - `GET /v1/docs/{id}/files`, `PUT|DELETE /v1/docs/{id}/files/{cid}` — files attached to a
//!   document, readable by whoever may read it
//! - `POST /v1/dev/token` — development mode only: a token for a named local user
//! - `GET  /v1/health` — liveness; `GET /v1/ready` — readiness (503 naming what fails)
//! - `GET  /ipfs/{cid}?format=raw|car` — trustless gateway for the caller's files
//! - `GET  /metrics` — Prometheus metrics (a bearer token if `--metrics-token` is set)
//! - `/pkg/*` — the npm package (`pkg/`), `/*` — the demo app (`www/`)
//!
//! Every `/v1` error is JSON with a stable code (see [`Error`]).

mod automerge;
mod bearer;
mod body;
mod dev;
mod docs;
mod error;
mod files;
mod gateway;
mod limit;
mod metrics;
mod observe;
pub mod openapi;
mod ready;
pub mod schema;
mod sync;
mod uploads;
pub mod ws;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use tower_http::services::ServeDir;

pub use self::error::Error;
use crate::auth::Authenticator;
use crate::connections::Connections;
use crate::documents::Documents;
use crate::files::Files;
use crate::lifecycle::{Lifecycle, Readiness};
use crate::ratelimit::RateLimits;

/// Limits enforced at the HTTP and WebSocket layer (request-content limits live in
/// [`crate::documents::Settings`]).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted request body or WebSocket message, in bytes.
    pub max_body_bytes: usize,
    /// Most documents one WebSocket connection may follow.
    pub max_subscriptions: usize,
    /// Most simultaneous WebSocket connections per user (per server replica).
    pub max_connections_per_user: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024 * 1024,
            max_subscriptions: 1_000,
            max_connections_per_user: 16,
        }
    }
}

/// Everything a request handler may use. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub documents: Arc<Documents>,
    pub files: Arc<Files>,
    pub auth: Arc<Authenticator>,
    pub limits: Limits,
    pub connections: Arc<Connections>,
    /// Whether `POST /v1/dev/token` is served.
    pub dev_auth: bool,
    /// Where the demo app and the npm package are served from; `None` serves nothing.
    pub www_dir: Option<PathBuf>,
    pub pkg_dir: Option<PathBuf>,
    /// The bearer token `GET /metrics` requires; `None` leaves it open.
    pub metrics_token: Option<Arc<str>>,
    /// Announces the shutdown (WebSockets close with a going-away frame).
    pub lifecycle: Lifecycle,
    /// What `GET /v1/ready` checks.
    pub readiness: Arc<Readiness>,
    pub rate_limits: Arc<RateLimits>,
    /// This server to automerge-repo peers (`GET /v1/automerge`), and their relay.
    pub automerge: Arc<crate::automerge::AutomergeHub>,
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    crate::metrics::handle(); // installed before anything is counted
    let mut api = Router::new()
        .route("/sync", post(sync::sync))
        .route("/ws", get(ws::upgrade))
        .route("/automerge", get(automerge::upgrade))
        .route("/docs", get(docs::list))
        .route("/docs/{id}", get(docs::get))
        .route("/docs/{id}/members", get(docs::members))
        .route("/docs/{id}/files", get(files::document_files))
        .route(
            "/docs/{id}/files/{cid}",
            put(files::attach).delete(files::detach),
        )
        .route(
            "/docs/{id}/members/{user}",
            put(docs::put_member).delete(docs::delete_member),
        )
        .route(
            "/files",
            get(files::list)
                .post(files::upload)
                .layer(DefaultBodyLimit::max(
                    usize::try_from(state.files.limits.max_file_bytes)
                        .unwrap_or(usize::MAX)
                        .saturating_add(1 << 20),
                )),
        )
        .route("/files/search", post(files::search))
        .route("/uploads", post(uploads::create))
        .route(
            "/uploads/{id}",
            get(uploads::status)
                .patch(uploads::append)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/files/{cid}", get(files::download).delete(files::delete))
        .route("/files/{cid}/info", get(files::info))
        .route("/health", get(health))
        .route("/ready", get(ready::ready))
        .route("/openapi.json", get(openapi::document));
    if state.dev_auth {
        api = api.route("/dev/token", post(dev::token));
    }
    let api = api
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limit::by_address,
        ))
        .fallback(|| async { Error::NotFound })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes));
    let mut router = Router::new()
        .nest("/v1", api)
        .route("/ipfs/{cid}", get(gateway::get))
        .route("/metrics", get(metrics::metrics))
        // After routing (the route is known), for `/v1` routes too.
        .route_layer(axum::middleware::from_fn(observe::track));
    if let Some(pkg) = &state.pkg_dir {
        router = router.nest_service("/pkg", ServeDir::new(pkg));
    }
    if let Some(www) = &state.www_dir {
        router = router.fallback_service(ServeDir::new(www));
    }
    observe::layer(router).with_state(state)
}

async fn health() -> axum::Json<schema::Health> {
    axum::Json(schema::Health {
        status: "ok".into(),
    })
}
