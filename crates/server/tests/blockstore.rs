//! The blockstore contract, run on both backends: `fs` (a directory) and `s3` (the real S3
//! test peer, s3s-fs): blocks are refused unless they hash to their CID, verified when read,
//! listed and deleted by digest; an upload's staged blocks survive garbage collection once the
//! upload claimed them and go when it was abandoned; upload bytes written at offsets read back
//! in order, a rewrite dropping what followed. On s3 also: an unreachable store is
//! `Unavailable` (bounded in time), and works again when it is back.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_core::content::{Block, Cid, CidVersion, Codec};
use cairn_harness::s3::{ACCESS_KEY, BUCKET, S3Peer, SECRET_KEY};
use cairn_server::blocks::{BlockError, BlockStore, FsBlockStore, S3BlockStore, S3Config};
use cairn_server::files::{FileLimits, Files};
use cairn_server::gc::{self, GcSettings};
use cairn_server::store::StoreOptions;
use futures::TryStreamExt;

/// A backend under test, and how to damage one of its blocks behind its back.
struct Subject {
    files: Files,
    damage: Box<dyn Fn(&str)>,
    _peer: Option<S3Peer>,
}

async fn files(dir: &std::path::Path, blocks: Arc<dyn BlockStore>) -> Files {
    Files {
        store: cairn_server::store::open(None, dir, &StoreOptions::default())
            .await
            .unwrap(),
        blocks,
        limits: FileLimits::default(),
        pin_wake: None,
    }
}

async fn fs() -> Subject {
    let dir = cairn_harness::temp_dir("cairn-blockstore-fs");
    let blocks = dir.join("blocks");
    let store = FsBlockStore::open(&blocks, dir.join("uploads")).unwrap();
    Subject {
        files: files(&dir, Arc::new(store)).await,
        damage: Box::new(move |hex| {
            std::fs::write(blocks.join(&hex[..2]).join(hex), b"x").unwrap()
        }),
        _peer: None,
    }
}

fn s3_config(peer: &S3Peer, prefix: &str) -> S3Config {
    S3Config {
        bucket: BUCKET.into(),
        prefix: prefix.into(),
        endpoint: Some(peer.endpoint.clone()),
        region: Some("us-east-1".into()),
        allow_http: true,
        timeout: Duration::from_secs(3),
        credentials: Some((ACCESS_KEY.into(), SECRET_KEY.into())),
    }
}

async fn s3() -> Subject {
    let peer = S3Peer::start();
    let dir = cairn_harness::temp_dir("cairn-blockstore-s3");
    let store = S3BlockStore::open(&s3_config(&peer, "deployment/a")).unwrap();
    let root: PathBuf = peer.root.join(BUCKET).join("deployment/a/blocks");
    Subject {
        files: files(&dir, Arc::new(store)).await,
        damage: Box::new(move |hex| std::fs::write(root.join(hex), b"x").unwrap()),
        _peer: Some(peer),
    }
}

fn block(data: &[u8]) -> Block {
    Block {
        cid: Cid::of_block(CidVersion::V1, Codec::Raw, data),
        data: data.to_vec(),
    }
}

fn hex(cid: &Cid) -> String {
    hex::encode(cid.digest())
}

async fn listed(store: &dyn BlockStore) -> Vec<String> {
    let mut all: Vec<String> = store.list_digests().try_collect().await.unwrap();
    all.sort();
    all
}

async fn blocks_are_verified_listed_and_deleted(subject: Subject) {
    let store = subject.files.blocks.as_ref();
    store.probe().await.unwrap();
    let a = block(b"alpha");
    let b = block(b"beta");
    assert!(matches!(
        store.put(&a.cid, Bytes::from_static(b"gamma")).await,
        Err(BlockError::Mismatch(_))
    ));
    assert!(
        !store.has(&a.cid).await.unwrap(),
        "a refused block is not stored"
    );
    store
        .put(&a.cid, Bytes::from(a.data.clone()))
        .await
        .unwrap();
    store
        .put(&b.cid, Bytes::from(b.data.clone()))
        .await
        .unwrap();
    assert_eq!(store.get(&a.cid).await.unwrap().unwrap(), &a.data[..]);
    // The CIDv0 spelling of a dag-pb block and its CIDv1 are one stored block (same digest).
    let mut expected = vec![hex(&a.cid), hex(&b.cid)];
    expected.sort();
    assert_eq!(listed(store).await, expected);

    (subject.damage)(&hex(&b.cid));
    assert!(matches!(
        store.get(&b.cid).await,
        Err(BlockError::Corrupt(_))
    ));

    store
        .delete_digests(&[hex(&a.cid), hex(&b.cid)])
        .await
        .unwrap();
    store.delete_digests(&[hex(&a.cid)]).await.unwrap(); // gone already: fine
    assert_eq!(store.get(&a.cid).await.unwrap(), None);
    assert!(listed(store).await.is_empty());
}

async fn staged_blocks_are_kept_once_claimed_and_collected_when_abandoned(subject: Subject) {
    let files = &subject.files;
    let store = files.blocks.as_ref();
    let kept = block(b"kept");
    let shared = block(b"shared");
    let abandoned = block(b"abandoned");

    let mut staging = store.stage(&files.claims()).await.unwrap();
    staging
        .put_all(vec![kept.clone(), shared.clone(), kept.clone()])
        .await
        .unwrap();
    let digests = staging.digests();
    assert_eq!(digests.len(), 2, "a repeated block is staged once");
    files
        .store
        .claim_blocks("content-1", &digests, cairn_server::clock::now_ms())
        .await
        .unwrap();
    assert_eq!(staging.commit().await.unwrap(), 2);

    let mut staging = store.stage(&files.claims()).await.unwrap();
    staging
        .put_all(vec![abandoned.clone(), shared.clone()])
        .await
        .unwrap();
    drop(staging); // the upload died before claiming its blocks as a content

    // Collect until the abandoned block is gone (the s3 staging's claims are released by a
    // task when it drops; the fs staging never moved it in).
    let settings = GcSettings {
        grace: Duration::ZERO,
        ..GcSettings::default()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.has(&abandoned.cid).await.unwrap() {
        assert!(Instant::now() < deadline, "the abandoned block stayed");
        tokio::time::sleep(Duration::from_millis(20)).await;
        gc::collect(files, None, &settings).await.unwrap();
    }
    for block in [&kept, &shared] {
        assert_eq!(
            store.get(&block.cid).await.unwrap().as_deref(),
            Some(&block.data[..]),
            "a claimed block survives collection"
        );
    }
}

async fn upload_bytes_read_back_in_order(subject: Subject) {
    let store = subject.files.blocks.as_ref();
    let id = "0123456789abcdef0123456789abcdef";
    let data = cairn_harness::pseudo_random_bytes(3 << 20, 7);
    let mib = 1 << 20;
    store
        .write_part(id, 0, Bytes::copy_from_slice(&data[..mib]))
        .await
        .unwrap();
    store
        .write_part(id, mib as u64, Bytes::copy_from_slice(&data[mib..2 * mib]))
        .await
        .unwrap();
    // A write whose end was never recorded is written again from its start, shorter.
    let half = mib + mib / 2;
    store
        .write_part(id, mib as u64, Bytes::copy_from_slice(&data[mib..half]))
        .await
        .unwrap();
    let read = |len: u64| async move {
        store
            .read_parts(id, len)
            .try_fold(Vec::new(), |mut all, part| async move {
                all.extend_from_slice(&part);
                Ok(all)
            })
            .await
    };
    assert_eq!(read(half as u64).await.unwrap(), &data[..half]);
    assert_eq!(read(mib as u64).await.unwrap(), &data[..mib]);
    assert!(
        matches!(read(2 * mib as u64).await, Err(BlockError::Parts(..))),
        "bytes never stored are an error, not zeros"
    );
    assert!(read(0).await.unwrap().is_empty());
    store.delete_parts(id).await.unwrap();
    assert!(read(half as u64).await.is_err(), "deleted");
    assert!(store.write_part("../etc", 0, Bytes::new()).await.is_err());
}

#[tokio::test]
async fn fs_blocks_are_verified_listed_and_deleted() {
    blocks_are_verified_listed_and_deleted(fs().await).await;
}

#[tokio::test]
async fn s3_blocks_are_verified_listed_and_deleted() {
    blocks_are_verified_listed_and_deleted(s3().await).await;
}

#[tokio::test]
async fn fs_staged_blocks_are_kept_once_claimed_and_collected_when_abandoned() {
    staged_blocks_are_kept_once_claimed_and_collected_when_abandoned(fs().await).await;
}

#[tokio::test]
async fn s3_staged_blocks_are_kept_once_claimed_and_collected_when_abandoned() {
    staged_blocks_are_kept_once_claimed_and_collected_when_abandoned(s3().await).await;
}

#[tokio::test]
async fn fs_upload_bytes_read_back_in_order() {
    upload_bytes_read_back_in_order(fs().await).await;
}

#[tokio::test]
async fn s3_upload_bytes_read_back_in_order() {
    upload_bytes_read_back_in_order(s3().await).await;
}

#[tokio::test]
async fn an_unreachable_s3_store_is_unavailable_and_works_again_when_back() {
    let mut subject = s3().await;
    let store = subject.files.blocks.clone();
    let a = block(b"during the outage");
    subject._peer.as_mut().unwrap().stop();
    let started = Instant::now();
    let failed = store.put(&a.cid, Bytes::from(a.data.clone())).await;
    assert!(
        matches!(failed, Err(BlockError::Unavailable(_))),
        "{failed:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the failure came within the configured timeout (took {:?})",
        started.elapsed()
    );
    assert!(store.probe().await.is_err(), "readiness sees the outage");
    subject._peer.as_mut().unwrap().start_again();
    store
        .put(&a.cid, Bytes::from(a.data.clone()))
        .await
        .unwrap();
    assert_eq!(store.get(&a.cid).await.unwrap().unwrap(), &a.data[..]);
}
