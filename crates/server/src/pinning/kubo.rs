//! The Kubo backend: Kubo's RPC API through `ipfs-api-backend-hyper`. A file is pinned by
//! `add`ing its bytes (streamed from the blockstore) with the options that reproduce its CID,
//! and done only if Kubo computes that CID.

use async_trait::async_trait;
use cairn_core::content::{Cid, CidVersion};
use ipfs_api_backend_hyper::{IpfsApi, IpfsClient, TryFromUri, request};
use tokio::sync::mpsc;

use super::{FileBytes, OpenFile, PinError, Pinner};

/// Kubo's RPC API. `ipfs-api-backend-hyper`'s futures are not `Send`, so its client lives on
/// a thread of its own with a single-threaded runtime, and pins are handed to it.
#[derive(Debug)]
pub struct KuboPinner {
    jobs: mpsc::UnboundedSender<Job>,
    url: String,
}

/// What the Kubo thread is asked to do.
#[derive(Debug)]
enum Job {
    Pin {
        cid: Cid,
        file: FileBytes,
        reply: tokio::sync::oneshot::Sender<Result<(), PinError>>,
    },
    Unpin {
        cid: Cid,
        reply: tokio::sync::oneshot::Sender<Result<(), PinError>>,
    },
    IsPinned {
        cid: Cid,
        reply: tokio::sync::oneshot::Sender<Result<bool, PinError>>,
    },
    Block {
        cid: Cid,
        reply: tokio::sync::oneshot::Sender<Result<Option<Vec<u8>>, PinError>>,
    },
    /// The node's swarm addresses (where others can fetch what it holds).
    Addresses {
        reply: tokio::sync::oneshot::Sender<Result<Vec<String>, PinError>>,
    },
}

impl KuboPinner {
    /// A client for the RPC API at `url` (e.g. `http://127.0.0.1:5001`).
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let client = IpfsClient::from_str(url)
            .map_err(|e| anyhow::anyhow!("invalid Kubo API URL {url:?}: {e}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (jobs, mut rx) = mpsc::unbounded_channel::<Job>();
        std::thread::Builder::new()
            .name("cairn-kubo".into())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some(job) = rx.recv().await {
                        match job {
                            Job::Pin { cid, file, reply } => {
                                let _ = reply.send(kubo_pin(&client, &cid, file).await);
                            }
                            Job::Unpin { cid, reply } => {
                                let _ = reply.send(kubo_unpin(&client, &cid).await);
                            }
                            Job::IsPinned { cid, reply } => {
                                let _ = reply.send(kubo_is_pinned(&client, &cid).await);
                            }
                            Job::Block { cid, reply } => {
                                let _ = reply.send(kubo_block(&client, &cid).await);
                            }
                            Job::Addresses { reply } => {
                                let _ = reply.send(
                                    client
                                        .id(None)
                                        .await
                                        .map(|id| id.addresses)
                                        .map_err(|e| PinError::Retryable(e.to_string())),
                                );
                            }
                        }
                    }
                });
            })?;
        Ok(Self {
            jobs,
            url: url.to_owned(),
        })
    }
}

#[async_trait]
impl Pinner for KuboPinner {
    fn describe(&self) -> String {
        format!("kubo {}", self.url)
    }

    async fn pin(&self, cid: &Cid, file: OpenFile<'_>) -> Result<(), PinError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.ask(
            Job::Pin {
                cid: *cid,
                file: file(),
                reply,
            },
            answer,
        )
        .await
    }

    async fn unpin(&self, cid: &Cid) -> Result<(), PinError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.ask(Job::Unpin { cid: *cid, reply }, answer).await
    }

    async fn is_pinned(&self, cid: &Cid) -> Result<bool, PinError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.ask(Job::IsPinned { cid: *cid, reply }, answer).await
    }

    async fn fetch_block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, PinError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.ask(Job::Block { cid: *cid, reply }, answer).await
    }
}

impl KuboPinner {
    async fn ask<T>(
        &self,
        job: Job,
        answer: tokio::sync::oneshot::Receiver<Result<T, PinError>>,
    ) -> Result<T, PinError> {
        let gone = || PinError::Retryable("the Kubo client thread has stopped".into());
        self.jobs.send(job).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// The node's swarm addresses (`id`), where a pinning service can fetch what it holds.
    pub async fn addresses(&self) -> Result<Vec<String>, PinError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.ask(Job::Addresses { reply }, answer).await
    }
}

async fn kubo_pin(client: &IpfsClient, cid: &Cid, file: FileBytes) -> Result<(), PinError> {
    // The options that make Kubo compute this CID: CIDv1 implies raw leaves.
    let v1 = cid.version() == CidVersion::V1;
    let add = request::Add {
        pin: Some(true),
        cid_version: Some(u32::from(v1)),
        raw_leaves: v1.then_some(true),
        ..Default::default()
    };
    match client.add_async_with_options(file, add).await {
        Ok(added) if added.hash == cid.to_string() => Ok(()),
        Ok(added) => {
            let _ = client.pin_rm(&added.hash, true).await;
            Err(PinError::Permanent(format!(
                "Kubo computed {} for {cid}: not pinned",
                added.hash
            )))
        }
        Err(ipfs_api_backend_hyper::Error::Api(e)) if e.code == 1 => {
            Err(PinError::Permanent(format!("Kubo refused: {}", e.message)))
        }
        Err(e) => Err(PinError::Retryable(e.to_string())),
    }
}

async fn kubo_unpin(client: &IpfsClient, cid: &Cid) -> Result<(), PinError> {
    match client.pin_rm(&cid.to_string(), true).await {
        Ok(_) => Ok(()),
        Err(ipfs_api_backend_hyper::Error::Api(e)) if e.message.contains("not pinned") => Ok(()),
        Err(e) => Err(PinError::Retryable(e.to_string())),
    }
}

async fn kubo_is_pinned(client: &IpfsClient, cid: &Cid) -> Result<bool, PinError> {
    match client
        .pin_ls(Some(&cid.to_string()), Some("recursive"))
        .await
    {
        Ok(pins) => Ok(pins.keys.contains_key(&cid.to_string())),
        Err(ipfs_api_backend_hyper::Error::Api(e)) if e.message.contains("not pinned") => Ok(false),
        Err(e) => Err(PinError::Retryable(e.to_string())),
    }
}

/// `block/get`; a block Kubo does not have is `None` (its error says "not found").
async fn kubo_block(client: &IpfsClient, cid: &Cid) -> Result<Option<Vec<u8>>, PinError> {
    use futures::TryStreamExt;
    let chunks: Result<Vec<bytes::Bytes>, _> =
        client.block_get(&cid.to_string()).try_collect().await;
    match chunks {
        Ok(chunks) => Ok(Some(chunks.concat())),
        Err(ipfs_api_backend_hyper::Error::Api(e)) if e.message.contains("not found") => Ok(None),
        Err(e) => Err(PinError::Retryable(e.to_string())),
    }
}
