//! Files in headless Chromium: the wasm `FileImporter` gives the CIDs Kubo and
//! ipfs-unixfs-importer give (checked natively against both by the e2e tests), however the
//! bytes are split; file blocks and records in IndexedDB (schema v3) survive a reopen and
//! read back verified; a version 2 database upgrades keeping its data.

#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use cairn_client::FileImporter;
use js_sys::Reflect;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn cid_of(pieces: &[&[u8]], version: u32) -> (String, usize) {
    let mut importer = FileImporter::new(version).unwrap();
    let mut blocks = 0;
    for piece in pieces {
        blocks += importer.write(piece).unwrap().length() as usize;
    }
    let summary = importer.finish().unwrap();
    let last = Reflect::get(&summary, &"blocks".into()).unwrap();
    blocks += js_sys::Array::from(&last).length() as usize;
    let cid = Reflect::get(&summary, &"cid".into()).unwrap();
    (cid.as_string().unwrap(), blocks)
}

#[wasm_bindgen_test]
fn known_cids_in_the_browser() {
    // Well-known: the empty file, and "hello" with both CID versions.
    assert_eq!(
        cid_of(&[], 1).0,
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    );
    assert_eq!(
        cid_of(&[b"hello"], 1).0,
        "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
    );
    assert_eq!(
        cid_of(&[b"he", b"llo"], 0).0,
        "QmWfVY9y3xjsixTgbd9AorQxH7VtMpzfx2HaWtsoUYecaX"
    );
}

#[wasm_bindgen_test]
fn pieces_do_not_change_the_cid_and_blocks_come_out() {
    let data: Vec<u8> = (0..700_000u32).map(|i| (i % 253) as u8).collect();
    let whole = cid_of(&[&data], 1);
    let pieces: Vec<&[u8]> = data.chunks(65_537).collect();
    let split = cid_of(&pieces, 1);
    assert_eq!(whole, split);
    assert_eq!(whole.1, 4, "three leaves and a root");
    assert!(FileImporter::new(2).is_err());
    let mut done = FileImporter::new(1).unwrap();
    done.finish().unwrap();
    assert!(
        done.write(b"x").is_err(),
        "a finished importer refuses more bytes"
    );
}

fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", js_sys::Math::random().to_bits())
}

/// A file's blocks and record survive closing and reopening the repo (IndexedDB schema v3),
/// and read back byte for byte, every block checked against its CID.
#[wasm_bindgen_test]
async fn file_blocks_survive_reopen_and_read_back_verified() {
    use cairn_client::{ClientError, Engine, FileEntry};
    use cairn_core::content::{ImportOptions, import};

    let name = unique_name("files");
    let data: Vec<u8> = (0..700_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let (blocks, imported) = import(&data, ImportOptions::default());
    let blocks: Vec<(String, Vec<u8>)> = blocks
        .into_iter()
        .map(|b| (b.cid.to_string(), b.data))
        .collect();
    let cid = imported.root.to_string();

    let engine = Engine::open(&name).await.unwrap();
    // A block that is not its CID's is refused, and nothing of the batch is stored.
    let mut bad = blocks.clone();
    bad[0].1[0] ^= 1;
    assert!(matches!(
        engine.put_blocks(&bad).await,
        Err(ClientError::InvalidArgument(_))
    ));
    assert_eq!(engine.read_file(&cid).await.unwrap(), None);

    engine.put_blocks(&blocks).await.unwrap();
    let entry = FileEntry {
        cid: cid.clone(),
        name: "photo.raw".into(),
        content_type: "application/octet-stream".into(),
        size: data.len() as f64,
        metadata: "{}".into(),
        state: "local".into(),
        created_at: 1.0,
        upload_id: None,
        code: None,
    };
    engine.record_file(&entry).await.unwrap();
    engine.close();

    let engine = Engine::open(&name).await.unwrap();
    assert_eq!(engine.file(&cid).await.unwrap(), Some(entry.clone()));
    assert_eq!(engine.files().await.unwrap(), vec![entry]);
    assert!(engine.read_file(&cid).await.unwrap() == Some(data));
    assert!(engine.file("not a cid").await.is_err());
    engine.close();
    cairn_client::delete_database(&name).await.unwrap();
}

fn blob_of(data: &[u8], parts: usize) -> web_sys::Blob {
    let array = js_sys::Array::new();
    for piece in data.chunks(data.len().div_ceil(parts.max(1)).max(1)) {
        array.push(&js_sys::Uint8Array::from(piece));
    }
    web_sys::Blob::new_with_u8_array_sequence(&array).unwrap()
}

fn options(name: &str, version: cairn_core::content::CidVersion) -> cairn_client::PutOptions {
    cairn_client::PutOptions {
        name: name.into(),
        content_type: "application/octet-stream".into(),
        metadata: r#"{"album":"test"}"#.into(),
        document: None,
        version,
    }
}

/// `put_file` streams a real `Blob` through the importer: the CID is the one the importer
/// gives for the same bytes, the blocks and record are stored, an upload is queued, progress
/// is reported, and the file reads back as `Blob` parts, byte for byte.
#[wasm_bindgen_test]
async fn put_file_stores_the_blob_and_queues_its_upload() {
    use cairn_core::content::{CidVersion, ImportOptions, import};
    use cairn_core::outbox::OpKind;

    let name = unique_name("put");
    let engine = cairn_client::Engine::open(&name).await.unwrap();
    let data: Vec<u8> = (0..900_000u32).map(|i| (i * 13 % 241) as u8).collect();
    for version in [CidVersion::V1, CidVersion::V0] {
        let seen = std::cell::RefCell::new(Vec::new());
        let report = |done: f64, total: f64| seen.borrow_mut().push((done, total));
        let entry = engine
            .put_file(&blob_of(&data, 7), options("big.bin", version), &report)
            .await
            .unwrap();
        let (_, imported) = import(
            &data,
            ImportOptions {
                version,
                ..ImportOptions::default()
            },
        );
        assert_eq!(entry.cid, imported.root.to_string());
        assert_eq!(entry.state, "local");
        assert_eq!(entry.size, data.len() as f64);
        let seen = seen.borrow().clone();
        assert_eq!(seen.last(), Some(&(data.len() as f64, data.len() as f64)));
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "progress grows");
        let parts = engine.read_parts(&entry.cid).await.unwrap().unwrap();
        assert!(parts.len() >= 4, "a Blob part per leaf");
        assert!(engine.read_file(&entry.cid).await.unwrap() == Some(data.clone()));
    }
    let outbox = engine.outbox().await.unwrap();
    assert_eq!(outbox.len(), 2);
    assert!(
        outbox
            .iter()
            .all(|e| matches!(&e.kind, OpKind::FileUpload(u)
        if u.name == "big.bin" && u.metadata.contains("album") && !u.cancelled))
    );
    assert_eq!(engine.pending().await.unwrap(), 2);
    assert_eq!(engine.files().await.unwrap().len(), 2);
    engine.close();
    cairn_client::delete_database(&name).await.unwrap();
}

/// Deleting a file cancels its queued upload, queues the deletion for the server, and removes
/// its record and blocks, but not a block another file still uses.
#[wasm_bindgen_test]
async fn delete_file_cancels_the_upload_and_keeps_shared_blocks() {
    use cairn_core::content::CidVersion;
    use cairn_core::outbox::OpKind;

    let name = unique_name("delete");
    let engine = cairn_client::Engine::open(&name).await.unwrap();
    let chunk = 256 * 1024;
    // Both files start with the same chunk: one leaf block is shared.
    let a: Vec<u8> = (0..2 * chunk).map(|i| (i / 1000) as u8).collect();
    let mut b = a[..chunk].to_vec();
    b.extend((0..chunk).map(|i| (i % 7) as u8));
    let none = |_: f64, _: f64| {};
    let fa = engine
        .put_file(&blob_of(&a, 3), options("a", CidVersion::V1), &none)
        .await
        .unwrap();
    let fb = engine
        .put_file(&blob_of(&b, 3), options("b", CidVersion::V1), &none)
        .await
        .unwrap();
    engine.delete_file(&fa.cid).await.unwrap();
    assert_eq!(engine.file(&fa.cid).await.unwrap(), None);
    assert_eq!(
        engine.read_file(&fa.cid).await.unwrap(),
        None,
        "its blocks are gone"
    );
    assert!(
        engine.read_file(&fb.cid).await.unwrap() == Some(b),
        "the shared leaf is kept"
    );
    let kinds: Vec<_> = engine
        .outbox()
        .await
        .unwrap()
        .into_iter()
        .map(|e| match e.kind {
            OpKind::FileUpload(u) => format!("upload {} cancelled={}", u.name, u.cancelled),
            OpKind::FileDelete { cid } => format!("delete {}", cid == fa.cid.parse().unwrap()),
            OpKind::DocumentChanges { .. } => "changes".into(),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "upload a cancelled=true",
            "upload b cancelled=false",
            "delete true"
        ]
    );
    assert!(engine.delete_file("nonsense").await.is_err());
    engine.close();
    cairn_client::delete_database(&name).await.unwrap();
}

/// A database of an earlier schema `version` (2: before files, 3: before the outbox's status
/// index), as that version of the SDK made it.
async fn old_database(name: &str, version: u32) -> rexie::Rexie {
    use rexie::{Index, ObjectStore, Rexie};

    let mut builder = Rexie::builder(&cairn_client::database_name(name))
        .version(version)
        .add_object_store(ObjectStore::new("documents").key_path("id"))
        .add_object_store(
            ObjectStore::new("changes")
                .key_path("key")
                .auto_increment(true)
                .add_index(Index::new_array("by_doc", ["doc", "key"])),
        )
        .add_object_store(
            ObjectStore::new("outbox")
                .key_path("seq")
                .auto_increment(true),
        )
        .add_object_store(ObjectStore::new("sync").key_path("doc"))
        .add_object_store(ObjectStore::new("meta").key_path("key"));
    if version >= 3 {
        builder = builder
            .add_object_store(ObjectStore::new("blocks").key_path("cid"))
            .add_object_store(ObjectStore::new("files").key_path("cid"));
    }
    builder.build().await.unwrap()
}

/// A version 2 database (before files) upgrades to version 3 keeping what it held.
#[wasm_bindgen_test]
async fn a_version_2_database_upgrades_and_keeps_its_data() {
    use rexie::TransactionMode;

    let name = unique_name("upgrade");
    let v2 = old_database(&name, 2).await;
    let record = js_sys::Object::new();
    Reflect::set(&record, &"key".into(), &"token".into()).unwrap();
    Reflect::set(&record, &"value".into(), &"kept".into()).unwrap();
    let tx = v2
        .transaction(&["meta"], TransactionMode::ReadWrite)
        .unwrap();
    tx.store("meta").unwrap().put(&record, None).await.unwrap();
    tx.done().await.unwrap();
    v2.close();

    let engine = cairn_client::Engine::open(&name).await.unwrap();
    assert_eq!(engine.token().await.unwrap().as_deref(), Some("kept"));
    assert_eq!(engine.files().await.unwrap(), vec![]);
    engine.close();
    cairn_client::delete_database(&name).await.unwrap();
}

/// A version 3 database (before the outbox's `by_status` index) upgrades to version 4: the
/// index covers the entries it already held, so `pending` counts them without reading them.
#[wasm_bindgen_test]
async fn a_version_3_outbox_is_indexed_by_status_on_upgrade() {
    use rexie::TransactionMode;

    let name = unique_name("upgrade3");
    let v3 = old_database(&name, 3).await;
    let tx = v3
        .transaction(&["outbox"], TransactionMode::ReadWrite)
        .unwrap();
    let outbox = tx.store("outbox").unwrap();
    for status in ["pending", "failed", "pending"] {
        let record = js_sys::Object::new();
        Reflect::set(&record, &"status".into(), &status.into()).unwrap();
        outbox.add(&record, None).await.unwrap();
    }
    tx.done().await.unwrap();
    v3.close();

    let engine = cairn_client::Engine::open(&name).await.unwrap();
    assert_eq!(
        engine.pending().await.unwrap(),
        2,
        "every entry but the failed one"
    );
    engine.close();
    cairn_client::delete_database(&name).await.unwrap();
}

/// A file deleted while its upload is being tried (the uploader has read the entry and is
/// writing its attempt back) stays deleted: the attempt's state is written onto the stored
/// entry, keeping the cancellation, instead of the stale copy the uploader read.
#[wasm_bindgen_test]
async fn a_file_deleted_while_its_upload_is_tried_stays_cancelled() {
    use cairn_core::content::CidVersion;
    use cairn_core::outbox::OpKind;

    let name = unique_name("delete-race");
    let engine = cairn_client::Engine::open(&name).await.unwrap();
    let data: Vec<u8> = (0..3000).map(|i| (i % 251) as u8).collect();
    let none = |_: f64, _: f64| {};
    let file = engine
        .put_file(&blob_of(&data, 2), options("raced", CidVersion::V1), &none)
        .await
        .unwrap();
    // Port 9 on loopback is closed: the upload attempt fails at the network level.
    let remote = cairn_client::Remote {
        server: "http://127.0.0.1:9".into(),
        token: "t".into(),
    };
    let progress = |_: &str, _: f64, _: f64| {};
    // The uploader reads the outbox first; the delete's transaction is queued behind that
    // read and runs before the uploader writes its attempt back.
    let (_, deleted) = futures::future::join(
        engine.file_op(&remote, &progress),
        engine.delete_file(&file.cid),
    )
    .await;
    deleted.unwrap();
    let uploads: Vec<_> = engine
        .outbox()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.kind {
            OpKind::FileUpload(u) => Some(u.cancelled),
            _ => None,
        })
        .collect();
    assert_eq!(uploads, vec![true], "the upload stays cancelled");
    engine.close();
    cairn_client::delete_database(&name).await.unwrap();
}
