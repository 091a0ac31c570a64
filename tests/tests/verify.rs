//! `cairn verify` against the real binary: a clean deployment (with its pins checked on the
//! real Kubo peer) passes; a corrupted block, a missing block and a truncated change row are
//! each named, and `--repair` brings both blocks back from Kubo (saying it cannot repair the
//! change row); a pin Kubo no longer holds is found by `--check-pins`. A backup with a
//! tampered manifest, a corrupt block or a missing block fails `verify --backup`, and
//! `restore` refuses it without writing anything.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::path::Path;

use automerge::{AutoCommit, transaction::Transactable};
use cairn_core::DocumentId;
use cairn_core::content::{CidVersion, ImportOptions, import};
use cairn_harness::kubo::Kubo;
use cairn_harness::{postgres, pseudo_random_bytes, temp_dir};
use serde_json::Value;
use support::{cairn, download_file, http_sync, op, push_since, start_server_in, token};

/// `cairn verify --json <args>`: exit code and report.
async fn verify(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["verify", "--json"];
    all.extend(args);
    let (code, out, err) = cairn(&all).await;
    let report = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, report)
}

fn problems(report: &Value) -> Vec<(String, String, String)> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_owned();
            (s("kind"), s("subject"), s("message"))
        })
        .collect()
}

/// Writes three changes into a new document of alice's.
async fn write_document(base: &str) -> DocumentId {
    let document = DocumentId::from_random_bytes([5; 16]);
    let mut doc = AutoCommit::new();
    for i in 0..3i64 {
        let before = doc.get_heads();
        doc.put(automerge::ROOT, "n", i).unwrap();
        doc.commit();
        let request = push_since(document, &mut doc, &before, op(i as u64 + 1));
        http_sync(base, "alice", request).await.unwrap();
    }
    document
}

fn block_file(data_dir: &Path, cid: &cairn_core::content::Cid) -> std::path::PathBuf {
    let hex = hex::encode(cid.digest());
    data_dir.join("blocks").join(&hex[..2]).join(hex)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_is_named_and_blocks_are_repaired_from_kubo() {
    let kubo = Kubo::start();
    let data_dir = temp_dir("cairn-verify");
    let pins = [
        "--pin-backend",
        "kubo",
        "--kubo-api-url",
        kubo.api_url.as_str(),
    ];
    let server = start_server_in("verify", None, &data_dir, &pins);
    let base = server.url.as_str();
    let document = write_document(base).await;
    // CIDv0, which the Kubo test peer can add: four dag-pb leaves and a root.
    let data = pseudo_random_bytes(900_000, 3);
    let (blocks, imported) = import(
        &data,
        ImportOptions {
            version: CidVersion::V0,
            ..ImportOptions::default()
        },
    );
    let cid = imported.root.to_string();
    let response = reqwest::Client::new()
        .post(format!("{base}v1/files?cid-version=0&name=v.bin"))
        .bearer_auth(token("alice"))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    support::wait_for_pin(base, &token("alice"), &cid, "pinned").await;

    let data_arg = data_dir.display().to_string();
    let mut storage = vec!["--data-dir", data_arg.as_str()];
    storage.extend(pins);
    let mut check_pins = storage.clone();
    check_pins.push("--check-pins");
    let (code, report) = verify(&check_pins).await;
    assert_eq!((code, problems(&report)), (0, vec![]), "{report}");
    assert_eq!(
        (report["documents"].as_u64(), report["changes"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(report["pins_checked"], 1);

    // Damage: one leaf corrupted, one deleted, one change row truncated.
    let (corrupt, gone) = (blocks[0].cid, blocks[1].cid);
    let path = block_file(&data_dir, &corrupt);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    std::fs::remove_file(block_file(&data_dir, &gone)).unwrap();
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite:{}",
        data_dir.join("cairn.sqlite3").display()
    ))
    .await
    .unwrap();
    sqlx::query("UPDATE changes SET bytes = substr(bytes, 1, length(bytes) - 4) WHERE seq_no = 2")
        .execute(&db)
        .await
        .unwrap();

    let (code, report) = verify(&storage).await;
    assert_eq!(code, 1, "{report}");
    let found = problems(&report);
    let named = |kind: &str, subject: &str, says: &str| {
        found
            .iter()
            .any(|(k, s, m)| k == kind && s == subject && m.contains(says))
    };
    assert!(named("block", &corrupt.to_string(), "corrupt"), "{found:?}");
    assert!(named("block", &gone.to_string(), "missing"), "{found:?}");
    assert!(
        named("change", &format!("{document} row 2"), "parse"),
        "{found:?}"
    );

    let mut repair = storage.clone();
    repair.push("--repair");
    let (code, report) = verify(&repair).await;
    assert_eq!(code, 1, "the change row cannot be repaired: {report}");
    let mut repaired: Vec<String> = report["repaired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    repaired.sort();
    let mut want = vec![corrupt.to_string(), gone.to_string()];
    want.sort();
    assert_eq!(repaired, want);
    let left = problems(&report);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].0, "change");
    assert_eq!(
        download_file(base, "alice", &cid).await,
        data,
        "the file reads whole again"
    );

    // A pin Kubo no longer holds.
    let (code, report) = verify(&storage).await;
    assert_eq!((code, problems(&report).len()), (1, 1));
    sqlx::query("DELETE FROM changes WHERE seq_no = 2")
        .execute(&db)
        .await
        .unwrap();
    let unpinned = reqwest::Client::new()
        .post(format!("{}/api/v0/pin/rm?arg={cid}", kubo.api_url))
        .send()
        .await
        .unwrap();
    assert!(unpinned.status().is_success());
    let (code, report) = verify(&check_pins).await;
    assert_eq!(code, 1);
    let found = problems(&report);
    assert!(
        found
            .iter()
            .any(|(k, s, m)| k == "pin" && *s == cid && m.contains("does not hold")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|(k, _, m)| k == "change" && m.contains("not stored")),
        "the deleted row leaves a change depending on a missing one: {found:?}"
    );
}

/// Whether `url`'s database has any table (restore must not have created the schema).
async fn has_tables(url: &str) -> bool {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    n > 0
}

/// Restore of `dir` into a fresh deployment is refused and writes nothing.
async fn restore_is_refused(dir: &str, says: &str) {
    let url = postgres::fresh_database().await;
    let target = temp_dir("cairn-refused");
    let data = target.display().to_string();
    let (code, out, err) = cairn(&[
        "restore",
        "--from",
        dir,
        "--database-url",
        &url,
        "--data-dir",
        &data,
    ])
    .await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains(says), "{err}");
    assert!(!has_tables(&url).await, "nothing written to the database");
    assert!(
        !target.join("blocks").exists(),
        "nothing written to the data directory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_backup_fails_verification_and_is_not_restored() {
    let url = postgres::fresh_database().await;
    let data_dir = temp_dir("cairn-live");
    let server = start_server_in("verify-backup", Some(&url), &data_dir, &[]);
    write_document(&server.url).await;
    support::upload_file(
        &server.url,
        "alice",
        "a.bin",
        pseudo_random_bytes(700_000, 8),
    )
    .await;
    let dir = temp_dir("cairn-backup");
    let to = dir.display().to_string();
    let data = data_dir.display().to_string();
    let (code, out, err) = cairn(&[
        "backup",
        "--to",
        &to,
        "--database-url",
        &url,
        "--data-dir",
        &data,
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, report) = verify(&["--backup", &to]).await;
    assert_eq!((code, problems(&report)), (0, vec![]), "{report}");

    // A tampered manifest: it no longer matches its checksum, nor the database.
    let manifest = dir.join("manifest.json");
    let original = std::fs::read_to_string(&manifest).unwrap();
    let tampered = original.replace("\"changes\": 3", "\"changes\": 2");
    assert_ne!(tampered, original);
    std::fs::write(&manifest, tampered).unwrap();
    let (code, report) = verify(&["--backup", &to]).await;
    assert_eq!(code, 1);
    assert!(
        problems(&report)
            .iter()
            .any(|(k, _, m)| k == "backup" && m.contains("SHA256SUMS")),
        "{report}"
    );
    restore_is_refused(&to, "does not match").await;
    std::fs::write(&manifest, &original).unwrap();

    // A corrupt block, then a missing one.
    let index = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "index"))
        .unwrap();
    let digest = std::fs::read_to_string(index).unwrap()[..64].to_owned();
    let block = dir.join("blocks").join(&digest[..2]).join(&digest);
    let good = std::fs::read(&block).unwrap();
    let mut bad = good.clone();
    bad[0] ^= 1;
    std::fs::write(&block, &bad).unwrap();
    let (code, report) = verify(&["--backup", &to]).await;
    assert_eq!(code, 1);
    assert!(
        problems(&report)
            .iter()
            .any(|(k, _, m)| k == "block" && m.contains("corrupt")),
        "{report}"
    );
    restore_is_refused(&to, "do not hash").await;
    std::fs::remove_file(&block).unwrap();
    let (code, report) = verify(&["--backup", &to]).await;
    assert_eq!(code, 1, "{report}");
    restore_is_refused(&to, &digest).await;
    std::fs::write(&block, &good).unwrap();
    let (code, _) = verify(&["--backup", &to]).await;
    assert_eq!(code, 0, "whole again");
}
