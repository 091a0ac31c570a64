//! The Cairn sync server: an axum HTTP and WebSocket API over PostgreSQL, or over an embedded
//! SQLite file when no database is configured.
//!
//! [`app`] builds the router from an [`AppState`]; [`serve`] runs it on a listener until a
//! shutdown future resolves; [`cli::main`] is the whole `cairn` binary. The server holds no
//! state of its own that is the only truth: every acknowledged change is in the database,
//! caches re-read what was committed after them, and live fan-out across replicas goes
//! through the database's notifications ([`spawn_listener`]).

pub mod auth;
pub mod automerge;
pub mod blocks;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connections;
pub mod documents;
pub mod files;
pub mod gc;
pub mod http;
pub mod hub;
pub mod lifecycle;
pub mod metrics;
pub mod ops;
pub mod pinning;
pub mod ratelimit;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use http::{AppState, Limits, app};
use tokio::net::TcpListener;

use crate::documents::Documents;
use crate::store::Notice;

/// Serves [`app`] on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // No Nagle delay: a push written right after another small frame must not wait for the
    // client's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Feeds "document changed" notifications from every replica into the hub, for as long as
/// the process runs; reconnects after errors. (SQLite has none: one process.)
pub fn spawn_listener(documents: Arc<Documents>) {
    tokio::spawn(async move {
        loop {
            match documents.store.listen().await {
                Ok(mut notifications) => loop {
                    match notifications.next().await {
                        Ok(Notice::Changed(document, seq, at, committed)) => {
                            if let Some(at) = at {
                                let lag = clock::now_ms().saturating_sub(at).max(0);
                                metrics::notify_lag(Duration::from_millis(lag.unsigned_abs()));
                            }
                            if let Some(committed) = committed {
                                documents.absorb(&document, committed);
                            }
                            documents.hub.publish(
                                &document,
                                seq.map_or(hub::Mark::Unknown, hub::Mark::Committed),
                            )
                        }
                        Ok(Notice::Lost) => documents.hub.publish_all(),
                        Err(e) => {
                            tracing::warn!(error = %e, "lost the notification stream");
                            break;
                        }
                    }
                },
                Err(e) => tracing::warn!(error = %e, "cannot listen for notifications"),
            }
            documents.hub.publish_all();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}
