//! `cairn backup` and `cairn restore` against the real binary, PostgreSQL and SQLite: a backup
//! taken while writers sync changes and uploads run is restored into a fresh PostgreSQL and
//! into SQLite (and a SQLite deployment's backup into PostgreSQL); `cairn verify` finds both
//! clean; every change acknowledged and every file stored before the backup began is there,
//! byte for byte, and the restored server serves them; an open resumable upload continues
//! after the restore. A second backup into the same directory copies only the new blocks.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use automerge::{AutoCommit, ReadDoc, transaction::Transactable};
use cairn_core::DocumentId;
use cairn_harness::{postgres, pseudo_random_bytes, temp_dir};
use serde_json::{Value, json};
use support::{cairn, download_file, fetch_doc, http_sync, op, push_since, start_server_in, token};

/// A change the server acknowledged: its document, hash, bytes and when.
struct Acked {
    document: DocumentId,
    hash: automerge::ChangeHash,
    bytes: Vec<u8>,
    at: Instant,
}

/// Syncs one change at a time into its own document until `stop`.
async fn writer(base: String, n: u8, stop: Arc<AtomicBool>) -> Vec<Acked> {
    let document = DocumentId::from_random_bytes([n; 16]);
    let mut doc = AutoCommit::new();
    let mut acked = Vec::new();
    let mut k = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let before = doc.get_heads();
        doc.put(automerge::ROOT, format!("k{}", k % 5), k as i64)
            .unwrap();
        doc.commit();
        k += 1;
        let request = push_since(document, &mut doc, &before, op(u64::from(n) << 32 | k));
        if http_sync(&base, "alice", request).await.is_ok() {
            let change = doc.get_last_local_change().unwrap();
            acked.push(Acked {
                document,
                hash: change.hash(),
                bytes: change.raw_bytes().to_vec(),
                at: Instant::now(),
            });
        }
    }
    acked
}

/// Uploads files until `stop`: their CIDs, bytes and when each was stored.
async fn uploader(base: String, stop: Arc<AtomicBool>) -> Vec<(String, Vec<u8>, Instant)> {
    let mut stored = Vec::new();
    for i in 1u64.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let data = pseudo_random_bytes(100_000 + (i as usize * 77_777) % 900_000, i);
        let info = support::upload_file(&base, "alice", &format!("f{i}.bin"), data.clone()).await;
        stored.push((
            info["cid"].as_str().unwrap().to_owned(),
            data,
            Instant::now(),
        ));
    }
    stored
}

/// Starts a resumable upload and sends its first chunk: the session id, CID and bytes.
async fn open_upload(base: &str) -> (String, String, Vec<u8>) {
    let data = pseudo_random_bytes(700_000, 77);
    let cid = cairn_harness_cid(&data);
    let client = reqwest::Client::new();
    let session: Value = client
        .post(format!("{base}v1/uploads"))
        .bearer_auth(token("alice"))
        .json(&json!({ "cid": cid, "size": data.len(), "name": "open.bin" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = session["id"].as_str().unwrap().to_owned();
    let chunk = 256 * 1024;
    let answer: Value = client
        .patch(format!("{base}v1/uploads/{id}"))
        .bearer_auth(token("alice"))
        .header("upload-offset", "0")
        .body(data[..chunk].to_vec())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["offset"], chunk, "{answer}");
    (id, cid, data)
}

/// The CIDv1 `cairn cid` computes.
fn cairn_harness_cid(data: &[u8]) -> String {
    let (_, imported) =
        cairn_core::content::import(data, cairn_core::content::ImportOptions::default());
    imported.root.to_string()
}

/// What a deployment held when its backup began, to find again after the restore.
struct Written {
    acked: Vec<Acked>,
    files: Vec<(String, Vec<u8>)>,
    upload: (String, String, Vec<u8>),
}

/// Runs writers and uploads on the server at `base`, takes a backup into `dir` meanwhile,
/// and returns what was acknowledged before the backup began.
async fn backup_under_load(base: &str, storage: &[&str], dir: &Path) -> Written {
    let upload = open_upload(base).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (1..=3)
        .map(|n| tokio::spawn(writer(base.to_owned(), n, stop.clone())))
        .collect();
    let files = tokio::spawn(uploader(base.to_owned(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let began = Instant::now();
    let dir_arg = dir.display().to_string();
    let mut args = vec!["backup", "--to", &dir_arg];
    args.extend(storage);
    let (code, out, err) = cairn(&args).await;
    let ended = Instant::now();
    assert_eq!(code, 0, "backup failed:\n{out}\n{err}");
    assert!(out.contains("complete"), "{out}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    let files = files.await.unwrap();
    let during = acked
        .iter()
        .filter(|a| a.at > began && a.at < ended)
        .count();
    assert!(during > 0, "no change was written while the backup ran");
    Written {
        acked: acked.into_iter().filter(|a| a.at < began).collect(),
        files: files
            .into_iter()
            .filter(|(_, _, at)| *at < began)
            .map(|(cid, data, _)| (cid, data))
            .collect(),
        upload,
    }
}

/// Restores `dir` into `storage` (flags), verifies it, serves it, and checks it holds
/// everything in `written`.
async fn restore_and_check(name: &str, dir: &Path, database_url: Option<&str>, written: &Written) {
    let data_dir = temp_dir("cairn-restored");
    let data = data_dir.display().to_string();
    let from = dir.display().to_string();
    let mut storage = vec!["--data-dir", data.as_str()];
    if let Some(url) = database_url {
        storage.extend(["--database-url", url]);
    }
    let mut args = vec!["restore", "--from", &from];
    args.extend(&storage);
    let (code, out, err) = cairn(&args).await;
    assert_eq!(code, 0, "restore failed:\n{out}\n{err}");

    let mut args = vec!["verify"];
    args.extend(&storage);
    let (code, out, err) = cairn(&args).await;
    assert_eq!(
        code, 0,
        "verify after restore found problems:\n{out}\n{err}"
    );
    if let Some(url) = database_url {
        // Keys, foreign keys and indexes, dropped for the copy, are all back as migrated.
        let fresh = postgres::fresh_database().await;
        let (code, out, err) = cairn(&["migrate", "--database-url", &fresh]).await;
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(schema_of(url).await, schema_of(&fresh).await);
    }
    assert!(out.contains("ok: no problems"), "{out}");

    let server = start_server_in(name, database_url, &data_dir, &[]);
    let base = server.url.as_str();
    let mut documents: Vec<DocumentId> = written.acked.iter().map(|a| a.document).collect();
    documents.dedup();
    for document in documents {
        let doc = fetch_doc(base, "alice", document).await;
        for acked in written.acked.iter().filter(|a| a.document == document) {
            let change = doc
                .get_change_by_hash(&acked.hash)
                .unwrap_or_else(|| panic!("acknowledged change {} is missing", acked.hash));
            assert_eq!(change.raw_bytes(), acked.bytes.as_slice());
        }
    }
    assert!(!written.files.is_empty());
    for (cid, data) in &written.files {
        assert_eq!(&download_file(base, "alice", cid).await, data, "file {cid}");
    }
    // The open upload goes on where it was.
    let (id, cid, data) = &written.upload;
    let client = reqwest::Client::new();
    let session: Value = client
        .get(format!("{base}v1/uploads/{id}"))
        .bearer_auth(token("alice"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let offset = session["offset"].as_u64().unwrap() as usize;
    assert_eq!(offset, 256 * 1024, "{session}");
    let done = client
        .patch(format!("{base}v1/uploads/{id}"))
        .bearer_auth(token("alice"))
        .header("upload-offset", offset.to_string())
        .body(data[offset..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 201);
    assert_eq!(&download_file(base, "alice", cid).await, data);
}

/// Every constraint and index definition of a database, sorted.
async fn schema_of(url: &str) -> Vec<String> {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let mut rows: Vec<(String,)> = sqlx::query_as(
        "SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
         FROM pg_constraint WHERE connamespace = 'public'::regnamespace
         UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.sort();
    rows.into_iter().map(|(r,)| r).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_backup_taken_under_load_restores_into_postgres_and_sqlite() {
    let url = postgres::fresh_database().await;
    let data_dir = temp_dir("cairn-live");
    let server = start_server_in("backup-pg", Some(&url), &data_dir, &[]);
    let data = data_dir.display().to_string();
    let storage = ["--database-url", url.as_str(), "--data-dir", data.as_str()];
    let dir = temp_dir("cairn-backup");
    let written = backup_under_load(&server.url, &storage, &dir).await;
    drop(server);

    restore_and_check(
        "restored-pg",
        &dir,
        Some(&postgres::fresh_database().await),
        &written,
    )
    .await;
    restore_and_check("restored-sqlite", &dir, None, &written).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sqlite_backup_taken_under_load_restores_into_postgres() {
    let data_dir = temp_dir("cairn-live");
    let server = start_server_in("backup-sqlite", None, &data_dir, &[]);
    let data = data_dir.display().to_string();
    let storage = ["--data-dir", data.as_str()];
    let dir = temp_dir("cairn-backup");
    let written = backup_under_load(&server.url, &storage, &dir).await;
    drop(server);

    restore_and_check(
        "restored-from-sqlite",
        &dir,
        Some(&postgres::fresh_database().await),
        &written,
    )
    .await;
}

/// The manifest's account of one backup run.
fn run_of(dir: &Path) -> Value {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    manifest["run"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_backup_copies_only_new_blocks() {
    let url = postgres::fresh_database().await;
    let data_dir = temp_dir("cairn-live");
    let server = start_server_in("backup-incremental", Some(&url), &data_dir, &[]);
    let base = server.url.as_str();
    for i in 0..3u64 {
        support::upload_file(base, "alice", "a.bin", pseudo_random_bytes(600_000, i + 1)).await;
    }
    let data = data_dir.display().to_string();
    let dir = temp_dir("cairn-backup");
    let to = dir.display().to_string();
    let backup = [
        "backup",
        "--to",
        &to,
        "--database-url",
        &url,
        "--data-dir",
        &data,
    ];
    let (code, out, err) = cairn(&backup).await;
    assert_eq!(code, 0, "{out}{err}");
    let first = run_of(&dir);
    // 600,000 bytes: 3 leaves and a root each.
    assert_eq!(first["blocks_copied"], 12, "{first}");

    let (code, out, err) = cairn(&backup).await;
    assert_eq!(code, 0, "{out}{err}");
    let second = run_of(&dir);
    assert_eq!(
        (
            second["blocks_copied"].as_u64(),
            second["blocks_reused"].as_u64()
        ),
        (Some(0), Some(12))
    );

    support::upload_file(base, "alice", "b.bin", pseudo_random_bytes(300_000, 9)).await;
    let (code, out, err) = cairn(&backup).await;
    assert_eq!(code, 0, "{out}{err}");
    let third = run_of(&dir);
    assert_eq!(
        (
            third["blocks_copied"].as_u64(),
            third["blocks_reused"].as_u64()
        ),
        (Some(3), Some(12))
    );
    assert!(out.contains("generation 3"), "{out}");
    // Only the newest generation's parts are kept.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("database-"))
        .collect();
    assert_eq!(names, vec!["database-3.sqlite3"]);

    let (code, out, _) = cairn(&["verify", "--backup", &to]).await;
    assert_eq!(code, 0, "{out}");
}

/// `(seq_no, hash)` of every change row, and the files rows, of the live PostgreSQL.
async fn live_rows(url: &str) -> (Vec<(i64, Vec<u8>)>, Vec<(String, String)>) {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let changes = sqlx::query_as("SELECT seq_no, hash FROM changes ORDER BY seq_no")
        .fetch_all(&pool)
        .await
        .unwrap();
    let files = sqlx::query_as("SELECT owner, cid FROM files ORDER BY owner, cid")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    (changes, files)
}

/// The same rows of the backup in `dir` (its newest generation's database).
async fn backup_rows(dir: &Path) -> (Vec<(i64, Vec<u8>)>, Vec<(String, String)>) {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let path = dir.join(manifest["database"]["path"].as_str().unwrap());
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}?mode=ro", path.display()))
        .await
        .unwrap();
    let changes = sqlx::query_as("SELECT seq_no, hash FROM changes ORDER BY seq_no")
        .fetch_all(&pool)
        .await
        .unwrap();
    let files = sqlx::query_as("SELECT owner, cid FROM files ORDER BY owner, cid")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    (changes, files)
}

/// A later backup into the same directory starts from the earlier one's database and takes
/// only the change rows it lacks: new ones, one committed late under a lower `seq_no`, and
/// one removed (as if it were) is removed from it too; every other table is taken whole. After
/// each backup the backup's rows are exactly the database's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_backup_takes_only_the_change_rows_the_earlier_one_lacks() {
    let url = postgres::fresh_database().await;
    let data_dir = temp_dir("cairn-live");
    let server = start_server_in("backup-rows", Some(&url), &data_dir, &[]);
    let base = server.url.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let first_writer = tokio::spawn(writer(base.clone(), 1, stop.clone()));
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    let written = first_writer.await.unwrap();
    assert!(written.len() > 3);
    // As if the transaction of row 2 had not committed yet when the backup's snapshot began.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query("DELETE FROM changes WHERE seq_no = 2")
        .execute(&pool)
        .await
        .unwrap();
    let data = data_dir.display().to_string();
    let dir = temp_dir("cairn-backup");
    let to = dir.display().to_string();
    let backup = [
        "backup",
        "--to",
        &to,
        "--database-url",
        &url,
        "--data-dir",
        &data,
    ];
    let (code, out, err) = cairn(&backup).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(backup_rows(&dir).await, live_rows(&url).await);

    // New rows, a file, a row committed late below the newest seq_no, and a row gone.
    let stop = Arc::new(AtomicBool::new(false));
    let second_writer = tokio::spawn(writer(base.clone(), 2, stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    assert!(!second_writer.await.unwrap().is_empty());
    support::upload_file(&base, "alice", "late.bin", pseudo_random_bytes(1000, 4)).await;
    sqlx::query(
        "INSERT INTO changes (seq_no, document_id, hash, actor, seq, deps, bytes)
         OVERRIDING SYSTEM VALUE
         SELECT 2, document_id, decode(repeat('ab', 32), 'hex'), actor, 99, deps, bytes
         FROM changes WHERE seq_no = 1",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("DELETE FROM changes WHERE seq_no = 3")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let (code, out, err) = cairn(&backup).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        run_of(&dir)["database_from"],
        1,
        "started from generation 1"
    );
    let (changes, files) = backup_rows(&dir).await;
    assert_eq!((changes.clone(), files.clone()), live_rows(&url).await);
    assert!(changes.iter().any(|(s, _)| *s == 2) && !changes.iter().any(|(s, _)| *s == 3));
    assert_eq!(files.len(), 1);
}

/// A restore into a deployment that holds data is refused, saying so, unless `--force`,
/// which replaces what is there; the backup directory describes itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_over_data_needs_force_and_then_replaces_it() {
    let url = postgres::fresh_database().await;
    let data_dir = temp_dir("cairn-live");
    let server = start_server_in("backup-force", Some(&url), &data_dir, &[]);
    support::upload_file(
        &server.url,
        "alice",
        "a.bin",
        pseudo_random_bytes(400_000, 1),
    )
    .await;
    let data = data_dir.display().to_string();
    let dir = temp_dir("cairn-backup");
    let to = dir.display().to_string();
    let storage = ["--database-url", url.as_str(), "--data-dir", data.as_str()];
    let mut args = vec!["backup", "--to", &to];
    args.extend(storage);
    let (code, out, err) = cairn(&args).await;
    assert_eq!(code, 0, "{out}{err}");
    let readme = std::fs::read_to_string(dir.join("README.txt")).unwrap();
    assert!(readme.contains("cairn restore --from DIR"), "{readme}");

    // Another file after the backup: the target now holds more than the backup.
    support::upload_file(
        &server.url,
        "alice",
        "b.bin",
        pseudo_random_bytes(300_000, 2),
    )
    .await;
    drop(server);
    let mut args = vec!["restore", "--from", &to];
    args.extend(storage);
    let (code, _, err) = cairn(&args).await;
    assert_eq!(code, 2);
    assert!(
        err.contains("not empty") && err.contains("--force"),
        "{err}"
    );
    args.push("--force");
    let (code, out, err) = cairn(&args).await;
    assert_eq!(code, 0, "{out}{err}");
    let mut verify = vec!["verify", "--json"];
    verify.extend(storage);
    let (code, out, _) = cairn(&verify).await;
    assert_eq!(code, 0, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["files"], 1, "only the backup's file: {report}");
    assert_eq!(report["blocks"], 3, "and only its blocks: {report}");
}
