//! The PostgreSQL document store.

use async_trait::async_trait;
use cairn_core::DocumentId;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::{DocumentStore, StoreError, StoredChange, encode_deps};

/// Documents in PostgreSQL (schema: `migrations/postgres`).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url)
            .await?;
        sqlx::migrate!("../../migrations/postgres")
            .run(&pool)
            .await?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl DocumentStore for PostgresStore {
    fn describe(&self) -> String {
        "postgres".to_owned()
    }

    async fn changes(&self, document: &DocumentId) -> Result<Vec<Vec<u8>>, StoreError> {
        let rows: Vec<(Vec<u8>,)> =
            sqlx::query_as("SELECT bytes FROM changes WHERE document_id = $1 ORDER BY seq_no")
                .bind(document.to_string())
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(b,)| b).collect())
    }

    async fn insert_changes(
        &self,
        document: &DocumentId,
        changes: &[StoredChange],
    ) -> Result<u64, StoreError> {
        let id = document.to_string();
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO documents (id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        let seqs = changes
            .iter()
            .map(|c| {
                i64::try_from(c.seq).map_err(|_| StoreError::Corrupt("seq overflows i64".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // One statement for the whole batch: UNNEST turns the column arrays into rows.
        let inserted = sqlx::query(
            "INSERT INTO changes (document_id, hash, actor, seq, deps, bytes)
             SELECT $1, * FROM UNNEST($2::bytea[], $3::bytea[], $4::int8[], $5::bytea[], $6::bytea[])
             ON CONFLICT (document_id, hash) DO NOTHING",
        )
        .bind(&id)
        .bind(changes.iter().map(|c| c.hash.as_bytes().to_vec()).collect::<Vec<_>>())
        .bind(changes.iter().map(|c| c.actor.clone()).collect::<Vec<_>>())
        .bind(seqs)
        .bind(changes.iter().map(|c| encode_deps(&c.deps)).collect::<Vec<_>>())
        .bind(changes.iter().map(|c| c.bytes.clone()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(inserted)
    }
}
