//! Backup, restore and verification of a deployment with 10,000 documents, 1,000,000 changes
//! and 2 GiB of files on PostgreSQL (fsync on), beside `pg_dump -Fc` + `pg_restore` and
//! `cp -r` of the blocks, and `sha256sum` over the blocks, on the same data in the same run.
//! Prints a table and writes `target/bench/ops.json`.
//!
//! The data is made directly: Automerge changes generated here and copied into PostgreSQL
//! with binary `COPY` (through the sync endpoint it would take an hour), files uploaded through
//! the running server. Everything runs warm (the data is in the page cache, as on a server
//! that has been serving it); a backup counts as taken once it is on disk, so the baselines
//! are timed with a `sync` at their end too (and without, for reference).
//!
//! Run: `scripts/bench ops` (or `cargo bench -p cairn-e2e --bench ops`).
//! `CAIRN_BENCH_OPS_SCALE=0.1` runs a tenth of the data.

#![allow(clippy::unwrap_used)] // a benchmark: a panic is the report

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use automerge::{AutoCommit, transaction::Transactable};
use cairn_core::DocumentId;
use cairn_harness::postgres;
use cairn_harness::server::ServerProcess;
use cairn_server::ops::pgcopy::Encoder;
use cairn_server::ops::tables::{Kind, Value};
use serde_json::json;
use sqlx::Connection;

const SECRET: &str = "a benchmark secret, long enough for HS256!";
const CAIRN: &str = env!("CARGO_BIN_EXE_cairn-e2e-server");

fn scale() -> f64 {
    std::env::var("CAIRN_BENCH_OPS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

fn token() -> String {
    let exp = jsonwebtoken::get_current_timestamp() + 3600;
    let claims = json!({ "sub": "bench", "exp": exp });
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

/// The change rows of documents `range`, `per_doc` changes each, as COPY data for
/// `changes (document_id, hash, actor, seq, deps, bytes)`.
fn change_rows(range: std::ops::Range<u32>, per_doc: usize) -> (Vec<u8>, Vec<u8>) {
    let mut documents = Encoder::new(vec![Kind::Text, Kind::Text]);
    let mut changes = Encoder::new(vec![
        Kind::Text,
        Kind::Bytes,
        Kind::Bytes,
        Kind::Int8,
        Kind::Bytes,
        Kind::Bytes,
    ]);
    let mut out = Vec::new();
    for d in range {
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&d.to_be_bytes());
        id[4] = 0xcb;
        let id = DocumentId::from_random_bytes(id).to_string();
        documents
            .row(&[Value::Text(id.clone()), Value::Text("bench".into())])
            .unwrap();
        let mut doc = AutoCommit::new();
        for i in 0..per_doc {
            doc.put(
                automerge::ROOT,
                format!("k{}", i % 8),
                format!("value {i} of {d}"),
            )
            .unwrap();
            doc.commit();
        }
        for c in doc.get_changes(&[]) {
            changes
                .row(&[
                    Value::Text(id.clone()),
                    Value::Bytes(c.hash().0.to_vec()),
                    Value::Bytes(c.actor_id().to_bytes().to_vec()),
                    Value::Int(c.seq() as i64),
                    Value::Bytes(c.deps().iter().flat_map(|h| h.0).collect()),
                    Value::Bytes(c.raw_bytes().to_vec()),
                ])
                .unwrap();
        }
        if changes.len() > 8 << 20 {
            out.extend(changes.take());
        }
    }
    out.extend(changes.finish());
    (documents.finish(), out)
}

/// Joins COPY streams made separately: the first one's header, every one's rows, one end.
fn join_copies(parts: Vec<Vec<u8>>) -> Vec<u8> {
    let mut all = Vec::new();
    for (i, part) in parts.into_iter().enumerate() {
        let body = &part[..part.len() - 2]; // without the end marker
        all.extend_from_slice(if i == 0 { body } else { &body[19..] });
    }
    all.extend_from_slice(&(-1i16).to_be_bytes());
    all
}

async fn populate_documents(url: &str, documents: u32, per_doc: usize) -> f64 {
    let started = Instant::now();
    let half = documents / 2;
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| change_rows(0..half, per_doc));
        let b = s.spawn(|| change_rows(half..documents, per_doc));
        (a.join().unwrap(), b.join().unwrap())
    });
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let mut copy = conn
        .copy_in_raw("COPY documents (id, owner) FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    copy.send(join_copies(vec![a.0, b.0])).await.unwrap();
    copy.finish().await.unwrap();
    let mut copy = conn
        .copy_in_raw(
            "COPY changes (document_id, hash, actor, seq, deps, bytes) FROM STDIN (FORMAT binary)",
        )
        .await
        .unwrap();
    for chunk in join_copies(vec![a.1, b.1]).chunks(4 << 20) {
        copy.send(chunk).await.unwrap();
    }
    copy.finish().await.unwrap();
    sqlx::query("ANALYZE").execute(&mut conn).await.unwrap();
    started.elapsed().as_secs_f64()
}

async fn populate_files(base: &str, files: usize, size: usize) -> f64 {
    let client = reqwest::Client::new();
    let token = token();
    let started = Instant::now();
    for i in 0..files {
        let data = cairn_harness::pseudo_random_bytes(size, i as u64 + 1);
        let response = client
            .post(format!("{base}v1/files?name=f{i}.bin"))
            .bearer_auth(&token)
            .body(data)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    started.elapsed().as_secs_f64()
}

/// Runs a command; its wall time in seconds. Panics with its output if it fails.
fn timed(cmd: &mut Command) -> f64 {
    let started = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    seconds
}

fn sync() -> f64 {
    timed(&mut Command::new("sync"))
}

fn cairn(args: &[&str]) -> Command {
    let mut cmd = Command::new(CAIRN);
    let log = std::env::var("CAIRN_BENCH_LOG").unwrap_or_else(|_| "warn".into());
    cmd.args(args).env("CAIRN_LOG", log);
    cmd
}

fn du(path: &Path) -> u64 {
    let out = Command::new("du").args(["-sb"]).arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn row(what: &str, seconds: f64, bytes: u64, note: &str) {
    let mbs = bytes as f64 / 1e6 / seconds.max(1e-9);
    println!("| {what:<44} | {seconds:>8.2} | {mbs:>8.1} | {note} |");
}

#[tokio::main]
async fn main() {
    let scale = scale();
    let documents = (10_000.0 * scale).round() as u32;
    let per_doc = 100;
    let file_size = 32 << 20;
    let files = ((64.0 * scale).round() as usize).max(1);
    let cluster = postgres::durable();
    let bin = cluster.local.as_ref().unwrap().bin_dir.clone();
    let url = cluster.fresh_database().await;
    let work = cairn_harness::temp_dir("cairn-bench-ops");
    let data_dir = work.join("data");
    let data = data_dir.display().to_string();
    let server = ServerProcess::start(
        Path::new(CAIRN),
        &[
            "--database-url",
            &url,
            "--jwt-secret",
            SECRET,
            "--data-dir",
            &data,
            "--rate-limit-user",
            "0",
        ],
        cairn_harness::artifacts_dir("bench").join("ops-server.log"),
    );
    let made_docs = populate_documents(&url, documents, per_doc).await;
    let made_files = populate_files(&server.url, files, file_size).await;
    println!(
        "data: {documents} documents, {} changes (made in {made_docs:.1} s), {files} files of \
         {} MiB (uploaded in {made_files:.1} s)",
        documents as usize * per_doc,
        file_size >> 20
    );
    let storage = ["--database-url", url.as_str(), "--data-dir", data.as_str()];
    let blocks = data_dir.join("blocks");
    let block_bytes = du(&blocks);

    // Cairn's backup, full then incremental.
    let backup_dir = work.join("backup");
    let to = backup_dir.display().to_string();
    sync();
    let mut args = vec!["backup", "--to", &to];
    args.extend(storage);
    let backup = timed(&mut cairn(&args));
    let backup_bytes = du(&backup_dir);
    let started = Instant::now();
    let out = cairn(&args).output().unwrap();
    let incremental = started.elapsed().as_secs_f64();
    assert!(out.status.success());
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup_dir.join("manifest.json")).unwrap()).unwrap();
    println!("incremental backup: {}", manifest["run"]);
    if std::env::var("CAIRN_BENCH_OPS_ONLY").as_deref() == Ok("backup") {
        return;
    }

    // pg_dump -Fc and cp -r.
    let dump = work.join("dump.pgc");
    let pg_dump = timed(
        Command::new(bin.join("pg_dump"))
            .args(["-Fc", "-f"])
            .arg(&dump)
            .arg("-d")
            .arg(&url),
    );
    let copied = work.join("copied-blocks");
    let cp = timed(Command::new("cp").arg("-r").arg(&blocks).arg(&copied));
    let cp_sync = sync();
    let dump_bytes = std::fs::metadata(&dump).unwrap().len();

    // Verification: Cairn's, and sha256sum over the same blocks.
    let sha = timed(Command::new("sh").arg("-c").arg(format!(
        "find {} -type f -path '*/??/*' -print0 | xargs -0 sha256sum > /dev/null",
        blocks.display()
    )));
    let mut args = vec!["verify", "--json"];
    args.extend(storage);
    let started = Instant::now();
    let out = cairn(&args).output().unwrap();
    let verify = started.elapsed().as_secs_f64();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "verify found problems: {report}");
    let verify_block_rate =
        report["block_bytes"].as_f64().unwrap() / report["block_seconds"].as_f64().unwrap();
    let verify_backup = timed(&mut cairn(&["verify", "--backup", &to]));

    // Restores: Cairn's into a new database and data directory, pg_restore and cp back.
    let restored_url = cluster.fresh_database().await;
    let restored = work.join("restored").display().to_string();
    let started = Instant::now();
    let out = cairn(&[
        "restore",
        "--from",
        &to,
        "--database-url",
        &restored_url,
        "--data-dir",
        &restored,
    ])
    .output()
    .unwrap();
    let restore = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{}", String::from_utf8_lossy(&out.stdout).trim());
    let pg_url = cluster.fresh_database().await;
    let pg_restore = timed(
        Command::new(bin.join("pg_restore"))
            .arg("-d")
            .arg(&pg_url)
            .arg(&dump),
    );
    let copied_back: PathBuf = work.join("copied-back");
    let cp_back = timed(Command::new("cp").arg("-r").arg(&copied).arg(&copied_back));
    let cp_back_sync = sync();
    drop(server);

    let baseline = pg_dump + cp + cp_sync;
    let restore_baseline = pg_restore + cp_back + cp_back_sync;
    let sha_rate = block_bytes as f64 / sha;
    println!();
    println!(
        "Backup and restore (PostgreSQL 15, fsync on; {} MB of blocks, {} MB in the backup)",
        block_bytes / 1_000_000,
        backup_bytes / 1_000_000
    );
    println!("| step | seconds | MB/s | |");
    println!("| --- | ---: | ---: | --- |");
    row("cairn backup (full)", backup, backup_bytes, "");
    row(
        "cairn backup (again, nothing new)",
        incremental,
        0,
        "goal < 5 s",
    );
    row("pg_dump -Fc", pg_dump, dump_bytes, "");
    row("cp -r blocks", cp, block_bytes, "");
    row("sync (after cp)", cp_sync, 0, "");
    row(
        "pg_dump -Fc + cp -r + sync",
        baseline,
        dump_bytes + block_bytes,
        &format!("cairn backup: {:.2}x (goal <= 1.5x)", backup / baseline),
    );
    row(
        "pg_dump -Fc + cp -r (nothing synced)",
        pg_dump + cp,
        dump_bytes + block_bytes,
        &format!("cairn backup: {:.2}x", backup / (pg_dump + cp)),
    );
    row("cairn restore", restore, backup_bytes, "");
    row("pg_restore", pg_restore, dump_bytes, "");
    row(
        "cp -r blocks back + sync",
        cp_back + cp_back_sync,
        block_bytes,
        "",
    );
    row(
        "pg_restore + cp -r + sync",
        restore_baseline,
        dump_bytes + block_bytes,
        &format!("cairn restore: {:.2}x", restore / restore_baseline),
    );
    row(
        "cairn verify (deployment)",
        verify,
        block_bytes,
        "documents, changes, blocks, DAGs",
    );
    row(
        "  its block check",
        report["block_seconds"].as_f64().unwrap(),
        block_bytes,
        &format!(
            "{:.2}x sha256sum (goal >= 0.8x)",
            verify_block_rate / sha_rate
        ),
    );
    row("sha256sum over the blocks", sha, block_bytes, "one process");
    row("cairn verify --backup", verify_backup, backup_bytes, "");
    let json = json!({
        "documents": documents,
        "changes": documents as usize * per_doc,
        "block_bytes": block_bytes,
        "backup_bytes": backup_bytes,
        "backup_s": backup,
        "incremental_backup_s": incremental,
        "pg_dump_s": pg_dump,
        "cp_s": cp,
        "cp_sync_s": cp_sync,
        "backup_ratio": backup / baseline,
        "restore_s": restore,
        "pg_restore_s": pg_restore,
        "restore_ratio": restore / restore_baseline,
        "verify_s": verify,
        "verify_block_mbs": verify_block_rate / 1e6,
        "sha256sum_mbs": sha_rate / 1e6,
        "verify_block_ratio": verify_block_rate / sha_rate,
        "verify_backup_s": verify_backup,
        "rto_s": restore,
        "rpo_s_beyond_schedule": incremental,
    });
    let dir = cairn_harness::workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("ops.json"),
        serde_json::to_vec_pretty(&json).unwrap(),
    )
    .unwrap();
    println!("\nwritten: target/bench/ops.json");
    let _ = std::fs::remove_dir_all(&work);
}
