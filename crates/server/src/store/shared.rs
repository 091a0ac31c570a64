//! What the two backends share: SQL that means the same in PostgreSQL and SQLite (both take
//! `$n` placeholders), and macros that implement [`DocumentStore`] and [`Transaction`] around
//! it, so each backend file holds only what differs (connecting, locking, batch inserts,
//! notifications).
//!
//! [`DocumentStore`]: super::DocumentStore
//! [`Transaction`]: super::Transaction

pub(super) const ROLE: &str = "SELECT CASE WHEN d.owner = $2 THEN 'owner' ELSE m.role END
     FROM documents d
     LEFT JOIN document_members m ON m.document_id = d.id AND m.user_id = $2
     WHERE d.id = $1";
pub(super) const CHANGES_SINCE: &str =
    "SELECT seq_no, bytes FROM changes WHERE document_id = $1 AND seq_no > $2 ORDER BY seq_no";
pub(super) const SNAPSHOT: &str = "SELECT upto_seq_no, bytes FROM snapshots WHERE document_id = $1";
pub(super) const OWNER: &str = "SELECT owner FROM documents WHERE id = $1";
pub(super) const MEMBERS: &str =
    "SELECT user_id, role FROM document_members WHERE document_id = $1 ORDER BY user_id";
pub(super) const SET_MEMBER: &str = "INSERT INTO document_members (document_id, user_id, role)
     VALUES ($1, $2, $3)
     ON CONFLICT (document_id, user_id) DO UPDATE SET role = excluded.role";
pub(super) const REMOVE_MEMBER: &str =
    "DELETE FROM document_members WHERE document_id = $1 AND user_id = $2";
pub(super) const CHANGE_COUNT: &str = "SELECT count(*) FROM changes WHERE document_id = $1";
pub(super) const DOCUMENTS_FOR: &str = "SELECT id, 'owner' FROM documents WHERE owner = $1
     UNION ALL
     SELECT document_id, role FROM document_members WHERE user_id = $1
     ORDER BY 1";

/// `impl DocumentStore for $store` (which has a `pool` field): the shared methods, plus the
/// backend's own (`describe`, `begin`, `save_snapshot`, `listen`).
macro_rules! document_store {
    ($store:ty { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::store::DocumentStore for $store {
            fn pool_usage(&self) -> (u64, u64, u64) {
                (
                    u64::from(self.pool.size()),
                    self.pool.num_idle() as u64,
                    u64::from(self.pool.options().get_max_connections()),
                )
            }

            async fn role(
                &self,
                document: &cairn_core::DocumentId,
                user: &str,
            ) -> Result<Option<$crate::store::Role>, $crate::store::StoreError> {
                let row: Option<(Option<String>,)> = sqlx::query_as($crate::store::shared::ROLE)
                    .bind(document.to_string())
                    .bind(user)
                    .fetch_optional(&self.pool)
                    .await?;
                $crate::store::role_of(row.and_then(|(r,)| r))
            }

            async fn load(
                &self,
                document: &cairn_core::DocumentId,
            ) -> Result<$crate::store::Loaded, $crate::store::StoreError> {
                let snapshot: Option<(i64, Vec<u8>)> = sqlx::query_as($crate::store::shared::SNAPSHOT)
                    .bind(document.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                let snapshot = snapshot.map(|(upto_seq, bytes)| $crate::store::Snapshot { upto_seq, bytes });
                let after = snapshot.as_ref().map_or(0, |s| s.upto_seq);
                let changes = self.changes_since(document, after).await?;
                Ok($crate::store::Loaded { snapshot, changes })
            }

            async fn changes_since(
                &self,
                document: &cairn_core::DocumentId,
                after: i64,
            ) -> Result<Vec<$crate::store::ChangeRow>, $crate::store::StoreError> {
                Ok(sqlx::query_as($crate::store::shared::CHANGES_SINCE)
                    .bind(document.to_string())
                    .bind(after)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn members(
                &self,
                document: &cairn_core::DocumentId,
            ) -> Result<Option<(String, Vec<$crate::store::Member>)>, $crate::store::StoreError> {
                let owner: Option<(Option<String>,)> = sqlx::query_as($crate::store::shared::OWNER)
                    .bind(document.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                let Some((Some(owner),)) = owner else { return Ok(None) };
                let rows: Vec<(String, String)> = sqlx::query_as($crate::store::shared::MEMBERS)
                    .bind(document.to_string())
                    .fetch_all(&self.pool)
                    .await?;
                let members = rows
                    .into_iter()
                    .map(|(user, role)| {
                        Ok($crate::store::Member { user, role: $crate::store::Role::parse(&role)? })
                    })
                    .collect::<Result<_, $crate::store::StoreError>>()?;
                Ok(Some((owner, members)))
            }

            async fn set_member(
                &self,
                document: &cairn_core::DocumentId,
                user: &str,
                role: Option<$crate::store::Role>,
            ) -> Result<(), $crate::store::StoreError> {
                let query = match role {
                    Some(role) => sqlx::query($crate::store::shared::SET_MEMBER)
                        .bind(document.to_string())
                        .bind(user)
                        .bind(role.as_str()),
                    None => sqlx::query($crate::store::shared::REMOVE_MEMBER)
                        .bind(document.to_string())
                        .bind(user),
                };
                query.execute(&self.pool).await?;
                Ok(())
            }

            async fn documents_for(
                &self,
                user: &str,
            ) -> Result<Vec<(cairn_core::DocumentId, $crate::store::Role)>, $crate::store::StoreError> {
                let rows: Vec<(String, String)> = sqlx::query_as($crate::store::shared::DOCUMENTS_FOR)
                    .bind(user)
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter()
                    .map(|(id, role)| {
                        let id = id
                            .parse()
                            .map_err(|e| $crate::store::StoreError::Corrupt(format!("document id {id}: {e}")))?;
                        Ok((id, $crate::store::Role::parse(&role)?))
                    })
                    .collect()
            }

            async fn change_count(&self, document: &cairn_core::DocumentId) -> Result<u64, $crate::store::StoreError> {
                let (n,): (i64,) = sqlx::query_as($crate::store::shared::CHANGE_COUNT)
                    .bind(document.to_string())
                    .fetch_one(&self.pool)
                    .await?;
                Ok(n.unsigned_abs())
            }

            $($own)*
        }
    };
}

/// `impl Transaction for $tx` (which has a `tx` field, an sqlx transaction): the shared reads,
/// plus the backend's own (`lock_document`, `insert_changes`, `notify`, `commit`).
macro_rules! transaction {
    ($tx:ty { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::store::Transaction for $tx {
            async fn changes_since(
                &mut self,
                document: &cairn_core::DocumentId,
                after: i64,
            ) -> Result<Vec<$crate::store::ChangeRow>, $crate::store::StoreError> {
                Ok(sqlx::query_as($crate::store::shared::CHANGES_SINCE)
                    .bind(document.to_string())
                    .bind(after)
                    .fetch_all(&mut *self.tx)
                    .await?)
            }

            async fn load(
                &mut self,
                document: &cairn_core::DocumentId,
            ) -> Result<$crate::store::Loaded, $crate::store::StoreError> {
                let snapshot: Option<(i64, Vec<u8>)> = sqlx::query_as($crate::store::shared::SNAPSHOT)
                    .bind(document.to_string())
                    .fetch_optional(&mut *self.tx)
                    .await?;
                let snapshot = snapshot.map(|(upto_seq, bytes)| $crate::store::Snapshot { upto_seq, bytes });
                let after = snapshot.as_ref().map_or(0, |s| s.upto_seq);
                let changes = self.changes_since(document, after).await?;
                Ok($crate::store::Loaded { snapshot, changes })
            }

            async fn commit(self: Box<Self>) -> Result<(), $crate::store::StoreError> {
                Ok(self.tx.commit().await?)
            }

            $($own)*
        }
    };
}

pub(super) use {document_store, transaction};
