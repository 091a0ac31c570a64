//! The Cairn sync server: an axum HTTP API over PostgreSQL, or over an embedded SQLite file
//! when no database is configured.
//!
//! [`app`] builds the router from an [`AppState`]; [`serve`] runs it on a listener until a
//! shutdown future resolves; [`cli::main`] is the whole `cairn` binary. The server holds no
//! state of its own that is the only truth: every acknowledged change is in the database.

pub mod cli;
pub mod config;
pub mod documents;
pub mod http;
pub mod store;

use std::future::Future;

pub use http::{AppState, Limits, app};
use tokio::net::TcpListener;

/// Serves [`app`] on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
