//! The PostgreSQL document store (schema: `migrations/postgres`). Queries common to both
//! backends are in `shared`; here: connecting, locking, batch inserts, notifications.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use cairn_core::DocumentId;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction as SqlxTransaction};

use super::files::{file_store, select_files};
use super::gc::gc_store;
use super::inspect::inspect_store;
use super::schema::schema_store;
use super::shared::{document_store, transaction};
use super::{
    Committed, Notice, Notifications, Role, Snapshot, StoreError, StoreOptions, StoredChange,
    Transaction, encode_deps, role_of, seq_i64,
};

/// A batch of change rows: UNNEST turns the column arrays into rows; a change already stored
/// (same document, same hash) is skipped.
pub(super) const INSERT_CHANGES: &str =
    "INSERT INTO changes (document_id, hash, actor, seq, deps, bytes)
     SELECT $1, * FROM UNNEST($2::bytea[], $3::bytea[], $4::int8[], $5::bytea[], $6::bytea[])
     ON CONFLICT (document_id, hash) DO NOTHING
     RETURNING seq_no";

/// The channel on which every replica announces committed changes (payload: document id and
/// the commit's last `seq_no`) and access changes (payload: document id alone).
const CHANNEL: &str = "cairn_documents";

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
        if options.migrate {
            super::schema::POSTGRES.run(&pool).await?;
        }
        Ok(Self {
            pool,
            url: url.to_owned(),
        })
    }
}

file_store!(PostgresStore, PG_SEARCH, pg_search_query);
inspect_store!(
    PostgresStore,
    PgInspection,
    Postgres,
    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
);
schema_store!(
    PostgresStore,
    super::schema::POSTGRES,
    "SELECT to_regclass('_sqlx_migrations') IS NOT NULL"
);
gc_store!(
    PostgresStore,
    PG_CLAIM_BLOCKS,
    "SELECT 1 FROM file_contents WHERE cid = $1 FOR UPDATE"
);

/// The advisory lock garbage collection takes exclusive to delete blocks, and uploads take
/// shared to claim them ("cairn gc").
const GC_LOCK: i64 = 0x6361_6972_6e20_6763;

/// Claims: `$1` content, `$2` a JSON array of digests, `$3` the time.
const PG_CLAIM_BLOCKS: &str = "INSERT INTO content_blocks (content_cid, digest, claimed_ms)
     SELECT $1, d, $3 FROM jsonb_array_elements_text($2::jsonb) AS d
     ON CONFLICT (content_cid, digest) DO UPDATE SET claimed_ms = EXCLUDED.claimed_ms";

impl PostgresStore {
    /// The connection pool (for the operations commands, which copy whole tables).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// A transaction holding [`GC_LOCK`], exclusive (deleting blocks) or shared (claiming).
    async fn begin_gc(
        &self,
        exclusive: bool,
    ) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let lock = if exclusive {
            "SELECT pg_advisory_xact_lock($1)"
        } else {
            "SELECT pg_advisory_xact_lock_shared($1)"
        };
        sqlx::query(lock).bind(GC_LOCK).execute(&mut *tx).await?;
        Ok(tx)
    }
}

/// `$1` owner, `$2` the query from [`pg_search_query`], `$3` type prefix pattern, `$4` limit.
const PG_SEARCH: &str = select_files!(
    "FROM files f JOIN file_contents c ON c.cid = f.cid
     LEFT JOIN pins p ON p.cid = f.cid
     WHERE f.owner = $1 AND f.search @@ to_tsquery('simple', $2)
       AND ($3 IS NULL OR f.content_type LIKE $3 ESCAPE '\\')
     ORDER BY ts_rank(f.search, to_tsquery('simple', $2)) DESC, f.created_ms DESC, f.cid
     LIMIT $4"
);

/// Every word as a prefix: `report:* & v1:*` (words are letters and digits only).
fn pg_search_query(words: &[String]) -> String {
    let terms: Vec<String> = words.iter().map(|w| format!("{w}:*")).collect();
    terms.join(" & ")
}

document_store!(PostgresStore {
    fn describe(&self) -> String {
        "postgres".to_owned()
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>, StoreError> {
        Ok(Box::new(PgTransaction { tx: self.pool.begin().await? }))
    }

    async fn save_snapshot(&self, document: &DocumentId, snapshot: &Snapshot) -> Result<(), StoreError> {
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

    async fn listen(&self) -> Result<Box<dyn Notifications>, StoreError> {
        let mut listener = PgListener::connect(&self.url).await?;
        listener.listen(CHANNEL).await?;
        Ok(Box::new(PgNotifications { listener }))
    }

    async fn announce(&self, document: &DocumentId) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(document.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
});

struct PgNotifications {
    listener: PgListener,
}

/// Longest notification payload sent with the changes in it (PostgreSQL takes up to 8000
/// bytes); a larger commit is announced without them and read back by the other replicas.
const MAX_PAYLOAD: usize = 7900;

/// A commit's notification: `"<document> <seq_no> <commit time, Unix ms> <previous seq_no>
/// <change hex>,<change hex>,..."`, or without the last two fields when the changes do not fit.
fn payload(document: &DocumentId, after: i64, seq: i64, changes: &[&[u8]], now_ms: i64) -> String {
    let head = format!("{document} {seq} {now_ms}");
    let size: usize = changes.iter().map(|c| c.len() * 2 + 1).sum();
    if changes.is_empty() || head.len() + 22 + size > MAX_PAYLOAD {
        return head;
    }
    let hexes: Vec<String> = changes.iter().map(hex::encode).collect();
    format!("{head} {after} {}", hexes.join(","))
}

/// `"<document>"` (an access change), `"<document> <seq_no>"`, `"<document> <seq_no> <commit
/// time>"` (replicas of earlier versions send the shorter forms), or all that and the changes
/// (see [`payload`]).
fn parse_payload(payload: &str) -> Option<Notice> {
    let mut parts = payload.split(' ');
    let document = parts.next()?.parse().ok()?;
    let mut number = || match parts.next() {
        Some(n) => n.parse().ok().map(Some),
        None => Some(None),
    };
    let (seq, at, after) = (number()?, number()?, number()?);
    let committed = match (seq, after, parts.next()) {
        (Some(seq), Some(after), Some(hexes)) => Some(Committed {
            after,
            seq,
            changes: hexes
                .split(',')
                .map(hex::decode)
                .collect::<Result<_, _>>()
                .ok()?,
        }),
        (_, None, None) => None,
        _ => return None,
    };
    parts
        .next()
        .is_none()
        .then_some(Notice::Changed(document, seq, at, committed))
}

#[async_trait]
impl Notifications for PgNotifications {
    async fn next(&mut self) -> Result<Notice, StoreError> {
        loop {
            // `None`: the connection was lost (and is re-established on the next call), so
            // notifications may have been missed.
            match self.listener.try_recv().await? {
                None => return Ok(Notice::Lost),
                Some(n) => match parse_payload(n.payload()) {
                    Some(notice) => return Ok(notice),
                    None => {
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

transaction!(PgTransaction {
    async fn lock_document(&mut self, document: &DocumentId, user: &str) -> Result<Option<Role>, StoreError> {
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

    async fn insert_changes(&mut self, document: &DocumentId, changes: &[StoredChange]) -> Result<Vec<i64>, StoreError> {
        let seqs = changes.iter().map(|c| seq_i64(c.seq)).collect::<Result<Vec<_>, _>>()?;
        // One statement for the whole batch: UNNEST turns the column arrays into rows.
        let rows: Vec<(i64,)> = sqlx::query_as(INSERT_CHANGES)
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

    async fn notify(
        &mut self,
        document: &DocumentId,
        after: i64,
        seq: i64,
        changes: &[&[u8]],
    ) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload(document, after, seq, changes, crate::clock::now_ms()))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
});

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn notifications_carry_small_commits_and_announce_large_ones() {
        let doc = DocumentId::from_random_bytes([7; 16]);
        let small: &[&[u8]] = &[b"\x85\x6f\x4a\x83one", b"two"];
        let committed = Committed {
            after: 41,
            seq: 43,
            changes: vec![small[0].to_vec(), small[1].to_vec()],
        };
        assert_eq!(
            parse_payload(&payload(&doc, 41, 43, small, 1_000)),
            Some(Notice::Changed(doc, Some(43), Some(1_000), Some(committed)))
        );
        let big = vec![0u8; 5_000];
        let announced = payload(&doc, 41, 42, &[&big], 1_000);
        assert!(
            announced.len() < 100,
            "too large: announced without the change"
        );
        assert_eq!(
            parse_payload(&announced),
            Some(Notice::Changed(doc, Some(42), Some(1_000), None))
        );
        // Earlier replicas' forms, and garbage.
        assert_eq!(
            parse_payload(&doc.to_string()),
            Some(Notice::Changed(doc, None, None, None))
        );
        assert_eq!(
            parse_payload(&format!("{doc} 9")),
            Some(Notice::Changed(doc, Some(9), None, None))
        );
        assert!(parse_payload(&format!("{doc} 9 1 8")).is_none());
        assert!(parse_payload(&format!("{doc} 9 1 8 zz")).is_none());
        assert!(parse_payload("not-a-document 1").is_none());
    }
}
