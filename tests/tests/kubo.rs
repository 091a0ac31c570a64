//! The real Kubo test peer (Kubo v0.22.0) through `ipfs-api-backend-hyper`, the client the
//! server will use for pinning: add, pin, list, cat back identical bytes, block/get, unpin,
//! and refusal of options the peer cannot honour.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::io::Cursor;

use cairn_harness::kubo::Kubo;
use futures::TryStreamExt;
use ipfs_api_backend_hyper::{IpfsApi, IpfsClient, TryFromUri, request};

use cairn_harness::pseudo_random_bytes as bytes;

async fn cat(client: &IpfsClient, cid: &str) -> Vec<u8> {
    client
        .cat(cid)
        .map_ok(|chunk| chunk.to_vec())
        .try_concat()
        .await
        .unwrap()
}

#[tokio::test]
async fn add_pin_list_cat_unpin_through_ipfs_api_backend_hyper() {
    let kubo = Kubo::start();
    let client = IpfsClient::from_str(&kubo.api_url).unwrap();

    let version = client.version().await.unwrap();
    assert_eq!(version.version, "0.22.0");
    let id = client.id(None).await.unwrap();
    assert!(!id.id.is_empty() && !id.public_key.is_empty());
    assert!(
        id.addresses
            .iter()
            .all(|a| a.starts_with("/ip4/127.0.0.1/")),
        "{:?}",
        id.addresses
    );

    // Well-known: `ipfs add` of "hello" (no newline) is this CID with Kubo's defaults.
    let hello = client.add(Cursor::new(b"hello".to_vec())).await.unwrap();
    assert_eq!(hello.hash, "QmWfVY9y3xjsixTgbd9AorQxH7VtMpzfx2HaWtsoUYecaX");
    assert_eq!(hello.size, "13");

    // Three 256 KiB chunks and a bit: a two-level DAG.
    let data = bytes(3 * 256 * 1024 + 17, 0x5eed);
    let added = client
        .add_with_options(
            Cursor::new(data.clone()),
            request::Add {
                pin: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        added.hash.starts_with("Qm"),
        "CIDv0 by default: {}",
        added.hash
    );
    assert!(
        added.size.parse::<usize>().unwrap() > data.len(),
        "DAG size includes node overhead"
    );
    let recursive = client.pin_ls(None, Some("recursive")).await.unwrap();
    assert!(
        !recursive.keys.contains_key(&added.hash),
        "added with pin=false"
    );

    let pinned = client.pin_add(&added.hash, true).await.unwrap();
    assert_eq!(pinned.pins, vec![added.hash.clone()]);
    let listed = client.pin_ls(Some(&added.hash), None).await.unwrap();
    assert_eq!(listed.keys[&added.hash].typ, "recursive");
    let recursive = client.pin_ls(None, Some("recursive")).await.unwrap();
    assert!(recursive.keys.contains_key(&added.hash));

    assert_eq!(
        cat(&client, &added.hash).await,
        data,
        "cat returns identical bytes"
    );
    let root: Vec<u8> = client
        .block_get(&added.hash)
        .map_ok(|c| c.to_vec())
        .try_concat()
        .await
        .unwrap();
    assert!(
        root.len() < 1024,
        "the root is a small dag-pb node, {} bytes",
        root.len()
    );

    let removed = client.pin_rm(&added.hash, true).await.unwrap();
    assert_eq!(removed.pins, vec![added.hash.clone()]);
    let recursive = client.pin_ls(None, Some("recursive")).await.unwrap();
    assert!(!recursive.keys.contains_key(&added.hash));
    assert!(
        client.pin_rm(&added.hash, true).await.is_err(),
        "unpinning twice is an error"
    );
}

#[tokio::test]
async fn options_the_peer_cannot_honour_are_refused() {
    let kubo = Kubo::start();
    let client = IpfsClient::from_str(&kubo.api_url).unwrap();
    for add in [
        request::Add {
            cid_version: Some(1),
            ..Default::default()
        },
        request::Add {
            raw_leaves: Some(true),
            ..Default::default()
        },
        request::Add {
            chunker: Some("size-1024"),
            ..Default::default()
        },
        request::Add {
            trickle: Some(true),
            ..Default::default()
        },
    ] {
        let err = client
            .add_with_options(Cursor::new(b"x".to_vec()), add)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not supported"), "{err}");
    }
}
