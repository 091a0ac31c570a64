//! Content addressing against independent implementations: Cairn's UnixFS importer gives the
//! CIDv0 the real Kubo peer's `add` gives (and the same cumulative `Size`), and the CIDv1
//! (raw leaves) that `ipfs-unixfs-importer` from npm gives, for files at every layout edge:
//! empty, one byte, exactly one chunk, one chunk and a byte, and more than 174 chunks (a
//! second tree level). `cairn cid` prints the same CIDs.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use cairn_core::content::{CidVersion, ImportOptions, import};
use cairn_harness::browser::run_node;
use cairn_harness::kubo::Kubo;
use ipfs_api_backend_hyper::{IpfsApi, IpfsClient, TryFromUri, request};

const CHUNK: usize = 256 * 1024;

use cairn_harness::pseudo_random_bytes as bytes;

fn cairn_cid(file: &Path, version: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cairn-e2e-server"))
        .args(["cid", "--cid-version", version])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn cids_match_kubo_v0_and_ipfs_unixfs_importer_v1_at_every_layout_edge() {
    let kubo = Kubo::start();
    let client = IpfsClient::from_str(&kubo.api_url).unwrap();
    let dir = cairn_harness::temp_dir("cairn-cid-parity");
    let cases = [
        ("empty", 0),
        ("one-byte", 1),
        ("one-chunk", CHUNK),
        ("chunk-and-a-byte", CHUNK + 1),
        ("two-levels", 175 * CHUNK + 1000),
    ];
    let mut files = Vec::new();
    let mut ours_v1 = Vec::new();
    for (i, (name, len)) in cases.into_iter().enumerate() {
        let data = bytes(len, 0x5eed + i as u64);
        let file = dir.join(name);
        std::fs::write(&file, &data).unwrap();

        let v0_options = ImportOptions {
            version: CidVersion::V0,
            ..ImportOptions::default()
        };
        let (_, ours) = import(&data, v0_options);
        let kubo_add = client
            .add_with_options(
                Cursor::new(data.clone()),
                request::Add {
                    pin: Some(false),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(ours.root.to_string(), kubo_add.hash, "{name}: CIDv0");
        assert_eq!(ours.dag_size.to_string(), kubo_add.size, "{name}: DAG size");
        assert_eq!(ours.size, len as u64);
        if name == "two-levels" {
            assert_eq!(ours.chunks, 176);
            assert_eq!(
                cairn_cid(&file, "0"),
                kubo_add.hash,
                "cairn cid --cid-version 0"
            );
        }

        let (_, v1) = import(&data, ImportOptions::default());
        ours_v1.push(v1.root.to_string());
        files.push(file.to_string_lossy().into_owned());
    }

    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let out = run_node("tests/e2e/cid-parity.mjs", &args);
    let js: Vec<String> = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["cid"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        ours_v1, js,
        "CIDv1 (raw leaves) against ipfs-unixfs-importer"
    );
    assert_eq!(
        cairn_cid(Path::new(&files[4]), "1"),
        ours_v1[4],
        "cairn cid"
    );
}
