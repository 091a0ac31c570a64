//! The server's life: readiness (`GET /v1/ready`) and shutdown.
//!
//! Ready means the database answers, its schema is exactly this binary's, the blockstore
//! takes writes, and the server is not shutting down. On SIGTERM (or SIGINT) the server
//! stops being ready (load balancers drain it), stops accepting connections, finishes the
//! requests in flight, closes WebSockets with a going-away frame, gives back the pins its
//! worker holds (so another replica takes them at once instead of when the lease runs out),
//! and exits within `--shutdown-timeout-secs` whatever is still running.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::store::SchemaStore;

/// Shutdown, announced to every task that watches it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            tx: Arc::new(watch::channel(false).0),
        }
    }
}

impl Lifecycle {
    /// Starts the shutdown.
    pub fn shut_down(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once the shutdown has started.
    pub async fn stopping(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|&stopping| stopping).await;
    }
}

/// How long a readiness check waits for the database, and for the blockstore.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What `GET /v1/ready` checks (and whether the server is shutting down, which the
/// caller knows from its [`Lifecycle`]).
pub struct Readiness {
    pub schema: Arc<dyn SchemaStore>,
    pub blocks: Arc<dyn crate::blocks::BlockStore>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("blocks", &self.blocks.describe())
            .finish()
    }
}

impl Readiness {
    /// Each part's state (`"ok"` or what is wrong), and the names of the failing parts.
    pub async fn check(&self, stopping: bool) -> (Value, Vec<&'static str>) {
        let mut checks = serde_json::Map::new();
        let mut failing = Vec::new();
        let mut report = |part: &'static str, problem: Option<String>| {
            if problem.is_some() {
                failing.push(part);
            }
            checks.insert(part.into(), json!(problem.unwrap_or_else(|| "ok".into())));
        };
        match tokio::time::timeout(CHECK_TIMEOUT, self.schema.schema_status()).await {
            Ok(Ok(status)) => {
                report("database", None);
                report("migrations", status.problem());
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: the database does not answer");
                report("database", Some("unreachable".into()));
                report("migrations", Some("unknown (no database)".into()));
            }
            Err(_) => {
                report(
                    "database",
                    Some(format!("no answer within {CHECK_TIMEOUT:?}")),
                );
                report("migrations", Some("unknown (no database)".into()));
            }
        }
        let writable = tokio::time::timeout(CHECK_TIMEOUT, self.blocks.probe()).await;
        report(
            "blockstore",
            match writable {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("not writable: {e}")),
                Err(_) => Some(format!("no answer within {CHECK_TIMEOUT:?}")),
            },
        );
        report(
            "shutdown",
            stopping.then(|| "the server is shutting down".into()),
        );
        (Value::Object(checks), failing)
    }
}
