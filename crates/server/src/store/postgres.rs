//! The PostgreSQL document store (schema: `migrations/postgres`).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use cairn_core::DocumentId;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction as SqlxTransaction};

use super::{
    ChangeRow, DocumentStore, Loaded, Member, Notice, Notifications, Role, Snapshot, StoreError,
    StoreOptions, StoredChange, Transaction, encode_deps, role_of, seq_i64,
};

/// The channel on which every replica announces committed changes (payload: document id).
const CHANNEL: &str = "cairn_documents";

const ROLE: &str = "SELECT CASE WHEN d.owner = $2 THEN 'owner' ELSE m.role END
     FROM documents d
     LEFT JOIN document_members m ON m.document_id = d.id AND m.user_id = $2
     WHERE d.id = $1";
const CHANGES_SINCE: &str =
    "SELECT seq_no, bytes FROM changes WHERE document_id = $1 AND seq_no > $2 ORDER BY seq_no";
const SNAPSHOT: &str = "SELECT upto_seq_no, bytes FROM snapshots WHERE document_id = $1";

/// Documents in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    url: String,
}

impl PostgresStore {
    /// Connects (retrying with backoff for `options.connect_retry`, so the server may start
    /// before its database) and applies pending migrations.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(100);
        let pool = loop {
            let attempt = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                .connect(url)
                .await;
            match attempt {
                Ok(pool) => break pool,
                Err(e) if started.elapsed() + backoff < options.connect_retry => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "cannot connect to PostgreSQL yet");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e.into()),
            }
        };
        sqlx::migrate!("../../migrations/postgres")
            .run(&pool)
            .await?;
        Ok(Self {
            pool,
            url: url.to_owned(),
        })
    }
}

async fn load_in<'e, E>(executor: E, document: &DocumentId) -> Result<Option<Snapshot>, StoreError>
where
    E: sqlx::PgExecutor<'e>,
{
    let row: Option<(i64, Vec<u8>)> = sqlx::query_as(SNAPSHOT)
        .bind(document.to_string())
        .fetch_optional(executor)
        .await?;
    Ok(row.map(|(upto_seq, bytes)| Snapshot { upto_seq, bytes }))
}

#[async_trait]
impl DocumentStore for PostgresStore {
    fn describe(&self) -> String {
        "postgres".to_owned()
    }

    async fn role(&self, document: &DocumentId, user: &str) -> Result<Option<Role>, StoreError> {
        let row: Option<(Option<String>,)> = sqlx::query_as(ROLE)
            .bind(document.to_string())
            .bind(user)
            .fetch_optional(&self.pool)
            .await?;
        role_of(row.and_then(|(r,)| r))
    }

    async fn load(&self, document: &DocumentId) -> Result<Loaded, StoreError> {
        let snapshot = load_in(&self.pool, document).await?;
        let after = snapshot.as_ref().map_or(0, |s| s.upto_seq);
        let changes = self.changes_since(document, after).await?;
        Ok(Loaded { snapshot, changes })
    }

    async fn changes_since(
        &self,
        document: &DocumentId,
        after: i64,
    ) -> Result<Vec<ChangeRow>, StoreError> {
        Ok(sqlx::query_as(CHANGES_SINCE)
            .bind(document.to_string())
            .bind(after)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>, StoreError> {
        Ok(Box::new(PgTransaction {
            tx: self.pool.begin().await?,
        }))
    }

    async fn save_snapshot(
        &self,
        document: &DocumentId,
        snapshot: &Snapshot,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO snapshots (document_id, upto_seq_no, bytes) VALUES ($1, $2, $3)
             ON CONFLICT (document_id) DO UPDATE
               SET upto_seq_no = EXCLUDED.upto_seq_no, bytes = EXCLUDED.bytes, created_at = now()
               WHERE snapshots.upto_seq_no < EXCLUDED.upto_seq_no",
        )
        .bind(document.to_string())
        .bind(snapshot.upto_seq)
        .bind(&snapshot.bytes)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn members(
        &self,
        document: &DocumentId,
    ) -> Result<Option<(String, Vec<Member>)>, StoreError> {
        let owner: Option<(Option<String>,)> =
            sqlx::query_as("SELECT owner FROM documents WHERE id = $1")
                .bind(document.to_string())
                .fetch_optional(&self.pool)
                .await?;
        let Some((Some(owner),)) = owner else {
            return Ok(None);
        };
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT user_id, role FROM document_members WHERE document_id = $1 ORDER BY user_id",
        )
        .bind(document.to_string())
        .fetch_all(&self.pool)
        .await?;
        let members = rows
            .into_iter()
            .map(|(user, role)| {
                Ok(Member {
                    user,
                    role: Role::parse(&role)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Some((owner, members)))
    }

    async fn set_member(
        &self,
        document: &DocumentId,
        user: &str,
        role: Option<Role>,
    ) -> Result<(), StoreError> {
        match role {
            Some(role) => sqlx::query(
                "INSERT INTO document_members (document_id, user_id, role) VALUES ($1, $2, $3)
                 ON CONFLICT (document_id, user_id) DO UPDATE SET role = EXCLUDED.role",
            )
            .bind(document.to_string())
            .bind(user)
            .bind(role.as_str()),
            None => {
                sqlx::query("DELETE FROM document_members WHERE document_id = $1 AND user_id = $2")
                    .bind(document.to_string())
                    .bind(user)
            }
        }
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn change_count(&self, document: &DocumentId) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM changes WHERE document_id = $1")
            .bind(document.to_string())
            .fetch_one(&self.pool)
            .await?;
        Ok(n.unsigned_abs())
    }

    async fn listen(&self) -> Result<Box<dyn Notifications>, StoreError> {
        let mut listener = PgListener::connect(&self.url).await?;
        listener.listen(CHANNEL).await?;
        Ok(Box::new(PgNotifications { listener }))
    }
}

struct PgNotifications {
    listener: PgListener,
}

#[async_trait]
impl Notifications for PgNotifications {
    async fn next(&mut self) -> Result<Notice, StoreError> {
        loop {
            // `None`: the connection was lost (and is re-established on the next call), so
            // notifications may have been missed.
            match self.listener.try_recv().await? {
                None => return Ok(Notice::Lost),
                Some(n) => match n.payload().parse() {
                    Ok(document) => return Ok(Notice::Changed(document)),
                    Err(_) => {
                        tracing::warn!(payload = n.payload(), "ignoring a malformed notification")
                    }
                },
            }
        }
    }
}

struct PgTransaction {
    tx: SqlxTransaction<'static, Postgres>,
}

#[async_trait]
impl Transaction for PgTransaction {
    async fn lock_document(
        &mut self,
        document: &DocumentId,
        user: &str,
    ) -> Result<Option<Role>, StoreError> {
        // One round trip: create the document if needed; either way the no-op update locks
        // its row until the transaction ends, and returns its owner.
        let row: Option<(Option<String>,)> = sqlx::query_as(
            "WITH d AS (
                 INSERT INTO documents (id, owner) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET id = EXCLUDED.id
                 RETURNING id, owner
             )
             SELECT CASE WHEN d.owner = $2 THEN 'owner' ELSE
                 (SELECT m.role FROM document_members m WHERE m.document_id = d.id AND m.user_id = $2)
             END
             FROM d",
        )
        .bind(document.to_string())
        .bind(user)
        .fetch_optional(&mut *self.tx)
        .await?;
        role_of(row.and_then(|(r,)| r))
    }

    async fn changes_since(
        &mut self,
        document: &DocumentId,
        after: i64,
    ) -> Result<Vec<ChangeRow>, StoreError> {
        Ok(sqlx::query_as(CHANGES_SINCE)
            .bind(document.to_string())
            .bind(after)
            .fetch_all(&mut *self.tx)
            .await?)
    }

    async fn load(&mut self, document: &DocumentId) -> Result<Loaded, StoreError> {
        let snapshot = load_in(&mut *self.tx, document).await?;
        let after = snapshot.as_ref().map_or(0, |s| s.upto_seq);
        let changes = self.changes_since(document, after).await?;
        Ok(Loaded { snapshot, changes })
    }

    async fn insert_changes(
        &mut self,
        document: &DocumentId,
        changes: &[StoredChange],
    ) -> Result<Vec<i64>, StoreError> {
        let seqs = changes
            .iter()
            .map(|c| seq_i64(c.seq))
            .collect::<Result<Vec<_>, _>>()?;
        // One statement for the whole batch: UNNEST turns the column arrays into rows.
        let rows: Vec<(i64,)> = sqlx::query_as(
            "INSERT INTO changes (document_id, hash, actor, seq, deps, bytes)
             SELECT $1, * FROM UNNEST($2::bytea[], $3::bytea[], $4::int8[], $5::bytea[], $6::bytea[])
             ON CONFLICT (document_id, hash) DO NOTHING
             RETURNING seq_no",
        )
        .bind(document.to_string())
        .bind(changes.iter().map(|c| c.hash.as_bytes().to_vec()).collect::<Vec<_>>())
        .bind(changes.iter().map(|c| c.actor.clone()).collect::<Vec<_>>())
        .bind(seqs)
        .bind(changes.iter().map(|c| encode_deps(&c.deps)).collect::<Vec<_>>())
        .bind(changes.iter().map(|c| c.bytes.clone()).collect::<Vec<_>>())
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows.into_iter().map(|(s,)| s).collect())
    }

    async fn notify(&mut self, document: &DocumentId) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(document.to_string())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        Ok(self.tx.commit().await?)
    }
}
