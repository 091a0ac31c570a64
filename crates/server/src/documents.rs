//! The document service: sync rounds, reads and access management over the store, the cache
//! and the hub. It drives the pure logic of `cairn_core::sync::server` and adds what needs
//! I/O: authorization, locking, committing, and announcing commits. No HTTP here.
//!
//! A sync round: validate the whole request; lock the cached documents in id order; in one
//! transaction lock (or create) every written document in the same order and check roles;
//! bring each document up to date with what is committed; apply; insert the new changes;
//! commit; only then answer and announce. If anything fails before the commit, nothing is
//! stored, and cached documents that may hold uncommitted changes are evicted.

use std::sync::Arc;

use automerge::Change;
use cairn_core::protocol::{DocResponse, SyncRequest, SyncResponse};
use cairn_core::sync::server::{self, ApplyError, Limits, RequestError};
use cairn_core::{ChangeHash, DocumentId};

use crate::cache::{Cached, DocCache, Source};
use crate::hub::{Hub, Mark};
use crate::store::{DocumentStore, Member, Role, Snapshot, StoreError, StoredChange};

/// Why a document operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// The user may not do this to these documents (or they do not exist: the answer is the
    /// same, so it reveals nothing).
    #[error("no access to {} document(s)", .0.len())]
    Forbidden(Vec<DocumentId>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a user may do with a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// There is no such document.
    Missing,
    /// It exists, and the user has no role in it.
    Denied,
    Read,
    Write,
}

/// Settings of the service.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub limits: Limits,
    /// Write a compacted snapshot once this many changes were loaded after the last one.
    pub snapshot_every: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            snapshot_every: 500,
        }
    }
}

/// The document service. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Documents {
    pub store: Arc<dyn DocumentStore>,
    pub cache: DocCache,
    pub hub: Hub,
    pub settings: Settings,
}

impl std::fmt::Debug for dyn DocumentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Documents {
    pub fn new(store: Arc<dyn DocumentStore>, settings: Settings, cache_capacity: usize) -> Self {
        Self {
            store,
            cache: DocCache::new(cache_capacity),
            hub: Hub::default(),
            settings,
        }
    }

    /// One sync round for `user` (see the module comment).
    pub async fn sync(
        &self,
        user: &str,
        request: SyncRequest,
    ) -> Result<SyncResponse, DocumentError> {
        let request_id = request.request;
        let work = server::validate(request, &self.settings.limits)?;
        let (documents, _) = self.round(user, work, true).await?;
        Ok(SyncResponse {
            request: request_id,
            documents,
        })
    }

    /// Commits `changes` of `document` for `user`, as a sync round that needs no answer: the
    /// user must be able to write the document, or it must not exist yet (it is then created,
    /// owned by `user`). Changes it already has are skipped. Returns the `seq_no` of the last
    /// new row, if any. More changes than one round takes go in several rounds, in order.
    pub async fn commit(
        &self,
        user: &str,
        document: DocumentId,
        mut changes: Vec<Change>,
    ) -> Result<Option<i64>, DocumentError> {
        let mut last = None;
        while !changes.is_empty() {
            // The changes are parsed already: they go in as they are, not re-encoded.
            let rest =
                changes.split_off(changes.len().min(self.settings.limits.max_changes.max(1)));
            let work = vec![server::DocWork {
                document,
                heads: Vec::new(),
                entries: vec![(cairn_core::OpId::from_bytes([0; 16]), changes)],
            }];
            let (_, seqs) = self.round(user, work, false).await?;
            last = seqs.into_iter().flatten().max().or(last);
            changes = rest;
        }
        Ok(last)
    }

    /// What `user` may do with `document` (one query, two when the user has no role).
    pub async fn access(&self, user: &str, document: &DocumentId) -> Result<Access, DocumentError> {
        Ok(match self.store.role(document, user).await? {
            Some(role) if role.can_write() => Access::Write,
            Some(_) => Access::Read,
            None if self.store.members(document).await?.is_some() => Access::Denied,
            None => Access::Missing,
        })
    }

    /// Runs `f` on the cached `document`, brought up to date first unless `mark` says the
    /// cache holds that commit already (`Mark::Committed(0)`: whatever is loaded will do).
    /// No access check: the caller made it.
    pub async fn with_doc<R>(
        &self,
        document: &DocumentId,
        mark: Mark,
        f: impl FnOnce(&mut automerge::Automerge) -> R,
    ) -> Result<R, DocumentError> {
        let entry = self.cache.entry(*document);
        let mut cached = entry.lock().await;
        let fresh = matches!(mark, Mark::Committed(seq) if cached.holds(seq));
        if !fresh && let Err(e) = cached.refresh(Source::Store(self.store.as_ref())).await {
            self.cache.evict(document);
            return Err(e.into());
        }
        Ok(f(&mut cached.doc))
    }

    /// A sync round of validated `work`: the answer's documents (none with `respond: false`,
    /// and then not computed), and the new rows' `seq_no`s, per document in document-id order.
    async fn round(
        &self,
        user: &str,
        work: Vec<server::DocWork>,
        respond: bool,
    ) -> Result<(Vec<DocResponse>, Vec<Vec<i64>>), DocumentError> {
        let mut order: Vec<usize> = (0..work.len()).collect();
        order.sort_by_key(|&i| work[i].document);
        let mut guards = Vec::with_capacity(order.len());
        for &i in &order {
            guards.push(self.cache.entry(work[i].document).lock_owned().await);
        }
        let mut tx = if work.iter().any(server::DocWork::writes) {
            Some(self.store.begin().await?)
        } else {
            None
        };

        let mut forbidden = Vec::new();
        for &i in &order {
            let w = &work[i];
            let allowed = match (&mut tx, w.writes()) {
                (Some(tx), true) => tx
                    .lock_document(&w.document, user)
                    .await?
                    .is_some_and(Role::can_write),
                _ => self.store.role(&w.document, user).await?.is_some(),
            };
            if !allowed {
                forbidden.push(w.document);
            }
        }
        if !forbidden.is_empty() {
            return Err(DocumentError::Forbidden(forbidden)); // the transaction rolls back
        }

        let evict_all =
            |cache: &DocCache| order.iter().for_each(|&i| cache.evict(&work[i].document));
        let mut applied = Vec::with_capacity(order.len());
        for (k, &i) in order.iter().enumerate() {
            let cached: &mut Cached = &mut guards[k];
            let source = match &mut tx {
                Some(tx) => Source::Tx(tx.as_mut()),
                None => Source::Store(self.store.as_ref()),
            };
            let result = match cached.refresh(source).await {
                Ok(()) => server::apply(&mut cached.doc, &work[i]).map_err(DocumentError::from),
                Err(e) => Err(e.into()),
            };
            match result {
                Ok(a) => applied.push(a),
                Err(e) => {
                    evict_all(&self.cache);
                    return Err(e);
                }
            }
        }

        let mut new_seqs: Vec<Vec<i64>> = Vec::with_capacity(order.len());
        if let Some(mut tx) = tx {
            let persisted: Result<(), StoreError> = async {
                for (k, &i) in order.iter().enumerate() {
                    let rows: Vec<StoredChange> =
                        applied[k].new_changes.iter().cloned().map(stored).collect();
                    let seqs = if rows.is_empty() {
                        Vec::new()
                    } else {
                        tx.insert_changes(&work[i].document, &rows).await?
                    };
                    if let Some(&last) = seqs.iter().max() {
                        // The rows follow the cache's newest (it was brought up to date under
                        // the document's lock); the changes go with the notification only if
                        // every one became a row.
                        let changes: Vec<&[u8]> = if seqs.len() == rows.len() {
                            rows.iter().map(|r| r.bytes.as_slice()).collect()
                        } else {
                            Vec::new()
                        };
                        let after = guards[k].seq;
                        tx.notify(&work[i].document, after, last, &changes).await?;
                    }
                    new_seqs.push(seqs);
                }
                tx.commit().await
            }
            .await;
            if let Err(e) = persisted {
                evict_all(&self.cache);
                return Err(e.into());
            }
        }

        // Committed: account for the new rows, answer, announce.
        crate::metrics::changes_applied(new_seqs.iter().map(Vec::len).sum());
        let mut documents: Vec<Option<DocResponse>> = vec![None; work.len()];
        for (k, &i) in order.iter().enumerate() {
            let cached: &mut Cached = &mut guards[k];
            if let Some(&last) = new_seqs.get(k).and_then(|s| s.iter().max()) {
                cached.seq = cached.seq.max(last);
                cached.since_snapshot += new_seqs[k].len();
                self.hub.publish(&work[i].document, Mark::Committed(last));
                self.maybe_snapshot(work[i].document, cached);
            }
            if respond {
                let acked = std::mem::take(&mut applied[k].acked);
                documents[i] = Some(server::respond(&cached.doc, &work[i], acked));
            }
        }
        Ok((documents.into_iter().flatten().collect(), new_seqs))
    }

    /// Takes the changes another replica committed, as its notification carries them, into
    /// the cached document if the cache holds exactly what they follow (otherwise the next
    /// reader refreshes it from the database, as without them). Never waits: a document in
    /// use is left to its next reader.
    pub fn absorb(&self, document: &DocumentId, committed: crate::store::Committed) {
        let Some(entry) = self.cache.peek(document) else {
            return;
        };
        let Ok(mut cached) = entry.try_lock() else {
            return;
        };
        if let Err(e) = cached.absorb(committed) {
            tracing::warn!(%document, error = %e, "a notification's changes do not apply");
            drop(cached);
            self.cache.evict(document);
        }
    }

    /// What `user`, who has `their_heads` of `document`, lacks, cut to about `budget` bytes
    /// (see [`server::missing_within`]). Needs read access.
    ///
    /// `mark` is why a live connection asks: after [`Mark::Committed`] (no access change was
    /// announced since the connection's last check) access is not re-read, and a cache that
    /// already holds that commit is not refreshed, so a push costs no database round trip.
    pub async fn missing(
        &self,
        user: &str,
        document: &DocumentId,
        their_heads: &[ChangeHash],
        budget: usize,
        mark: Mark,
    ) -> Result<server::Missing, DocumentError> {
        if mark == Mark::Unknown && self.store.role(document, user).await?.is_none() {
            return Err(DocumentError::Forbidden(vec![*document]));
        }
        self.with_doc(document, mark, |doc| {
            server::missing_within(doc, their_heads, budget)
        })
        .await
    }

    /// The owner and members of `document`; only its owner may see them.
    pub async fn members(
        &self,
        user: &str,
        document: &DocumentId,
    ) -> Result<(String, Vec<Member>), DocumentError> {
        match self.store.members(document).await? {
            Some((owner, members)) if owner == user => Ok((owner, members)),
            _ => Err(DocumentError::Forbidden(vec![*document])),
        }
    }

    /// Gives `member` `role` (writer or reader; `None` removes); only the owner may.
    pub async fn set_member(
        &self,
        user: &str,
        document: &DocumentId,
        member: &str,
        role: Option<Role>,
    ) -> Result<(), DocumentError> {
        let (owner, _) = self.members(user, document).await?;
        if member == owner || role == Some(Role::Owner) {
            return Err(DocumentError::Forbidden(vec![*document]));
        }
        self.store.set_member(document, member, role).await?;
        // Followers may have lost access: their connections re-check on the next mark, here
        // and on every other replica.
        self.hub.publish(document, Mark::Unknown);
        self.store.announce(document).await?;
        Ok(())
    }

    /// Writes a compacted snapshot in the background when enough changes piled up.
    fn maybe_snapshot(&self, document: DocumentId, cached: &mut Cached) {
        if cached.since_snapshot < self.settings.snapshot_every {
            return;
        }
        cached.since_snapshot = 0;
        let snapshot = Snapshot {
            upto_seq: cached.seq,
            bytes: cached.doc.save_with_options(automerge::SaveOptions {
                retain_orphans: true,
                ..Default::default()
            }),
        };
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.save_snapshot(&document, &snapshot).await {
                tracing::warn!(%document, error = %e, "could not save a snapshot");
            }
        });
    }
}

fn stored(mut change: Change) -> StoredChange {
    StoredChange {
        hash: change.hash().into(),
        actor: change.actor_id().to_bytes().to_vec(),
        seq: change.seq(),
        deps: change.deps().iter().copied().map(Into::into).collect(),
        bytes: change.bytes().into_owned(),
    }
}
