//! A backup's maintenance lease (see `store::gc`): taken before the snapshot, renewed in the
//! background while the backup runs, given up at its end; lost if it expired meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::clock::now_ms;
use crate::ops::OpsError;
use crate::store::Store;

/// How long a backup's lease lasts without renewal, and how often it is renewed.
const LEASE: Duration = Duration::from_secs(300);
const RENEW_EVERY: Duration = Duration::from_secs(30);

/// A maintenance lease, renewed in the background until released.
pub struct Lease {
    id: String,
    lost: Arc<AtomicBool>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Lease {
    pub async fn take(store: Arc<dyn Store>) -> Result<Self, OpsError> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes)
            .map_err(|e| OpsError::Invalid(format!("no randomness: {e}")))?;
        let id = format!("backup-{}", hex::encode(bytes));
        let now = now_ms();
        store
            .take_lease(
                &id,
                &crate::ops::holder(),
                now,
                now + crate::clock::ms(LEASE),
            )
            .await?;
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = {
            let (id, lost) = (id.clone(), lost.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(RENEW_EVERY).await;
                    let now = now_ms();
                    match store
                        .renew_lease(&id, now, now + crate::clock::ms(LEASE))
                        .await
                    {
                        Ok(true) => {}
                        Ok(false) => {
                            lost.store(true, Ordering::Relaxed);
                            return;
                        }
                        // Tried again next time; the lease lasts many renewals.
                        Err(e) => tracing::warn!(error = %e, "cannot renew the backup's lease"),
                    }
                }
            })
        };
        Ok(Self { id, lost, renewer })
    }

    /// Gives the lease up; whether it was lost (it expired before a renewal) while held.
    pub async fn release(self, store: &dyn Store) -> bool {
        self.renewer.abort();
        let now = now_ms();
        let renewed = store
            .renew_lease(&self.id, now, now + crate::clock::ms(LEASE))
            .await
            .unwrap_or(false);
        let _ = store.release_lease(&self.id).await;
        self.lost.load(Ordering::Relaxed) || !renewed
    }
}
