//! The server's life: readiness (`GET /v1/ready`) and shutdown.
//!
//! Ready means the database answers, its schema is exactly this binary's, the blockstore
//! takes writes, and the server is not shutting down. On SIGTERM (or SIGINT) the server
//! stops being ready (load balancers drain it), stops accepting connections, finishes the
//! requests in flight, closes WebSockets with a going-away frame, gives back the pins its
//! worker holds (so another replica takes them at once instead of when the lease runs out),
//! and exits within `--shutdown-timeout-secs` whatever is still running.

use std::path::{Path, PathBuf};
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

/// How long a readiness check waits for the database.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

/// What `GET /v1/ready` checks (and whether the server is shutting down, which the
/// caller knows from its [`Lifecycle`]).
pub struct Readiness {
    pub schema: Arc<dyn SchemaStore>,
    pub blocks_dir: PathBuf,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("blocks_dir", &self.blocks_dir)
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
        match tokio::time::timeout(DATABASE_TIMEOUT, self.schema.schema_status()).await {
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
                    Some(format!("no answer within {DATABASE_TIMEOUT:?}")),
                );
                report("migrations", Some("unknown (no database)".into()));
            }
        }
        let dir = self.blocks_dir.clone();
        let writable = tokio::task::spawn_blocking(move || probe(&dir))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|r| r);
        report(
            "blockstore",
            writable.err().map(|e| format!("not writable: {e}")),
        );
        report(
            "shutdown",
            stopping.then(|| "the server is shutting down".into()),
        );
        (Value::Object(checks), failing)
    }
}

/// Writes and removes a small file in the blockstore's staging area.
fn probe(blocks_dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = blocks_dir.join("tmp");
    std::fs::create_dir_all(&tmp)?;
    let path = tmp.join(format!("ready-{}", std::process::id()));
    let mut file = std::fs::File::create(&path)?;
    file.write_all(b"ready")?;
    drop(file);
    std::fs::remove_file(&path)
}
