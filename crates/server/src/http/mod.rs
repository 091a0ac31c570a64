//! The HTTP API and static file serving, assembled by [`app`].
//!
//! Routes:
//! - `POST /v1/push` — merge a pushed document (protocol frame in, protocol frame out)
//! - `GET  /v1/docs/{id}` — a document's merged Automerge bytes
//! - `GET  /v1/health` — liveness
//! - `/pkg/*` — the npm package (`pkg/`), `/*` — the demo app (`www/`)
//!
//! Every `/v1` error is JSON with a stable code (see [`Error`]).

mod documents;
mod error;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use serde_json::json;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

pub use self::documents::PROTOCOL_MEDIA_TYPE;
pub use self::error::Error;
use crate::store::DocumentStore;

/// Request limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Everything a request handler may use. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn DocumentStore>,
    pub limits: Limits,
    /// Where the demo app and the npm package are served from; `None` serves nothing.
    pub www_dir: Option<PathBuf>,
    pub pkg_dir: Option<PathBuf>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store.describe())
            .field("limits", &self.limits)
            .field("www_dir", &self.www_dir)
            .field("pkg_dir", &self.pkg_dir)
            .finish()
    }
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/push", post(documents::push))
        .route("/docs/{id}", get(documents::get))
        .route("/health", get(health))
        .fallback(|| async { Error::NotFound })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes));
    let mut router = Router::new().nest("/v1", api);
    if let Some(pkg) = &state.pkg_dir {
        router = router.nest_service("/pkg", ServeDir::new(pkg));
    }
    if let Some(www) = &state.www_dir {
        router = router.fallback_service(ServeDir::new(www));
    }
    router.layer(TraceLayer::new_for_http()).with_state(state)
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(json!({ "status": "ok" }))
}
