//! The wasm `FileImporter` in headless Chromium gives the CIDs Kubo and ipfs-unixfs-importer
//! give (checked natively against both by the e2e tests), however the bytes are split.

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
