//! Pinning: keeping every stored file pinned on IPFS without making uploads wait for it.
//!
//! The queue is in the database (`pins`, see [`crate::store::FileStore::claim_pins`]): an
//! upload only adds a `queued` row; a worker on each replica claims due rows with a lease,
//! streams the file from the blockstore to the backend, and records `pinned`, a retry with
//! backoff (the backend was unreachable), or `failed` (the backend refused it). A replica that
//! dies mid-pin leaves a lease that expires, and another replica takes the row over.
//!
//! Backends: [`KuboPinner`] (Kubo's RPC through `ipfs-api-backend-hyper`: `add` with the
//! file's CID version and pin, then check that Kubo's CID is ours), one per Kubo node, and
//! [`ServicePinner`] (the IPFS Pinning Service API of a remote pinning service, which fetches
//! the content from the Kubo nodes' addresses). A [`PinSet`] holds them and how many must
//! hold each file (`--pin-replicas`); the worker records what each backend holds. `none` (no
//! worker) is the embedded default.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

mod kubo;
mod service;
mod set;

use async_trait::async_trait;
use bytes::Bytes;
use cairn_core::content::Cid;
use cairn_core::retry::RetryPolicy;
use tokio::sync::{Notify, mpsc};

pub use self::kubo::KuboPinner;
pub use self::service::{ServiceConfig, ServicePinner};
pub use self::set::{PinCopy, PinSet, Verdict};

use crate::clock::{ms, now_ms, retry_at};
use crate::files::{Files, Reader};
use crate::store::PinOutcome;

/// Why a pin attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinError {
    /// Try again later (the backend was unreachable or failed internally).
    Retryable(String),
    /// The backend refused this content; retrying will not help.
    Permanent(String),
}

/// Opens a stream of a stored file's bytes, for backends that are sent them.
pub type OpenFile<'a> = &'a (dyn Fn() -> FileBytes + Send + Sync);

/// Somewhere files are pinned.
#[async_trait]
pub trait Pinner: Send + Sync + 'static {
    /// For logs: `kubo http://…`.
    fn describe(&self) -> String;

    /// Pins the file `cid`, whose bytes `file` streams if the backend needs them. Done only
    /// when the backend reports our CID pinned.
    async fn pin(&self, cid: &Cid, file: OpenFile<'_>) -> Result<(), PinError>;

    /// Removes the pin of `cid` (a pin that is not there is already removed).
    async fn unpin(&self, cid: &Cid) -> Result<(), PinError>;

    /// Whether the backend holds a (recursive) pin of `cid` now (`cairn verify
    /// --check-pins`).
    async fn is_pinned(&self, cid: &Cid) -> Result<bool, PinError>;

    /// The block `cid` names, if the backend has it (`cairn verify --repair`); the caller
    /// checks it. Backends that hold no blocks (a pinning service) answer `None`.
    async fn fetch_block(&self, _cid: &Cid) -> Result<Option<Vec<u8>>, PinError> {
        Ok(None)
    }
}

impl std::fmt::Debug for dyn Pinner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// A stored file's bytes as an `AsyncRead`, read block by block by a task of its own (at most
/// a few pieces buffered).
#[derive(Debug)]
pub struct FileBytes {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl FileBytes {
    /// Starts reading file `cid` of `size` bytes from `files`' blockstore.
    pub fn open(files: &Files, cid: Cid, size: u64) -> Self {
        let (tx, rx) = mpsc::channel(4);
        let mut reader = Reader::new(files.blocks.clone(), cid, size, 0, size);
        tokio::spawn(async move {
            loop {
                let sent = match reader.next_piece().await {
                    Ok(Some(piece)) => tx.send(Ok(Bytes::from(piece))).await,
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(io::Error::other(e))).await;
                        return;
                    }
                };
                if sent.is_err() {
                    return;
                }
            }
        });
        Self {
            rx,
            current: Bytes::new(),
        }
    }
}

impl futures::AsyncRead for FileBytes {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            if !self.current.is_empty() {
                let n = buf.len().min(self.current.len());
                buf[..n].copy_from_slice(&self.current.split_to(n));
                return Poll::Ready(Ok(n));
            }
            match ready!(self.rx.poll_recv(cx)) {
                Some(Ok(piece)) => self.current = piece,
                Some(Err(e)) => return Poll::Ready(Err(e)),
                None => return Poll::Ready(Ok(0)),
            }
        }
    }
}

/// How the worker behaves.
#[derive(Debug, Clone, Copy)]
pub struct PinSettings {
    pub retry: RetryPolicy,
    /// How long a claim lasts before another worker may take the pin over.
    pub lease: Duration,
    /// How often the queue is polled when nobody wakes the worker.
    pub poll: Duration,
}

impl Default for PinSettings {
    fn default() -> Self {
        Self {
            retry: RetryPolicy {
                base_ms: 1_000,
                max_ms: 300_000,
                max_attempts: None,
            },
            lease: Duration::from_secs(600),
            poll: Duration::from_secs(2),
        }
    }
}

/// Queues every file content not yet queued, then works the queue until `lifecycle` shuts
/// down; then gives back the pins it holds (see [`crate::store::FileStore::release_pins`]).
/// `wake` is notified by uploads so a new file is pinned at once.
pub fn spawn_worker(
    files: Arc<Files>,
    pinner: Arc<PinSet>,
    settings: PinSettings,
    wake: Arc<Notify>,
    lifecycle: crate::lifecycle::Lifecycle,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let held = Held::default();
        tokio::select! {
            () = work(&files, pinner.as_ref(), &settings, &wake, &held) => {}
            () = lifecycle.stopping() => {}
        }
        // Whatever this worker still holds is due again now, for any replica.
        let held: Vec<String> = held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        if !held.is_empty() {
            match files.store.release_pins(&held, now_ms()).await {
                Ok(()) => tracing::info!(pins = held.len(), "gave back the pins in progress"),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot give back pins; their leases will expire")
                }
            }
        }
    })
}

/// Pins a worker has claimed and not finished.
type Held = std::sync::Mutex<std::collections::HashSet<String>>;

async fn work(files: &Files, pinner: &PinSet, settings: &PinSettings, wake: &Notify, held: &Held) {
    {
        match files.store.enqueue_pins(None, now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(queued = n, "queued stored files for pinning"),
            Err(e) => tracing::warn!(error = %e, "cannot queue stored files for pinning"),
        }
        tracing::info!(backend = %pinner.describe(), "pin worker started");
        loop {
            let lease = ms(settings.lease);
            let claimed = match files.store.claim_pins(now_ms(), lease, 2).await {
                Ok(claimed) => {
                    let mut held = held.lock().unwrap_or_else(|p| p.into_inner());
                    held.extend(claimed.iter().map(|p| p.cid.clone()));
                    claimed
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the pin queue");
                    tokio::time::sleep(settings.poll).await;
                    continue;
                }
            };
            if claimed.is_empty() {
                let _ = tokio::time::timeout(settings.poll, wake.notified()).await;
                continue;
            }
            for pin in claimed {
                let (outcome, copies) = attempt(files, pinner, settings, &pin).await;
                crate::metrics::pin_attempt(match &outcome {
                    PinOutcome::Pinned => "pinned",
                    PinOutcome::Retry { .. } => "retry",
                    PinOutcome::Partial { .. } => "partial",
                    PinOutcome::Failed { .. } => "failed",
                });
                match &outcome {
                    PinOutcome::Pinned => tracing::info!(cid = %pin.cid, "pinned"),
                    PinOutcome::Retry { error, .. } => {
                        tracing::warn!(cid = %pin.cid, attempts = pin.attempts, %error, "pin failed; will retry")
                    }
                    PinOutcome::Partial { error, .. } => {
                        tracing::warn!(cid = %pin.cid, attempts = pin.attempts, %error, "pinned on too few backends; will retry")
                    }
                    PinOutcome::Failed { error } => {
                        tracing::error!(cid = %pin.cid, %error, "pin refused")
                    }
                }
                let copies = serde_json::to_string(&copies).ok();
                if let Err(e) = files
                    .store
                    .finish_pin(&pin.cid, &outcome, copies.as_deref(), now_ms())
                    .await
                {
                    tracing::warn!(cid = %pin.cid, error = %e, "cannot record a pin (its lease will expire)");
                }
                held.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&pin.cid);
            }
        }
    }
}

async fn attempt(
    files: &Files,
    pinner: &PinSet,
    settings: &PinSettings,
    pin: &crate::store::ClaimedPin,
) -> (PinOutcome, Vec<PinCopy>) {
    let Ok(cid) = pin.cid.parse::<Cid>() else {
        let error = "not a CID".into();
        return (PinOutcome::Failed { error }, Vec::new());
    };
    let size = u64::try_from(pin.size).unwrap_or(0);
    let open = || FileBytes::open(files, cid, size);
    let (verdict, copies) = pinner.pin_each(&cid, &open).await;
    let next_attempt_ms = retry_at(&settings.retry, pin.attempts);
    let outcome = match verdict {
        Verdict::Pinned => PinOutcome::Pinned,
        Verdict::Failed(error) => PinOutcome::Failed { error },
        Verdict::Retry(error) => PinOutcome::Retry {
            next_attempt_ms,
            error,
        },
        Verdict::Partial(error) => PinOutcome::Partial {
            next_attempt_ms,
            error,
        },
    };
    (outcome, copies)
}
