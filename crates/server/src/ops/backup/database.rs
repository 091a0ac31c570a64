//! The database part of a backup: a SQLite file with Cairn's schema holding every row of
//! one snapshot.
//!
//! - PostgreSQL: one `REPEATABLE READ` read-only transaction, every table streamed out with
//!   binary `COPY`. When the directory holds an earlier backup of the same database, its file
//!   is the starting point ([`export_postgres_incremental`]): change rows are only ever
//!   inserted, under a `seq_no` never reused, and never change once written, so the rows to
//!   add are those of the snapshot whose `seq_no` the earlier file lacks (and rows it has
//!   that the snapshot does not, were there any, are removed); every other table is small and
//!   copied whole again. The earlier file is used only if it still hashes to its manifest and
//!   its newest rows are the database's.
//! - SQLite: `VACUUM INTO` (a consistent copy, taken in one read transaction while the
//!   server writes on).

use std::path::Path;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Connection};

use crate::ops::manifest::{self, Manifest};
use crate::ops::progress::{Progress, Show, Unit};
use crate::ops::tables::{TABLES, table};
use crate::ops::{OpsError, rows};
use crate::store::{PostgresStore, SqliteStore};

/// What identifies a PostgreSQL database across backups: its cluster and its oid (a
/// database dropped and created again under the same name gets a new one).
pub async fn postgres_identity(store: &PostgresStore) -> Result<String, OpsError> {
    let (name, oid): (String, i64) = sqlx::query_as(
        "SELECT current_database()::text, oid::bigint FROM pg_database
         WHERE datname = current_database()",
    )
    .fetch_one(store.pool())
    .await?;
    // Readable by superusers and pg_monitor members; without it, name and oid must do.
    let cluster: Option<(String,)> =
        sqlx::query_as("SELECT system_identifier::text FROM pg_control_system()")
            .fetch_optional(store.pool())
            .await
            .unwrap_or(None);
    let cluster = cluster.map_or_else(|| "?".to_owned(), |(c,)| c);
    Ok(format!("postgres:{cluster}:{oid}:{name}"))
}

/// A new SQLite file with Cairn's schema, set up for one fast bulk load (no journal, no
/// fsync until the end: it is a temporary file until the backup is complete).
async fn create(path: &Path) -> Result<SqlitePool, OpsError> {
    let pool = open_for_writing(path, true).await?;
    crate::store::schema::SQLITE
        .run(&pool)
        .await
        .map_err(crate::store::StoreError::from)?;
    Ok(pool)
}

/// The backup's database file, for writing (no journal: a failed backup discards it).
pub async fn open_for_writing(path: &Path, create: bool) -> Result<SqlitePool, OpsError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(create)
        .journal_mode(SqliteJournalMode::Off)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Off)
        .foreign_keys(false)
        .pragma("cache_size", "-262144");
    Ok(SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?)
}

/// Every table of a PostgreSQL snapshot into a new SQLite file at `path`.
pub async fn export_postgres(
    store: &PostgresStore,
    path: &Path,
    show: Show,
) -> Result<(), OpsError> {
    let sqlite = create(path).await?;
    // One snapshot for every table (and the counts): rolled back if anything fails.
    let mut pg = store
        .pool()
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let total = rows::count_postgres(&mut pg).await?.values().sum();
    let progress = Progress::start(show, "database", total, Unit::Items);
    let mut out = sqlite.acquire().await?;
    let mut tx = out.begin().await?;
    rows::postgres_to_sqlite(&mut pg, &mut tx, &progress).await?;
    tx.commit().await?;
    progress.finish();
    pg.commit().await?;
    drop(out);
    sqlite.close().await;
    Ok(())
}

/// The earlier backup's database file, if it can be the starting point: the same source
/// database, the same schema, and intact.
pub fn reusable(dir: &Path, previous: Option<&Manifest>, identity: &str) -> Option<String> {
    let previous = previous?;
    let newest = crate::store::schema::SQLITE
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
    if previous.database_id != identity || previous.schema_version != newest {
        return None;
    }
    let part = &previous.database;
    match manifest::hash_file(&dir.join(&part.path)) {
        Ok((sha, bytes)) if sha == part.sha256 && bytes == part.bytes => Some(part.path.clone()),
        _ => None,
    }
}

/// How many of the earlier file's newest change rows are compared with the database's.
const SAMPLE: i64 = 1000;

/// The snapshot into a copy of the earlier backup's file `previous` (see the module docs).
/// `Ok(false)`: the earlier file is not this database's after all (nothing kept).
pub async fn export_postgres_incremental(
    store: &PostgresStore,
    previous: &Path,
    path: &Path,
    show: Show,
) -> Result<bool, OpsError> {
    let step = std::time::Instant::now();
    let lap =
        |what: &str| tracing::debug!(what, ms = step.elapsed().as_millis() as u64, "backup step");
    std::fs::copy(previous, path).map_err(OpsError::io("copying the earlier backup's database"))?;
    lap("copied the earlier file");
    let sqlite = open_for_writing(path, false).await?;
    let mut out = sqlite.acquire().await?;
    let mut pg = store
        .pool()
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let newest: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq_no, hash FROM changes ORDER BY seq_no DESC LIMIT $1")
            .bind(SAMPLE)
            .fetch_all(&mut *out)
            .await?;
    let seqs: Vec<i64> = newest.iter().map(|(s, _)| *s).collect();
    let theirs: Vec<(i64, Vec<u8>)> = sqlx::query_as(CHANGES_NUMBERED)
        .bind(&seqs)
        .fetch_all(&mut *pg)
        .await?;
    // The same rows under the same numbers (a row may be gone, none may differ).
    let same =
        theirs.iter().all(|row| newest.contains(row)) && (newest.is_empty() || !theirs.is_empty());
    if !same {
        drop(out);
        sqlite.close().await;
        return Ok(false);
    }

    lap("compared the newest rows");
    let progress = Progress::start(show, "database", 0, Unit::Items);
    let mut tx = out.begin().await?;
    // Everything but the change rows, copied whole again (the search index first: emptied,
    // its delete trigger has nothing to search).
    sqlx::query("DELETE FROM files_fts")
        .execute(&mut *tx)
        .await?;
    for t in TABLES.iter().rev().filter(|t| t.name != "changes") {
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {}", t.name)))
            .execute(&mut *tx)
            .await?;
    }
    for t in TABLES.iter().filter(|t| t.name != "changes") {
        rows::copy_select(&mut pg, &mut tx, t, &t.select_all(), &progress).await?;
    }
    lap("copied the other tables");
    // The change rows the earlier file lacks, and those it has that are gone.
    let ours = rows::sqlite_seq_nos(&mut tx).await?;
    lap("read the file's seq_nos");
    let live = rows::postgres_seq_nos(&mut pg).await?;
    lap("read the database's seq_nos");
    let (missing, extra) = difference(&live, &ours);
    for chunk in extra.chunks(10_000) {
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM changes WHERE seq_no IN ({})",
            list(chunk)
        )))
        .execute(&mut *tx)
        .await?;
    }
    let changes = table("changes").ok_or_else(|| OpsError::Invalid("no changes table".into()))?;
    let top = ours.last().copied().unwrap_or(0);
    let (gaps, after): (Vec<i64>, Vec<i64>) = missing.iter().partition(|&&s| s <= top);
    if !after.is_empty() {
        let select = changes_after(&changes.column_list(), top);
        rows::copy_select(&mut pg, &mut tx, changes, &select, &progress).await?;
    }
    for chunk in gaps.chunks(10_000) {
        let select = changes_numbered(&changes.column_list(), &list(chunk));
        rows::copy_select(&mut pg, &mut tx, changes, &select, &progress).await?;
    }
    tx.commit().await?;
    lap("committed");
    progress.finish();
    pg.commit().await?;
    tracing::debug!(
        added = missing.len(),
        removed = extra.len(),
        "backup: change rows taken from the earlier backup"
    );
    drop(out);
    sqlite.close().await;
    Ok(true)
}

/// In `live` but not `ours`, and in `ours` but not `live` (both sorted).
fn difference(live: &[i64], ours: &[i64]) -> (Vec<i64>, Vec<i64>) {
    let (mut missing, mut extra) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < live.len() && j < ours.len() {
        if live[i] == ours[j] {
            i += 1;
            j += 1;
        } else if live[i] < ours[j] {
            missing.push(live[i]);
            i += 1;
        } else {
            extra.push(ours[j]);
            j += 1;
        }
    }
    missing.extend_from_slice(&live[i..]);
    extra.extend_from_slice(&ours[j..]);
    (missing, extra)
}

/// The PostgreSQL rows among some numbers (to compare with the earlier backup's newest).
pub(crate) const CHANGES_NUMBERED: &str = "SELECT seq_no, hash FROM changes WHERE seq_no = ANY($1)";

/// The change rows after `top`, in order (`columns`: the catalog's list; a COPY source,
/// which takes no parameters).
pub(crate) fn changes_after(columns: &str, top: i64) -> String {
    format!("SELECT {columns} FROM changes WHERE seq_no > {top} ORDER BY seq_no")
}

/// The change rows numbered `numbers` (a comma-separated list), in order.
pub(crate) fn changes_numbered(columns: &str, numbers: &str) -> String {
    format!("SELECT {columns} FROM changes WHERE seq_no IN ({numbers}) ORDER BY seq_no")
}

fn list(numbers: &[i64]) -> String {
    let text: Vec<String> = numbers.iter().map(i64::to_string).collect();
    text.join(",")
}

/// `VACUUM INTO`: a consistent copy of the live SQLite database.
pub async fn vacuum_into(store: &SqliteStore, path: &Path) -> Result<(), OpsError> {
    let target = path.display().to_string().replace('\'', "''");
    sqlx::query(AssertSqlSafe(format!("VACUUM INTO '{target}'")))
        .execute(store.pool())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::difference;

    #[test]
    fn the_difference_of_two_sorted_lists() {
        assert_eq!(
            difference(&[1, 2, 4, 5, 9], &[1, 3, 4, 5]),
            (vec![2, 9], vec![3])
        );
        assert_eq!(difference(&[], &[1]), (vec![], vec![1]));
        assert_eq!(difference(&[7], &[]), (vec![7], vec![]));
    }
}
