//! Pin replication: the backends a deployment pins to (each Kubo node of `--kubo-api-url`,
//! then a pinning service if configured), and how many of them must hold a file
//! (`--pin-replicas`) before it is `pinned`.
//!
//! An attempt asks the backends in order whether they hold the file and pins it on those that
//! do not, until enough hold it; what each one answered is kept with the pin (the file info
//! shows it). Fewer copies than wanted with some backend unreachable: the file stays
//! `pinning` and is tried again (a node that comes back gets its copy); none reachable: it is
//! `queued` again; refused by too many to reach the number: `failed`.

use std::sync::Arc;

use async_trait::async_trait;
use cairn_core::content::Cid;
use serde::{Deserialize, Serialize};

use super::{OpenFile, PinError, Pinner};

/// What one backend holds of a file, as the last attempt found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PinCopy {
    /// The backend, as configured (`kubo http://…`, `pinning service https://…`).
    pub backend: String,
    /// `pinned`; `unreachable` (it will be asked again); `refused` (it will not take it).
    pub status: String,
    /// Why it is not pinned there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How an attempt on every backend ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Enough backends hold it.
    Pinned,
    /// Some hold it, fewer than wanted; some could not be reached.
    Partial(String),
    /// None holds it; some could not be reached.
    Retry(String),
    /// Too many backends refused it to ever reach the number wanted.
    Failed(String),
}

/// The backends, and how many must hold a file.
#[derive(Debug)]
pub struct PinSet {
    backends: Vec<Arc<dyn Pinner>>,
    want: usize,
}

impl PinSet {
    /// `want` of `backends` must hold each file (1 to all of them).
    pub fn new(backends: Vec<Arc<dyn Pinner>>, want: usize) -> Result<Self, String> {
        if backends.is_empty() {
            return Err("no pinning backend".into());
        }
        if want == 0 || want > backends.len() {
            return Err(format!(
                "--pin-replicas {want}: between 1 and the {} configured backends",
                backends.len()
            ));
        }
        Ok(Self { backends, want })
    }

    /// Pins `cid` until enough backends hold it: the verdict and what each backend asked
    /// answered (those after the number was reached are not asked).
    pub async fn pin_each(&self, cid: &Cid, file: OpenFile<'_>) -> (Verdict, Vec<PinCopy>) {
        let mut copies = Vec::new();
        let mut held = 0;
        for backend in &self.backends {
            if held == self.want {
                break;
            }
            let result = match backend.is_pinned(cid).await {
                Ok(true) => Ok(()),
                Ok(false) => backend.pin(cid, file).await,
                Err(e) => Err(e),
            };
            let (status, error) = match result {
                Ok(()) => {
                    held += 1;
                    ("pinned", None)
                }
                Err(PinError::Retryable(e)) => ("unreachable", Some(e)),
                Err(PinError::Permanent(e)) => ("refused", Some(e)),
            };
            copies.push(PinCopy {
                backend: backend.describe(),
                status: status.into(),
                error,
            });
        }
        let why = || {
            let problems: Vec<String> = copies
                .iter()
                .filter_map(|c| Some(format!("{}: {}", c.backend, c.error.as_deref()?)))
                .collect();
            format!(
                "{held} of {} wanted copies; {}",
                self.want,
                problems.join("; ")
            )
        };
        let refused = copies.iter().filter(|c| c.status == "refused").count();
        let verdict = if held >= self.want {
            Verdict::Pinned
        } else if self.backends.len() - refused < self.want {
            Verdict::Failed(why())
        } else if held > 0 {
            Verdict::Partial(why())
        } else {
            Verdict::Retry(why())
        };
        (verdict, copies)
    }

    /// Every backend's answer to "do you hold `cid`?" (`cairn verify --check-pins`).
    pub async fn holders(&self, cid: &Cid) -> Vec<(String, Result<bool, PinError>)> {
        let mut answers = Vec::new();
        for backend in &self.backends {
            answers.push((backend.describe(), backend.is_pinned(cid).await));
        }
        answers
    }

    /// How many backends must hold a file.
    pub fn want(&self) -> usize {
        self.want
    }
}

#[async_trait]
impl Pinner for PinSet {
    fn describe(&self) -> String {
        let names: Vec<String> = self.backends.iter().map(|b| b.describe()).collect();
        if self.backends.len() == 1 {
            names.join("")
        } else {
            format!("{} of {}", self.want, names.join(" + "))
        }
    }

    async fn pin(&self, cid: &Cid, file: OpenFile<'_>) -> Result<(), PinError> {
        match self.pin_each(cid, file).await.0 {
            Verdict::Pinned => Ok(()),
            Verdict::Partial(why) | Verdict::Retry(why) => Err(PinError::Retryable(why)),
            Verdict::Failed(why) => Err(PinError::Permanent(why)),
        }
    }

    /// Unpins from every backend; an unreachable one makes it retryable (the others are
    /// unpinned already, and unpinning twice is harmless).
    async fn unpin(&self, cid: &Cid) -> Result<(), PinError> {
        let mut failure = None;
        for backend in &self.backends {
            match backend.unpin(cid).await {
                Ok(()) => {}
                Err(e @ PinError::Retryable(_)) => failure = Some(e),
                Err(e) => {
                    if failure.is_none() {
                        failure = Some(e);
                    }
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    async fn is_pinned(&self, cid: &Cid) -> Result<bool, PinError> {
        let mut held = 0;
        let mut error = None;
        for (_, answer) in self.holders(cid).await {
            match answer {
                Ok(true) => held += 1,
                Ok(false) => {}
                Err(e) => error = Some(e),
            }
        }
        match error {
            Some(e) if held < self.want => Err(e),
            _ => Ok(held >= self.want),
        }
    }

    async fn fetch_block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, PinError> {
        for backend in &self.backends {
            if let Ok(Some(block)) = backend.fetch_block(cid).await {
                return Ok(Some(block));
            }
        }
        Ok(None)
    }
}
