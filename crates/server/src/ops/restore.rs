//! `cairn restore --from DIR`: a backup into an empty deployment, PostgreSQL or SQLite
//! whichever the backup came from. All or nothing:
//!
//! 1. Everything is checked before anything is written: the manifest against every part
//!    (sizes, sha-256, `SHA256SUMS`), every block against its name, the database's row counts
//!    against the manifest's, its schema against this binary's, and the target is empty
//!    (unless `--force`, which replaces what is there).
//! 2. Blocks and upload bytes are copied into the data directory, then the rows: PostgreSQL
//!    in one transaction (binary `COPY` per table), SQLite by moving a migrated copy of the
//!    backup's database into place. If the rows fail, the blocks written are removed again.
//! 3. One `syncfs`, and the deployment can be served.

use std::path::{Path, PathBuf};
use std::time::Instant;

use sqlx::{AssertSqlSafe, Connection};

use super::manifest::{self, Manifest, block_path};
use super::progress::{Progress, Show, Unit};
use super::rows::{self, Counts};
use super::tables::TABLES;
use super::{OpsError, blocks, sqlite_path};
use crate::config::StorageArgs;
use crate::store::{PostgresStore, SQLITE_FILE_NAME, SqliteStore, schema};

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub manifest: Manifest,
    /// `postgres` or `sqlite <path>`.
    pub target: String,
    pub rows: Counts,
    pub blocks: u64,
    pub bytes: u64,
    pub uploads: u64,
    pub seconds: f64,
    /// Of which: checking the backup, copying the blocks, restoring the rows.
    pub check_seconds: f64,
    pub blocks_seconds: f64,
    pub rows_seconds: f64,
}

/// Where the rows go.
enum Target {
    Postgres(String),
    Sqlite(PathBuf),
}

/// Restores the backup in `from` into the deployment `storage` names.
pub async fn restore(
    storage: &StorageArgs,
    from: &Path,
    force: bool,
    show: Show,
) -> Result<Restored, OpsError> {
    let started = Instant::now();
    let dir = from.to_owned();
    // Every part hashed, every block there with its size; blocks are hashed as they are copied.
    let checked = tokio::task::spawn_blocking(move || manifest::check(&dir, false))
        .await
        .map_err(|e| OpsError::Invalid(format!("the check stopped: {e}")))?;
    let (manifest, index) = checked.map_err(|problems| {
        OpsError::Refused(format!(
            "the backup in {} does not match its manifest; nothing was restored:\n  {}",
            from.display(),
            problems.join("\n  ")
        ))
    })?;
    let newest = schema::SQLITE.iter().map(|m| m.version).max().unwrap_or(0);
    if manifest.schema_version > newest {
        return Err(OpsError::Refused(format!(
            "the backup's schema is version {}, newer than this cairn's ({newest}): restore it \
             with the version that made it ({})",
            manifest.schema_version, manifest.cairn_version
        )));
    }
    let source = from.join(&manifest.database.path);
    check_counts(&source, &manifest).await?;

    let target = match storage.database_url.as_deref() {
        Some(url) if url.starts_with("sqlite:") => Target::Sqlite(sqlite_path(url)?),
        Some(url) => Target::Postgres(url.to_owned()),
        None => Target::Sqlite(storage.data_dir.join(SQLITE_FILE_NAME)),
    };
    let occupied = occupied(&target, storage).await?;
    if !occupied.is_empty() && !force {
        return Err(OpsError::Refused(format!(
            "the target is not empty ({}); nothing was restored. Restore into a new database \
             and data directory, or pass --force to replace what is there",
            occupied.join(", ")
        )));
    }

    let check_seconds = started.elapsed().as_secs_f64();

    // Nothing was written so far. Blocks first: rows without their blocks would be a lie.
    // They land in a staging area of the blockstore, each checked as it is read, and move
    // into place only once every one is there and sound.
    let blocks_started = Instant::now();
    let store_dir = storage.blocks_dir();
    let (fresh_data, fresh_store) = (!storage.data_dir.exists(), !store_dir.exists());
    std::fs::create_dir_all(&storage.data_dir).map_err(OpsError::io("the data directory"))?;
    let staging = store_dir
        .join("tmp")
        .join(format!("restore-{}", std::process::id()));
    let digests: Vec<String> = index.iter().map(|(d, _)| d.clone()).collect();
    let total = manifest.blocks.bytes;
    let progress = Progress::start(show, "blocks", total, Unit::Bytes);
    let (backup_blocks, list, stage) = (from.join("blocks"), digests.clone(), staging.clone());
    let copied = tokio::task::spawn_blocking(move || {
        let copied = blocks::copy_all(&backup_blocks, &stage, &list, false, &progress);
        progress.finish();
        copied
    })
    .await
    .map_err(|e| OpsError::Invalid(format!("the block copy stopped: {e}")))?;
    let (_, copied) = match copied {
        Ok(copied) => copied,
        Err(problems) => {
            let _ = std::fs::remove_dir_all(&staging);
            if fresh_data {
                let _ = std::fs::remove_dir_all(&storage.data_dir);
            } else if fresh_store {
                let _ = std::fs::remove_dir_all(&store_dir);
            }
            return Err(OpsError::Refused(format!(
                "the backup's blocks are not what its index says; nothing was restored:\n  {}",
                problems.join("\n  ")
            )));
        }
    };
    if force {
        clear_blocks(&store_dir, &index)?;
        let _ = std::fs::remove_dir_all(storage.uploads_dir());
    }
    blocks::move_all(&staging, &store_dir, &digests).map_err(OpsError::io("the blockstore"))?;
    let _ = std::fs::remove_dir_all(&staging);
    let blocks_seconds = blocks_started.elapsed().as_secs_f64();
    let undo = |store_dir: &Path| {
        for digest in &digests {
            let _ = std::fs::remove_file(block_path(store_dir, digest));
        }
    };
    let rows_started = Instant::now();
    let rows = match restore_rows(&target, &source, storage, &manifest, from, force, show).await {
        Ok(rows) => rows,
        Err(e) => {
            undo(&store_dir);
            let _ = std::fs::remove_dir_all(storage.uploads_dir());
            return Err(e);
        }
    };
    blocks::sync_fs(&storage.data_dir).map_err(OpsError::io("syncing the data directory"))?;
    let rows_seconds = rows_started.elapsed().as_secs_f64();
    Ok(Restored {
        target: match &target {
            Target::Postgres(_) => "postgres".into(),
            Target::Sqlite(path) => format!("sqlite {}", path.display()),
        },
        rows,
        blocks: copied.blocks,
        bytes: copied.bytes,
        uploads: manifest.uploads.len() as u64,
        seconds: started.elapsed().as_secs_f64(),
        check_seconds,
        blocks_seconds,
        rows_seconds,
        manifest,
    })
}

/// The backup's database holds as many rows as its manifest says.
async fn check_counts(source: &Path, manifest: &Manifest) -> Result<(), OpsError> {
    let db = SqliteStore::open_read_only(source).await?;
    let counts = rows::count_sqlite(db.pool(), false).await;
    db.pool().close().await;
    let mut wrong = Vec::new();
    for (table, n) in counts? {
        let listed = manifest.tables.get(&table).copied().unwrap_or(0);
        if n != listed {
            wrong.push(format!("{table}: {n} rows, the manifest says {listed}"));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(OpsError::Refused(format!(
            "the backup's database does not match its manifest; nothing was restored:\n  {}",
            wrong.join("\n  ")
        )))
    }
}

/// What the target already holds (empty: nothing).
async fn occupied(target: &Target, storage: &StorageArgs) -> Result<Vec<String>, OpsError> {
    let mut found = Vec::new();
    let rows: u64 = match target {
        Target::Postgres(url) => {
            let store = PostgresStore::connect(url, &storage.options(false)).await?;
            let (exists,): (bool,) = sqlx::query_as("SELECT to_regclass('documents') IS NOT NULL")
                .fetch_one(store.pool())
                .await?;
            let rows = if exists {
                let mut conn = store.pool().acquire().await?;
                rows::count_postgres(&mut conn).await?.values().sum()
            } else {
                0
            };
            store.pool().close().await;
            rows
        }
        Target::Sqlite(path) if path.exists() => {
            let store =
                SqliteStore::open_url(&format!("sqlite://{}", path.display()), false).await?;
            let rows = rows::count_sqlite(store.pool(), true).await?.values().sum();
            store.pool().close().await;
            rows
        }
        Target::Sqlite(_) => 0,
    };
    if rows > 0 {
        found.push(format!("the database has {rows} rows"));
    }
    let blocks = blocks::list(&storage.blocks_dir()).map_err(OpsError::io("the blockstore"))?;
    if !blocks.is_empty() {
        found.push(format!("the blockstore has {} blocks", blocks.len()));
    }
    if std::fs::read_dir(storage.uploads_dir()).is_ok_and(|mut d| d.next().is_some()) {
        found.push("the uploads directory is not empty".into());
    }
    Ok(found)
}

/// `--force`: removes the blocks the backup does not have.
fn clear_blocks(store_dir: &Path, index: &[(String, u64)]) -> Result<(), OpsError> {
    let keep: std::collections::HashSet<&str> = index.iter().map(|(d, _)| d.as_str()).collect();
    for (digest, _) in blocks::list(store_dir).map_err(OpsError::io("the blockstore"))? {
        if !keep.contains(digest.as_str()) {
            let _ = std::fs::remove_file(block_path(store_dir, &digest));
        }
    }
    Ok(())
}

/// Upload bytes, then the rows.
async fn restore_rows(
    target: &Target,
    source: &Path,
    storage: &StorageArgs,
    manifest: &Manifest,
    from: &Path,
    force: bool,
    show: Show,
) -> Result<Counts, OpsError> {
    let uploads = storage.uploads_dir();
    std::fs::create_dir_all(&uploads).map_err(OpsError::io("the uploads directory"))?;
    for upload in &manifest.uploads {
        std::fs::copy(from.join(&upload.part.path), uploads.join(&upload.id))
            .map_err(OpsError::io(format!("upload {}", upload.id)))?;
    }
    // A working copy of the backup's database, brought up to this binary's schema (the
    // backup itself is never changed).
    let work_dir = match target {
        Target::Sqlite(path) => path.parent().map(Path::to_path_buf).unwrap_or_default(),
        Target::Postgres(_) => storage.data_dir.clone(),
    };
    std::fs::create_dir_all(&work_dir).map_err(OpsError::io("the database directory"))?;
    let work = work_dir.join(format!(".restore-{}.sqlite3", std::process::id()));
    let result = restore_from_copy(target, source, &work, storage, manifest, force, show).await;
    let _ = std::fs::remove_file(&work);
    result
}

async fn restore_from_copy(
    target: &Target,
    source: &Path,
    work: &Path,
    storage: &StorageArgs,
    manifest: &Manifest,
    force: bool,
    show: Show,
) -> Result<Counts, OpsError> {
    std::fs::copy(source, work).map_err(OpsError::io("copying the backup's database"))?;
    let copy = SqliteStore::open_url(&format!("sqlite://{}", work.display()), true).await?;
    let total: u64 = manifest.tables.values().sum();
    let progress = Progress::start(show, "database", total, Unit::Items);
    let rows = match target {
        Target::Postgres(url) => {
            let store = PostgresStore::connect(url, &storage.options(true)).await?;
            let mut pg = store.pool().acquire().await?;
            let mut tx = pg.begin().await?;
            if force {
                let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
                sqlx::query(AssertSqlSafe(format!(
                    "TRUNCATE {}, maintenance_leases RESTART IDENTITY CASCADE",
                    names.join(", ")
                )))
                .execute(&mut *tx)
                .await?;
            }
            let deferred = super::constraints::defer(&mut tx).await?;
            let mut from = copy.pool().acquire().await?;
            let rows = rows::sqlite_to_postgres(&mut from, &mut tx, &progress).await?;
            super::constraints::restore(&mut tx, deferred).await?;
            tx.commit().await?;
            // Every connection back before the pools close (closing waits for them).
            drop((from, pg));
            store.pool().close().await;
            rows
        }
        Target::Sqlite(path) => {
            let rows = rows::count_sqlite(copy.pool(), false).await?;
            progress.inc(rows.values().sum());
            // Checkpointed into one file, fsynced, then moved into place.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(copy.pool())
                .await?;
            copy.pool().close().await;
            std::fs::File::open(work)
                .and_then(|f| f.sync_all())
                .map_err(OpsError::io("syncing the database"))?;
            if force {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            std::fs::rename(work, path).map_err(OpsError::io("moving the database into place"))?;
            progress.finish();
            return Ok(rows);
        }
    };
    progress.finish();
    copy.pool().close().await;
    Ok(rows)
}
